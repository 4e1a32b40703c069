/**
 * DNS over HTTPS (RFC 8484): HTTP/2 (node:http2), and HTTP/1.1 on the same port when `doh.http1` (ALPN decides),
 * over the same TLS settings as DoT. One endpoint path (`doh.path`, /dns-query by default):
 *
 *   GET  ?dns=<base64url, no padding>     RFC 8484 4.1; the message decoded from the URI
 *   POST body application/dns-message     RFC 8484 4.1; the body, read to a cap
 *
 * and the answer as `application/dns-message` with `Cache-Control: max-age` from its lowest TTL (RFC 8484 5.1),
 * status 200 whatever its rcode (4.2.1). The DNS ID is echoed as the query path does for every transport; clients
 * send 0 (RFC 8484 4.1, so that HTTP caches can share answers) and get 0 back.
 *
 * Malformed requests get a clear status before the query path sees anything: 404 (another path), 405 (another
 * method; Allow says which), 400 (no dns=, not base64url, padding, a message shorter than a DNS header, or one the
 * query path drops), 413 (a POST body over doh.maxQueryBytes, by Content-Length or while it streams), 414 (a URI
 * longer than a GET of doh.maxQueryBytes needs), 415 (a POST whose Content-Type is not application/dns-message).
 * A header block over doh.maxHeaderBytes gets 431 (HTTP/1.1: from node:http's parser, as it reads).
 *
 * Connections take tcp's limits, as plain TCP and DoT do (stream.ts): the access list when the TCP connection is
 * accepted (before the handshake; a client outside access.allow is closed at once), tcp.maxConnections and
 * tcp.maxConnectionsPerPrefix, the handshake within tcp.frameTimeoutMs, a POST body too (408 when it is not in by
 * then, so a trickled body cannot hold a stream), at most tcp.maxInFlightPerConnection streams at once
 * (SETTINGS_MAX_CONCURRENT_STREAMS), closed after tcp.idleTimeoutMs without activity; opened, refused and timed-out
 * connections are counted with transport "doh".
 *
 * The client's address is the connection's, for the access list as for any transport. The UDP rate limit does not
 * apply: an answer over an established connection feeds no reflection, and what a client may hold is bounded by the
 * connection caps.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  type IncomingHttpHeaders as Http2Headers,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';

import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { Client } from './client.js';
import type { Transport } from './events.js';
import type { ListenerOptions, QueryHandler, TcpSettings } from './listeners.js';
import { lastMaxAge, padAnswer } from './padding.js';
import { StreamGate } from './stream.js';
import { TlsListener, secureContextOptions, type TlsSettings } from './tls.js';
import { HEADER_BYTES } from './wire.js';

/** RFC 8484 6: the media type of a DNS message. */
export const DNS_MESSAGE = 'application/dns-message';
export const DOH_PORT = 443;

export interface DohSettings {
  /** The endpoint's path: /dns-query. */
  readonly path: string;
  /** Accept HTTP/1.1 too (ALPN http/1.1, or no ALPN). */
  readonly http1: boolean;
  readonly maxQueryBytes: number;
  readonly maxHeaderBytes: number;
}

/**
 * One request, whichever HTTP version: HTTP/2 on the raw stream API (no compatibility objects per request: the DoH
 * bench's hot path), HTTP/1.1 through node:http's request and response.
 */
interface DohRequest {
  readonly method: string;
  /** The request target: path and query. */
  readonly target: string;
  /** A header, lower-case name. */
  header(name: string): string | undefined;
  /** The size of the header list as HTTP/2 counts it (RFC 9113 6.5.2: each name and value plus 32 octets). */
  readonly headerBytes: number;
  /** The body, as it streams in. */
  readonly body: Readable;
  readonly address: string;
  readonly port: number;
  /** Sends the response (once; later calls and a client gone are ignored). `close`: HTTP/1.1 closes the connection. */
  respond(status: number, headers: OutgoingHttpHeaders, body: Buffer | string, close?: boolean): void;
}

