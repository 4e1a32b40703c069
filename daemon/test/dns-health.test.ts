/**
 * Upstream health (dns/health.ts): the state machine on its own, the rate-bounded log lines, and the daemon with a
 * real upstream on 127.0.0.1 that loses some answers, every try's deadline and every probe driven by a ManualClock:
 * what is checked is the order of events, never how long the machine took.
 */
import t from 'tap';

import { CountingEvents } from '../dist/dns/events.js';
import { HealthMonitor, LOG_INTERVAL_MS, UpstreamHealth, nameKey, probeQuery } from '../dist/dns/health.js';
import { Q_OK, ParsedQuery, parseQuery } from '../dist/dns/wire.js';
import { ManualClock } from '../dist/util/clock.js';
import { createLogger } from '../dist/util/log.js';
import { TYPE, query, udpAsk } from './helpers/client.ts';
import { captureLogs, startTestDaemon, until, type TestDaemon } from './helpers/daemon.ts';

const settings = { failureThreshold: 3, recoveryThreshold: 2 };

t.test('down only after tries of distinct questions failed, each sent after the last good answer', async (t) => {
  const h = new UpstreamHealth(settings);
  for (let i = 0; i < 10; i++) t.equal(h.failure('never.example.test.', 800 + i * 300, 1000 + i * 300), false);
  t.equal(h.up, true, 'one name failing again and again does not mark it down');
  t.equal(h.failure('b.', 3800, 4000), false);
  t.equal(h.failure('c.', 3800, 4000), true, 'a third distinct name, and nothing answered since it was sent: down');
  t.equal(h.up, false);

  const lossy = new UpstreamHealth(settings);
  lossy.success(1000);
  t.equal(lossy.failure('a.', 900, 1100), false);
  t.equal(lossy.failure('b.', 950, 1150), false);
  t.equal(lossy.failure('c.', 1000, 1200), false, 'three names failed, all sent before it last answered: up');
  t.equal(lossy.failure('d.', 1001, 1201), false, 'one sent after');
  t.equal(lossy.failure('e.', 1002, 1202), false, 'two');
  t.equal(lossy.failure('f.', 1003, 1203), true, 'three tries sent after its last answer failed: down');

  const answering = new UpstreamHealth(settings);
  for (let i = 0; i < 100; i++) {
    answering.failure(`n${i}.`, 800 + i * 10, 1000 + i * 10);
    answering.success(1000 + i * 10 + 5);
  }
  t.equal(answering.up, true, 'a failure, then an answer, a hundred times: up');

  const burst = new UpstreamHealth(settings);
  burst.success(1000);
  for (const k of ['a.', 'b.', 'c.', 'd.']) t.equal(burst.failure(k, 1000, 1200), false);
  t.equal(burst.up, true, 'tries sent when the last answers came: the traffic stopped, the upstream did not');
});

t.test('up again after recoveryThreshold good answers in a row', async (t) => {
  const h = new UpstreamHealth(settings);
  h.failure('a.', 300, 500);
  h.failure('b.', 300, 500);
  t.equal(h.failure('c.', 300, 500), true);
  t.equal(h.success(600), false, 'one good answer is not enough');
  t.equal(h.failure('probe:1', 650, 700), false);
  t.equal(h.success(800), false, 'a failure started the count again');
  t.equal(h.success(900), true, 'two in a row');
  t.equal(h.up, true);
  t.equal(h.lastFailureMs, 700);
});

t.test("a question's key is its name, folded to lower case, whatever its type", async (t) => {
  const a = query('WWW.Example.TEST', TYPE.A);
  const aaaa = query('www.example.test', TYPE.AAAA);
  t.equal(nameKey(a, a.length - 4), 'www.example.test.');
  t.equal(nameKey(aaaa, aaaa.length - 4), nameKey(a, a.length - 4));
  t.equal(nameKey(probeQuery('.', 2), 13), '', 'the root');
});

t.test('the probe question is a well-formed query with an OPT', async (t) => {
  const q = new ParsedQuery();
  for (const [name, type] of [
    ['.', 2],
    ['a.example.test', 1],
    ['Example.TEST.', 6],
  ] as const) {
    const wire = probeQuery(name, type);
    t.equal(parseQuery(wire, q), Q_OK, `${name} parses`);
    t.equal(q.qtype, type);
    t.equal(q.qclass, 1);
    t.ok(q.rd, 'RD set');
    t.ok(q.edns, 'with an OPT');
    t.equal(q.ednsSize, 1232);
  }
  t.throws(() => probeQuery(`${'a'.repeat(64)}.test`, 1), RangeError);
});

