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
import type { ProxyOutcome, ProxyTransport, Transport } from './events.js';
import { padAnswer } from './padding.js';
import { P_ABSENT, P_INCOMPLETE, P_LOCAL, P_PROXY, type ProxiedPeer, type ProxyGate } from './proxy.js';
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
  /** Where the answer goes: the datagram's source (a PROXY front end, or the client itself). */
  fromAddress: string;
  fromPort: number;

  constructor(listener: Listener, address: string, port: number, fromAddress = address, fromPort = port) {
    this.listener = listener;
    this.address = address;
    this.port = port;
    this.fromAddress = fromAddress;
    this.fromPort = fromPort;
  }

  keep(): Client {
    return new UdpClient(this.listener, this.address, this.port, this.fromAddress, this.fromPort);
  }

  reply(answer: Buffer): boolean {
    return this.listener.udpSend(answer, this.fromPort, this.fromAddress);
  }

  drop(): void {
    this.listener.queryDone();
  }
}

/** What a stream connection reads from and reports to: the connections of its listener (Streams). */
interface StreamOwner {
  readonly handler: QueryHandler;
  readonly tcp: TcpSettings;
  readonly stopping: boolean;
  queryStarted(): void;
  queryDone(): void;
  connectionClosed(c: TcpConnection): void;
}

/**
 * One RFC 7766 stream of DNS messages: a TCP connection, or a DoT session (RFC 7858 3.3: the same framing over
 * TLS) whose socket is a TLSSocket. `peer` is the client when a PROXY header named it; `initial`, what arrived
 * after that header.
 */
class TcpConnection implements Client {
  readonly transport: Transport;
  readonly address: string;
  readonly port: number;
  readonly #listener: StreamOwner;
  readonly #socket: Socket;
  #buffer: Buffer | null = null;
  #inFlight = 0;
  #ended = false;
  #paused = false;

