/**
 * Client connections over a byte stream: plain TCP, DNS over TLS (the same RFC 7766 stream inside a TLS session,
 * RFC 7858 3.3) and the TCP connections DNS over HTTPS runs on. Everything a connection may hold is bounded in this
 * one place, whatever the transport:
 *
 * - The access list when the connection is accepted, before a TLS handshake: a client outside access.allow is
 *   closed at once, before it can hold a slot or send a byte.
 * - A cap on connections (`maxConnections`) and one per client prefix (`maxConnectionsPerPrefix`, prefixes of
 *   `ipv4Prefix`/`ipv6Prefix` bits): beyond them a new connection is closed at once. A few addresses cannot take
 *   every slot.
 * - A deadline for a whole frame (`frameTimeoutMs`): from the first octet of a frame (its length prefix) to its
 *   last, whatever arrives in between, so a client that trickles a byte a second cannot hold its slot longer than
 *   that (the "slowloris" of HTTP). The TLS handshake of a DoT session and a PROXY header have the same deadline.
 *   Measured on the injected clock.
 * - RFC 7766: two-octet length framing, pipelined queries answered as they complete (out of order), at most
 *   `maxInFlightPerConnection` queries in flight per connection (reading pauses beyond it), an idle timeout when
 *   nothing is in flight (6.2.3), half-closed connections answered before they are ended. A connection whose
 *   answers pile up unread (over 256 KiB queued) is not read either until they drain.
 *
 * The PROXY protocol (dns/proxy.ts), where it is on: a connection from a trusted front end first gives its header,
 * and is then judged as the client the header names: the access list and the cap per prefix apply to that client
 * (the front end's own address only takes a slot under the total cap). From anyone else, a header instead of a
 * first frame closes the connection.
 *
 * Open connections, refusals and closes by a limit are reported (QueryEvents), labelled by transport and reason. A
 * connection is open from its accept to its close; one refused when its PROXY header is read was open until then.
 * Nothing here throws into the event loop: socket errors close the connection.
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';

import type { Clock, Timer } from '../util/clock.js';
import { ipv4Mask, prefixKeyOf } from './access.js';
import type { Client } from './client.js';
import type { ConnectionRefusal, ConnectionTimeout, ProxyTransport, QueryEvents, StreamTransport } from './events.js';
import { padAnswer } from './padding.js';
import { P_ABSENT, P_INCOMPLETE, P_LOCAL, P_PROXY, type ProxyGate } from './proxy.js';

export interface StreamSettings {
  readonly maxConnections: number;
  readonly maxConnectionsPerPrefix: number;
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
  readonly idleTimeoutMs: number;
  readonly frameTimeoutMs: number;
  readonly maxInFlightPerConnection: number;
}

/** What the connections of a gate answer to: the listener that owns them. */
export interface StreamHost {
  /** Whether a client at `address` may query (access.allow). */
  accepts(address: string): boolean;
  /** Hands a query to the query path. */
  handle(msg: Buffer, client: Client): void;
  /** Stopping: no new connection, no new query read. */
  readonly stopping: boolean;
  /** The PROXY protocol in force for new connections (null: off). */
  readonly proxy: ProxyGate | null;
  queryStarted(): void;
  queryDone(): void;
}

/**
 * What becomes of a connection once it is admitted: served as an RFC 7766 stream at once (TCP; the default), after
 * a TLS handshake (DoT), or handed to an HTTP server (DoH).
 */
export type StreamStart = (socket: Socket, slot: Slot, gate: StreamGate) => void;

/**
 * Answers queued on a connection (the client is not reading them) beyond which the connection stops reading
 * queries until the queue drains: a client that pipelines and never reads cannot grow our memory.
 */
const MAX_QUEUED_BYTES = 256 * 1024;

/** One admitted connection's place under the caps, held until its socket closes. */
export class Slot {
  /** The accepted socket. */
  readonly socket: Socket;
  /** What runs over it once started (a TLS session), destroyed with it at close; the socket itself by default. */
  stream: Socket;
  /** The client prefix it counts under (null: none yet, a front end's connection before its PROXY header). */
  key: number | string | null = null;
  /** The PROXY protocol as it was when the connection was accepted, and whether the peer is a trusted front end. */
  readonly proxy: ProxyGate | null;
  readonly frontEnd: boolean;

