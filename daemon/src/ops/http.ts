/**
 * The operations HTTP listener (`metrics.listen`): /metrics (Prometheus text), /healthz (alive), /readyz (ready,
 * 200 or 503, JSON with the reasons) and, when the hit report is served, /hit-report. GET and HEAD only; no request
 * body is read; small header and time limits, since the listener may face a network the operator does not control.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createServer } from '../util/http.js';
import { ListenError, parseHostPort } from '../util/net.js';
import type { Readiness } from './health.js';

/** Header bytes a request may send (node's default is 16 KiB). */
export const MAX_HEADER_BYTES = 8 * 1024;

export interface OpsRoutes {
  /** The exposition text for /metrics. */
  metrics(): Promise<string>;
  readiness(): Readiness;
  /** The last completed hit report window (JSON-ready), or null; absent when the endpoint is off. */
  hitReport?: () => unknown;
}

/** Milliseconds a client has to send a request's headers, and the whole request. */
export interface HttpLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

export const HTTP_LIMITS: HttpLimits = Object.freeze({ headersTimeoutMs: 5_000, requestTimeoutMs: 10_000 });

/**
 * An HTTP server with the limits every listener of the daemon uses. Node checks the header and request deadlines
 * only every connectionsCheckingInterval (30 s by default), so a client trickling headers would hold its connection
 * six times longer than headersTimeout says; the check runs at least twice per deadline here.
 */
export function limitedServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  limits: HttpLimits = HTTP_LIMITS,
): Server {
  const server = createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 2))),
    },
    handler,
  );
  server.keepAliveTimeout = 5_000;
  server.maxRequestsPerSocket = 100;
  server.maxConnections = 1_000;
  // A client that sends garbage gets its socket closed; nothing is logged per connection.
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}

/** Listens on "host:port" (IP literal); rejects with a ListenError naming the configuration `key` and the reason. */
export async function listenOn(server: Server, spec: string, defaultPort: number, key: string): Promise<AddressInfo> {
  const hp = parseHostPort(spec, defaultPort);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(new ListenError(key, spec, err));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host: hp.host, port: hp.port, exclusive: true });
  });
  return server.address() as AddressInfo;
}

/** Closes a server and every connection it holds, within `ms`. */
export function closeServer(server: Server, ms = 2000): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeAllConnections();
  });
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(head ? undefined : body);
}

function json(res: ServerResponse, status: number, value: unknown, head: boolean): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`, head);
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class OpsServer {
  readonly spec: string;
  readonly address: AddressInfo;
  routes: OpsRoutes;
  readonly #server: Server;
  readonly #started = Date.now();

  private constructor(spec: string, server: Server, address: AddressInfo, routes: OpsRoutes) {
    this.spec = spec;
    this.#server = server;
    this.address = address;
    this.routes = routes;
  }

  /** Listens on `spec` ("127.0.0.1:9153"); rejects with the address and the reason when it cannot. */
  static async start(spec: string, routes: OpsRoutes): Promise<OpsServer> {
    let ops: OpsServer | null = null;
    const server = limitedServer((req, res) => ops?.handle(req, res));
    const address = await listenOn(server, spec, 9153, 'metrics.listen');
    ops = new OpsServer(spec, server, address, routes);
    return ops;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      res.setHeader('connection', 'close');
      return json(res, 405, { error: 'GET or HEAD only' }, false);
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/metrics':
        this.routes.metrics().then(
          (text) => send(res, 200, METRICS_CONTENT_TYPE, text, head),
          (err: unknown) => json(res, 500, { error: `metrics failed: ${(err as Error).message}` }, head),
        );
        return;
      case '/healthz':
        return json(
          res,
          200,
          { status: 'alive', pid: process.pid, uptimeSeconds: Math.round((Date.now() - this.#started) / 1000) },
          head,
        );
      case '/readyz': {
        const r = this.routes.readiness();
        return json(res, r.ready ? 200 : 503, r, head);
      }
      case '/hit-report': {
        const get = this.routes.hitReport;
        if (get === undefined) break;
        const report = get();
        if (report === null) return json(res, 404, { error: 'no hit report window has ended yet' }, head);
        return json(res, 200, report, head);
      }
      default:
        break;
    }
    json(res, 404, { error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] }, head);
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }
}
