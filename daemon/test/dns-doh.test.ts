/**
 * DNS over HTTPS (RFC 8484) against a real HTTP/2 and HTTP/1.1 server on 127.0.0.1 with certificates the test
 * makes: GET and POST, the ID 0 convention, Cache-Control from the answer's TTLs, padding, the clear 4xx on
 * malformed requests, the body, URI and header caps, and the access list and rate limit by the client's address.
 */
import { execFile } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { promisify } from 'node:util';

import t, { type Test } from 'tap';

import { ManualClock } from '../dist/util/clock.js';
import { TYPE, decode, idOf, optOf, query, rcodeOf } from './helpers/client.ts';
import { startTestDaemon, until, type TestDaemon, type TestDaemonOptions } from './helpers/daemon.ts';
import { DohClient, TLS_NAME, makePki, pem, type DohAnswer, type TestPki } from './helpers/tls.ts';

const run = promisify(execFile);
const pki: TestPki = await makePki();
t.teardown(() => pki.remove());

async function daemon(t: Test, o: TestDaemonOptions = {}): Promise<TestDaemon & { doh: number }> {
  const c = o.config ?? {};
  const config = {
    ...c,
    doh: { listen: ['127.0.0.1:0'], ...(c.doh as object) },
    tls: { certFile: pki.leaf.cert, keyFile: pki.leaf.key },
  };
  const d = await startTestDaemon({ ...o, config });
  t.teardown(() => d.close());
  return Object.assign(d, { doh: d.daemon.addresses.doh[0]!.port });
}

async function h2(t: Test, port: number): Promise<DohClient> {
  const c = await DohClient.connect(port, pki.ca);
  t.teardown(() => c.close());
  return c;
}

/** One HTTP/1.1 request over TLS (ALPN http/1.1). */
function http1(
  port: number,
  method: string,
  path: string,
  o: { headers?: Record<string, string>; body?: Buffer } = {},
): Promise<DohAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca: pem(pki.ca),
        servername: TLS_NAME,
        headers: o.headers,
        agent: false,
        timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: { ...res.headers, ':version': res.httpVersion },
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

const edeOf = (m: Buffer): number[] =>
  (optOf(m)?.options ?? []).filter((o) => o.code === 15).map((o) => o.data.readUInt16BE(0));

t.test('GET and POST over HTTP/2: the ID 0 convention, application/dns-message, counted as doh', async (t) => {
  const d = await daemon(t);
  const c = await h2(t, d.doh);
  const q = query('a.example.test', TYPE.A, { id: 0 });
  const get = await c.get(q);
  t.equal(get.status, 200);
  t.equal(get.headers['content-type'], 'application/dns-message');
  t.equal(idOf(get.body), 0, 'ID 0 in, ID 0 out (RFC 8484 4.1)');
  t.same(
    decode(get.body).answers.map((r) => (r as { address?: string }).address),
    ['192.0.2.1'],
  );
  const post = await c.post(query('www.blocked.test', TYPE.A, { id: 0, edns: {} }));
  t.equal(post.status, 200, 'a block is a DNS answer: 200 (RFC 8484 4.2.1)');
  t.equal(rcodeOf(post.body), 3, 'NXDOMAIN');
  t.same(edeOf(post.body), [16], 'with EDE 16');
  const other = await c.post(query('a.example.test', TYPE.A, { id: 4242 }));
  t.equal(idOf(other.body), 4242, 'another ID is echoed as over any transport');
  t.equal(d.events.queries.doh, 3, 'counted under transport doh');
});