t.test('state changes are all counted, but logged at most once a minute per upstream, then summed up', async (t) => {
  const clock = new ManualClock();
  const logs = captureLogs();
  const events = new CountingEvents();
  const upstreams = [{ name: '192.0.2.1:53', health: new UpstreamHealth(settings) }];
  const monitor = new HealthMonitor(upstreams, {
    intervalMs: 3_600_000,
    clock,
    log: createLogger({ level: 'info' }, logs.stream),
    events,
    probe: () => undefined,
  });
  t.teardown(() => monitor.stop());
  for (let i = 0; i < 50; i++) {
    upstreams[0]!.health.up = i % 2 === 1;
    monitor.changed(0, i % 2 === 1);
    clock.advance(100);
  }
  await new Promise((r) => setImmediate(r));
  const counts = events.upstreams.get('192.0.2.1:53')!;
  t.equal(counts.downs + counts.ups, 50, 'every change counted');
  t.equal(logs.lines.length, 1, 'one line: the first change');
  t.match(logs.lines[0], { level: 'warn', upstream: '192.0.2.1:53', msg: /marked down/ });
  clock.advance(LOG_INTERVAL_MS - 5000);
  await new Promise((r) => setImmediate(r));
  t.equal(logs.lines.length, 2, 'and one at the end of the minute');
  t.match(logs.lines[1], { level: 'warn', upstream: '192.0.2.1:53', changes: 49, up: true });
  monitor.changed(0, false);
  await new Promise((r) => setImmediate(r));
  t.equal(logs.lines.length, 2, 'a change right after the summary waits for the next minute');
  clock.advance(LOG_INTERVAL_MS);
  await new Promise((r) => setImmediate(r));
  t.match(logs.lines[2], { changes: 1, up: true }, 'the summary says the state now');
  clock.advance(LOG_INTERVAL_MS);
  monitor.changed(0, false);
  await new Promise((r) => setImmediate(r));
  t.match(logs.lines[3], { level: 'warn', msg: /marked down/ }, 'after a quiet minute, a change is logged at once');
  t.equal(logs.lines.length, 4);
});

/** Names the test upstream's zone does not have: answered NXDOMAIN, never cached long enough to matter here. */
let unique = 0;
const fresh = (): string => `n${unique++}.loss.example.test`;

/** Waits until every try the pool sent has reached the upstream. */
async function reached(d: TestDaemon): Promise<void> {
  const up = d.upstreams[0]!;
  await until(() => up.queries.length === (d.events.upstreams.get(up.address)?.queries ?? 0), 'the tries are out');
}

/** And every answer it sent has been handled (it answers all but `dropped`). */
async function settled(d: TestDaemon): Promise<void> {
  const up = d.upstreams[0]!;
  await reached(d);
  await until(
    () => (d.events.upstreams.get(up.address)?.answers ?? 0) === up.queries.length - up.dropped,
    'its answers are handled',
  );
}

t.test(
  'an upstream that drops every third answer is never marked down; a dead one is, and probes bring it back with no traffic',
  async (t) => {
    const clock = new ManualClock();
    const d = await startTestDaemon({
      clock,
      config: {
        upstream: {
          timeoutMs: 200,
          maxTries: 1,
          failureThreshold: 3,
          recoveryThreshold: 2,
          probe: { intervalMs: 100 },
        },
        cache: { maxEntries: 0 },
      },
    });
    t.teardown(() => d.close());
    const up = d.upstreams[0]!;
    up.dropEvery = 3;
    const answers: Promise<Buffer | null>[] = [];
    // 40 rounds of 50 ms: 9 new names each (every third answer lost, so three at once), and a probe every 100 ms.
    // The lost ones time out together 200 ms later: three failures back to back, four rounds after they were sent.
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 9; i++) answers.push(udpAsk(d.port, query(fresh(), TYPE.A), 5000));
      await until(() => up.queries.length >= 9 * (round + 1), 'the round reaches the upstream');
      await settled(d);
      clock.advance(50);
      await settled(d);
    }
    clock.advance(200);
    await settled(d);
    const got = await Promise.all(answers);
    const counts = d.events.upstreams.get(up.address)!;
    t.ok(counts.errors.timeout >= 120, `${counts.errors.timeout} timeouts (a third of ${counts.queries} tries)`);
    const rcodes = got.map((a) => (a === null ? -1 : a[3]! & 15));
    const lost = rcodes.filter((r) => r === 2).length;
    t.equal(rcodes.filter((r) => r === 3).length + lost, 360, 'every query answered: NXDOMAIN, or SERVFAIL if lost');
    t.ok(lost >= 100 && lost <= 140, `about a third lost (${lost})`);
    t.equal(counts.downs + counts.ups, 0, 'no change of state at all');
    t.same(d.daemon.upstreamHealth(), [{ name: up.address, up: true }]);
    t.notOk(
      d.logs.some((l) => String(l.msg).includes('upstream')),
      'nothing logged about the upstream',
    );

    // Dead: the queries of a few rounds, then no traffic at all.
    up.dropEvery = 0;
    up.behaviour = 'silent';
    let before = up.queries.length;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 3; i++) void udpAsk(d.port, query(fresh(), TYPE.A), 5000);
      await until(() => up.queries.length >= before + 3 * (round + 1), 'the round reaches the upstream');
      await reached(d);
      clock.advance(50);
    }
    clock.advance(200);
    t.equal(counts.downs, 1, 'down once, when nothing answers');
    t.same(d.daemon.upstreamHealth(), [{ name: up.address, up: false }]);
    t.match(
      d.logs.filter((l) => l.level === 'warn'),
      [{ upstream: up.address, msg: /marked down/ }],
      'one warn line',
    );
    up.behaviour = 'normal';
    before = up.queries.length;
    const answered = counts.answers;
    for (let probe = 0; probe < 2; probe++) {
      clock.advance(100);
      await until(() => counts.answers === answered + probe + 1, 'a probe answered');
    }
    t.equal(counts.ups, 1, 'two good probes, no client query: up again');
    t.ok(
      up.queries.slice(before).every((q) => q.name === '' && q.type === 2),
      'only probes were sent',
    );
    t.same(d.daemon.upstreamHealth(), [{ name: up.address, up: true }]);
  },
);
