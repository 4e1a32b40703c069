/**
 * Upstream failures: timeouts, garbage, wrong IDs and questions, SERVFAIL, TC with a dead TCP side, health and
 * failover, serve-stale. The tries' deadlines, the cache's lifetimes and the probe interval run on a ManualClock
 * the tests move (200 ms a try, 2 tries): what happens before and after a deadline is checked by event order, never
 * by how long the machine took.
 */
import t, { type Test } from 'tap';

import { ManualClock } from '../dist/util/clock.js';
import { TYPE, decode, idOf, optOf, query, rcodeOf, ttlsOf, udpAsk } from './helpers/client.ts';
import { startTestDaemon, until, type TestDaemon, type TestDaemonOptions } from './helpers/daemon.ts';
import type { TestUpstream } from './helpers/upstream.ts';

async function daemon(t: Test, o: TestDaemonOptions = {}): Promise<TestDaemon> {
  const d = await startTestDaemon(o);
  t.teardown(() => d.close());
  return d;
}

async function ask(d: TestDaemon, name: string, o: Parameters<typeof query>[2] = {}): Promise<Buffer> {
  const a = await udpAsk(d.port, query(name, TYPE.A, o), 5000);
  if (a === null) throw new Error('no answer');
  return a;
}

/**
 * Sends a query; resolves once `up` has received `n` queries in all (the daemon's try is out), with the answer to
 * come: the daemon waits on its clock from there.
 */
async function sent(
  d: TestDaemon,
  up: TestUpstream,
  n: number,
  name: string,
  o: Parameters<typeof query>[2] = {},
): Promise<{ answer: Promise<Buffer> }> {
  const answer = ask(d, name, o);
  await until(() => up.queries.length >= n, `query ${n} upstream`);
  return { answer };
}

t.test('an upstream that times out: the next one answers', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, { upstreams: 2, clock });
  const [first, second] = d.upstreams as [TestUpstream, TestUpstream];
  first.behaviour = 'silent';
  const { answer } = await sent(d, first, 1, 'a.example.test');
  clock.advance(199);
  t.equal(second.queries.length, 0, 'the next upstream is not asked before the timeout');
  clock.advance(1);
  const a = await answer;
  t.equal(decode(a).answers[0]?.address, '192.0.2.1');
  t.equal(second.queries.length, 1, "after the first try's timeout");
  t.equal(d.events.upstreamErrors('timeout'), 1);
});

for (const behaviour of ['garbage', 'wrong-id', 'wrong-question', 'bad-pointer'] as const) {
  t.test(`an upstream answering ${behaviour}: dropped, and the next upstream answers`, async (t) => {
    const clock = new ManualClock();
    const d = await daemon(t, { upstreams: 2, clock });
    d.upstreams[0]!.behaviour = behaviour;
    const kind = behaviour === 'wrong-id' ? 'unexpected' : 'malformed';
    const { answer } = await sent(d, d.upstreams[0]!, 1, 'a.example.test');
    await until(() => d.events.upstreamErrors(kind) >= 1, `counted as ${kind}`);
    t.equal(d.upstreams[1]!.queries.length, 0, 'the try goes on waiting');
    clock.advance(200);
    const a = await answer;
    t.equal(rcodeOf(a), 0);
    t.equal(decode(a).answers[0]?.address, '192.0.2.1', 'the good answer, never the bad one');
    t.ok(d.events.upstreamErrors(kind) >= 1, `counted as ${kind}`);
  });

  t.test(`only an upstream answering ${behaviour}: SERVFAIL once the tries are spent`, async (t) => {
    const clock = new ManualClock();
    const d = await daemon(t, { clock });
    const up = d.upstreams[0]!;
    up.behaviour = behaviour;
    const kind = behaviour === 'wrong-id' ? 'unexpected' : 'malformed';
    const { answer } = await sent(d, up, 1, 'a.example.test', { id: 4321 });
    await until(() => d.events.upstreamErrors(kind) >= 1, `the first bad answer counted as ${kind}`);
    t.equal(d.daemon.inFlight(), 1, 'a bad answer does not end the try: its timeout does');
    clock.advance(200);
    await until(() => up.queries.length === 2, 'the second try');
    await until(() => d.events.upstreamErrors(kind) >= 2, 'the second bad answer counted');
    t.equal(d.daemon.inFlight(), 1, 'nor the second try');
    clock.advance(200);
    const a = await answer;
    t.equal(rcodeOf(a), 2);
    t.equal(idOf(a), 4321);
    t.equal(d.events.upstreamErrors('timeout'), 2, 'two tries of 200 ms');
    t.equal(up.queries.length, 2);
    t.equal(d.daemon.cacheSize(), 0, 'nothing cached');
    // The daemon still works.
    up.behaviour = 'normal';
    t.equal(rcodeOf(await ask(d, 'a.example.test')), 0);
  });
}

