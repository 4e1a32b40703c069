/**
 * The DNS listeners: one UDP socket and one TCP server per configured address, on node:dgram and node:net directly
 * (dns2's servers parse every message with its slow codec and never hand over the raw bytes: dns2.md 1, 7).
 *
 * TCP follows RFC 7766: two-octet length framing, pipelined queries answered as they complete (out of order),
 * at most `maxInFlightPerConnection` queries in flight per connection (reading pauses beyond it), an idle timeout
 * when nothing is in flight (6.2.3), half-closed connections answered before they are ended, and a cap on
 * connections (Node refuses beyond `maxConnections`). Nothing here throws into the event loop: socket errors are
 * counted and the connection closed.
 *
 * Every query handed to the handler comes with a Client whose reply() or drop() is called exactly once; the
 * listener counts queries in flight with it, which is what draining on SIGTERM waits for.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

import type { Logger } from '../util/log.js';
import { parseHostPort } from '../util/net.js';
import type { Client } from './client.js';
import type { Transport } from './events.js';
import { boundSpec, portSharing } from './sharing.js';
import { ipLookup } from './udp-lookup.js';

export interface QueryHandler {
  handle(msg: Buffer, client: Client): void;
}

export interface TcpSettings {
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly maxInFlightPerConnection: number;
}

export interface BoundAddress {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/**
 * Answers queued on a TCP connection (the client is not reading them) beyond which the connection stops reading
 * queries until the queue drains: a client that pipelines and never reads cannot grow our memory.
 */
const MAX_TCP_QUEUED_BYTES = 256 * 1024;

/** Socket receive buffer asked for (the kernel may cap it): room for bursts while the event loop is busy. */
const UDP_RECV_BUFFER_BYTES = 4 * 1024 * 1024;
/** Socket send buffer asked for: answers to a burst are not dropped while the kernel drains them. */
const UDP_SEND_BUFFER_BYTES = 4 * 1024 * 1024;

class UdpClient implements Client {
  readonly transport: Transport = 'udp';
  readonly listener: Listener;
  /** Not readonly: the listener's scratch client is set anew for each datagram. */
  address: string;
  port: number;

  constructor(listener: Listener, address: string, port: number) {
    this.listener = listener;
    this.address = address;
    this.port = port;
  }

  keep(): Client {
    return new UdpClient(this.listener, this.address, this.port);
  }

  reply(answer: Buffer): boolean {
    return this.listener.udpSend(answer, this.port, this.address);
  }

  drop(): void {
    this.listener.queryDone();
  }
}

class TcpConnection implements Client {
  readonly transport: Transport = 'tcp';
  readonly address: string;
  readonly port: number;
  readonly #listener: Listener;
  readonly #socket: Socket;
  #buffer: Buffer | null = null;
  #inFlight = 0;
  #ended = false;
  #paused = false;