/** RFC 9113 6.5.2: a header list's size, each name and value octets plus 32. */
function headerListBytes(headers: IncomingHttpHeaders | Http2Headers): number {
  let n = 0;
  for (const k in headers) {
    const v = headers[k];
    if (typeof v === 'string') n += k.length + Buffer.byteLength(v) + 32;
    else if (Array.isArray(v)) for (const x of v) n += k.length + Buffer.byteLength(x) + 32;
  }
  return n;
}

/**
 * RFC 9113 6.5.2 over the fields as received (node:http2's raw list: name, value, name, value, ...). node:http2
 * gives each name and value as a one-byte string, one character per octet, so a length is the octet count.
 */
function rawHeaderListBytes(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) n += raw[i]!.length;
  return n + (raw.length >> 1) * 32;
}

/** The client of an HTTP/2 session, read once when it opens (not through node:http2's socket proxy per request). */
interface Peer {
  readonly address: string;
  readonly port: number;
}

const NO_PEER: Peer = { address: '', port: 0 };

/** An HTTP/2 request on the raw stream API. */
class H2Request implements DohRequest {
  readonly method: string;
  readonly target: string;
  readonly headerBytes: number;
  readonly address: string;
  readonly port: number;
  readonly #stream: ServerHttp2Stream;
  readonly #headers: Http2Headers;

  constructor(stream: ServerHttp2Stream, headers: Http2Headers, raw: string[] | undefined, peer: Peer) {
    this.#stream = stream;
    this.#headers = headers;
    this.method = String(headers[':method'] ?? '');
    this.target = String(headers[':path'] ?? '');
    this.headerBytes = raw === undefined ? headerListBytes(headers) : rawHeaderListBytes(raw);
    this.address = peer.address;
    this.port = peer.port;
  }

  get body(): Readable {
    return this.#stream;
  }

  header(name: string): string | undefined {
    const v = this.#headers[name];
    return v === undefined ? undefined : String(v);
  }

  respond(status: number, headers: OutgoingHttpHeaders, body: Buffer | string): void {
    const stream = this.#stream;
    try {
      if (stream.destroyed || stream.headersSent) return;
      headers[':status'] = status;
      stream.respond(headers);
      stream.end(body);
    } catch {
      // the stream was reset: nothing to answer
    }
  }
}

function h1Request(req: IncomingMessage, res: ServerResponse): DohRequest {
  return {
    method: req.method ?? '',
    target: req.url ?? '',
    header: (name) => {
      const v = req.headers[name];
      return v === undefined ? undefined : String(v);
    },
    // node:http's parser already holds the header block to maxHeaderSize (431 beyond).
    headerBytes: 0,
    body: req,
    address: req.socket.remoteAddress ?? '',
    port: req.socket.remotePort ?? 0,
    respond(status, h, body, close = false) {
      try {
        if (res.headersSent || res.writableEnded) return;
        res.writeHead(status, close ? { ...h, connection: 'close' } : h);
        res.end(body);
      } catch {
        // the client went away
      }
    },
  };
}

/** Base64url (RFC 4648 5) without padding (RFC 8484 4.1), the characters the dns= value may hold. */
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** One DoH request's way back (the query path calls reply or drop exactly once). */
class DohClient implements Client {
  readonly transport: Transport = 'doh';
  readonly address: string;
  readonly port: number;
  readonly #listener: DohListener;
  readonly #req: DohRequest;

  constructor(listener: DohListener, req: DohRequest) {
    this.#listener = listener;
    this.#req = req;
    this.address = req.address;
    this.port = req.port;
  }

  reply(answer: Buffer): boolean {
    // Padded into a buffer of its own (the query path reuses `answer`): RFC 8467 4.1, dns/padding.ts. The same
    // scan of the answer gives its lifetime for HTTP caches (RFC 8484 5.1: no longer than its smallest TTL).
    const body = padAnswer(answer, 0);
    this.#req.respond(
      200,
      { 'content-type': DNS_MESSAGE, 'content-length': body.length, 'cache-control': `max-age=${lastMaxAge()}` },
      body,
    );
    this.#listener.queryDone();
    return false;
  }

  drop(): void {
    // A message the query path does not answer (a response, a header it cannot read): the request was malformed.
    this.#listener.status(this.#req, 400, 'not a DNS query');
    this.#listener.queryDone();
  }

  keep(): Client {
    return this;
  }
}

