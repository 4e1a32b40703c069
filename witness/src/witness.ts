/**
 * The witness (tlog-witness, tlog-cosignature): for each configured log it keeps the latest checkpoint it
 * cosigned, and cosigns a new one only when it extends that one. No HTTP here: `addCheckpoint` takes a request
 * body and returns the status and body the specification calls for; server.ts serves it.
 *
 * The checks, in the specification's order: a body that is not `old <size>`, proof lines, a blank line and a
 * signed note is 400; an unknown origin 404; a bad signature by a log key, or none at all, 403; an old size above
 * the checkpoint's 400; an old size other than the size last cosigned 409 (with that size); a size-0 checkpoint
 * without the empty root, a proof from size 0, or a proof that does not verify 422. Checking the old size and
 * storing the new checkpoint happen under one lock per log, and the checkpoint is on disk before the answer.
 * A validly signed checkpoint that contradicts the one cosigned (same size and another root, or no consistency)
 * is kept as evidence.
 */
import {
  EMPTY_ROOT,
  MAX_CHECKPOINT_BYTES,
  TlogError,
  cosignCheckpoint,
  parseAddCheckpoint,
  parseCheckpointText,
  parseCosignerKey,
  parseNote,
  sameHash,
  serializeNote,
  signatureLine,
  verifyConsistency,
  verifyNote,
  type Cosigner,
  type Hash,
  type NoteSecretKey,
  type SignedNote,
} from '@hashwall/tlog';

import type { WitnessLog } from './config.js';
import { originHash, type Evidence, type WitnessStore } from './store.js';

/** What the HTTP layer sends back, and what the log line says. */
export interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  /** A stable word for logs and tests: cosigned, malformed, unknown-log, bad-signature, conflict, bad-proof, fork. */
  readonly outcome: string;
  readonly origin?: string;
  readonly oldSize?: number;
  readonly size?: number;
  /** Where evidence was written, when it was. */
  readonly evidence?: string;
}

interface LogState {
  readonly size: number;
  readonly root: Hash;
  /** The stored note: the log's verified signatures and this witness's cosignature. */
  readonly note: Uint8Array;
}

const TEXT = 'text/plain; charset=utf-8';
/** tlog-witness: the 409 answer's type. */
const SIZE_TYPE = 'text/x.tlog.size';

export interface WitnessOptions {
  readonly key: NoteSecretKey;
  readonly logs: ReadonlyMap<string, WitnessLog>;
  readonly store: WitnessStore;
  /** Seconds since the epoch: the cosignature's timestamp. */
  readonly now: () => number;
  /** Called when evidence is kept or could not be (path undefined). */
  readonly onEvidence?: (evidence: Evidence, path: string | undefined, err?: unknown) => void;
}

export class Witness {
  readonly cosigner: Cosigner;
  readonly #options: WitnessOptions;
  readonly #state = new Map<string, LogState>();
  readonly #byHash = new Map<string, string>();
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(options: WitnessOptions) {
    this.#options = options;
    this.cosigner = options.key.cosigner();
    for (const origin of options.logs.keys()) this.#byHash.set(originHash(origin), origin);
  }

  /**
   * Loads the stored checkpoint of every configured log and checks it: the log's signature and this witness's
   * cosignature. A damaged file stops the start (starting from nothing would cosign a fork).
   */
  async init(): Promise<void> {
    await this.#options.store.init();
    const own = parseCosignerKey(this.cosigner.vkey);
    for (const log of this.#options.logs.values()) {
      const bytes = await this.#options.store.load(log.origin);
      if (bytes === undefined) continue;
      try {
        const note = parseNote(bytes, { maxBytes: MAX_CHECKPOINT_BYTES });
        const verified = verifyNote(note, [...log.keys, own]);
        if (!verified.some((v) => log.keys.includes(v.verifier))) throw new Error('no valid signature by the log key');
        if (!verified.some((v) => v.verifier === own)) throw new Error('no cosignature of ours');
        const cp = parseCheckpointText(note.text);
        if (cp.origin !== log.origin) throw new Error(`the checkpoint is for ${cp.origin}`);
        this.#state.set(log.origin, { size: cp.size, root: cp.root, note: bytes });
      } catch (err) {
        throw new Error(
          `the stored checkpoint of ${log.origin} (${originHash(log.origin)}) cannot be used: ${(err as Error).message}; ` +
            'restore it from a backup, or remove it to trust the next checkpoint on first use',
          { cause: err },
        );
      }
    }
  }

  /** The size last cosigned for an origin (0 if none). */
  sizeOf(origin: string): number {
    return this.#state.get(origin)?.size ?? 0;
  }

