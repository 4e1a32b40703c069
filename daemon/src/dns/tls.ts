/**
 * DNS over TLS (RFC 7858): a TLS listener whose sessions are RFC 7766 streams, handled by the same code as plain
 * TCP (listeners.ts: Streams and its connections): framing, pipelining with answers out of order, the per-connection
 * limit on queries in flight, the idle timeout, the cap on connections, a PROXY header from a trusted front end
 * (the first bytes inside the session, as dnsdist sends it to a DoT backend). What TLS adds is here: the
 * certificate and key, TLS 1.2 and 1.3 only, ALPN "dot" (RFC 7858 3.1 as IANA registered it), the handshake
 * deadline, and new certificates on reload for new sessions while the open ones go on (setSecureContext).
 */
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';

import type { Logger } from '../util/log.js';
import { parseHostPort } from '../util/net.js';
import {
  QueryCounter,
  Streams,
  listenShared,
  type BoundAddress,
  type QueryHandler,
  type StreamHost,
  type TcpSettings,
} from './listeners.js';
import type { ProxyGate } from './proxy.js';

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
 * What DoT and DoH listeners share: a TLS server (a tls.Server, or node:http2's, which is one) listening on one
 * configured address, whose certificate a reload replaces for new connections.
 */
export abstract class TlsListener extends QueryCounter {
  /** The address as configured. */
  readonly spec: string;
  address: BoundAddress | null = null;
  protected abstract readonly server: Server;

  constructor(spec: string) {
    super();
    this.spec = spec;
  }

  /** Listens at `spec` (`defaultPort` when it names none); closes this listener and rejects when it cannot. */
  protected async listenAt(defaultPort: number): Promise<this> {
    const hp = parseHostPort(this.spec, defaultPort);
    try {
      this.address = await listenShared(this.server, hp.host, hp.port, hp.family);
    } catch (err) {
      this.close();
      throw err;
    }
    return this;
  }

  /** New connections get `tls`'s certificate and key; open ones keep theirs (a reload drops no connection). */
  setTls(tls: TlsSettings): void {
    this.server.setSecureContext(secureContextOptions(tls));
  }

  abstract close(): void;
}

/** One DoT address. */
export class DotListener extends TlsListener implements StreamHost {
  readonly handler: QueryHandler;
  tcp: TcpSettings;
  proxy: ProxyGate | null;
  readonly #log: Logger;
  protected readonly server: Server;
  readonly #streams: Streams = new Streams(this, 'dot');

  private constructor(
    spec: string,
    handler: QueryHandler,
    tcp: TcpSettings,
    tls: TlsSettings,
    log: Logger,
    proxy: ProxyGate | null,
  ) {
    super(spec);
    this.handler = handler;
    this.tcp = tcp;
    this.proxy = proxy;
    this.#log = log;
    this.server = createTlsServer({
      ...secureContextOptions(tls),
      ALPNProtocols: [ALPN_DOT],
      // The whole handshake within the idle timeout of a connection (unbound: tcp-idle-timeout does the same).
      handshakeTimeout: tcp.idleTimeoutMs,
      allowHalfOpen: true,
      noDelay: true,
    });
    this.server.maxConnections = tcp.maxConnections;
    this.server.on('connection', (socket: Socket) => {
      if (this.stopping) socket.destroy();
    });
    this.server.on('secureConnection', (socket: TLSSocket) => this.#streams.accept(socket));
    // A failed handshake (a plain-TCP client, an old TLS version, a certificate the client refused) costs its
    // connection; no line per client at info.
    this.server.on('tlsClientError', (err: Error) =>
      this.#log.debug({ err: err.message, listen: spec }, 'TLS handshake'),
    );
    this.server.on('error', (err: Error) => this.#log.warn({ err: err.message, listen: spec }, 'DoT listener error'));
  }

  static open(
    spec: string,
    handler: QueryHandler,
    tcp: TcpSettings,
    tls: TlsSettings,
    log: Logger,
    proxy: ProxyGate | null = null,
  ): Promise<DotListener> {
    return new DotListener(spec, handler, tcp, tls, log, proxy).listenAt(DOT_PORT);
  }

  /** Open DoT sessions. */
  get connections(): number {
    return this.#streams.size;
  }

  /** Stops accepting and reading; answers still go out, and each session ends once its queries are answered. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.server.close();
    this.#streams.stop();
  }

  override close(): void {
    this.stopping = true;
    this.server.close();
    this.#streams.destroy();
  }
}
