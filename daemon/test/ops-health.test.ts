// /healthz and /readyz over HTTP, flipping with the list state (a real list sync and mirror) and the upstream
// state (a real upstream that stops answering), as main.ts wires them.
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { generateListKey } from '@hashwall/format';
import t, { type Test } from 'tap';

import { settingsFrom, type Settings } from '../dist/config/load.js';
import { StaticListProvider } from '../dist/lists/static.js';
import { createLogger } from '../dist/util/log.js';
import { readiness } from '../dist/ops/health.js';
import { Operations } from '../dist/ops/runtime.js';
import { startDaemon } from '../dist/daemon.js';
import { ManualClock } from '../dist/util/clock.js';
import { TYPE, query, rcodeOf, udpAsk } from './helpers/client.ts';
import { until } from './helpers/daemon.ts';
import { httpGet, parseExposition } from './helpers/ops.ts';
import { TestUpstream } from './helpers/upstream.ts';
import { Clock, LogSink, ReleaseDir, fullOf, harness, settingsWith, tempDir, within } from './lists/helpers.ts';

interface ReadyBody {
  ready: boolean;
  status: 'ready' | 'degraded' | 'not-ready';
  checks: Record<'listening' | 'lists' | 'upstreams', { ok: boolean; reason: string }>;
}

t.test('readiness says why, check by check', async (t) => {
  const base = {
    listening: true,
    starting: false,
    lists: [{ id: 'demo', enforced: true }],
    refuseAll: false,
    upstreams: [{ name: '192.0.2.1:53', up: true }],
  };
  t.match(readiness(base), { ready: true, status: 'ready', lists: [{ id: 'demo', inForce: true, required: false }] });
  t.match(readiness({ ...base, listening: false }), {
    ready: false,
    status: 'not-ready',
    checks: { listening: { ok: false } },
  });
  t.match(readiness({ ...base, stopping: true }), { ready: false, checks: { listening: { reason: /stopping/ } } });
  const none = { ...base, lists: [{ id: 'demo', enforced: false }] };
  t.match(readiness({ ...none, starting: true }), { ready: false, checks: { lists: { reason: /wait/ } } });
  t.match(readiness({ ...none, refuseAll: true }), { ready: false, checks: { lists: { reason: /refuse/ } } });
  t.match(
    readiness(none),
    { ready: true, status: 'degraded', checks: { lists: { degraded: true, reason: /unfiltered/ } } },
    'the start policy is met: ready, and it says what is missing',
  );
  t.match(readiness({ ...base, lists: [] }), { ready: true, checks: { lists: { reason: /no lists/ } } });
  t.match(readiness({ ...base, upstreams: [{ name: '192.0.2.1:53', up: false }] }), {
    ready: false,
    checks: { upstreams: { ok: false, reason: /marked down/ } },
  });
  t.match(
    readiness({
      ...base,
      upstreams: [
        { name: 'a', up: false },
        { name: 'b', up: true },
      ],
    }),
    { ready: true, status: 'degraded', checks: { upstreams: { ok: true, degraded: true, reason: /marked down: a/ } } },
    'one upstream up is enough',
  );
  t.match(
    readiness({ ...base, upstreams: [{ name: '192.0.2.1:53', up: false }], staleServable: true }),
    { ready: true, status: 'degraded', checks: { upstreams: { ok: true, reason: /stale/ } } },
    'every upstream down, but stale answers can be served: ready, and degraded',
  );
});