t.test('an upstream SERVFAIL moves to the next upstream; the last one is relayed', async (t) => {
  // The clock never moves: an answer at all is one that did not wait for a timeout.
  const two = await daemon(t, { upstreams: 2, clock: new ManualClock() });
  two.upstreams[0]!.behaviour = 'servfail';
  const a = await ask(two, 'a.example.test');
  t.equal(rcodeOf(a), 0, 'without waiting for a timeout');
  t.equal(two.events.upstreamErrors('timeout'), 0);
  t.equal(two.events.upstreamErrors('rcode'), 1);
  const one = await daemon(t, { config: { upstream: { maxTries: 3 } }, clock: new ManualClock() });
  one.upstreams[0]!.behaviour = 'servfail';
  t.equal(rcodeOf(await ask(one, 'a.example.test')), 2);
  t.equal(one.upstreams[0]!.queries.length, 1, 'not asked again: there is no other upstream');
  t.equal(one.events.upstreams.get(one.upstreams[0]!.address)?.downs, 0, 'a SERVFAIL is not a health failure');
});

t.test('TC from upstream and a TCP side that never answers: the TCP deadline, then SERVFAIL', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, { clock, config: { upstream: { maxTries: 1, tcpTimeoutMs: 300 } } });
  const up = d.upstreams[0]!;
  up.behaviour = 'tc-silent-tcp';
  const { answer } = await sent(d, up, 2, 'a.example.test');
  t.equal(up.queries[1]?.transport, 'tcp', 'asked again over TCP');
  clock.advance(299);
  t.equal(d.daemon.inFlight(), 1, 'waiting on the TCP try');
  clock.advance(1);
  t.equal(rcodeOf(await answer), 2, 'bounded by upstream.tcpTimeoutMs');
  t.equal(d.events.upstreamErrors('timeout'), 1);
});

t.test('a failing upstream is marked down after distinct names fail, skipped, and probed back up', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, {
    upstreams: 2,
    clock,
    config: {
      upstream: { failureThreshold: 2, recoveryThreshold: 2, timeoutMs: 200, probe: { intervalMs: 1000 } },
    },
  });
  const t0 = clock.now();
  const [first, second] = d.upstreams as [TestUpstream, TestUpstream];
  first.behaviour = 'silent';
  // One name twice (another type, another case): its tries count once.
  for (const [i, [name, type]] of (
    [
      ['a.example.test', TYPE.A],
      ['A.Example.Test', TYPE.AAAA],
    ] as const
  ).entries()) {
    const answer = udpAsk(d.port, query(name, type), 5000);
    await until(() => first.queries.length === i + 1, `query ${i + 1} upstream`);
    clock.advance(200);
    t.ok(await answer, `${name} answered by the second upstream`);
  }
  const counts = d.events.upstreams.get(first.address)!;
  t.equal(counts.downs, 0, 'one name that is never answered does not mark the upstream down');
  const { answer } = await sent(d, first, 3, 'mx.example.test');
  clock.advance(200);
  await answer;
  t.equal(counts.downs, 1, 'down once failureThreshold distinct names failed');
  await ask(d, 'txt.example.test');
  t.equal(d.events.upstreamErrors('timeout'), 3, 'skipped while down: answered with no timeout');
  t.equal(first.queries.length, 3);
  first.behaviour = 'normal';
  clock.advance(t0 + 999 - clock.now());
  t.equal(first.queries.length, 3, 'no probe before probe.intervalMs');
  clock.advance(1);
  await until(() => first.queries.length === 4, 'the first probe');
  t.match(first.queries[3], { name: '', type: 2 }, 'the probe question: . NS');
  await until(() => d.events.upstreams.get(first.address)!.answers === 1, 'the probe answered');
  await ask(d, 'aaaa.example.test');
  t.equal(first.queries.length, 4, 'one good probe is not enough (recoveryThreshold 2): still skipped');
  t.equal(counts.ups, 0);
  clock.advance(1000);
  await until(() => counts.ups === 1, 'up after the second good probe');
  await ask(d, 'short.example.test');
  t.equal(first.queries.length, 6, 'first in order again');
  t.ok(second.queries.length >= 3);
  t.ok(
    d.logs.some((l) => l.level === 'warn' && String(l.msg).includes('marked down')),
    'the operator is told',
  );
});

