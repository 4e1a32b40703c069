/**
 * DNS over HTTPS (RFC 8484): HTTP/2 on a connection layer made for it (dns/h2/, not node:http2: measured, node:http2
 * alone cost most of what a DoH query may cost), and HTTP/1.1 on node:http on the same port when `doh.http1` (ALPN
 * decides; without it, a client that does not offer h2 gets 403 and the close), over the same TLS settings as DoT.
 * One endpoint path (`doh.path`, /dns-query by default):
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
 * A header list over doh.maxHeaderBytes gets 431 (HTTP/2: counted as it is decoded; HTTP/1.1: node:http's parser).
 *
 * Connections take tcp's limits, as plain TCP and DoT do (stream.ts): the access list when the TCP connection is
 * accepted (before the handshake; a client outside access.allow is closed at once), tcp.maxConnections and
 * tcp.maxConnectionsPerPrefix, the handshake within tcp.frameTimeoutMs (as DoT's), a POST body too (408
 * when it is not in by then, so a trickled body cannot hold a stream), at most tcp.maxInFlightPerConnection streams
 * at once (SETTINGS_MAX_CONCURRENT_STREAMS), closed after tcp.idleTimeoutMs without a stream open; opened, refused
 * and timed-out connections are counted with transport "doh".
 *
 * The client's address is the connection's, for the access list as for any transport. The UDP rate limit does not
 * apply: an answer over an established connection feeds no reflection, and what a client may hold is bounded by the
 * connection caps.
 */
import { Buffer } from 'node:buffer';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';

import { systemClock, type Clock } from '../util/clock.js';
import { createServer as createHttpServer } from '../util/http.js';
import type { Logger } from '../util/log.js';
import type { Client } from './client.js';
import type { Transport } from './events.js';
import {
  H2Connection,
  H2Stream,
  RESPONSE_RESERVE,
  type BodySink,
  type H2Host,
  type ResponseHeaders,
} from './h2/connection.js';
import type { ListenerOptions, QueryHandler, TcpSettings } from './listeners.js';
import { lastMaxAge, padAnswer } from './padding.js';
import { StreamGate, type Slot } from './stream.js';
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

/** One request, whichever HTTP version: an HTTP/2 stream (h2/connection.ts), or node:http's request and response. */
interface DohRequest {
  readonly method: string;
  /** The request target: path and query. */
  readonly target: string;
  /** A header, lower-case name. */
  header(name: string): string | undefined;
  /** The size of the header list as HTTP/2 counts it (RFC 9113 6.5.2: each name and value plus 32 octets). */
  readonly headerBytes: number;
  readonly address: string;
  readonly port: number;
  /** Takes the body as it streams in. */
  readBody(sink: BodySink): void;
  /**
   * Sends the response (once; later calls and a client gone are ignored). `close`: HTTP/1.1 closes the connection.
   * `bodyAt`: where the body starts in `body` (the octets before it are the response's to use).
   */
  respond(status: number, headers: ResponseHeaders, body: Buffer | string, close?: boolean, bodyAt?: number): void;
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
    address: req.socket.remoteAddress ?? '',
    port: req.socket.remotePort ?? 0,
    readBody(sink) {
      req.on('data', (c: Buffer) => sink.data(c));
      req.on('end', () => sink.end());
      req.on('error', () => undefined);
      req.on('close', () => sink.close());
    },
    respond(status, h, body, close = false, bodyAt = 0) {
      try {
        if (res.headersSent || res.writableEnded) return;
        res.writeHead(status, close ? { ...h, connection: 'close' } : h);
        res.end(typeof body === 'string' || bodyAt === 0 ? body : body.subarray(bodyAt));
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
    // Over HTTP/2 with room before it for the frames (h2/connection.ts writes them there: one buffer an answer).
    const req = this.#req;
    const at = req instanceof H2Stream ? RESPONSE_RESERVE : 0;
    const body = padAnswer(answer, at);
    req.respond(
      200,
      { 'content-type': DNS_MESSAGE, 'content-length': body.length - at, 'cache-control': `max-age=${lastMaxAge()}` },
      body,
      false,
      at,
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
  #context: SecureContext;
  protected readonly gate: StreamGate;
  /** HTTP/1.1 (doh.http1): node:http over the TLS sessions ALPN gave to it; it does not listen itself. */
  readonly #http1: Server;
  /** HTTP/2 connections, to send GOAWAY when stopping. */
  readonly #connections = new Set<H2Connection>();
  readonly #h2: H2Host;
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
    this.#context = createSecureContext(secureContextOptions(tls));
    // HTTP/1.1: the header cap of node:http's parser (431 beyond it), the idle timeout.
    this.#http1 = createHttpServer({ maxHeaderSize: settings.maxHeaderBytes }, (req, res) =>
      this.#request(h1Request(req, res)),
    );
    this.#http1.setTimeout(tcp.idleTimeoutMs);
    this.#h2 = {
      request: (stream) => this.#request(stream),
      timedOut: (reason) => this.gate.timedOut(reason),
      deadline: (fn) => this.gate.deadline(fn),
      clock: this.#clock,
    };
    // The gate admits each TCP connection (stream.ts); then its TLS handshake, and HTTP/2 or HTTP/1.1 as ALPN says.
    this.gate = new StreamGate('doh', tcp, this, o.events, this.#clock, (socket, slot, gate) =>
      this.#handshake(socket, slot, gate),
    );
  }

