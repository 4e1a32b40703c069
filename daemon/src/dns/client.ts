/** Who asked: the listener side of one query. */
import type { Transport } from './events.js';

/**
 * One client query's way back. The query path calls exactly one of `reply` or `drop` for every query it was
 * handed; the listener counts queries in flight with them (TCP pipelining limits, draining on SIGTERM).
 */
export interface Client {
  readonly transport: Transport;
  /** The client's address as the socket reports it (IPv4-mapped IPv6 included). */
  readonly address: string;
  readonly port: number;
  reply(answer: Buffer): void;
  drop(): void;
}
