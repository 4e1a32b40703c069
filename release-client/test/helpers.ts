/** Shared by the release-client tests: a real HTTP server on 127.0.0.1 whose routes the tests set. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Serves `routes` (by exact request URL, 404 otherwise) under `http://127.0.0.1:<port>/rel/`. */
export async function server(routes: Record<string, Handler>): Promise<{ url: string; close: () => Promise<void> }> {
  const srv = createServer((req, res) => {
    const h = routes[req.url ?? ''];
    if (h) h(req, res);
    else {
      res.statusCode = 404;
      res.end('not here');
    }
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/rel/`,
    close: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}
