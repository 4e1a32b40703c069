/**
 * The `lookup` of every UDP socket the daemon sends from (the listeners' answers, the upstream queries): they only
 * ever send to IP addresses (a client's source address as the socket reported it, an upstream as configured, which
 * config/load.ts requires to be an IP), so the address is handed back as it is, synchronously.
 *
 * Why not dgram's default: for an IP address, dns.lookup calls back on process.nextTick, so every send() was
 * deferred to the next tick, and each tick queue drain that follows a datagram runs Node's promise-rejection pass,
 * which makes a new Map. Measured with `node bench/lib/query-path-bench.mjs --live --sites` (10,000 q/s through the
 * sockets, Node 20): ~550 of ~2,100 heap bytes allocated per query were that tick (the tick object and its
 * arguments, the Map, its iterator). With this lookup the datagram is handed to the kernel inside send().
 */
import type { LookupOneOptions } from 'node:dns';

export function ipLookup(
  address: string,
  family: LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  // dgram passes the socket's family as a number (4 or 6); the types say options.
  callback(null, address, typeof family === 'number' ? family : address.includes(':') ? 6 : 4);
}