  /** The TLS session (ALPN h2, and http/1.1 when doh.http1), whole within a frame's deadline as DoT's is. */
  #handshake(socket: Socket, slot: Slot, gate: StreamGate): void {
    const alpn = this.settings.http1 ? ['h2', 'http/1.1'] : ['h2'];
    this.startTls(
      socket,
      slot,
      gate,
      this.#context,
      alpn,
      (fn) => gate.deadline(fn),
      (session) => this.#serve(session),
    );
  }

  #serve(session: TLSSocket): void {
    if (this.stopping) {
      session.destroy();
      return;
    }
    if (session.alpnProtocol === 'h2') {
      const tcp = this.tcp;
      const c = new H2Connection(session, this.#h2, {
        maxConcurrentStreams: tcp.maxInFlightPerConnection,
        maxHeaderListBytes: this.settings.maxHeaderBytes,
        idleTimeoutMs: tcp.idleTimeoutMs,
      });
      this.#connections.add(c);
      c.onClose = () => this.#connections.delete(c);
      return;
    }
    if (this.settings.http1) {
      this.#http1.emit('connection', session);
      return;
    }
    // No HTTP/1.1 here: an answer such a client may understand, then the close.
    session.on('error', () => session.destroy());
    session.end('HTTP/1.0 403 Forbidden\r\n\r\n');
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
    this.#context = createSecureContext(secureContextOptions(tls));
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
      const finish = (): void => {
        over = true;
        this.#clock.clearTimeout(deadline);
      };
      req.readBody({
        data: (c) => {
          if (over) return;
          size += c.length;
          if (size > max) {
            finish();
            this.status(req, 413, 'body too large', true);
            return;
          }
          chunks.push(c);
        },
        end: () => {
          if (over) return;
          finish();
          this.#query(Buffer.concat(chunks, size), req);
        },
        close: () => {
          if (!over) finish();
        },
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
  status(req: DohRequest, code: number, text: string, close = false, extra: ResponseHeaders = {}): void {
    req.respond(code, { 'content-type': 'text/plain; charset=utf-8', ...extra }, `${text}\n`, close);
  }

  /**
   * Stops accepting: HTTP/2 sessions get GOAWAY (their streams in flight finish), a new HTTP/1.1 request gets 503
   * and its connection closed. Answers in flight still go out.
   */
  override stop(): void {
    if (this.stopping) return;
    super.stop();
    for (const c of this.#connections) c.stop();
    this.#http1.closeIdleConnections();
  }

  override close(): void {
    for (const c of [...this.#connections]) c.destroy();
    this.#connections.clear();
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
