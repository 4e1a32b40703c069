// A log as a publisher keeps it, for the client tests: entries appended in publishes, each publish's tiles and
// checkpoint (signed by the log, cosigned by test witnesses) kept in one file map served under `log/`.
import {
  LogAppender,
  NoteSecretKey,
  addSignatures,
  cosignCheckpoint,
  parseCosignerKey,
  parseLogKey,
  parseNote,
  signCheckpoint,
  type LogTrust,
} from '../dist/index.js';

export const ORIGIN = 'lists.example/demo';
export const NOW = 1_800_000_000;

export class TestLog {
  readonly key: NoteSecretKey;
  readonly witnesses: NoteSecretKey[];
  readonly files = new Map<string, Uint8Array>();
  readonly entries: Uint8Array[] = [];
  /** The checkpoint note of every publish, by size. */
  readonly checkpoints = new Map<number, Uint8Array>();
  #appender = LogAppender.empty();

  constructor(
    key = NoteSecretKey.generate(ORIGIN),
    witnesses = [1, 2].map((i) => NoteSecretKey.generate(`witness.example/w${i}`)),
  ) {
    this.key = key;
    this.witnesses = witnesses;
  }

  /** Appends entries, writes their tiles and a checkpoint cosigned by the first `cosigners` witnesses. */
  publish(entries: readonly Uint8Array[], cosigners = this.witnesses.length): Uint8Array {
    for (const e of entries) {
      this.entries.push(e);
      this.#appender.add(e);
    }
    for (const [p, b] of this.#appender.finish()) this.files.set(`log/${p}`, b);
    const signed = signCheckpoint(
      { origin: ORIGIN, size: this.#appender.size, root: this.#appender.root(), extensions: [] },
      [this.key.noteSigner()],
    );
    const note = parseNote(signed);
    const cosigned = addSignatures(
      note,
      this.witnesses.slice(0, cosigners).map((w, i) => cosignCheckpoint(note, w.cosigner(), NOW + i)),
    );
    this.files.set('log/checkpoint', cosigned);
    this.checkpoints.set(this.#appender.size, cosigned);
    return cosigned;
  }

  trust(threshold = this.witnesses.length): LogTrust {
    return {
      origin: ORIGIN,
      logKey: parseLogKey(this.key.vkey),
      witnesses: this.witnesses.map((w) => parseCosignerKey(w.cosigner().vkey)),
      witnessThreshold: threshold,
    };
  }
}
