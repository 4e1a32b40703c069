/**
 * Client connections over a byte stream: TCP here, any transport that hands over a connected socket (DNS over TLS
 * after its handshake) the same way. Everything a connection may hold is bounded in this one place, whatever the
 * transport:
 *
 * - The access list when the connection is accepted: a client outside access.allow is closed at once, before it
 *   can hold a slot or send a byte.
 * - A cap on connections (`maxConnections`) and one per client prefix (`maxConnectionsPerPrefix`, prefixes of
 *   `ipv4Prefix`/`ipv6Prefix` bits): beyond them a new connection is closed at once. A few addresses cannot take
 *   every slot.
 * - A deadline for a whole frame (`frameTimeoutMs`): from the first octet of a frame (its length prefix) to its
 *   last, whatever arrives in between, so a client that trickles a byte a second cannot hold its slot longer than
 *   that (the "slowloris" of HTTP). Measured on the injected clock.
 * - RFC 7766: two-octet length framing, pipelined queries answered as they complete (out of order), at most
 *   `maxInFlightPerConnection` queries in flight per connection (reading pauses beyond it), an idle timeout when
 *   nothing is in flight (6.2.3), half-closed connections answered before they are ended. A connection whose
 *   answers pile up unread (over 256 KiB queued) is not read either until they drain.
 *
 * Open connections, refusals and closes by a limit are reported (QueryEvents), labelled by transport and reason.
 * Nothing here throws into the event loop: socket errors close the connection.
 */
import type { Socket } from 'node:net';

import type { Clock, Timer } from '../util/clock.js';
import { ipv4Mask, prefixKeyOf } from './access.js';
import type { Client } from './client.js';
import type { ConnectionRefusal, QueryEvents, StreamTransport } from './events.js';

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
  queryStarted(): void;
  queryDone(): void;
}

/**
 * Answers queued on a connection (the client is not reading them) beyond which the connection stops reading
 * queries until the queue drains: a client that pipelines and never reads cannot grow our memory.
 */
const MAX_QUEUED_BYTES = 256 * 1024;

/** The connections of one listener on one transport: admits them and keeps the counts the caps need. */
export class StreamGate {
  readonly transport: StreamTransport;
  settings: StreamSettings;
  readonly #host: StreamHost;
  readonly #events: QueryEvents;
  readonly #clock: Clock;
  readonly #connections = new Set<StreamConnection>();
  /** Open connections per client prefix. */
  readonly #perPrefix = new Map<number | string, number>();

  constructor(
    transport: StreamTransport,
    settings: StreamSettings,
    host: StreamHost,
    events: QueryEvents,
    clock: Clock,
  ) {
    this.transport = transport;
    this.settings = settings;
    this.#host = host;
    this.#events = events;
    this.#clock = clock;
  }

  get clock(): Clock {
    return this.#clock;
  }

  get host(): StreamHost {
    return this.#host;
  }

  /** Open connections. */
  get size(): number {
    return this.#connections.size;
  }

  /** Takes a newly accepted socket: serves it, or closes it at once (counted with the reason). */
  serve(socket: Socket): void {
    if (this.#host.stopping) {
      socket.destroy();
      return;
    }
    const address = socket.remoteAddress ?? '';
    const s = this.settings;
    let refusal: ConnectionRefusal | null = null;
    let key: number | string | null = null;
    if (!this.#host.accepts(address)) refusal = 'acl';
    else if (this.#connections.size >= s.maxConnections) refusal = 'limit';
    else {
      key = prefixKeyOf(address, ipv4Mask(s.ipv4Prefix), s.ipv6Prefix);
      if (key !== null && (this.#perPrefix.get(key) ?? 0) >= s.maxConnectionsPerPrefix) refusal = 'prefix-limit';
    }
    if (refusal !== null) {
      this.#events.connectionRefused(this.transport, refusal);
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    if (key !== null) this.#perPrefix.set(key, (this.#perPrefix.get(key) ?? 0) + 1);
    this.#connections.add(new StreamConnection(this, socket, key));
    this.#events.connectionOpened(this.transport);
  }

  /** A connection closed (by either side). */
  closed(c: StreamConnection, key: number | string | null): void {
    if (!this.#connections.delete(c)) return;
    if (key !== null) {
      const n = (this.#perPrefix.get(key) ?? 1) - 1;
      if (n <= 0) this.#perPrefix.delete(key);
      else this.#perPrefix.set(key, n);
    }
    this.#events.connectionClosed(this.transport);
  }

  /** A connection closed by a deadline. */
  timedOut(reason: 'idle' | 'frame-timeout'): void {
    this.#events.connectionTimedOut(this.transport, reason);
  }

  /** Stops reading new queries on every connection; each ends once its queries are answered. */
  stop(): void {
    for (const c of this.#connections) c.stop();
  }

  /** Closes every connection now. */
  close(): void {
    for (const c of [...this.#connections]) c.destroy();
  }
}

/** One client connection: RFC 7766 framing, its deadlines and limits. */
export class StreamConnection implements Client {
  readonly transport: StreamTransport;
  readonly address: string;
  readonly port: number;
  readonly #gate: StreamGate;
  readonly #socket: Socket;
  readonly #key: number | string | null;
  #buffer: Buffer | null = null;
  #inFlight = 0;
  #ended = false;
  #paused = false;
  /** The deadline of the frame being received (armed at its first octet), or null. */
  #frameTimer: Timer | null = null;

  constructor(gate: StreamGate, socket: Socket, key: number | string | null) {
    this.#gate = gate;
    this.#socket = socket;
    this.#key = key;
    this.transport = gate.transport;
    this.address = socket.remoteAddress ?? '';
    this.port = socket.remotePort ?? 0;
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
    socket.on('close', () => {
      this.#clearFrameTimer();
      gate.closed(this, this.#key);
    });
    socket.on('drain', () => this.#resume());
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer === null ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#process();
  }

  #process(): void {
    const host = this.#gate.host;
    const max = this.#gate.settings.maxInFlightPerConnection;
    let buf = this.#buffer;
    let waiting = false;
    while (buf !== null && buf.length >= 2) {
      if (this.#inFlight >= max || host.stopping || this.#socket.writableLength > MAX_QUEUED_BYTES) {
        if (!this.#paused) {
          this.#paused = true;
          this.#socket.pause();
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
    this.#buffer = buf !== null && buf.length === 0 ? null : buf;
    // A frame begun and not finished (one octet of its length counts): its deadline runs from now, and more octets
    // of it do not move it.
    if ((waiting || (buf !== null && buf.length === 1)) && this.#frameTimer === null) {
      const clock = this.#gate.clock;
      this.#frameTimer = clock.setTimeout(() => {
        this.#frameTimer = null;
        this.#gate.timedOut('frame-timeout');
        this.#socket.destroy();
      }, this.#gate.settings.frameTimeoutMs);
    }
  }

  #clearFrameTimer(): void {
    if (this.#frameTimer !== null) {
      this.#gate.clock.clearTimeout(this.#frameTimer);
      this.#frameTimer = null;
    }
  }

  reply(answer: Buffer): boolean {
    if (!this.#socket.destroyed && this.#socket.writable) {
      const out = Buffer.allocUnsafe(answer.length + 2);
      out[0] = answer.length >> 8;
      out[1] = answer.length & 0xff;
      answer.copy(out, 2);
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

  destroy(): void {
    this.#socket.destroy();
  }
}
