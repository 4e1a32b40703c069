/**
 * Where the query path renders answers. An answer lives only until the client's reply() returns: a UDP reply copies
 * it into the listener's outbox (outbox.ts, sent after the datagrams at hand), a TCP reply into its frame, so one
 * buffer per answer length can serve every query, and the query path allocates no Buffer per answer (a Buffer view
 * is ~100-170 heap bytes: 173 of ~1,850 per query at 10,000 q/s, `node bench/lib/query-path-bench.mjs --live
 * --sites`, Node 20). A buffer the client still holds after reply() (it says so) is let go and replaced by a new one.
 */
import { Buffer } from 'node:buffer';

/** Hands out a buffer of exactly `length` octets, which the caller then writes whole. */
export interface AnswerBuffers {
  take(length: number): Buffer;
}

/** A new buffer for every answer (for callers that keep their answers). */
export const NEW_BUFFERS: AnswerBuffers = { take: (length) => Buffer.allocUnsafe(length) };

/** Answers longer than this get a new buffer each time (only TCP answers can be; UDP ones are at most 4096). */
const MAX_SCRATCH_BYTES = 4096;

/** One buffer per answer length, reused until released. */
export class ScratchAnswers implements AnswerBuffers {
  readonly #byLength: (Buffer | undefined)[] = Array.from({ length: MAX_SCRATCH_BYTES + 1 }, () => undefined);

  take(length: number): Buffer {
    if (length > MAX_SCRATCH_BYTES) return Buffer.allocUnsafe(length);
    let b = this.#byLength[length];
    if (b === undefined) {
      // Its own memory, not a slice of Node's shared pool (a long-lived slice would keep the pool's 8 KiB).
      b = Buffer.allocUnsafeSlow(length);
      this.#byLength[length] = b;
    }
    return b;
  }

  /** `b` is still held by someone else: the next answer of its length gets a new buffer. */
  release(b: Buffer): void {
    if (this.#byLength[b.length] === b) this.#byLength[b.length] = undefined;
  }
}
