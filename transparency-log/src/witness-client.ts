/**
 * The log's side of tlog-witness: sends a new checkpoint, with a consistency proof, to each witness's
 * `add-checkpoint` endpoint and gathers the cosignatures (undici, with a deadline per request and a cap on every
 * answer). A 409 names the size the witness holds; the request is then made again with a proof from that size.
 */
// undici is loaded on the first request: a program that only reads logs or checks checkpoints never needs it.
import type { Agent } from 'undici';

import { addSignatures } from './checkpoint.js';
import { TlogError } from './errors.js';
import { cosignatureTimestamp, type NoteVerifier } from './keys.js';
import type { Hash } from './merkle.js';
import { parseNote, type NoteSignature } from './note.js';
import {
  ADD_CHECKPOINT_PATH,
  formatAddCheckpoint,
  parseCosignatureLines,
  parseSizeBody,
  type AddCheckpointRequest,
} from './witness-protocol.js';

/** A witness as a log is configured with it. */
export interface WitnessEndpoint {
  /** The submission prefix (`https://witness.example/`): add-checkpoint is POSTed to `<url>add-checkpoint`. */
  readonly url: string;
  /** The witness's cosigner key (type 0x04). */
  readonly key: NoteVerifier;
}

export type AddCheckpointOutcome =
  /** 200 with a valid cosignature by the witness's key. */
  | { readonly kind: 'cosigned'; readonly signature: NoteSignature; readonly timestamp: number }
  /** 409: the witness holds a checkpoint of `size`. */
  | { readonly kind: 'conflict'; readonly size: number }
  /** Any other 4xx, or a 200 without a valid cosignature: sending the same again will not help. */
  | { readonly kind: 'refused'; readonly status: number; readonly message: string }
  /** Network failure, timeout, 5xx: worth another try later. */
  | { readonly kind: 'unavailable'; readonly message: string };

/** Bytes read of a witness's answer at most. */
export const MAX_WITNESS_ANSWER_BYTES = 64 * 1024;

export interface WitnessRequestOptions {
  /** Deadline for one request, headers and body (default 10000). */
  readonly timeoutMs?: number;
  readonly dispatcher?: Agent;
  readonly userAgent?: string;
}