t.test('readiness.requireLists: a missing list makes the node not ready only when required', async (t) => {
  const base = {
    listening: true,
    starting: false,
    lists: [
      { id: 'iwf', enforced: true },
      { id: 'other', enforced: false },
    ],
    refuseAll: false,
    upstreams: [{ name: '192.0.2.1:53', up: true }],
  };
  t.match(readiness(base), {
    ready: true,
    status: 'degraded',
    checks: { lists: { ok: true, reason: /not in force: other/ } },
    lists: [
      { id: 'iwf', inForce: true, required: false },
      { id: 'other', inForce: false, required: false },
    ],
  });
  t.match(readiness({ ...base, requireLists: 'all' }), {
    ready: false,
    status: 'not-ready',
    checks: { lists: { ok: false, reason: /not in force: other, which readiness.requireLists requires/ } },
    lists: [{ required: true }, { required: true }],
  });
  t.match(readiness({ ...base, requireLists: ['other'] }), { ready: false, lists: [{ required: false }, {}] });
  t.match(readiness({ ...base, requireLists: ['iwf'] }), { ready: true, status: 'degraded' });
  t.match(readiness({ ...base, lists: [{ id: 'iwf', enforced: true }], requireLists: 'all' }), {
    ready: true,
    status: 'ready',
    checks: { lists: { reason: /every configured list/ } },
  });
});

t.test('/readyz flips with the list state and the upstream state', async (t) => {
  const root = tempDir(t, 'hw-ops-health-');
  const listKey = generateListKey('demo-2026a');
  const rel = new ReleaseDir(join(root, 'release'));
  const upstream = await TestUpstream.start();
  t.teardown(() => upstream.close());
  const settings = settingsWith(
    join(root, 'state'),
    [{ mirrors: [rel.url], keys: [rel.key], listKey, onStartWithoutList: 'refuse' }],
    {
      listen: ['127.0.0.1:0'],
      upstreams: [upstream.address],
      upstream: {
        timeoutMs: 100,
        maxTries: 1,
        failureThreshold: 2,
        recoveryThreshold: 1,
        probe: { intervalMs: 1000 },
      },
      cache: { serveStale: false },
      metrics: { listen: '127.0.0.1:0', processMetrics: false },
      shutdown: { drainTimeoutMs: 200 },
    },
  );
  const h = harness(t, settings, new Clock());
  const logger = createLogger({ level: 'error' }, new LogSink());
  const ops = await Operations.start(settings, { logger, lists: h.registry });
  t.teardown(() => ops.close());
  const base = `http://127.0.0.1:${ops.metricsAddress!.port}`;
  const ready = async (): Promise<{ status: number; body: ReadyBody }> => {
    const r = await httpGet(`${base}/readyz`);
    t.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    return { status: r.status, body: JSON.parse(r.body) as ReadyBody };
  };

  t.match(await httpGet(`${base}/healthz`), { status: 200, body: /"status":"alive"/ }, 'alive before the lists');
  let r = await ready();
  t.equal(r.status, 503, 'not ready before the DNS listeners are open');
  t.match(r.body.checks.listening, { ok: false });

  await within(h.registry.start());
  ops.listsStarted();
  const clock = new ManualClock();
  const daemon = await startDaemon(settings, {
    logger,
    lists: h.registry,
    events: ops.metrics,
    policyEvents: ops.metrics,
    clock,
  });
  t.teardown(() => within(daemon.close(), 'daemon close'));
  await ops.attach(daemon);
  r = await ready();
  t.equal(r.status, 503, 'listening, but the list set to refuse has none yet');
  t.match(r.body.checks, { listening: { ok: true }, lists: { ok: false, reason: /refuse/ }, upstreams: { ok: true } });

  // start() polled at once and found nothing; a poll asked for while that round runs joins it (sync.ts), so wait
  // for it to end before publishing (a busy machine can still be in it here).
  await until(() => h.registry.stats()[0]?.consecutiveFailures === 1, 'the first poll, with nothing published');
  rel.publish(fullOf(listKey, 1, ['blocked.example']));
  t.equal(
    await within(h.registry.pollNow('demo')),
    'updated',
    `updated, not ${JSON.stringify(h.of('rejected').at(-1))}`,
  );
  r = await ready();
  t.equal(r.status, 200, 'ready once the list is in force');
  t.match(r.body, { ready: true, checks: { lists: { ok: true, reason: /demo/ } } });

  // One name the upstream never answers: SERVFAIL for it, and the node stays ready.
  upstream.byName.set('drop.example.test', 'silent');
  const t0 = clock.now();
  const unanswered = udpAsk(daemon.addresses.udp[0]!.port, query('drop.example.test', TYPE.A), 5000);
  await until(() => upstream.queries.length === 1, 'the query upstream');
  clock.advance(100);
  t.equal(rcodeOf((await unanswered)!), 2, 'SERVFAIL for the name never answered');
  t.equal((await ready()).status, 200, 'one unanswered name leaves /readyz at 200');
  t.ok(await udpAsk(daemon.addresses.udp[0]!.port, query('a.example.test', TYPE.A), 1000), 'other names answer');

  // The upstream dies, and no client asks anything: the probes find it, then find it back.
  upstream.behaviour = 'silent';
  for (const [i, at] of [1000, 2000].entries()) {
    clock.advance(t0 + at - clock.now());
    await until(() => upstream.queries.length === 3 + i, `probe ${i + 1}`);
    clock.advance(100);
  }
  r = await ready();
  t.equal(r.status, 503, 'not ready with every upstream marked down and no stale answer to give');
  t.match(r.body.checks.upstreams, { ok: false, reason: /marked down/ });
  const m = parseExposition((await httpGet(`${base}/metrics`)).body);
  t.equal(m.get('hashwall_ready'), 0, 'hashwall_ready says the same');

  upstream.behaviour = 'normal';
  clock.advance(t0 + 3000 - clock.now());
  await until(() => upstream.queries.length === 5, 'probe 3');
  await until(() => daemon.upstreamHealth()[0]!.up, 'the probe answered');
  r = await ready();
  t.equal(r.status, 200, 'ready again once a probe finds the upstream back, with no client traffic');
  t.equal(upstream.queries.length, 5, 'only probes were sent');

  ops.stopping();
  r = await ready();
  t.equal(r.status, 503, 'not ready while stopping');
  t.match(r.body.checks.listening, { reason: /stopping/ });

  t.match(await httpGet(`${base}/nope`), { status: 404 });
  t.match(await httpGet(`${base}/metrics`, { method: 'POST' }), { status: 405 });
  t.match(await httpGet(`${base}/hit-report`), { status: 404 }, 'no hit report endpoint unless configured');
  const head = await httpGet(`${base}/readyz`, { method: 'HEAD' });
  t.equal(head.body, '', 'HEAD has no body');
});

