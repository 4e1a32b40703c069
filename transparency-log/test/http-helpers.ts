// A real HTTP server on 127.0.0.1 (port 0) for the tlog tests: serves a map of files, or answers as a test says.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Test } from 'tap';

/** Starts a server that runs `handle` for every request; closed when the test ends. Returns its base URL. */
export async function serve(
  t: Test,
  handle: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void | Promise<void>,
): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      Promise.resolve(handle(req, Buffer.concat(chunks), res)).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** Serves `files` (path under the root, without a leading slash) as static files: 404 for anything else. */
export function serveFiles(t: Test, files: ReadonlyMap<string, Uint8Array>): Promise<string> {
  return serve(t, (req, _body, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).slice(1);
    const f = files.get(path);
    if (f === undefined) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    res.setHeader('content-type', 'application/octet-stream');
    res.end(f);
  });
}