  constructor(socket: Socket, proxy: ProxyGate | null, frontEnd: boolean) {
    this.socket = socket;
    this.stream = socket;
    this.proxy = proxy;
    this.frontEnd = frontEnd;
  }
}

/** The connections of one listener on one transport: admits them and keeps the counts the caps need. */
export class StreamGate {
  readonly transport: StreamTransport;
  settings: StreamSettings;
  readonly #host: StreamHost;
  readonly #events: QueryEvents;
  readonly #clock: Clock;
  readonly #start: StreamStart;
  readonly #slots = new Set<Slot>();
  readonly #connections = new Set<StreamConnection>();
  /** Open connections per client prefix. */
  readonly #perPrefix = new Map<number | string, number>();

  constructor(
    transport: StreamTransport,
    settings: StreamSettings,
    host: StreamHost,
    events: QueryEvents,
    clock: Clock,
    start: StreamStart = (socket, slot, gate) => gate.stream(socket, slot),
  ) {
    this.transport = transport;
    this.settings = settings;
    this.#host = host;
    this.#events = events;
    this.#clock = clock;
    this.#start = start;
  }

  get clock(): Clock {
    return this.#clock;
  }

  get host(): StreamHost {
    return this.#host;
  }

  get events(): QueryEvents {
    return this.#events;
  }

  /** Open connections. */
  get size(): number {
    return this.#slots.size;
  }

