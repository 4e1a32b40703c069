/**
 * Upstream failures: timeouts, garbage, wrong IDs and questions, SERVFAIL, TC with a dead TCP side, health and
 * failover, serve-stale. Timeouts are short (200 ms a try, 2 tries) so the suite stays fast.
 */
import t, { type Test } from 'tap';

import { TYPE, decode, idOf, optOf, query, rcodeOf, ttlsOf, udpAsk } from './helpers/client.ts';
import { startTestDaemon, type TestDaemon, type TestDaemonOptions } from './helpers/daemon.ts';

async function daemon(t: Test, o: TestDaemonOptions = {}): Promise<TestDaemon> {
  const d = await startTestDaemon(o);
  t.teardown(() => d.close());
  return d;
}

async function timed(
  d: TestDaemon,
  name: string,
  o: Parameters<typeof query>[2] = {},
): Promise<{ a: Buffer; ms: number }> {
  const started = performance.now();
  const a = await udpAsk(d.port, query(name, TYPE.A, o), 3000);
  if (a === null) throw new Error('no answer');
  return { a, ms: performance.now() - started };
}

t.test('an upstream that times out: the next one answers', async (t) => {
  const d = await daemon(t, { upstreams: 2 });
  d.upstreams[0]!.behaviour = 'silent';
  const { a, ms } = await timed(d, 'a.example.test');
  t.equal(decode(a).answers[0]?.address, '192.0.2.1');
  t.ok(ms >= 180, `after the first try's timeout (${ms.toFixed(0)} ms)`);
  t.equal(d.events.upstreamErrors('timeout'), 1);
});

for (const behaviour of ['garbage', 'wrong-id', 'wrong-question', 'bad-pointer'] as const) {
  t.test(`an upstream answering ${behaviour}: dropped, and the next upstream answers`, async (t) => {
    const d = await daemon(t, { upstreams: 2 });
    d.upstreams[0]!.behaviour = behaviour;
    const { a } = await timed(d, 'a.example.test');
    t.equal(rcodeOf(a), 0);
    t.equal(decode(a).answers[0]?.address, '192.0.2.1', 'the good answer, never the bad one');
    const kind = behaviour === 'wrong-id' ? 'unexpected' : 'malformed';
    t.ok(d.events.upstreamErrors(kind) >= 1, `counted as ${kind}`);
  });

  t.test(`only an upstream answering ${behaviour}: SERVFAIL once the tries are spent`, async (t) => {
    const d = await daemon(t);
    d.upstreams[0]!.behaviour = behaviour;
    const { a, ms } = await timed(d, 'a.example.test', { id: 4321 });
    t.equal(rcodeOf(a), 2);
    t.equal(idOf(a), 4321);
    t.ok(ms >= 380 && ms < 1500, `two tries of 200 ms (${ms.toFixed(0)} ms)`);
    t.equal(d.upstreams[0]!.queries.length, 2);
    t.equal(d.daemon.cacheSize(), 0, 'nothing cached');
    // The daemon still works.
    d.upstreams[0]!.behaviour = 'normal';
    t.equal(rcodeOf((await timed(d, 'a.example.test')).a), 0);
  });
}

t.test('an upstream SERVFAIL moves to the next upstream; the last one is relayed', async (t) => {
  const two = await daemon(t, { upstreams: 2 });
  two.upstreams[0]!.behaviour = 'servfail';
  const { a, ms } = await timed(two, 'a.example.test');
  t.equal(rcodeOf(a), 0);
  t.ok(ms < 150, 'without waiting for a timeout');
  t.equal(two.events.upstreamErrors('rcode'), 1);
  const one = await daemon(t, { config: { upstream: { maxTries: 3 } } });
  one.upstreams[0]!.behaviour = 'servfail';
  t.equal(rcodeOf((await timed(one, 'a.example.test')).a), 2);
  t.equal(one.upstreams[0]!.queries.length, 1, 'not asked again: there is no other upstream');
  t.equal(one.events.upstreams.get(one.upstreams[0]!.address)?.downs, 0, 'a SERVFAIL is not a health failure');
});

t.test('TC from upstream and a TCP side that never answers: the TCP deadline, then SERVFAIL', async (t) => {
  const d = await daemon(t, { config: { upstream: { maxTries: 1, tcpTimeoutMs: 300 } } });
  d.upstreams[0]!.behaviour = 'tc-silent-tcp';
  const { a, ms } = await timed(d, 'a.example.test');
  t.equal(rcodeOf(a), 2);
  t.ok(ms >= 280 && ms < 1500, `bounded by upstream.tcpTimeoutMs (${ms.toFixed(0)} ms)`);
});