/** One DoH address. */
export class DohListener extends TlsListener {
  settings: DohSettings;
  /** The HTTP/2 server (TLS included) the admitted connections are handed to; it does not listen itself. */
  readonly #h2: Http2SecureServer;
  protected readonly gate: StreamGate;
  /** HTTP/2 sessions and their clients; the sessions to close gracefully (GOAWAY) when stopping. */
  readonly #sessions = new Map<Http2Session, Peer>();
  readonly #clock: Clock;

  private constructor(
    spec: string,
    handler: QueryHandler,
    settings: DohSettings,
    tcp: TcpSettings,
    tls: TlsSettings,
    log: Logger,
    o: ListenerOptions,
  ) {
    super(spec, handler, log);
    this.settings = settings;
    this.#clock = o.clock ?? systemClock;
    const server = createSecureServer({
      ...secureContextOptions(tls),
      allowHTTP1: settings.http1,
      // Like a DoT session's (tls.ts): the handshake within a frame's deadline.
      handshakeTimeout: tcp.frameTimeoutMs,
      // Answers go out as they are written (without it Nagle holds small answers for the client's delayed ACK).
      noDelay: true,
      // HTTP/2 limits of one connection: its streams at once, the uncompressed header block, header pairs.
      settings: { maxConcurrentStreams: tcp.maxInFlightPerConnection, maxHeaderListSize: settings.maxHeaderBytes },
      maxHeaderListPairs: 64,
      peerMaxConcurrentStreams: tcp.maxInFlightPerConnection,
    });
    // HTTP/1.1 (allowHTTP1): the header cap of node:http's parser, 431 beyond it.
    (server as unknown as { maxHeaderSize: number }).maxHeaderSize = settings.maxHeaderBytes;
    server.setTimeout(tcp.idleTimeoutMs);
    this.#h2 = server;
    // The gate admits each TCP connection (stream.ts) and hands it to the HTTP/2 server for its TLS and HTTP.
    this.gate = new StreamGate('doh', tcp, this, o.events, this.#clock, (socket) => server.emit('connection', socket));
    server.on('session', (session: Http2Session) => {
      const socket = session.socket;
      this.#sessions.set(session, { address: socket?.remoteAddress ?? '', port: socket?.remotePort ?? 0 });
      session.once('close', () => this.#sessions.delete(session));
      session.on('error', () => session.destroy());
    });
    // HTTP/2 streams on the raw API. HTTP/1.1 (allowHTTP1) arrives as 'request' events, and a 'request' listener
    // also makes node:http2 build its compatibility objects for every HTTP/2 stream ('stream' listener of its own):
    // that one is removed again, so each stream is handled once, here.
    const onStream = (stream: ServerHttp2Stream, headers: Http2Headers, _flags: number, raw?: string[]): void => {
      const session = stream.session;
      this.#request(new H2Request(stream, headers, raw, (session && this.#sessions.get(session)) ?? NO_PEER));
    };
    server.on('stream', onStream);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.httpVersionMajor === 1) this.#request(h1Request(req, res));
    });
    for (const l of server.listeners('stream'))
      if (l !== onStream) server.off('stream', l as (...a: unknown[]) => void);
    // A failed or timed-out handshake: node:tls leaves the socket open when this event has a listener.
    server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.gate.timedOut('handshake-timeout');
      else this.handshakeFailed(err);
      socket.destroy();
    });
  }

  static open(
    spec: string,
    handler: QueryHandler,
    settings: DohSettings,
    tcp: TcpSettings,
    tls: TlsSettings,
    log: Logger,
    options: ListenerOptions,
  ): Promise<DohListener> {
    return new DohListener(spec, handler, settings, tcp, tls, log, options).listenAt(DOH_PORT);
  }

  setTls(tls: TlsSettings): void {
    this.#h2.setSecureContext(secureContextOptions(tls));
  }

  /** The longest request target a GET of doh.maxQueryBytes needs (the path, "?dns=", the base64url, a margin). */
  get #maxTarget(): number {
    return this.settings.path.length + 5 + Math.ceil((this.settings.maxQueryBytes * 4) / 3) + 256;
  }

  #request(req: DohRequest): void {
    if (this.stopping) return this.status(req, 503, 'stopping', true);
    if (req.headerBytes > this.settings.maxHeaderBytes) return this.status(req, 431, 'header fields too large', true);
    const target = req.target;
    if (target.length > this.#maxTarget) return this.status(req, 414, 'URI too long');
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    if (path !== this.settings.path) return this.status(req, 404, 'not found');
    if (req.method === 'GET') {
      const value = dnsParam(q < 0 ? '' : target.slice(q + 1));
      if (value === null) return this.status(req, 400, 'no dns parameter');
      if (!BASE64URL.test(value) || value.length % 4 === 1) {
        return this.status(req, 400, 'the dns parameter is not base64url without padding');
      }
      const msg = Buffer.from(value, 'base64url');
      if (msg.length > this.settings.maxQueryBytes) return this.status(req, 414, 'query too large');
      return this.#query(msg, req);
    }
    if (req.method === 'POST') {
      const type = (req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== DNS_MESSAGE) return this.status(req, 415, `Content-Type must be ${DNS_MESSAGE}`);
      const max = this.settings.maxQueryBytes;
      if (Number(req.header('content-length') ?? -1) > max) return this.status(req, 413, 'body too large', true);
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      // The whole body within the deadline, however it trickles (as a frame over TCP: stream.ts).
      const deadline = this.#clock.setTimeout(() => {
        if (over) return;
        over = true;
        this.status(req, 408, 'the body did not arrive in time', true);
      }, this.tcp.frameTimeoutMs);
      const end = (): void => {
        over = true;
        this.#clock.clearTimeout(deadline);
      };
      req.body.on('data', (c: Buffer) => {
        if (over) return;
        size += c.length;
        if (size > max) {
          end();
          this.status(req, 413, 'body too large', true);
          return;
        }
        chunks.push(c);
      });
      req.body.on('end', () => {
        if (over) return;
        end();
        this.#query(Buffer.concat(chunks, size), req);
      });
      req.body.on('error', () => undefined);
      req.body.on('close', () => {
        if (!over) end();
      });
      return;
    }
    return this.status(req, 405, 'only GET and POST', false, { allow: 'GET, POST' });
  }

  #query(msg: Buffer, req: DohRequest): void {
    if (msg.length < HEADER_BYTES) return this.status(req, 400, 'shorter than a DNS header');
    this.queryStarted();
    this.handler.handle(msg, new DohClient(this, req));
  }

  /** Ends the request with `code` and a short text (`close`: the connection too, for HTTP/1.1). */
  status(req: DohRequest, code: number, text: string, close = false, extra: OutgoingHttpHeaders = {}): void {
    req.respond(code, { 'content-type': 'text/plain; charset=utf-8', ...extra }, `${text}\n`, close);
  }

  /**
   * Stops accepting: HTTP/2 sessions get GOAWAY (their streams in flight finish), a new HTTP/1.1 request gets 503
   * and its connection closed. Answers in flight still go out.
   */
  override stop(): void {
    if (this.stopping) return;
    super.stop();
    for (const s of this.#sessions.keys()) s.close();
  }

  override close(): void {
    for (const s of this.#sessions.keys()) s.destroy();
    this.#sessions.clear();
    super.close();
  }
}

/** The value of the first `dns` parameter of a query string (percent-decoding is not needed: base64url is URI-safe). */
function dnsParam(query: string): string | null {
  for (let at = 0; ;) {
    const end = query.indexOf('&', at);
    if (query.startsWith('dns=', at)) return query.slice(at + 4, end < 0 ? query.length : end);
    if (end < 0) return null;
    at = end + 1;
  }
}
