/**
 * The DNS listeners: one UDP socket and one TCP server per configured address, on node:dgram and node:net directly
 * (dns2's servers parse every message with its slow codec and never hand over the raw bytes: dns2.md 1, 7).
 *
 * TCP connections are served by dns/stream.ts (RFC 7766 framing, the access list at accept, the caps on
 * connections, the frame deadline and the idle timeout), which DoT and DoH share (tls.ts, doh.ts). With the PROXY
 * protocol on (dns/proxy.ts), a datagram or a connection from a trusted front end is served as the client its
 * header names. Nothing here throws into the event loop: socket errors are counted and the connection closed.
 *
 * Every query handed to the handler comes with a Client whose reply() or drop() is called exactly once; the
 * listener counts queries in flight with it, which is what draining on SIGTERM waits for.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { parseHostPort } from '../util/net.js';
import type { Client } from './client.js';
import type { QueryEvents, Transport } from './events.js';
import { UdpOutbox } from './outbox.js';
import type { ProxyGate } from './proxy.js';
import { boundSpec, portSharing } from './sharing.js';
import { StreamGate, type StreamHost, type StreamSettings } from './stream.js';
import { ipLookup } from './udp-lookup.js';

export interface QueryHandler {
  handle(msg: Buffer, client: Client): void;
  /** Whether a client at `address` may query (access.allow): a connection from elsewhere is closed when accepted. */
  accepts(address: string): boolean;
}

export type TcpSettings = StreamSettings;

/** What a listener reports its connections to, the clock of their deadlines, the PROXY protocol (absent: off). */
export interface ListenerOptions {
  readonly events: QueryEvents;
  readonly clock?: Clock;
  readonly proxy?: ProxyGate | null;
}

export interface BoundAddress {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

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

/**
 * A TCP server whose connections go to `gate` (stream.ts: the access list and the caps when accepted, before any
 * TLS handshake; not server.maxConnections, which would neither close connections from outside access.allow nor
 * count refusals by their reason), listening at host:port as this process shares the port with the other workers
 * (dns/sharing.ts).
 */
export async function listenGate(
  gate: StreamGate,
  host: string,
  port: number,
  family: 4 | 6,
): Promise<{ server: Server; address: BoundAddress }> {
  const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false }, (socket: Socket) =>
    gate.serve(socket),
  );
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
  return { server, address: { address: a.address, port: a.port, family } };
}

/** The UDP socket and TCP server of one configured address. */
export class Listener extends QueryCounter implements StreamHost {
  /** The address as configured. */
  readonly spec: string;
  readonly handler: QueryHandler;
  /** The PROXY protocol on this address (UDP and TCP); set anew on reload. */
  proxy: ProxyGate | null;
  readonly #log: Logger;
  #udp: UdpSocket | null = null;
  #server: Server | null = null;
  readonly #tcp: StreamGate;
  udpAddress: BoundAddress | null = null;
  tcpAddress: BoundAddress | null = null;
  /** The client of the datagram being handled (the query path keeps a copy if it answers later). */
  readonly #udpClient = new UdpClient(this, '', 0);

  private constructor(spec: string, handler: QueryHandler, tcp: TcpSettings, log: Logger, o: ListenerOptions) {
    super();
    this.spec = spec;
    this.handler = handler;
    this.proxy = o.proxy ?? null;
    this.#log = log;
    this.#tcp = new StreamGate('tcp', tcp, this, o.events, o.clock ?? systemClock);
  }

  /** The TCP limits in force (a reload sets new ones; open connections keep their idle timeout). */
  get tcp(): TcpSettings {
    return this.#tcp.settings;
  }

  set tcp(settings: TcpSettings) {
    this.#tcp.settings = settings;
  }

  accepts(address: string): boolean {
    return this.handler.accepts(address);
  }

  handle(msg: Buffer, client: Client): void {
    this.handler.handle(msg, client);
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
    options: ListenerOptions,
  ): Promise<Listener> {
    const hp = parseHostPort(boundSpec(spec), 53);
    let lastError: unknown;
    for (let attempt = 0; attempt < (hp.port === 0 ? 5 : 1); attempt++) {
      const l = new Listener(spec, handler, tcp, log, options);
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
    const { server, address } = await listenGate(this.#tcp, host, ua.port, family);
    this.#server = server;
    server.on('error', (err) => this.#log.warn({ err: err.message, listen: this.spec }, 'TCP listener error'));
    this.tcpAddress = address;
  }

  /** Open TCP connections. */
  get connections(): number {
    return this.#tcp.size;
  }

  /**
   * Sends an answer, after the datagrams at hand (outbox.ts); false: `answer` is not referenced after the call (the
   * outbox keeps a copy). The query counts as done when it is sent.
   */
  udpSend(answer: Buffer, port: number, address: string): boolean {
    this.#outbox.add(answer, port, address);
    return false;
  }

  /**
   * The outbox's send. Synchronous (the sockets' lookup, udp-lookup.ts), and without a callback Node first tries
   * the kernel directly (uv_udp_try_send), which copies the datagram; only when that cannot be done at once
   * (EAGAIN: the socket's send buffer is full) is the send queued in libuv with a pointer into the slab, which a
   * non-empty send queue says (the outbox's second argument).
   */
  readonly #sendAt = (slab: Buffer, offset: number, length: number, port: number, address: string): void => {
    // Without a callback: a failed send is an 'error' event on the socket (logged at debug). A synchronous throw
    // (a spoofed source port 0, say) costs the answer, never a log line per packet.
    try {
      this.#udp?.send(slab, offset, length, port, address);
    } catch {
      this.sendErrors++;
    }
    this.queryDone();
  };

  readonly #outbox = new UdpOutbox(this.#sendAt, () => (this.#udp?.getSendQueueCount() ?? 0) > 0);

  /** Answers that could not be sent (bad client port, socket closed). */
  sendErrors = 0;

  /** Stops taking queries: UDP datagrams are ignored, TCP stops accepting and reading. Answers still go out. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.#server?.close();
    this.#tcp.stop();
  }

  close(): void {
    this.stopping = true;
    this.#outbox.flush();
    try {
      this.#udp?.close();
    } catch {
      // not bound or already closed
    }
    this.#udp = null;
    this.#server?.close();
    this.#tcp.close();
  }
}