  /** Takes a newly accepted socket: serves it, or closes it at once (counted with the reason). */
  serve(socket: Socket): void {
    if (this.#host.stopping) {
      socket.destroy();
      return;
    }
    const address = socket.remoteAddress ?? '';
    const proxy = this.transport === 'doh' ? null : this.#host.proxy;
    const frontEnd = proxy !== null && proxy.trusts(address);
    const slot = new Slot(socket, proxy, frontEnd);
    // A front end's connection is judged as its client once the header names it (admit); it takes a slot now.
    const refusal: ConnectionRefusal | null =
      this.#slots.size >= this.settings.maxConnections ? 'limit' : frontEnd ? null : this.#judge(slot, address);
    if (refusal !== null) {
      this.#events.connectionRefused(this.transport, refusal);
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    this.#take(slot);
    this.#slots.add(slot);
    this.#events.connectionOpened(this.transport);
    socket.once('close', () => this.#closed(slot));
    this.#start(socket, slot, this);
  }

  /**
   * A front end's connection whose PROXY header named `address` (or, LOCAL or without one, the front end itself):
   * whether that client may hold it. False: refused (counted), the caller closes it.
   */
  admit(slot: Slot, address: string): boolean {
    const refusal = this.#judge(slot, address);
    if (refusal !== null) {
      this.#events.connectionRefused(this.transport, refusal);
      return false;
    }
    this.#take(slot);
    return true;
  }

  /** The access list and the cap per prefix for a client at `address`; the refusal, or null (slot.key set). */
  #judge(slot: Slot, address: string): ConnectionRefusal | null {
    if (!this.#host.accepts(address)) return 'acl';
    const s = this.settings;
    const key = prefixKeyOf(address, ipv4Mask(s.ipv4Prefix), s.ipv6Prefix);
    if (key !== null && (this.#perPrefix.get(key) ?? 0) >= s.maxConnectionsPerPrefix) return 'prefix-limit';
    slot.key = key;
    return null;
  }

  #take(slot: Slot): void {
    const key = slot.key;
    if (key !== null) this.#perPrefix.set(key, (this.#perPrefix.get(key) ?? 0) + 1);
  }

  /** Serves `socket` (the admitted one, or the TLS session over it) as an RFC 7766 stream. */
  stream(socket: Socket, slot: Slot): void {
    if (this.#host.stopping || slot.socket.destroyed) {
      socket.destroy();
      return;
    }
    const c = new StreamConnection(this, socket, slot);
    this.#connections.add(c);
    socket.once('close', () => this.#connections.delete(c));
  }

  /** An admitted connection closed (by either side). */
  #closed(slot: Slot): void {
    if (!this.#slots.delete(slot)) return;
    const key = slot.key;
    if (key !== null) {
      const n = (this.#perPrefix.get(key) ?? 1) - 1;
      if (n <= 0) this.#perPrefix.delete(key);
      else this.#perPrefix.set(key, n);
    }
    this.#events.connectionClosed(this.transport);
  }

  /** A connection closed by a deadline. */
  timedOut(reason: ConnectionTimeout): void {
    this.#events.connectionTimedOut(this.transport, reason);
  }

  /**
   * Calls `onTimeout` unless `cancel` is called within frameTimeoutMs on the gate's clock: the deadline of a frame,
   * a PROXY header or a TLS handshake.
   */
  deadline(onTimeout: () => void): () => void {
    const clock = this.#clock;
    const timer: Timer = clock.setTimeout(onTimeout, this.settings.frameTimeoutMs);
    return () => clock.clearTimeout(timer);
  }

  /** Stops reading new queries on every stream; each ends once its queries are answered. */
  stop(): void {
    for (const c of this.#connections) c.stop();
  }

  /** Closes every connection now. */
  close(): void {
    for (const s of [...this.#slots]) {
      s.stream.destroy();
      s.socket.destroy();
    }
  }
}

/** Where a connection stands with the PROXY protocol. */
const PREAMBLE_NONE = 0;
/** A peer that is not a front end: its first octets must not be a header. */
const PREAMBLE_REFUSE = 1;
/** A trusted front end: a header first (or none, as proxyProtocol.requireHeader allows). */
const PREAMBLE_READ = 2;

/** One client connection: RFC 7766 framing, its deadlines and limits. */
export class StreamConnection implements Client {
  readonly transport: StreamTransport;
  /** The client: the peer, or the one its PROXY header names (set once the header is read). */
  address: string;
  port: number;
  readonly #gate: StreamGate;
  readonly #socket: Socket;
  readonly #slot: Slot;
  #buffer: Buffer | null = null;
  #inFlight = 0;
  #ended = false;
  #paused = false;
  #preamble: number;
  /** Cancels the deadline of the frame (or header) being received (armed at its first octet), or null. */
  #frameTimer: (() => void) | null = null;

  constructor(gate: StreamGate, socket: Socket, slot: Slot) {
    this.#gate = gate;
    this.#socket = socket;
    this.#slot = slot;
    this.transport = gate.transport;
    this.address = socket.remoteAddress ?? '';
    this.port = socket.remotePort ?? 0;
    this.#preamble = slot.proxy === null ? PREAMBLE_NONE : slot.frontEnd ? PREAMBLE_READ : PREAMBLE_REFUSE;
    socket.setNoDelay(true);
    socket.setTimeout(gate.settings.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      this.#ended = true;
      if (this.#inFlight === 0) socket.end();
    });
    socket.on('timeout', () => {
      // RFC 7766 6.2.3: close an idle connection; one with queries in flight is not idle.
      if (this.#inFlight === 0) {
        gate.timedOut('idle');
        socket.destroy();
      } else {
        socket.setTimeout(gate.settings.idleTimeoutMs);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#clearFrameTimer());
    socket.on('drain', () => this.#resume());
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer === null ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#process();
  }

  /**
   * The PROXY header at the start of the connection (dns/proxy.ts), as much of it as has arrived: true once it is
   * read (the buffer then holds what follows it), false while more is needed or when the connection was closed.
   */
  #readPreamble(buf: Buffer): boolean {
    const slot = this.#slot;
    const proxy = slot.proxy!;
    const h = proxy.stream(buf);
    if (h.status === P_INCOMPLETE) return false;
    const t = this.transport as ProxyTransport;
    let skip = 0;
    if (this.#preamble === PREAMBLE_REFUSE) {
      // A client must never choose the address it is judged by.
      if (h.status !== P_ABSENT) return this.#refuse(() => proxy.report(t, 'untrusted'));
    } else {
      switch (h.status) {
        case P_PROXY:
          proxy.report(t, 'proxied');
          this.address = h.address;
          this.port = h.port;
          skip = h.length;
          break;
        case P_LOCAL:
          proxy.report(t, 'local');
          skip = h.length;
          break;
        case P_ABSENT:
          proxy.report(t, 'missing');
          if (proxy.requireHeader) return this.#refuse();
          break;
        default:
          return this.#refuse(() => proxy.report(t, 'malformed'));
      }
      if (!this.#gate.admit(slot, this.address)) return this.#refuse();
    }
    this.#preamble = PREAMBLE_NONE;
    this.#buffer = skip === buf.length ? null : buf.subarray(skip);
    return true;
  }

  #refuse(report?: () => void): false {
    report?.();
    this.#clearFrameTimer();
    this.#socket.destroy();
    return false;
  }

  #process(): void {
    if (this.#preamble !== PREAMBLE_NONE) {
      const buf = this.#buffer;
      if (buf === null || !this.#readPreamble(buf)) {
        if (buf !== null && !this.#socket.destroyed) this.#armFrameTimer();
        return;
      }
      this.#clearFrameTimer(); // the header is whole; the first frame has its own deadline
    }
    const host = this.#gate.host;
    const max = this.#gate.settings.maxInFlightPerConnection;
    let buf = this.#buffer;
    let waiting = false;
    // The answers the query path gives while the frames of this read are handled (from the cache, blocked names)
    // leave in one write when the loop ends: one TLS record and one send for the batch, not one per answer. Nothing
    // waits for more input or a timer: the batch is written before this returns.
    const socket = this.#socket;
    socket.cork();
    try {
      while (buf !== null && buf.length >= 2) {
        if (this.#inFlight >= max || host.stopping || socket.writableLength > MAX_QUEUED_BYTES) {
          if (!this.#paused) {
            this.#paused = true;
            socket.pause();
          }
          // Not read while paused: a frame's deadline runs only while its octets can arrive (re-armed on resume).
          this.#clearFrameTimer();
          break;
        }
        const n = (buf[0]! << 8) | buf[1]!;
        if (buf.length < 2 + n) {
          waiting = true;
          break;
        }
        const frame = buf.subarray(2, 2 + n);
        buf = buf.length === 2 + n ? null : buf.subarray(2 + n);
        this.#buffer = buf;
        this.#clearFrameTimer(); // this frame is whole; the next one has its own deadline
        this.#inFlight++;
        host.queryStarted();
        host.handle(frame, this);
        buf = this.#buffer;
      }
    } finally {
      socket.uncork(); // also if the query path throws: a corked socket would hold every later answer
    }
    this.#buffer = buf !== null && buf.length === 0 ? null : buf;
    // A frame begun and not finished (one octet of its length counts): its deadline runs from now, and more octets
    // of it do not move it.
    if (waiting || (buf !== null && buf.length === 1)) this.#armFrameTimer();
  }

  #armFrameTimer(): void {
    if (this.#frameTimer !== null) return;
    this.#frameTimer = this.#gate.deadline(() => {
      this.#frameTimer = null;
      this.#gate.timedOut('frame-timeout');
      this.#socket.destroy();
    });
  }

  #clearFrameTimer(): void {
    if (this.#frameTimer !== null) {
      this.#frameTimer();
      this.#frameTimer = null;
    }
  }

  reply(answer: Buffer): boolean {
    if (!this.#socket.destroyed && this.#socket.writable) {
      // DoT answers are padded (RFC 8467, dns/padding.ts); plain TCP ones never are.
      const dot = this.transport === 'dot';
      const out = dot ? padAnswer(answer, 2) : Buffer.allocUnsafe(answer.length + 2);
      const n = out.length - 2;
      out[0] = n >> 8;
      out[1] = n & 0xff;
      if (!dot) answer.copy(out, 2);
      this.#socket.write(out);
    }
    this.#done();
    return false; // copied into the frame
  }

  drop(): void {
    this.#done();
  }

  keep(): Client {
    return this;
  }

  #done(): void {
    this.#inFlight--;
    const host = this.#gate.host;
    host.queryDone();
    if (this.#inFlight === 0 && (this.#ended || host.stopping)) {
      this.#socket.end();
      return;
    }
    this.#resume();
  }

  #resume(): void {
    if (
      this.#paused &&
      !this.#gate.host.stopping &&
      this.#inFlight < this.#gate.settings.maxInFlightPerConnection &&
      this.#socket.writableLength <= MAX_QUEUED_BYTES
    ) {
      this.#paused = false;
      this.#socket.resume();
      this.#process();
    }
  }

  /** Stops reading new queries; ends the connection once its queries are answered. */
  stop(): void {
    if (!this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    if (this.#inFlight === 0) this.#socket.end();
  }
}