interface OpsAt {
  /** Operations started with the metrics listener at `listen`, closed with the test. */
  ops: Operations;
  /** The same settings with the listener at `listen` (for a reload). */
  settingsAt: (listen: string) => Settings;
  /** Starts another Operations over the same lists with the listener at `listen`. */
  opsAt: (listen: string) => Promise<Operations>;
}

/** Operations with no lists and the metrics listener at `listen`. */
async function opsListening(t: Test, listen: string): Promise<OpsAt> {
  const logger = createLogger({ level: 'error' }, new LogSink());
  const root = tempDir(t, 'hw-ops-health-');
  const settingsAt = (l: string): Settings => settingsWith(join(root, 'state'), [], { metrics: { listen: l } });
  const h = harness(t, settingsAt(listen), new Clock());
  const opsAt = (l: string): Promise<Operations> => Operations.start(settingsAt(l), { logger, lists: h.registry });
  const ops = await opsAt(listen);
  t.teardown(() => ops.close());
  return { ops, settingsAt, opsAt };
}

t.test('a taken metrics address fails clearly', async (t) => {
  const { ops: first, opsAt } = await opsListening(t, '127.0.0.1:0');
  await t.rejects(opsAt(`127.0.0.1:${first.metricsAddress!.port}`), {
    code: 'LISTEN_FAILED',
    key: 'metrics.listen',
    message: /^metrics\.listen: 127\.0\.0\.1:\d+: address in use/,
  });
});

