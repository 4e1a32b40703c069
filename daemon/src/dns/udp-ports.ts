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

/**
 * One socket and the tries waiting on it, by their 16-bit ID. A try's own socket (the rule while maxSockets
 * allows) holds its one try in two fields; only a socket shared at maxSockets puts the others in a Map.
 *
 * The tries are held here, not in a pool-wide map keyed by socket and ID: such a map churns with every question, and
 * V8 rebuilds a churning Map's table every few entries. A dropped table in the old generation still points at what
 * it held, and whatever it points at survives every scavenge until a full collection (bench/README.md, "What keeps
 * them: the registries' hash tables"). A slot is dropped whole when its socket closes, after its tries have left it.
 */
export class PortSlot<T> {
  /** Null once released (see UdpPorts.release()). */
  socket: Socket | null = null;
  readonly family: 4 | 6;
  /** Tries using this socket. */
  users = 0;
  /** Where it sits in the pool's open sockets, -1 when not open (a spare, or released). */
  pos = -1;
  #first: T | null = null;
  #firstId = -1;
  #more: Map<number, T> | null = null;

  constructor(family: 4 | 6) {
    this.family = family;
  }

  /** The try waiting for an answer with this ID. */
  get(id: number): T | undefined {
    if (id === this.#firstId) return this.#first!;
    return this.#more?.get(id);
  }

  has(id: number): boolean {
    return id === this.#firstId || (this.#more?.has(id) ?? false);
  }

  /** `t` waits for the answer with this ID (not already taken: see has()). */
  put(id: number, t: T): void {
    if (this.#firstId < 0) {
      this.#first = t;
      this.#firstId = id;
    } else {
      (this.#more ??= new Map()).set(id, t);
    }
  }

  /** The try with this ID no longer waits. */
  take(id: number): void {
    if (id === this.#firstId) {
      this.#first = null;
      this.#firstId = -1;
    } else {
      this.#more?.delete(id);
    }
  }

  /** The tries waiting. */
  tries(): T[] {
    const all = this.#more === null ? [] : [...this.#more.values()];
    if (this.#first !== null) all.push(this.#first);
    return all;
  }
}

export class UdpPorts<T> {
  readonly #onMessage: (slot: PortSlot<T>, msg: Buffer, rinfo: RemoteInfo) => void;
  readonly #log: Logger;
  readonly #maxSockets: number;
  /** Sockets in use by tries, each at its `pos` (a swap with the last takes one out). */
  readonly #open: PortSlot<T>[] = [];
  /** Bound, not yet used: [IPv4, IPv6]. */
  readonly #spares: [PortSlot<T>[], PortSlot<T>[]] = [[], []];
  /** How many spares each family is kept at (0 until a try of that family has been made). */
  readonly #spareTarget = [0, 0];
  #refill: NodeJS.Immediate | null = null;
  #closed = false;
  readonly #random = new Uint16Array(1024);
  #randomAt = 1024;

  constructor(onMessage: (slot: PortSlot<T>, msg: Buffer, rinfo: RemoteInfo) => void, log: Logger, maxSockets: number) {
    this.#onMessage = onMessage;
    this.#log = log;
    this.#maxSockets = maxSockets;
  }

  /** Sockets in use by tries. */
  get size(): number {
    return this.#open.length;
  }

  /** Sockets bound ahead of need. */
  get spares(): number {
    return this.#spares[0].length + this.#spares[1].length;
  }

  /** The tries waiting on every open socket. */
  tries(): T[] {
    return this.#open.flatMap((s) => s.tries());
  }

  /** 16 random bits from a CSPRNG batch. */
  random16(): number {
    if (this.#randomAt >= this.#random.length) {
      randomFillSync(this.#random);
      this.#randomAt = 0;
    }
    return this.#random[this.#randomAt++]!;
  }

  /** A socket for one try: a spare or a new one on a random port, or, at maxSockets, an open one. */
  acquire(family: 4 | 6): PortSlot<T> {
    const f = family === 4 ? 0 : 1;
    this.#spareTarget[f] = SPARES;
    let slot = this.#spares[f].pop();
    if (slot === undefined && this.#open.length + this.spares >= this.#maxSockets) {
      const open = this.#open.filter((s) => s.family === family);
      if (open.length > 0) {
        const shared = open[this.random16() % open.length]!;
        shared.users++;
        return shared;
      }
    }
    slot ??= this.#bindNew(family);
    slot.users = 1;
    slot.pos = this.#open.length;
    this.#open.push(slot);
    this.#refillSoon();
    return slot;
  }

  /** Binds the spares used since the last refill, once the event loop is done with the datagrams at hand. */
  #refillSoon(): void {
    if (this.#refill !== null || this.#closed) return;
    this.#refill = setImmediate(() => {
      this.#refill = null;
      for (const family of [4, 6] as const) {
        const f = family === 4 ? 0 : 1;
        const spares = this.#spares[f];
        while (spares.length < this.#spareTarget[f]! && this.#open.length + this.spares < this.#maxSockets) {
          spares.push(this.#bindNew(family));
        }
      }
    });
    // A spare pending must not keep the process alive.
    this.#refill.unref();
  }

  /** A new socket on a random port, not yet used by any try. */
  #bindNew(family: 4 | 6): PortSlot<T> {
    const slot = new PortSlot<T>(family);
    const socket = createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: ipLookup });
    socket.on('message', (msg, rinfo) => this.#onMessage(slot, msg, rinfo));
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
    slot.socket = socket;
    return slot;
  }

  send(slot: PortSlot<T>, msg: Buffer, port: number, host: string): void {
    // No callback (no closure per query): a send error is an 'error' event on the socket, and the try times out.
    slot.socket?.send(msg, port, host);
  }

  /** A try on `slot` ended (it has taken itself out): the socket closes once no try uses it. */
  release(slot: PortSlot<T>): void {
    if (slot.pos < 0 || --slot.users > 0) return;
    const last = this.#open.pop()!;
    if (last !== slot) {
      this.#open[slot.pos] = last;
      last.pos = slot.pos;
    }
    slot.pos = -1;
    const socket = slot.socket;
    // The slot lets go of its socket, as a finished job of its waiters (upstream.ts, shed): the socket, its handle
    // and its buffers go with the next scavenge even if something dropped still points at the slot.
    slot.socket = null;
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
    for (const s of [...this.#open, ...this.#spares[0], ...this.#spares[1]]) {
      try {
        s.socket?.close();
      } catch {
        // already closed
      }
      s.pos = -1;
    }
    this.#open.length = 0;
    this.#spares[0].length = 0;
    this.#spares[1].length = 0;
  }
}