t.test('Cache-Control max-age is the answer lowest TTL (RFC 8484 5.1); a negative answer its SOA', async (t) => {
  const d = await daemon(t);
  const c = await h2(t, d.doh);
  const chain = await c.get(query('alias.example.test', TYPE.A, { id: 0 }));
  t.equal(chain.headers['cache-control'], 'max-age=100', 'CNAME 300, CNAME 200, A 100: 100');
  const block = await c.get(query('www.blocked.test', TYPE.A, { id: 0 }));
  t.equal(block.headers['cache-control'], 'max-age=300', 'NXDOMAIN: min(SOA TTL, MINIMUM) = blocking.ttlSeconds');
  const nodata = await c.get(query('a.example.test', TYPE.MX, { id: 0 }));
  t.equal(nodata.headers['cache-control'], 'max-age=30', 'NODATA from upstream: SOA TTL 60, MINIMUM 30');
  d.upstreams[0]!.behaviour = 'servfail';
  const fail = await c.get(query('fail.example.test', TYPE.A, { id: 0 }));
  t.equal(rcodeOf(fail.body), 2);
  t.equal(fail.headers['cache-control'], 'max-age=0', 'SERVFAIL: not to be cached');
});

t.test('DoH answers to EDNS queries are padded to 468-octet blocks; others are not', async (t) => {
  const d = await daemon(t);
  const c = await h2(t, d.doh);
  const padded = await c.post(query('a.example.test', TYPE.A, { id: 0, edns: {} }));
  t.equal(padded.body.length % 468, 0);
  t.equal(padded.headers['content-length'], String(padded.body.length));
  t.ok(optOf(padded.body)!.options.some((o) => o.code === 12));
  const plain = await c.post(query('a.example.test', TYPE.A, { id: 0 }));
  t.equal(optOf(plain.body), null, 'no EDNS: no OPT, no padding');
});

t.test('GET: the dns parameter is found among others, not by a name that only ends in dns', async (t) => {
  const d = await daemon(t);
  const c = await h2(t, d.doh);
  const q = query('a.example.test', TYPE.A, { id: 0 }).toString('base64url');
  for (const search of [`ct=application/dns-message&dns=${q}`, `xdns=AAAA&dns=${q}&z=1`, `dns=${q}&dns=AAAA`]) {
    const a = await c.request('GET', `/dns-query?${search}`);
    t.equal(a.status, 200, search);
    t.equal(rcodeOf(a.body), 0);
  }
  t.equal((await c.request('GET', `/dns-query?xdns=${q}`)).status, 400, 'xdns= is not dns=');
  t.equal((await c.request('GET', `/dns-query?a=1&dns=`)).status, 400, 'an empty dns=');
});

t.test('malformed requests get a clear 4xx before the query path sees them', async (t) => {
  const d = await daemon(t, { config: { doh: { maxQueryBytes: 512 } } });
  const c = await h2(t, d.doh);
  const q = query('a.example.test', TYPE.A, { id: 0 });
  const cases: [string, Promise<DohAnswer>, number][] = [
    ['another path', c.request('GET', `/other?dns=${q.toString('base64url')}`), 404],
    ['PUT', c.request('PUT', '/dns-query', { body: q }), 405],
    ['DELETE', c.request('DELETE', '/dns-query'), 405],
    ['GET without dns=', c.request('GET', '/dns-query?ct=application/dns-message'), 400],
    ['GET, dns= not base64url', c.request('GET', '/dns-query?dns=a+b/c'), 400],
    ['GET, dns= with padding', c.request('GET', `/dns-query?dns=${q.toString('base64')}`), 400],
    ['GET, dns= of 5 octets', c.request('GET', `/dns-query?dns=${Buffer.alloc(5).toString('base64url')}`), 400],
    ['GET, dns= over maxQueryBytes', c.get(Buffer.concat([q, Buffer.alloc(600)])), 414],
    ['GET, a URI far too long', c.request('GET', `/dns-query?dns=${'A'.repeat(4000)}`), 414],
    [
      'POST, wrong Content-Type',
      c.request('POST', '/dns-query', { headers: { 'content-type': 'application/json' }, body: q }),
      415,
    ],
    ['POST, no Content-Type', c.request('POST', '/dns-query', { body: q }), 415],
    [
      'POST, a body over maxQueryBytes',
      c.request('POST', '/dns-query', {
        headers: { 'content-type': 'application/dns-message' },
        body: Buffer.alloc(2000),
      }),
      413,
    ],
    [
      'POST, an empty body',
      c.request('POST', '/dns-query', { headers: { 'content-type': 'application/dns-message' } }),
      400,
    ],
  ];
  for (const [what, answer, status] of cases) t.equal((await answer).status, status, `${what}: ${status}`);
  const allowed = await c.request('PUT', '/dns-query', { body: q });
  t.equal(allowed.headers.allow, 'GET, POST', '405 says which methods');
  t.equal(d.events.queries.doh, 0, 'none of them reached the query path');
  t.equal(d.daemon.inFlight(), 0, 'nothing left in flight');
  const response = Buffer.from(q);
  response[2]! |= 0x80;
  t.equal((await c.get(response)).status, 400, 'a DNS response: dropped by the query path, 400');
  t.equal(d.events.byRcode.get(-1), 1, 'counted there as dropped');
  const good = await c.get(q);
  t.equal(good.status, 200, 'the session still serves');
});