t.test(
  'process metrics start with a metrics listener, not before: none without one, all once a reload opens it',
  async (t) => {
    // processMetrics is true by default: without a listener nothing could read them, so their collectors (a
    // PerformanceEntry made for every garbage collection, an event-loop delay monitor) are not started.
    const { ops, settingsAt } = await opsListening(t, '');
    t.equal(ops.metricsAddress, null, 'no listener');
    const names = async (): Promise<string[]> => (await ops.metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    t.notOk((await names()).includes('nodejs_gc_duration_seconds'), 'no GC observer without a listener');
    t.notOk((await names()).includes('process_start_time_seconds'), 'no process metrics without a listener');
    t.ok((await names()).includes('hashwall_build_info'), "the daemon's own metrics are there");
    await ops.reload(settingsAt('127.0.0.1:0'));
    const text = (await httpGet(`http://127.0.0.1:${ops.metricsAddress!.port}/metrics`)).body;
    for (const name of ['process_start_time_seconds', 'nodejs_gc_duration_seconds', 'nodejs_eventloop_lag_seconds'])
      t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} once the listener is open`);
    // A second reload keeps them (registered once).
    await ops.reload(settingsAt('127.0.0.1:0'));
    t.equal((await names()).filter((n) => n === 'process_start_time_seconds').length, 1, 'registered once');
  },
);

t.test('every upstream down while the cache can answer stale: /readyz 200, degraded, and says so', async (t) => {
  const upstream = await TestUpstream.start();
  t.teardown(() => upstream.close());
  const settings = settingsFrom(
    {
      listen: ['127.0.0.1:0'],
      upstreams: [upstream.address],
      upstream: { timeoutMs: 100, maxTries: 1, failureThreshold: 1, probe: { intervalMs: 3_600_000 } },
      cache: { maxTtlSeconds: 1 },
      metrics: { listen: '127.0.0.1:0', processMetrics: false },
      shutdown: { drainTimeoutMs: 200 },
    },
    tmpdir(),
  );
  const logger = createLogger({ level: 'error' }, new LogSink());
  const matchers = new StaticListProvider([]);
  const lists = { stats: () => [], view: () => matchers.view(), on: matchers.on.bind(matchers) };
  const ops = await Operations.start(settings, { logger, lists });
  t.teardown(() => ops.close());
  ops.listsStarted();
  const clock = new ManualClock();
  const daemon = await startDaemon(settings, { logger, lists: matchers, events: ops.metrics, clock });
  t.teardown(() => within(daemon.close(), 'daemon close'));
  await ops.attach(daemon);
  const port = daemon.addresses.udp[0]!.port;
  const base = `http://127.0.0.1:${ops.metricsAddress!.port}`;

  t.ok(await udpAsk(port, query('a.example.test', TYPE.A), 1000), 'an answer in the cache');
  upstream.behaviour = 'silent';
  clock.advance(1000);
  const failing = udpAsk(port, query('mx.example.test', TYPE.A), 5000);
  await until(() => upstream.queries.length === 2, 'the query upstream');
  clock.advance(100);
  t.equal(rcodeOf((await failing)!), 2);
  t.same(daemon.upstreamHealth(), [{ name: upstream.address, up: false }], 'the upstream is down');
  const r = await httpGet(`${base}/readyz`);
  t.equal(r.status, 200, 'still ready: stale answers can be served');
  t.match(JSON.parse(r.body), {
    ready: true,
    status: 'degraded',
    checks: { upstreams: { ok: true, degraded: true, reason: /every upstream is marked down.*stale/ } },
  });
  const stale = await udpAsk(port, query('a.example.test', TYPE.A), 1000);
  t.equal(stale && rcodeOf(stale), 0, 'and they are');
});