t.test('a failing upstream is marked down, skipped, and probed again later', async (t) => {
  const d = await daemon(t, {
    upstreams: 2,
    config: { upstream: { failureThreshold: 2, probeIntervalMs: 400, timeoutMs: 200 } },
  });
  const [first, second] = d.upstreams as [(typeof d.upstreams)[0], (typeof d.upstreams)[0]];
  first.behaviour = 'silent';
  await timed(d, 'a.example.test');
  await timed(d, 'mx.example.test');
  const counts = d.events.upstreams.get(first.address)!;
  t.equal(counts.downs, 1, 'down after failureThreshold failures');
  const { ms } = await timed(d, 'txt.example.test');
  t.ok(ms < 150, `skipped while down (${ms.toFixed(0)} ms)`);
  t.equal(first.queries.length, 2);
  first.behaviour = 'normal';
  await new Promise((r) => setTimeout(r, 450));
  await timed(d, 'long.example.test');
  t.equal(first.queries.length, 3, 'probed after probeIntervalMs');
  t.equal(counts.ups, 1, 'and up again');
  await timed(d, 'short.example.test');
  t.equal(first.queries.length, 4, 'first in order again');
  t.ok(second.queries.length >= 3);
  t.ok(
    d.logs.some((l) => l.level === 'warn' && String(l.msg).includes('marked down')),
    'the operator is told',
  );
});

t.test('every upstream down: still tried (the least recently failed), SERVFAIL when silent', async (t) => {
  const d = await daemon(t, { config: { upstream: { failureThreshold: 1, probeIntervalMs: 60000, maxTries: 1 } } });
  d.upstreams[0]!.behaviour = 'silent';
  t.equal(rcodeOf((await timed(d, 'a.example.test')).a), 2);
  d.upstreams[0]!.behaviour = 'normal';
  t.equal(rcodeOf((await timed(d, 'a.example.test')).a), 0, 'answers as soon as it is back');
});

t.test('serve-stale: an expired answer is served (TTL 30, EDE 3) when every upstream fails', async (t) => {
  const d = await daemon(t, { config: { cache: { maxTtlSeconds: 1 } } });
  const fresh = (await timed(d, 'a.example.test', { edns: {} })).a;
  t.same(ttlsOf(fresh), [1]);
  d.upstreams[0]!.behaviour = 'silent';
  await new Promise((r) => setTimeout(r, 1100));
  const { a, ms } = await timed(d, 'a.example.test', { edns: {} });
  t.equal(rcodeOf(a), 0);
  t.equal(decode(a).answers[0]?.address, '192.0.2.1');
  t.same(ttlsOf(a), [30], 'staleAnswerTtlSeconds');
  t.ok(
    optOf(a)?.options.some((o) => o.code === 15 && o.data.readUInt16BE(0) === 3),
    'RFC 8914 EDE 3 Stale Answer',
  );
  t.ok(ms >= 380, 'only after the tries failed');
  t.equal(d.events.stale, 1);
  const plain = (await timed(d, 'a.example.test')).a;
  t.same(ttlsOf(plain), [30], 'and to a client without EDNS');
  t.equal(optOf(plain), null);
  t.equal(d.events.upstreams.get(d.upstreams[0]!.address)?.downs, 1, 'four timeouts: the upstream is down');
  const quick = await timed(d, 'a.example.test');
  t.same(ttlsOf(quick.a), [30]);
  t.ok(quick.ms < 100, `while every upstream is down, at once (${quick.ms.toFixed(0)} ms, RFC 8767 5)`);
  d.upstreams[0]!.behaviour = 'normal';
  await new Promise((r) => setTimeout(r, 1050)); // probeIntervalMs
  t.same(ttlsOf((await timed(d, 'a.example.test')).a), [1], 'fresh again once a probe finds the upstream back');
});

t.test('serve-stale off, or past staleMaxAgeSeconds: SERVFAIL', async (t) => {
  const off = await daemon(t, { config: { cache: { maxTtlSeconds: 1, serveStale: false } } });
  await timed(off, 'a.example.test');
  off.upstreams[0]!.behaviour = 'silent';
  await new Promise((r) => setTimeout(r, 1100));
  t.equal(rcodeOf((await timed(off, 'a.example.test')).a), 2);
  const window = await daemon(t, { config: { cache: { maxTtlSeconds: 1, staleMaxAgeSeconds: 0 } } });
  await timed(window, 'a.example.test');
  window.upstreams[0]!.behaviour = 'silent';
  await new Promise((r) => setTimeout(r, 1100));
  t.equal(rcodeOf((await timed(window, 'a.example.test')).a), 2);
});

t.test('an upstream over IPv6', async (t) => {
  const { TestUpstream } = await import('./helpers/upstream.ts');
  const up = await TestUpstream.start({ host: '::1' });
  t.teardown(() => up.close());
  const d = await daemon(t, { upstreams: 0, config: { upstreams: [up.address] } });
  t.equal(decode((await timed(d, 'a.example.test')).a).answers[0]?.address, '192.0.2.1');
});