  constructor(listener: Listener, socket: Socket) {
    this.#listener = listener;
    this.#socket = socket;
    this.address = socket.remoteAddress ?? '';
    this.port = socket.remotePort ?? 0;
    socket.setNoDelay(true);
    socket.setTimeout(listener.tcp.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      this.#ended = true;
      if (this.#inFlight === 0) socket.end();
    });
    socket.on('timeout', () => {
      // RFC 7766 6.2.3: close an idle connection; one with queries in flight is not idle.
      if (this.#inFlight === 0) socket.destroy();
      else socket.setTimeout(listener.tcp.idleTimeoutMs);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => listener.connectionClosed(this));
    socket.on('drain', () => this.#resume());
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer === null ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#process();
  }

  #process(): void {
    const max = this.#listener.tcp.maxInFlightPerConnection;
    let buf = this.#buffer;
    while (buf !== null && buf.length >= 2) {
      if (this.#inFlight >= max || this.#listener.stopping || this.#socket.writableLength > MAX_TCP_QUEUED_BYTES) {
        if (!this.#paused) {
          this.#paused = true;
          this.#socket.pause();
        }
        break;
      }
      const n = (buf[0]! << 8) | buf[1]!;
      if (buf.length < 2 + n) break;
      const frame = buf.subarray(2, 2 + n);
      buf = buf.length === 2 + n ? null : buf.subarray(2 + n);
      this.#buffer = buf;
      this.#inFlight++;
      this.#listener.queryStarted();
      this.#listener.handler.handle(frame, this);
      buf = this.#buffer;
    }
    this.#buffer = buf !== null && buf.length === 0 ? null : buf;
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
    this.#listener.queryDone();
    if (this.#inFlight === 0 && (this.#ended || this.#listener.stopping)) {
      this.#socket.end();
      return;
    }
    this.#resume();
  }

  #resume(): void {
    if (
      this.#paused &&
      !this.#listener.stopping &&
      this.#inFlight < this.#listener.tcp.maxInFlightPerConnection &&
      this.#socket.writableLength <= MAX_TCP_QUEUED_BYTES
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

/** The UDP socket and TCP server of one configured address. */
export class Listener {
  /** The address as configured. */
  readonly spec: string;
  readonly handler: QueryHandler;
  tcp: TcpSettings;
  readonly #log: Logger;
  #udp: UdpSocket | null = null;
  #server: Server | null = null;
  readonly #connections = new Set<TcpConnection>();
  udpAddress: BoundAddress | null = null;
  tcpAddress: BoundAddress | null = null;
  /** Queries handed to the handler and not yet answered or dropped. */
  inFlight = 0;
  stopping = false;
  #idleWaiters: (() => void)[] = [];
  /** The client of the datagram being handled (the query path keeps a copy if it answers later). */
  readonly #udpClient = new UdpClient(this, '', 0);

  private constructor(spec: string, handler: QueryHandler, tcp: TcpSettings, log: Logger) {
    this.spec = spec;
    this.handler = handler;
    this.tcp = tcp;
    this.#log = log;
  }

  /**
   * Binds UDP, then TCP on the same port (so port 0 gives one port for both; retried a few times if TCP finds
   * that port taken).
   */
  static async open(spec: string, handler: QueryHandler, tcp: TcpSettings, log: Logger): Promise<Listener> {
    const hp = parseHostPort(boundSpec(spec), 53);
    let lastError: unknown;
    for (let attempt = 0; attempt < (hp.port === 0 ? 5 : 1); attempt++) {
      const l = new Listener(spec, handler, tcp, log);
      try {
        await l.#bind(hp.host, hp.port, hp.family);
        return l;
      } catch (err) {
        lastError = err;
        l.close();
      }
    }
    throw lastError;
  }

  async #bind(host: string, port: number, family: 4 | 6): Promise<void> {
    // Several worker processes (cluster/primary.ts): SO_REUSEPORT sockets of their own where Node has it, else the
    // cluster module's shared handles (exclusive: false). One process: exclusive sockets.
    const sharing = portSharing();
    const reuse = sharing === 'reuseport' ? { reusePort: true } : {};
    // `reusePort` is not in @types/node 20's types (Node 22.12, 23.1 on); older Nodes never get here with it.
    const udp = createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      ipv6Only: family === 6,
      // Answers go to the client's IP address as received: no lookup, no deferral to the next tick.
      lookup: ipLookup,
      ...reuse,
    } as Parameters<typeof createSocket>[0]);
    this.#udp = udp;
    udp.on('message', (msg, rinfo) => {
      if (this.stopping) return;
      this.inFlight++;
      // One scratch client for every datagram (handle() is synchronous; waiters keep() their own): ~56 heap bytes a
      // query fewer (query-path-bench --live --sites).
      const c = this.#udpClient;
      c.address = rinfo.address;
      c.port = rinfo.port;
      this.handler.handle(msg, c);
    });
    udp.on('error', (err) => this.#log.debug({ err: err.message, listen: this.spec }, 'UDP socket error'));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ port, address: host, exclusive: sharing !== 'cluster' }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    try {
      udp.setRecvBufferSize(UDP_RECV_BUFFER_BYTES);
      udp.setSendBufferSize(UDP_SEND_BUFFER_BYTES);
    } catch {
      // the kernel's cap (net.core.rmem_max, wmem_max) applies; not fatal
    }
    const ua = udp.address();
    this.udpAddress = { address: ua.address, port: ua.port, family };
    const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false }, (socket) =>
      this.#onConnection(socket),
    );
    this.#server = server;
    server.maxConnections = this.tcp.maxConnections;
    server.on('error', (err) => this.#log.warn({ err: err.message, listen: this.spec }, 'TCP listener error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const opts = { port: ua.port, host, ipv6Only: family === 6, exclusive: sharing !== 'cluster', ...reuse };
      server.listen(opts as Parameters<typeof server.listen>[0], () => {
        server.off('error', reject);
        resolve();
      });
    });
    const ta = server.address() as AddressInfo;
    this.tcpAddress = { address: ta.address, port: ta.port, family };
  }

  #onConnection(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    this.#connections.add(new TcpConnection(this, socket));
  }

  connectionClosed(c: TcpConnection): void {
    this.#connections.delete(c);
  }

  /** Open TCP connections. */
  get connections(): number {
    return this.#connections.size;
  }

  queryStarted(): void {
    this.inFlight++;
  }

  queryDone(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const fn of waiters) fn();
    }
  }

  /**
   * Sends an answer; true when `answer` may still be referenced after the call. The send is synchronous (the
   * sockets' lookup, udp-lookup.ts) and without a callback Node first tries the kernel directly (uv_udp_try_send),
   * which copies the datagram; only when that cannot be done at once (EAGAIN: the socket's send buffer is full) is
   * the send queued in libuv with a pointer to `answer`. A non-empty send queue after the call says so.
   */
  udpSend(answer: Buffer, port: number, address: string): boolean {
    // Without a callback: a failed send is an 'error' event on the socket (logged at debug). A synchronous throw
    // (a spoofed source port 0, say) costs the answer, never a log line per packet.
    let held = false;
    try {
      const udp = this.#udp;
      if (udp !== null) {
        udp.send(answer, port, address);
        held = udp.getSendQueueCount() > 0;
      }
    } catch {
      this.sendErrors++;
    }
    this.queryDone();
    return held;
  }

  /** Answers that could not be sent (bad client port, socket closed). */
  sendErrors = 0;

  /** Stops taking queries: UDP datagrams are ignored, TCP stops accepting and reading. Answers still go out. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.#server?.close();
    for (const c of this.#connections) c.stop();
  }

  /** Resolves when no query is in flight, or after `timeoutMs`; true if drained. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): void {
    this.stopping = true;
    try {
      this.#udp?.close();
    } catch {
      // not bound or already closed
    }
    this.#udp = null;
    this.#server?.close();
    for (const c of this.#connections) c.destroy();
    this.#connections.clear();
  }
}
