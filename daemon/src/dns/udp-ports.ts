/**
 * The upstream queries' UDP sockets: a new socket for every try, bound to a source port drawn at random from
 * 1024-65535 (64,512 ports: 15.98 bits, next to the 16 of the random ID), closed when the try ends. RFC 5452 10: a
 * resolver MUST use an unpredictable source port from a range as large as possible; a blind spoofer then has to
 * guess port and ID together (RFC 5452 9.2, about 2^32 tries instead of 2^16). Unbound does the same (a port per
 * query from `outgoing-port-permit`, 1024-65535 by default, at most `outgoing-range` open at once).
 *
 * The ports are drawn here, not by the kernel: Linux picks port-0 binds from its ephemeral range only (32768-60999
 * by default, 14.8 bits). A port that is taken is drawn again. With `maxSockets` open at once (a file descriptor
 * each), a further try shares an open socket picked at random; its own random ID still tells the answers apart.
 *
 * The bind is synchronous (an IP literal through udp-lookup.ts's lookup), so a taken port is known at once.
 *
 * Sockets are bound ahead of need: a try takes a spare one (bound on its own random port after an earlier try, in a
 * setImmediate once the datagrams at hand are handled) and never shares it with another try, so the ports are as
 * fresh as before and the socket, bind and poll registration (~13 µs) are off the query's path. At most SPARES per
 * family wait, and only for a family a try has used; a try that finds none binds its own at once.
 */
import { randomFillSync } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

import type { Logger } from '../util/log.js';
import { ipLookup } from './udp-lookup.js';

/** Ports below this are not drawn (the well-known ports; binding them needs privileges). */
const FIRST_PORT = 1024;
/** Draws before giving up on a free port (each taken with the probability of the ports in use). */
const MAX_DRAWS = 32;
/** Sockets bound ahead of need, per family. */
const SPARES = 4;

interface Slot {
  readonly index: number;
  /** Null once released (see release()). */
  socket: Socket | null;
  readonly family: 4 | 6;
  /** Tries using this socket. */
  users: number;
}

export class UdpPorts {
  readonly #onMessage: (slot: number, msg: Buffer, rinfo: RemoteInfo) => void;
  readonly #log: Logger;
  readonly #maxSockets: number;
  /** Sockets in use by tries, by slot number. */
  readonly #slots = new Map<number, Slot>();
  /** Bound, not yet used: [IPv4, IPv6]. */
  readonly #spares: [Slot[], Slot[]] = [[], []];
  /** How many spares each family is kept at (0 until a try of that family has been made). */
  readonly #spareTarget = [0, 0];
  #refill: NodeJS.Immediate | null = null;
  #closed = false;
  #next = 0;
  readonly #random = new Uint16Array(1024);
  #randomAt = 1024;

  constructor(onMessage: (slot: number, msg: Buffer, rinfo: RemoteInfo) => void, log: Logger, maxSockets: number) {
    this.#onMessage = onMessage;
    this.#log = log;
    this.#maxSockets = maxSockets;
  }

  /** Sockets in use by tries. */
  get size(): number {
    return this.#slots.size;
  }

  /** Sockets bound ahead of need. */
  get spares(): number {
    return this.#spares[0].length + this.#spares[1].length;
  }

  /** 16 random bits from a CSPRNG batch. */
  random16(): number {
    if (this.#randomAt >= this.#random.length) {
      randomFillSync(this.#random);
      this.#randomAt = 0;
    }
    return this.#random[this.#randomAt++]!;
  }

  /** A socket for one try (a spare or a new one on a random port, or, at maxSockets, an open one): its slot number. */
  acquire(family: 4 | 6): number {
    const f = family === 4 ? 0 : 1;
    this.#spareTarget[f] = SPARES;
    const spare = this.#spares[f].pop();
    if (spare !== undefined) {
      spare.users = 1;
      this.#slots.set(spare.index, spare);
      this.#refillSoon();
      return spare.index;
    }
    if (this.#slots.size + this.spares >= this.#maxSockets) {
      const open = [...this.#slots.keys()].filter((k) => this.#slots.get(k)!.family === family);
      if (open.length > 0) {
        const k = open[this.random16() % open.length]!;
        this.#slots.get(k)!.users++;
        return k;
      }
    }
    const slot = this.#open(family);
    slot.users = 1;
    this.#slots.set(slot.index, slot);
    this.#refillSoon();
    return slot.index;
  }

  /** Binds the spares used since the last refill, once the event loop is done with the datagrams at hand. */
  #refillSoon(): void {
    if (this.#refill !== null || this.#closed) return;
    this.#refill = setImmediate(() => {
      this.#refill = null;
      for (const family of [4, 6] as const) {
        const f = family === 4 ? 0 : 1;
        const spares = this.#spares[f];
        while (spares.length < this.#spareTarget[f]! && this.#slots.size + this.spares < this.#maxSockets) {
          spares.push(this.#open(family));
        }
      }
    });
    // A spare pending must not keep the process alive.
    this.#refill.unref();
  }

  /** A new socket on a random port, not yet used by any try. */
  #open(family: 4 | 6): Slot {
    const index = this.#next++;
    const socket = createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: ipLookup });
    socket.on('message', (msg, rinfo) => this.#onMessage(index, msg, rinfo));
    let binding = true;
    let bindError: NodeJS.ErrnoException | null = null;
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (binding) bindError = err;
      else this.#log.warn({ err: err.message, family }, 'upstream socket error');
    });
    const address = family === 4 ? '0.0.0.0' : '::';
    for (let draw = 0; draw < MAX_DRAWS; draw++) {
      let port = this.random16();
      while (port < FIRST_PORT) port = this.random16();
      bindError = null;
      // Exclusive: in a cluster worker (workers > 1) a shared bind would go through the primary.
      socket.bind({ port, address, exclusive: true });
      if (bindError === null) break;
      if ((bindError as NodeJS.ErrnoException).code !== 'EADDRINUSE' || draw === MAX_DRAWS - 1) {
        // No port could be had: the kernel's choice rather than no query at all.
        socket.bind({ port: 0, address, exclusive: true });
        break;
      }
    }
    binding = false;
    return { index, socket, family, users: 0 };
  }

  send(slot: number, msg: Buffer, port: number, host: string): void {
    // No callback (no closure per query): a send error is an 'error' event on the socket, and the try times out.
    this.#slots.get(slot)?.socket?.send(msg, port, host);
  }

  /** The try on `slot` ended: its socket closes once no try uses it. */
  release(slot: number): void {
    const s = this.#slots.get(slot);
    if (s === undefined || --s.users > 0) return;
    this.#slots.delete(slot);
    const socket = s.socket;
    // The slot lets go of its socket: a table V8 dropped when `#slots` was rebuilt may still point at the slot, and
    // whatever a dropped table in the old generation points at survives every scavenge until a full collection
    // (bench/README.md, "What keeps them: the registries' hash tables"). The socket, its handle and its buffers
    // then go with the next scavenge instead of being promoted.
    s.socket = null;
    try {
      socket?.close();
    } catch {
      // already closed
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#refill !== null) clearImmediate(this.#refill);
    this.#refill = null;
    for (const s of [...this.#slots.values(), ...this.#spares[0], ...this.#spares[1]]) {
      try {
        s.socket?.close();
      } catch {
        // already closed
      }
    }
    this.#slots.clear();
    this.#spares[0].length = 0;
    this.#spares[1].length = 0;
  }
}