t.test('a POST body streamed past maxQueryBytes without Content-Length gets 413', async (t) => {
  const d = await daemon(t, { config: { doh: { maxQueryBytes: 512 } } });
  const c = await h2(t, d.doh);
  const res = await new Promise<number>((resolve, reject) => {
    const req = c.session.request({
      ':method': 'POST',
      ':path': '/dns-query',
      'content-type': 'application/dns-message',
    });
    req.on('response', (h) => resolve(Number(h[':status'])));
    req.on('error', reject);
    for (let i = 0; i < 4; i++) req.write(Buffer.alloc(200));
    req.end();
  });
  t.equal(res, 413);
});

t.test('a POST body that trickles past tcp.frameTimeoutMs gets 408; the session serves on', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, { clock, config: { tcp: { frameTimeoutMs: 2000 } } });
  const c = await h2(t, d.doh);
  const q = query('a.example.test', TYPE.A, { id: 0 });
  const before = clock.pending;
  const status = new Promise<number>((resolve, reject) => {
    const req = c.session.request({
      ':method': 'POST',
      ':path': '/dns-query',
      'content-type': 'application/dns-message',
      'content-length': String(q.length),
    });
    req.on('response', (h) => resolve(Number(h[':status'])));
    req.on('error', reject);
    req.write(q.subarray(0, 5)); // and the rest never comes
  });
  await until(() => clock.pending > before, 'the request reaches the daemon and its body deadline is set');
  clock.advance(1999);
  t.equal(clock.pending, before + 1, 'the body deadline has not run before its time');
  clock.advance(1);
  t.equal(clock.pending, before, 'it runs at tcp.frameTimeoutMs');
  t.equal(await status, 408, 'the body did not arrive in time');
  const a = await c.post(q);
  t.equal(a.status, 200, 'the same session is served on');
  t.equal(rcodeOf(a.body), 0);
});

