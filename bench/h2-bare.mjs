// The HTTP/2 layer alone, without DNS: a server that answers every request with a fixed 468-octet body (a padded
// DoH answer's size), on hashwalld's own layer (daemon/dist/dns/h2/) or on node:http2, under h2load (-c 1 -m 200)
// pinned to the other core; prints the server's CPU per request. Run it under the measurement lock:
//
//   npm run build && flock -x /tmp/hashwall-measure.lock node bench/h2-bare.mjs [requests]
//
// Each server runs in a child process (`node bench/h2-bare.mjs --serve h2|node`) on CPU 0, with the flags the bench
// gives hashwalld; it reports its own CPU (process.cpuUsage) before and after the measured load, so the warm-up
// load and the start are not counted.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createServer } from 'node:tls';

import { makeTls } from './lib/tls.mjs';

const BODY_BYTES = 468;
const HEADERS = {
  'content-type': 'application/dns-message',
  'content-length': BODY_BYTES,
  'cache-control': 'max-age=300',
};

async function serve(kind, dir) {
  const cert = readFileSync(join(dir, 'bench.pem'));
  const key = readFileSync(join(dir, 'bench.key'));
  const body = Buffer.alloc(BODY_BYTES, 1);
  let n = 0;
  let server;
  if (kind === 'node') {
    server = createSecureServer({ cert, key, settings: { maxConcurrentStreams: 100 } });
    server.on('stream', (s) => {
      n++;
      s.respond({ ':status': 200, ...HEADERS });
      s.end(body);
    });
  } else {
    const { H2Connection, RESPONSE_RESERVE } = await import('../daemon/dist/dns/h2/connection.js');
    const clock = { now: () => performance.now(), setTimeout, clearTimeout };
    const host = {
      request(stream) {
        n++;
        const out = Buffer.allocUnsafe(RESPONSE_RESERVE + BODY_BYTES);
        body.copy(out, RESPONSE_RESERVE);
        stream.respond(200, HEADERS, out, false, RESPONSE_RESERVE);
      },
      timedOut() {},
      deadline: () => () => {},
      clock,
    };
    const settings = { maxConcurrentStreams: 100, maxHeaderListBytes: 4096, idleTimeoutMs: 60_000 };
    server = createServer({ cert, key, ALPNProtocols: ['h2'] }, (s) => new H2Connection(s, host, settings));
  }
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
  createInterface({ input: process.stdin }).on('line', () => {
    const u = process.cpuUsage();
    console.log(JSON.stringify({ n, cpuUs: u.user + u.system }));
  });
}

async function measure(kind, dir, requests) {
  const child = spawn(
    'taskset',
    [
      '-c',
      '0',
      process.execPath,
      '--max-semi-space-size=4',
      '--single-threaded-gc',
      import.meta.filename,
      '--serve',
      kind,
      dir,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value);
  const { port } = await next();
  const url = `https://127.0.0.1:${port}/dns-query?dns=AAABAAABAAAAAAAAAWEHZXhhbXBsZQR0ZXN0AAABAAE`;
  const load = (n) => execFileSync('taskset', ['-c', '1', 'h2load', '-n', String(n), '-c', '1', '-m', '200', url]);
  load(Math.min(20_000, requests));
  child.stdin.write('\n');
  const before = await next();
  const out = load(requests).toString();
  child.stdin.write('\n');
  const after = await next();
  child.kill();
  await once(child, 'exit');
  const rate = /finished in [^,]+, ([\d.]+) req\/s/.exec(out)?.[1];
  const us = (after.cpuUs - before.cpuUs) / (after.n - before.n);
  console.log(
    `${kind.padEnd(5)} ${after.n - before.n} requests at ${rate} req/s: ${us.toFixed(2)} µs of server CPU each`,
  );
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3], process.argv[4]);
} else {
  const requests = Number(process.argv[2] ?? 300_000);
  const dir = mkdtempSync(join(tmpdir(), 'h2-bare-'));
  try {
    makeTls(dir);
    for (const kind of ['h2', 'node', 'h2', 'node']) await measure(kind, dir, requests);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
