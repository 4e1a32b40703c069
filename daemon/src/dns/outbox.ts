/**
 * A UDP listener's answers, sent together once the event loop has handled the datagrams at hand instead of one by
 * one between them.
 *
 * libuv reads up to 32 datagrams from a readable socket in one go and Node hands each to the query path at once, so
 * an answer made at once (the cache, a block) used to be sent between two reads. Sent after the poll phase instead
 * (one setImmediate per batch), the answers leave back to back: at saturation one hashwalld process answered 22%
 * (Node 20) and 27% (Node 24) more queries for the same CPU, and a bare node:dgram echo 25-45% more, the latency at
 * 10,000 q/s unchanged (bench/README.md, "Answers sent together"). At a load that leaves the loop idle a batch is
 * one answer, sent in the same turn of the loop.
 *
 * An answer is copied here when it is added: the query path renders into buffers it reuses (scratch.ts). The
 * copies share one slab, sent by offset; a send that libuv had to queue (EAGAIN: the socket's send buffer is full)
 * still points into it, so the slab is then let go and a new one made, as scratch.ts does with its buffers.
 */
import { Buffer } from 'node:buffer';

import { copyOctets } from './wire.js';

/** Room for the answers of a batch (a UDP answer is at most 4096 octets here; a fuller slab is sent at once). */
const SLAB_BYTES = 64 * 1024;

/** Sends `length` octets of `slab` from `offset` to address:port (the listener's socket); never throws. */
export type SendAt = (slab: Buffer, offset: number, length: number, port: number, address: string) => void;

export class UdpOutbox {
  readonly #send: SendAt;
  readonly #held: () => boolean;
  #slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  #used = 0;
  /** Offset, length and port of each answer waiting, three numbers each. */
  readonly #at: number[] = [];
  readonly #to: string[] = [];
  #count = 0;
  #armed = false;
  readonly #onImmediate = (): void => {
    this.#armed = false;
    this.flush();
  };

  /** `held`: whether a send since the last flush still points into the slab (the socket's send queue is not empty). */
  constructor(send: SendAt, held: () => boolean) {
    this.#send = send;
    this.#held = held;
  }

  /** Answers waiting. */
  get size(): number {
    return this.#count;
  }

  /** Queues a copy of `answer` for address:port; sent in this turn of the event loop, after its poll phase. */
  add(answer: Buffer, port: number, address: string): void {
    const n = answer.length;
    if (n > SLAB_BYTES - this.#used) {
      this.flush();
      if (n > SLAB_BYTES) {
        // A copy of its own: a send libuv queued would point into the caller's buffer, which it reuses.
        this.#send(Buffer.from(answer), 0, n, port, address);
        return;
      }
    }
    const at = this.#used;
    this.#used = copyOctets(answer, 0, n, this.#slab, at);
    const i = this.#count * 3;
    this.#at[i] = at;
    this.#at[i + 1] = n;
    this.#at[i + 2] = port;
    this.#to[this.#count++] = address;
    if (!this.#armed) {
      this.#armed = true;
      setImmediate(this.#onImmediate);
    }
  }

  /** Sends every answer waiting, in the order they were added. */
  flush(): void {
    const count = this.#count;
    if (count === 0) return;
    const slab = this.#slab;
    const at = this.#at;
    const to = this.#to;
    this.#count = 0;
    this.#used = 0;
    for (let k = 0, i = 0; k < count; k++, i += 3) {
      this.#send(slab, at[i]!, at[i + 1]!, at[i + 2]!, to[k]!);
      // Not kept past the batch: a young string an old array holds would survive the next scavenge.
      to[k] = '';
    }
    if (this.#held()) this.#slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  }
}
