/**
 * The witness's HTTP listener: `POST /add-checkpoint` (tlog-witness, submission prefix) and
 * `GET /<origin hash>/checkpoint` (tlog-witness "Monitor Retrieval Mechanism"), both at the root. Every request
 * has caps (headers, body: 413 past `maxBodyBytes`, whatever Content-Length says) and deadlines; one JSON log line
 * per add-checkpoint says what happened (never the client's address).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Config, HostPort } from './config.js';
import type { Logger } from './log.js';
import type { Reply, Witness } from './witness.js';

/**
 * node:http's createServer from its CommonJS exports, not an ES-module import, which reads every export of the
 * module and so, under Node 24, the getters (WebSocket, CloseEvent, MessageEvent) that load Node's bundled undici,
 * which the witness never uses: 4 MiB of anonymous memory (witness/README.md, "Memory"; the daemon's util/http.ts
 * does the same). eslint.config.js refuses the import.
 */
const { createServer } = process.getBuiltinModule('node:http');

export type Limits = Config['limits'];

export interface RunningServer {
  readonly address: AddressInfo;
  /** Stops accepting, lets requests in flight finish for up to `drainMs`, then closes every connection. */
  close(drainMs: number): Promise<void>;
}

class TooLarge extends Error {}

/** Reads a request body, refusing (TooLarge) more than `max` bytes as they arrive. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const announced = Number(req.headers['content-length'] ?? 0);
    if (announced > max) {
      reject(new TooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > max) {
        req.removeAllListeners('data');
        reject(new TooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, total)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, type: string, body: string | Uint8Array, head = false): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('content-length', typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  res.end(head ? undefined : body);
}

const CHECKPOINT_PATH = /^\/([0-9a-f]{64})\/checkpoint$/;

export async function startServer(
  witness: Witness,
  listen: HostPort,
  limits: Limits,
  logger: Logger,
): Promise<RunningServer> {
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const done = (): void => {
    inFlight--;
    if (inFlight === 0) drained?.();
  };

  const addCheckpoint = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let body: Buffer;
    try {
      body = await readBody(req, limits.maxBodyBytes);
    } catch (err) {
      if (err instanceof TooLarge) {
        // A lingering close: the rest of the body is read and dropped, and the connection closed once it is in.
        // Closed with unread octets in its buffer, the socket would be reset, and the reset can reach the client
        // before the 413 does (the client is still sending). requestTimeoutMs bounds how long that may take.
        send(res, 413, 'text/plain; charset=utf-8', `request body over ${limits.maxBodyBytes} bytes\n`);
        const socket = req.socket;
        if (req.complete) socket.end();
        else req.once('end', () => socket.end());
        req.resume();
        logger.info({ status: 413, outcome: 'too-large' }, 'add-checkpoint refused');
        return;
      }
      throw err;
    }
    let reply: Reply;
    try {
      reply = await witness.addCheckpoint(body);
    } catch (err) {
      logger.error({ err }, 'add-checkpoint failed: the checkpoint could not be stored (check the state directory)');
      send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      return;
    }
    send(res, reply.status, reply.contentType, reply.body);
    const fields = {
      status: reply.status,
      outcome: reply.outcome,
      origin: reply.origin,
      oldSize: reply.oldSize,
      size: reply.size,
      ...(reply.evidence ? { evidence: reply.evidence } : {}),
    };
    if (reply.outcome === 'fork' || reply.evidence) {
      logger.error(
        fields,
        'add-checkpoint refused: the log signed a checkpoint that contradicts the one cosigned; evidence kept',
      );
    } else if (reply.status === 200) {
      logger.info(fields, 'add-checkpoint cosigned');
    } else {
      logger.info(fields, 'add-checkpoint refused');
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    inFlight++;
    res.on('close', done);
    const path = (req.url ?? '/').split('?')[0]!;
    const run = async (): Promise<void> => {
      if (path === '/add-checkpoint') {
        if (req.method !== 'POST') {
          res.setHeader('allow', 'POST');
          send(res, 405, 'text/plain; charset=utf-8', 'POST only\n');
          return;
        }
        await addCheckpoint(req, res);
        return;
      }
      const m = CHECKPOINT_PATH.exec(path);
      if (m !== null) {
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.setHeader('allow', 'GET, HEAD');
          send(res, 405, 'text/plain; charset=utf-8', 'GET only\n');
          return;
        }
        const note = witness.checkpointByHash(m[1]!);
        res.setHeader('cache-control', 'no-cache');
        if (note === undefined)
          send(res, 404, 'text/plain; charset=utf-8', 'no checkpoint cosigned for this log\n', req.method === 'HEAD');
        else send(res, 200, 'text/plain; charset=utf-8', note, req.method === 'HEAD');
        return;
      }
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    };
    run().catch((err: unknown) => {
      logger.error({ err }, 'request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  };

  const server: Server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      requestTimeout: limits.requestTimeoutMs,
      // Node checks the two deadlines only this often (30 s by default): a slow client would hold a socket that long.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 2))),
    },
    handler,
  );
  server.headersTimeout = limits.headersTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  server.maxRequestsPerSocket = 1000;
  // A request the parser refuses gets its status and the connection closed; nothing is logged per connection.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (err.code === 'ECONNRESET' && !socket.destroyed)) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    setTimeout(() => socket.destroy(), 1000).unref();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listen.host, port: listen.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    address: server.address() as AddressInfo,
    close: (drainMs: number) =>
      new Promise<void>((resolve) => {
        server.close();
        server.closeIdleConnections();
        const finish = (): void => {
          clearTimeout(timer);
          server.closeAllConnections();
          resolve();
        };
        const timer = setTimeout(finish, drainMs);
        if (inFlight === 0) finish();
        else drained = finish;
      }),
  };
}