  /** tlog-witness monitoring: the latest cosigned checkpoint of the log whose origin hashes to `hash`. */
  checkpointByHash(hash: string): Uint8Array | undefined {
    const origin = this.#byHash.get(hash);
    return origin === undefined ? undefined : this.#state.get(origin)?.note;
  }

  /** tlog-witness add-checkpoint. Never throws for what a client sends; a failed disk write rejects. */
  async addCheckpoint(body: Uint8Array): Promise<Reply> {
    let req;
    let note: SignedNote;
    try {
      req = parseAddCheckpoint(body);
      note = parseNote(req.checkpoint, { maxBytes: MAX_CHECKPOINT_BYTES });
    } catch (err) {
      if (err instanceof TlogError) return reply(400, 'malformed', `malformed request: ${err.message}`);
      throw err;
    }
    const origin = note.text.slice(0, note.text.indexOf('\n'));
    const log = this.#options.logs.get(origin);
    if (log === undefined) return reply(404, 'unknown-log', 'unknown log', { oldSize: req.oldSize });
    let verified;
    try {
      verified = verifyNote(note, log.keys);
    } catch (err) {
      if (err instanceof TlogError) return reply(403, 'bad-signature', 'invalid signature by the log key', { origin });
      throw err;
    }
    if (verified.length === 0) return reply(403, 'bad-signature', 'no signature by the log key', { origin });
    let cp;
    try {
      cp = parseCheckpointText(note.text);
    } catch (err) {
      if (err instanceof TlogError) return reply(400, 'malformed', `malformed checkpoint: ${err.message}`, { origin });
      throw err;
    }
    const at = { origin, oldSize: req.oldSize, size: cp.size };
    if (req.oldSize > cp.size) return reply(400, 'malformed', 'the old size is above the checkpoint size', at);
    const request = req;
    return this.#locked(origin, async () => {
      const state = this.#state.get(origin);
      const known = state?.size ?? 0;
      if (request.oldSize !== known) return { ...reply(409, 'conflict', `${known}\n`, at), contentType: SIZE_TYPE };
      if (cp.size === 0 && !sameHash(cp.root, EMPTY_ROOT)) {
        return reply(422, 'bad-proof', 'a checkpoint of size 0 must have the empty root', at);
      }
      if (request.oldSize === 0) {
        if (request.proof.length > 0) return reply(422, 'bad-proof', 'a proof from size 0 must be empty', at);
      } else {
        try {
          verifyConsistency(request.oldSize, cp.size, state!.root, cp.root, request.proof);
        } catch (err) {
          if (!(err instanceof TlogError)) throw err;
          const fork = request.oldSize === cp.size;
          const path = await this.#keep({
            origin,
            kind: fork ? 'split-view' : 'inconsistent',
            reason: fork
              ? `size ${cp.size} signed with two roots`
              : `the consistency proof from the cosigned size ${request.oldSize} to ${cp.size} does not verify`,
            cosigned: Buffer.from(state!.note).toString('utf8'),
            submitted: Buffer.from(request.checkpoint).toString('utf8'),
            request: Buffer.from(body).toString('utf8'),
          });
          const why = fork ? 'the root differs from the checkpoint cosigned at this size' : 'bad consistency proof';
          return { ...reply(422, fork ? 'fork' : 'bad-proof', why, at), ...(path ? { evidence: path } : {}) };
        }
      }
      const timestamp = this.#options.now();
      const cosignature = cosignCheckpoint(note, this.cosigner, timestamp);
      const stored = serializeNote(note.text, [...verified.map((v) => v.signature), cosignature]);
      await this.#options.store.save(origin, stored);
      this.#state.set(origin, { size: cp.size, root: cp.root, note: stored });
      return reply(200, 'cosigned', signatureLine(cosignature.name, cosignature.keyId, cosignature.signature), at);
    });
  }

  async #keep(evidence: Evidence): Promise<string | undefined> {
    try {
      const path = await this.#options.store.saveEvidence(evidence, this.#options.now());
      this.#options.onEvidence?.(evidence, path);
      return path;
    } catch (err) {
      this.#options.onEvidence?.(evidence, undefined, err);
      return undefined;
    }
  }

  /** Runs `fn` after every earlier call for the same origin has finished (the check-then-store of tlog-witness). */
  async #locked<T>(origin: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#locks.get(origin) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#locks.set(origin, tail);
    try {
      return await run;
    } finally {
      if (this.#locks.get(origin) === tail) this.#locks.delete(origin);
    }
  }
}

function reply(
  status: number,
  outcome: string,
  body: string,
  at: { origin?: string; oldSize?: number; size?: number } = {},
): Reply {
  return { status, outcome, body: status === 200 || status === 409 ? body : `${body}\n`, contentType: TEXT, ...at };
}