t.test('every upstream down: still tried (the least recently failed), SERVFAIL when silent', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, {
    clock,
    config: { upstream: { failureThreshold: 1, maxTries: 1 } },
  });
  const up = d.upstreams[0]!;
  up.behaviour = 'silent';
  const { answer } = await sent(d, up, 1, 'a.example.test');
  clock.advance(200);
  t.equal(rcodeOf(await answer), 2);
  t.equal(d.events.upstreams.get(up.address)?.downs, 1, 'down');
  up.behaviour = 'normal';
  t.equal(rcodeOf(await ask(d, 'a.example.test')), 0, 'answers as soon as it is back');
  t.equal(up.queries.length, 2, 'tried though down');
  t.equal(rcodeOf(await ask(d, 'mx.example.test')), 0);
  t.equal(d.events.upstreams.get(up.address)?.ups, 1, 'up again after recoveryThreshold good answers');
});

t.test('serve-stale: an expired answer is served (TTL 30, EDE 3) when every upstream fails', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, {
    clock,
    config: { cache: { maxTtlSeconds: 1 }, upstream: { recoveryThreshold: 1, probe: { intervalMs: 5000 } } },
  });
  const t0 = clock.now();
  const up = d.upstreams[0]!;
  const fresh = await ask(d, 'a.example.test', { edns: {} });
  t.same(ttlsOf(fresh), [1]);
  up.behaviour = 'silent';
  clock.advance(1000);
  const { answer } = await sent(d, up, 2, 'a.example.test', { edns: {} });
  clock.advance(200);
  await until(() => up.queries.length === 3, 'the second try');
  t.equal(d.daemon.inFlight(), 1, 'not served stale while a try may still answer');
  clock.advance(200);
  const a = await answer;
  t.equal(rcodeOf(a), 0);
  t.equal(decode(a).answers[0]?.address, '192.0.2.1');
  t.same(ttlsOf(a), [30], 'staleAnswerTtlSeconds');
  t.ok(
    optOf(a)?.options.some((o) => o.code === 15 && o.data.readUInt16BE(0) === 3),
    'RFC 8914 EDE 3 Stale Answer',
  );
  t.equal(d.events.upstreamErrors('timeout'), 2, 'only after the tries failed');
  t.equal(d.events.stale, 1);
  const next = await sent(d, up, 4, 'a.example.test');
  clock.advance(200);
  await until(() => up.queries.length === 5, 'the second try');
  clock.advance(200);
  const plain = await next.answer;
  t.same(ttlsOf(plain), [30], 'and to a client without EDNS');
  t.equal(optOf(plain), null);
  t.equal(d.events.upstreams.get(up.address)?.downs, 0, 'four timeouts of one name: not down');
  for (const [i, name] of ['mx.example.test', 'txt.example.test'].entries()) {
    const other = await sent(d, up, 6 + 2 * i, name);
    clock.advance(200);
    await until(() => up.queries.length === 7 + 2 * i, 'the second try');
    clock.advance(200);
    t.equal(rcodeOf(await other.answer), 2, `${name}, with nothing cached: SERVFAIL`);
  }
  t.equal(d.events.upstreams.get(up.address)?.downs, 1, 'a third distinct name failed: the upstream is down');
  const quick = await ask(d, 'a.example.test');
  t.same(ttlsOf(quick), [30]);
  t.equal(up.queries.length, 9, 'while every upstream is down, at once: no try (RFC 8767 5)');
  up.behaviour = 'normal';
  clock.advance(t0 + 5000 - clock.now()); // to the first probe (probe.intervalMs), not past its try's deadline
  await until(() => d.events.upstreams.get(up.address)?.ups === 1, 'a probe finds the upstream back');
  t.same(ttlsOf(await ask(d, 'a.example.test')), [1], 'fresh again');
});

t.test('serve-stale off, or past staleMaxAgeSeconds: SERVFAIL', async (t) => {
  for (const cache of [
    { maxTtlSeconds: 1, serveStale: false },
    { maxTtlSeconds: 1, staleMaxAgeSeconds: 0 },
  ]) {
    const clock = new ManualClock();
    const d = await daemon(t, { clock, config: { cache } });
    const up = d.upstreams[0]!;
    await ask(d, 'a.example.test');
    up.behaviour = 'silent';
    clock.advance(1000);
    const { answer } = await sent(d, up, 2, 'a.example.test');
    clock.advance(200);
    await until(() => up.queries.length === 3, 'the second try');
    clock.advance(200);
    t.equal(rcodeOf(await answer), 2, JSON.stringify(cache));
    t.equal(d.events.stale, 0);
  }
});

t.test('an upstream over IPv6', async (t) => {
  const { TestUpstream } = await import('./helpers/upstream.ts');
  const up = await TestUpstream.start({ host: '::1' });
  t.teardown(() => up.close());
  const d = await daemon(t, { upstreams: 0, config: { upstreams: [up.address] } });
  t.equal(decode(await ask(d, 'a.example.test')).answers[0]?.address, '192.0.2.1');
});