function endpointUrl(base: string): URL {
  const url = new URL(base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError(`not an HTTP URL: ${base}`);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return new URL(ADD_CHECKPOINT_PATH, url);
}

function errText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** One add-checkpoint request (tlog-witness). Never throws for what the witness or the network does. */
export async function postAddCheckpoint(
  witness: WitnessEndpoint,
  req: AddCheckpointRequest,
  options: WitnessRequestOptions = {},
): Promise<AddCheckpointOutcome> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  try {
    const { request } = await import('undici');
    const res = await request(endpointUrl(witness.url), {
      method: 'POST',
      body: formatAddCheckpoint(req),
      headers: { 'content-type': 'text/plain; charset=utf-8', 'user-agent': options.userAgent ?? 'hashwall' },
      signal: deadline.signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    });
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body) {
      total += (chunk as Buffer).length;
      if (total > MAX_WITNESS_ANSWER_BYTES) {
        res.body.destroy();
        return { kind: 'unavailable', message: `answer over ${MAX_WITNESS_ANSWER_BYTES} bytes` };
      }
      chunks.push(chunk as Buffer);
    }
    const body = Buffer.concat(chunks);
    const text = (): string => body.toString('utf8').slice(0, 200).trim();
    if (res.statusCode === 200) return cosignatureIn(witness, req.checkpoint, body);
    if (res.statusCode === 409) {
      try {
        return { kind: 'conflict', size: parseSizeBody(body) };
      } catch {
        return { kind: 'refused', status: 409, message: 'a 409 without a tlog size body' };
      }
    }
    if (res.statusCode >= 400 && res.statusCode < 500) {
      return { kind: 'refused', status: res.statusCode, message: text() };
    }
    return { kind: 'unavailable', message: `HTTP ${res.statusCode}${text() ? `: ${text()}` : ''}` };
  } catch (err) {
    return {
      kind: 'unavailable',
      message: deadline.signal.aborted ? `no answer within ${timeoutMs} ms` : errText(err),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The witness's cosignature in a 200 answer, verified over the checkpoint's text. */
function cosignatureIn(witness: WitnessEndpoint, checkpoint: Uint8Array, body: Uint8Array): AddCheckpointOutcome {
  let lines: NoteSignature[];
  try {
    lines = parseCosignatureLines(body);
  } catch (err) {
    return { kind: 'refused', status: 200, message: errText(err) };
  }
  const text = parseNote(checkpoint).textBytes;
  for (const sig of lines) {
    if (sig.name !== witness.key.name || sig.keyId !== witness.key.keyId) continue;
    const timestamp = cosignatureTimestamp(sig.signature);
    if (timestamp !== undefined && witness.key.verify(text, sig.signature)) {
      return { kind: 'cosigned', signature: sig, timestamp };
    }
    return { kind: 'refused', status: 200, message: `the cosignature of ${witness.key.name} does not verify` };
  }
  return { kind: 'refused', status: 200, message: `no cosignature by ${witness.key.name} in the answer` };
}

export interface CosignOptions extends WitnessRequestOptions {
  /** The checkpoint, signed by the log. */
  readonly checkpoint: Uint8Array;
  /** Its size. */
  readonly size: number;
  readonly witnesses: readonly WitnessEndpoint[];
  /** Distinct cosignatures needed. */
  readonly threshold: number;
  /** The size each witness is expected to hold: the size of the log's previous checkpoint (0 for none). */
  readonly oldSize: number;
  /** The consistency proof from a smaller size to `size` (empty for 0). */
  proof(fromSize: number): Promise<Hash[]>;
  /** Keep retrying witnesses that were unavailable until this many ms after the start (default 0: one round). */
  readonly waitMs?: number;
  /** Pause between rounds (default 5000). */
  readonly retryDelayMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface WitnessReport {
  readonly url: string;
  readonly name: string;
  readonly ok: boolean;
  /** What happened, for the operator: `cosigned at ...`, `HTTP 422: ...`, `unreachable: ...`. */
  readonly detail: string;
}

export interface CosignResult {
  /** The checkpoint with every cosignature gathered appended. */
  readonly checkpoint: Uint8Array;
  readonly cosignatures: readonly NoteSignature[];
  readonly witnesses: readonly WitnessReport[];
}

/** At most this many 409 answers are followed per witness per round. */
const MAX_CONFLICTS = 3;

async function askWitness(witness: WitnessEndpoint, options: CosignOptions): Promise<AddCheckpointOutcome> {
  let oldSize = Math.min(options.oldSize, options.size);
  for (let attempt = 0; ; attempt++) {
    const proof = oldSize === 0 ? [] : await options.proof(oldSize);
    const outcome = await postAddCheckpoint(witness, { oldSize, proof, checkpoint: options.checkpoint }, options);
    if (outcome.kind !== 'conflict') return outcome;
    if (outcome.size > options.size) {
      return {
        kind: 'refused',
        status: 409,
        message: `the witness holds a larger tree of this log (size ${outcome.size} > ${options.size}): a fork, or this log lost its state`,
      };
    }
    if (outcome.size === oldSize || attempt + 1 >= MAX_CONFLICTS) {
      return { kind: 'refused', status: 409, message: `the witness insists on size ${outcome.size}` };
    }
    oldSize = outcome.size;
  }
}

function describe(o: AddCheckpointOutcome): string {
  switch (o.kind) {
    case 'cosigned':
      return `cosigned (time ${o.timestamp})`;
    case 'conflict':
      return `holds size ${o.size}`;
    case 'refused':
      return `refused: HTTP ${o.status}${o.message ? `: ${o.message}` : ''}`;
    case 'unavailable':
      return `unavailable: ${o.message}`;
  }
}

/**
 * Gathers cosignatures for a checkpoint from its witnesses, all at once, in rounds: after a round that leaves the
 * threshold unmet, witnesses that were unavailable are asked again until `waitMs` has passed. A refusal (4xx) is
 * final. Returns the checkpoint with every cosignature gathered; throws LOG_WITNESS_FAILED, naming each witness and
 * what it answered, when fewer than `threshold` cosigned.
 */
export async function collectCosignatures(options: CosignOptions): Promise<CosignResult> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const start = now();
  const agent =
    options.dispatcher ??
    new (await import('undici')).Agent({ connect: { timeout: options.timeoutMs ?? 10_000 }, connections: 2 });
  const results = new Map<WitnessEndpoint, AddCheckpointOutcome>();
  try {
    for (;;) {
      const pending = options.witnesses.filter((w) => {
        const r = results.get(w);
        return r === undefined || r.kind === 'unavailable';
      });
      const outcomes = await Promise.all(pending.map((w) => askWitness(w, { ...options, dispatcher: agent })));
      pending.forEach((w, i) => results.set(w, outcomes[i]!));
      const cosigned = [...results.values()].filter((o) => o.kind === 'cosigned').length;
      const retry = [...results.values()].some((o) => o.kind === 'unavailable');
      if (cosigned >= options.threshold || !retry) break;
      const delay = options.retryDelayMs ?? 5000;
      if (now() + delay - start > (options.waitMs ?? 0)) break;
      await sleep(delay);
    }
  } finally {
    if (options.dispatcher === undefined) await agent.close();
  }
  const witnesses: WitnessReport[] = options.witnesses.map((w) => {
    const o = results.get(w)!;
    return { url: w.url, name: w.key.name, ok: o.kind === 'cosigned', detail: describe(o) };
  });
  const cosignatures = options.witnesses.flatMap((w) => {
    const o = results.get(w)!;
    return o.kind === 'cosigned' ? [o.signature] : [];
  });
  if (cosignatures.length < options.threshold) {
    throw new TlogError(
      'LOG_WITNESS_FAILED',
      `${cosignatures.length} of ${options.witnesses.length} witnesses cosigned; ${options.threshold} needed (` +
        witnesses.map((w) => `${w.name} at ${w.url}: ${w.detail}`).join('; ') +
        ')',
    );
  }
  return {
    checkpoint:
      cosignatures.length > 0 ? addSignatures(parseNote(options.checkpoint), cosignatures) : options.checkpoint,
    cosignatures,
    witnesses,
  };
}