t.test('header blocks over doh.maxHeaderBytes get 431, over HTTP/2 (curl) and HTTP/1.1', async (t) => {
  const d = await daemon(t, { config: { doh: { maxHeaderBytes: 2048 } } });
  const c = await h2(t, d.doh);
  t.equal(c.session.remoteSettings.maxHeaderListSize, 2048, 'advertised as SETTINGS_MAX_HEADER_LIST_SIZE');
  const q = query('a.example.test', TYPE.A, { id: 0 });
  const url = `https://127.0.0.1:${d.doh}/dns-query?dns=${q.toString('base64url')}`;
  const filler = `x-filler: ${'y'.repeat(4000)}`;
  // curl sends the block whatever the setting says (node's client would hold it back): the server's own check.
  const { stdout } = await run(
    'curl',
    ['-s', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--http2', '--cacert', pki.ca, '-H', filler, url],
    { timeout: 10000 },
  );
  t.equal(stdout, '431 2', 'HTTP/2: 431');
  const h1big = await http1(d.doh, 'GET', `/dns-query?dns=${q.toString('base64url')}`, {
    headers: { 'x-filler': 'y'.repeat(4000) },
  });
  t.equal(h1big.status, 431, 'HTTP/1.1: 431');
  t.equal((await c.get(q)).status, 200, 'a request within the cap is served');
});

t.test('HTTP/1.1 (ALPN http/1.1) serves GET and POST as HTTP/2 does; doh.http1: false refuses it', async (t) => {
  const d = await daemon(t);
  const q = query('a.example.test', TYPE.A, { id: 0 });
  const get = await http1(d.doh, 'GET', `/dns-query?dns=${q.toString('base64url')}`);
  t.equal(get.status, 200);
  t.equal(get.headers[':version'], '1.1');
  t.equal(rcodeOf(get.body), 0);
  const post = await http1(d.doh, 'POST', '/dns-query', {
    headers: { 'content-type': 'application/dns-message' },
    body: query('www.blocked.test', TYPE.A, { id: 0 }),
  });
  t.equal(rcodeOf(post.body), 3);
  t.equal((await http1(d.doh, 'POST', '/dns-query', { body: q })).status, 415);
  const only2 = await daemon(t, { config: { doh: { http1: false } } });
  t.equal(
    (await http1(only2.doh, 'GET', `/dns-query?dns=${q.toString('base64url')}`)).status,
    403,
    'no HTTP/1.1: node:http2 answers 403 and closes',
  );
  t.equal((await (await h2(t, only2.doh)).get(q)).status, 200, 'HTTP/2 still is');
});

t.test(
  'the access list closes a connection from outside it when accepted; the UDP rate limit does not apply',
  async (t) => {
    const closed = await daemon(t, { config: { access: { allow: ['10.0.0.0/8'] } } });
    await t.rejects(DohClient.connect(closed.doh, pki.ca), 'closed before any TLS handshake');
    t.equal(closed.events.connectionsRefused.acl, 1, 'counted as a refused connection');
    t.equal(closed.events.queries.doh, 0, 'nothing reached the query path');
    // A clock that never moves: the bucket never refills, so a UDP client's third query would be over the rate.
    const limited = await daemon(t, {
      clock: new ManualClock(),
      config: { access: { rateLimitQps: 1, rateLimitBurst: 2 } },
    });
    const c = await h2(t, limited.doh);
    const rcodes: number[] = [];
    for (let i = 0; i < 3; i++) rcodes.push(rcodeOf((await c.get(query('a.example.test', TYPE.A, { id: 0 }))).body));
    t.same(rcodes, [0, 0, 0], 'every query answered: a DoH client cannot be spoofed (stream.ts caps what it holds)');
    t.equal(limited.events.rateLimitedQueries.doh, 0);
    t.equal(limited.events.connectionsOpen, 1, 'one connection open');
  },
);

t.test('many streams at once on one session, within tcp.maxInFlightPerConnection', async (t) => {
  const d = await daemon(t, { config: { tcp: { maxInFlightPerConnection: 10 } } });
  const c = await h2(t, d.doh);
  const answers = await Promise.all(
    Array.from({ length: 40 }, (_, i) => c.get(query(`n${i}.example.test`, TYPE.A, { id: 0 }))),
  );
  t.same(
    answers.map((a) => a.status),
    answers.map(() => 200),
    'forty requests, forty answers (at most ten streams at once: the client holds the rest back)',
  );
  t.equal(c.session.remoteSettings.maxConcurrentStreams, 10, 'SETTINGS_MAX_CONCURRENT_STREAMS');
});

t.test('close() drains DoH: a request in flight is answered, new ones are not taken', async (t) => {
  const clock = new ManualClock();
  const d = await startTestDaemon({
    clock,
    config: {
      doh: { listen: ['127.0.0.1:0'] },
      tls: { certFile: pki.leaf.cert, keyFile: pki.leaf.key },
      shutdown: { drainTimeoutMs: 5000 },
    },
  });
  d.upstreams[0]!.byName.set('slow.example.test', 'silent');
  const c = await DohClient.connect(d.daemon.addresses.doh[0]!.port, pki.ca);
  t.teardown(() => c.close());
  const pending = c.get(query('slow.example.test', TYPE.A, { id: 0 }));
  const started = performance.now();
  while (d.daemon.inFlight() === 0 && performance.now() - started < 5000) await new Promise((r) => setTimeout(r, 2));
  const closing = d.close();
  clock.advance(1000);
  const a = await pending;
  t.equal(a.status, 200, 'answered while draining');
  t.equal(rcodeOf(a.body), 2, 'SERVFAIL: its upstream never answered');
  await closing;
});
