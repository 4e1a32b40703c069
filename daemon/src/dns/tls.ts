/**
 * DNS over TLS (RFC 7858): a TLS listener whose sessions are RFC 7766 streams, handled by the same code as plain
 * TCP (stream.ts): the access list and the connection caps when the TCP connection is accepted (before any
 * handshake), framing, pipelining with answers out of order, the per-connection limit on queries in flight, the
 * frame deadline, the idle timeout, a PROXY header from a trusted front end (the first bytes inside the session, as
 * dnsdist sends it to a DoT backend). What TLS adds is here: the certificate and key, TLS 1.2 and 1.3 only, ALPN
 * "dot" (RFC 7858 3.1 as IANA registered it), the handshake whole within tcp.frameTimeoutMs (a handshake that does
 * not finish cannot hold a slot longer than a frame), and new certificates on reload for new sessions while the
 * open ones go on.
 */
import type { Server, Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext, type SecureContextOptions } from 'node:tls';

import { systemClock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { parseHostPort } from '../util/net.js';
import type { Client } from './client.js';
import {
  QueryCounter,
  listenGate,
  type BoundAddress,
  type ListenerOptions,
  type QueryHandler,
  type TcpSettings,
} from './listeners.js';
import type { ProxyGate } from './proxy.js';
import { StreamGate, type Slot, type StreamHost } from './stream.js';

/** RFC 7858 3.1: the default port. */
export const DOT_PORT = 853;
/** The ALPN protocol id of DoT (IANA "TLS Application-Layer Protocol Negotiation (ALPN) Protocol IDs"). */
export const ALPN_DOT = 'dot';

/** The certificate and key (PEM) and the oldest TLS version accepted, shared by DoT and DoH. */
export interface TlsSettings {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

/** What a TLS context is made of: the certificate, the key, TLS 1.2 or 1.3 up to 1.3. */
export function secureContextOptions(s: TlsSettings): SecureContextOptions {
  return { cert: s.cert, key: s.key, minVersion: s.minVersion, maxVersion: 'TLSv1.3' };
}

/**
 * What DoT and DoH listeners share: a TCP server on one configured address whose connections a StreamGate admits
 * (the access list, the caps, their metrics by transport) before their TLS handshake, and a certificate a reload
 * replaces for new connections.
 */
export abstract class TlsListener extends QueryCounter implements StreamHost {
  /** The address as configured. */
  readonly spec: string;
  readonly handler: QueryHandler;
  address: BoundAddress | null = null;
  protected readonly log: Logger;
  protected abstract readonly gate: StreamGate;
  #server: Server | null = null;

  constructor(spec: string, handler: QueryHandler, log: Logger) {
    super();
    this.spec = spec;
    this.handler = handler;
    this.log = log;
  }

  /** The PROXY protocol in force for new connections (DoT only); set anew on reload. */
  proxy: ProxyGate | null = null;

  accepts(address: string): boolean {
    return this.handler.accepts(address);
  }

  handle(msg: Buffer, client: Client): void {
    this.handler.handle(msg, client);
  }

  /** The connection limits in force (a reload sets new ones). */
  get tcp(): TcpSettings {
    return this.gate.settings;
  }

  set tcp(settings: TcpSettings) {
    this.gate.settings = settings;
  }

  /** Open connections (those still in their handshake included). */
  get connections(): number {
    return this.gate.size;
  }

  /** Listens at `spec` (`defaultPort` when it names none); closes this listener and rejects when it cannot. */
  protected async listenAt(defaultPort: number): Promise<this> {
    const hp = parseHostPort(this.spec, defaultPort);
    try {
      const { server, address } = await listenGate(this.gate, hp.host, hp.port, hp.family);
      this.#server = server;
      server.on('error', (err: Error) =>
        this.log.warn({ err: err.message, listen: this.spec }, `${this.gate.transport} listener error`),
      );
      this.address = address;
    } catch (err) {
      this.close();
      throw err;
    }
    return this;
  }

  /** A failed handshake (a plain-TCP client, an old TLS version, a certificate the client refused): no line at info. */
  protected handshakeFailed(err: Error): void {
    this.log.debug({ err: err.message, listen: this.spec }, 'TLS handshake');
  }

  /** New connections get `tls`'s certificate and key; open ones keep theirs (a reload drops no connection). */
  abstract setTls(tls: TlsSettings): void;

  /**
   * The TLS session over an admitted connection (ALPN `alpn`), whole within `deadline` (a handshake that does not
   * finish cannot hold a slot longer than that); `secure` takes it once it is up. A failed handshake, or a client
   * gone before it is done, closes the connection.
   */
  protected startTls(
    socket: Socket,
    slot: Slot,
    gate: StreamGate,
    context: SecureContext,
    alpn: string[],
    deadline: (onTimeout: () => void) => () => void,
    secure: (session: TLSSocket) => void,
  ): void {
    const session = new TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: alpn });
    slot.stream = session;
    const cancel = deadline(() => {
      gate.timedOut('handshake-timeout');
      session.destroy();
    });
    const onError = (err: Error): void => {
      cancel();
      this.handshakeFailed(err);
      session.destroy();
    };
    // The client gone before the handshake is done (the session is half-open, as every stream here may be): no
    // query can follow, nothing to answer.
    const onEnd = (): void => {
      cancel();
      session.destroy();
    };
    session.once('secure', () => {
      cancel();
      session.off('error', onError);
      session.off('end', onEnd);
      secure(session);
    });
    session.on('error', onError);
    session.once('end', onEnd);
    session.once('close', cancel);
  }

  /** Stops accepting; what the transport does with open connections is the subclass's. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.#server?.close();
    this.gate.stop();
  }

  close(): void {
    this.stopping = true;
    this.#server?.close();
    this.gate.close();
  }
}

/** One DoT address. */
export class DotListener extends TlsListener {
  #context: SecureContext;
  protected readonly gate: StreamGate;

  private constructor(
    spec: string,
    handler: QueryHandler,
    tcp: TcpSettings,
    tls: TlsSettings,
    log: Logger,
    o: ListenerOptions,
  ) {
    super(spec, handler, log);
    this.proxy = o.proxy ?? null;
    this.#context = createSecureContext(secureContextOptions(tls));
    this.gate = new StreamGate('dot', tcp, this, o.events, o.clock ?? systemClock, (socket, slot, gate) =>
      this.#handshake(socket, slot, gate),
    );
  }

  static open(
    spec: string,
    handler: QueryHandler,
    tcp: TcpSettings,
    tls: TlsSettings,
    log: Logger,
    options: ListenerOptions,
  ): Promise<DotListener> {
    return new DotListener(spec, handler, tcp, tls, log, options).listenAt(DOT_PORT);
  }

  setTls(tls: TlsSettings): void {
    this.#context = createSecureContext(secureContextOptions(tls));
  }

  /** The TLS session over an admitted connection; once it is up, the stream of queries. */
  #handshake(socket: Socket, slot: Slot, gate: StreamGate): void {
    this.startTls(
      socket,
      slot,
      gate,
      this.#context,
      [ALPN_DOT],
      (fn) => gate.deadline(fn),
      (session) => gate.stream(session, slot),
    );
  }
}