  constructor(listener: StreamOwner, socket: Socket, transport: Transport, peer: ProxiedPeer | null, initial: Buffer) {
    this.#listener = listener;
    this.#socket = socket;
    this.transport = transport;
    this.address = peer?.address ?? socket.remoteAddress ?? '';
    this.port = peer?.port ?? socket.remotePort ?? 0;
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
    if (initial.length > 0) this.#onData(initial);
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
      // DoT answers are padded (dns/padding.ts); plain TCP ones never are.
      const out = this.transport === 'dot' ? padAnswer(answer, 2) : Buffer.allocUnsafe(answer.length + 2);
      const n = out.length - 2;
      out[0] = n >> 8;
      out[1] = n & 0xff;
      if (this.transport !== 'dot') answer.copy(out, 2);
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

/** Queries a listener handed to the handler and has not seen answered or dropped; the wait for none (draining). */
export class QueryCounter {
  /** Queries handed to the handler and not yet answered or dropped. */
  inFlight = 0;
  stopping = false;
  #idleWaiters: (() => void)[] = [];

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
}

/** A listener whose streams (Streams) take their settings and count their queries: TCP here, DoT in tls.ts. */
export interface StreamHost extends QueryCounter {
  readonly handler: QueryHandler;
  readonly tcp: TcpSettings;
  /** The PROXY protocol's front ends and parse (null: off). */
  readonly proxy: ProxyGate | null;
}

const EMPTY: Buffer = Buffer.alloc(0);

/**
 * The stream connections of one listener: plain TCP, or DoT's TLS sessions (the same RFC 7766 handling, the same
 * limits). A connection from a trusted PROXY front end first gives its header (within tcp.idleTimeoutMs, whole);
 * from anyone else, a PROXY header instead of a first frame closes the connection.
 */
export class Streams implements StreamOwner {
  readonly #host: StreamHost;
  readonly #transport: 'tcp' | 'dot';
  readonly #connections = new Set<TcpConnection>();
  /** Connections whose PROXY header is not read yet. */
  readonly #pending = new Set<Socket>();

  constructor(host: StreamHost, transport: 'tcp' | 'dot') {
    this.#host = host;
    this.#transport = transport;
  }

  get handler(): QueryHandler {
    return this.#host.handler;
  }

  get tcp(): TcpSettings {
    return this.#host.tcp;
  }

  get stopping(): boolean {
    return this.#host.stopping;
  }

  queryStarted(): void {
    this.#host.queryStarted();
  }

  queryDone(): void {
    this.#host.queryDone();
  }

  /** Open connections (those still giving their PROXY header included). */
  get size(): number {
    return this.#connections.size + this.#pending.size;
  }

  /** Takes a connection the server accepted (for DoT: once its TLS handshake is done). */
  accept(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const gate = this.#host.proxy;
    if (gate === null) {
      this.#connections.add(new TcpConnection(this, socket, this.#transport, null, EMPTY));
      return;
    }
    this.#readProxyHeader(socket, gate);
  }

  #readProxyHeader(socket: Socket, gate: ProxyGate): void {
    const trusted = gate.trusts(socket.remoteAddress ?? '');
    const t: ProxyTransport = this.#transport;
    this.#pending.add(socket);
    let buf: Buffer = EMPTY;
    const done = (): void => {
      clearTimeout(deadline);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      this.#pending.delete(socket);
    };
    const refuse = (outcome: ProxyOutcome): void => {
      done();
      gate.report(t, outcome);
      socket.destroy();
    };
    const serve = (peer: ProxiedPeer | null, rest: Buffer): void => {
      done();
      this.#connections.add(new TcpConnection(this, socket, this.#transport, peer, rest));
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const h = gate.stream(buf);
      if (h.status === P_INCOMPLETE) return;
      if (!trusted) {
        if (h.status === P_ABSENT) return serve(null, buf);
        return refuse('untrusted');
      }
      switch (h.status) {
        case P_PROXY:
          gate.report(t, 'proxied');
          return serve({ address: h.address, port: h.port }, buf.subarray(h.length));
        case P_LOCAL:
          gate.report(t, 'local');
          return serve(null, buf.subarray(h.length));
        case P_ABSENT:
          if (gate.requireHeader) return refuse('missing');
          gate.report(t, 'missing');
          return serve(null, buf);
        default:
          return refuse('malformed');
      }
    };
    const onError = (): void => {
      socket.destroy();
    };
    const onClose = (): void => done();
    // The whole header within the idle timeout, however slowly it trickles in.
    const deadline = setTimeout(() => {
      done();
      socket.destroy();
    }, this.tcp.idleTimeoutMs);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  }

  connectionClosed(c: TcpConnection): void {
    this.#connections.delete(c);
  }

  /** Stops reading new queries; each connection ends once its queries are answered. */
  stop(): void {
    for (const s of this.#pending) s.destroy();
    for (const c of this.#connections) c.stop();
  }

  destroy(): void {
    for (const s of this.#pending) s.destroy();
    for (const c of this.#connections) c.destroy();
    this.#connections.clear();
  }
}

/**
 * Listens on `server` at host:port as this process shares the port with the other workers (dns/sharing.ts); the
 * bound address.
 */
export async function listenShared(server: Server, host: string, port: number, family: 4 | 6): Promise<BoundAddress> {
  const sharing = portSharing();
  const reuse = sharing === 'reuseport' ? { reusePort: true } : {};
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // `reusePort` is not in @types/node 20's types (Node 22.12, 23.1 on); older Nodes never get here with it.
    const opts = { port, host, ipv6Only: family === 6, exclusive: sharing !== 'cluster', ...reuse };
    server.listen(opts as Parameters<typeof server.listen>[0], () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return { address: a.address, port: a.port, family };
}

/** The UDP socket and TCP server of one configured address. */
export class Listener extends QueryCounter implements StreamHost {
  /** The address as configured. */
  readonly spec: string;
  readonly handler: QueryHandler;
  tcp: TcpSettings;
  /** The PROXY protocol on this address (UDP and TCP); set anew on reload. */
  proxy: ProxyGate | null;
  readonly #log: Logger;
  #udp: UdpSocket | null = null;
  #server: Server | null = null;
  readonly #streams: Streams = new Streams(this, 'tcp');
  udpAddress: BoundAddress | null = null;
  tcpAddress: BoundAddress | null = null;
  /** The client of the datagram being handled (the query path keeps a copy if it answers later). */
  readonly #udpClient = new UdpClient(this, '', 0);

  private constructor(spec: string, handler: QueryHandler, tcp: TcpSettings, log: Logger, proxy: ProxyGate | null) {
    super();
    this.spec = spec;
    this.handler = handler;
    this.tcp = tcp;
    this.#log = log;
    this.proxy = proxy;
  }

  /**
   * Binds UDP, then TCP on the same port (so port 0 gives one port for both; retried a few times if TCP finds
   * that port taken).
   */
  static async open(
    spec: string,
    handler: QueryHandler,
    tcp: TcpSettings,
    log: Logger,
    proxy: ProxyGate | null = null,
  ): Promise<Listener> {
    const hp = parseHostPort(boundSpec(spec), 53);
    let lastError: unknown;
    for (let attempt = 0; attempt < (hp.port === 0 ? 5 : 1); attempt++) {
      const l = new Listener(spec, handler, tcp, log, proxy);
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
      // One scratch client for every datagram (handle() is synchronous; waiters keep() their own): ~56 heap bytes a
      // query fewer (query-path-bench --live --sites).
      const c = this.#udpClient;
      c.fromAddress = rinfo.address;
      c.fromPort = rinfo.port;
      let query: Buffer = msg;
      if (this.proxy === null) {
        c.address = rinfo.address;
        c.port = rinfo.port;
      } else {
        const payload = this.proxy.datagram(msg, rinfo.address, rinfo.port, c);
        if (payload === null) return;
        query = payload;
      }
      this.inFlight++;
      this.handler.handle(query, c);
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
      this.#streams.accept(socket),
    );
    this.#server = server;
    server.maxConnections = this.tcp.maxConnections;
    server.on('error', (err) => this.#log.warn({ err: err.message, listen: this.spec }, 'TCP listener error'));
    this.tcpAddress = await listenShared(server, host, ua.port, family);
  }

  /** Open TCP connections. */
  get connections(): number {
    return this.#streams.size;
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
    this.#streams.stop();
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
    this.#streams.destroy();
  }
}
