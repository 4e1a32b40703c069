/** Who asked: the listener side of one query. */
import type { Transport } from './events.js';

/**
 * One client query's way back. The query path calls exactly one of `reply` or `drop` for every query it was
 * handed; the listener counts queries in flight with them (TCP pipelining limits, draining on SIGTERM).
 *
 * A Client handed to QueryHandler.handle() may be a scratch object of the listener, valid only during that call (a
 * UDP listener reuses one for every datagram: no object per query). Whoever answers later (after an upstream)
 * keeps `keep()` instead.
 */
export interface Client {
  readonly transport: Transport;
  /** The client's address as the socket reports it (IPv4-mapped IPv6 included). */
  readonly address: string;
  readonly port: number;
  /**
   * Sends `answer`. True when the client still holds the buffer after the call (a UDP send the kernel could not
   * take at once waits in libuv's queue with it): the caller must then not write to it again.
   */
  reply(answer: Buffer): boolean;
  drop(): void;
  /** This client as an object that stays valid after handle() returns (itself, when it already is one). */
  keep(): Client;
}
