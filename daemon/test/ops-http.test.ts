// The limits of the daemon's HTTP listeners (metrics, health, the stop page): a client that trickles its headers is
// closed at the header deadline, not at Node's next 30 s connection check.
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

import t from 'tap';

import { closeServer, limitedServer } from '../dist/ops/http.js';
import { within } from './lists/helpers.ts';

t.test('a client that never finishes its headers is closed at the header deadline', async (t) => {
  const server = limitedServer(
    (_req, res) => {
      res.end('ok');
    },
    { headersTimeoutMs: 400, requestTimeoutMs: 800 },
  );
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => closeServer(server));
  const { port } = server.address() as AddressInfo;

  const started = performance.now();
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write('GET /metrics HTTP/1.1\r\nHost: a.example\r\n');
  // One more header line every 100 ms: each is progress, none finishes the request.
  const trickle = setInterval(() => socket.write('X-Slow: 1\r\n'), 100);
  t.teardown(() => clearInterval(trickle));
  await within(closed, 'the server closing the connection');
  clearInterval(trickle);
  const elapsed = performance.now() - started;
  // With Node's default check interval the connection would live until the first check after the deadline: up to
  // 30 s. The bound is far above the 0.4 s deadline plus a 0.2 s check, so a busy machine does not break it.
  t.ok(elapsed < 15_000, `closed after ${Math.round(elapsed)} ms, not at a 30 s connection check`);

  const ok = await fetch(`http://127.0.0.1:${port}/`);
  t.equal(await ok.text(), 'ok', 'a client that sends its request is served');
});
