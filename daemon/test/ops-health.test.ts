// /healthz and /readyz over HTTP, flipping with the list state (a real list sync and mirror) and the upstream
// state (a real upstream that stops answering), as main.ts wires them.
import { join } from 'node:path';

import { generateListKey } from '@hashwall/format';
import t from 'tap';

import { createLogger } from '../dist/util/log.js';
import { readiness } from '../dist/ops/health.js';
import { Operations } from '../dist/ops/runtime.js';
import { startDaemon } from '../dist/daemon.js';
import { ManualClock } from '../dist/util/clock.js';
import { TYPE, query, udpAsk } from './helpers/client.ts';
import { until } from './helpers/daemon.ts';
import { httpGet, parseExposition } from './helpers/ops.ts';
import { TestUpstream } from './helpers/upstream.ts';
import { Clock, LogSink, ReleaseDir, fullOf, harness, settingsWith, tempDir, within } from './lists/helpers.ts';

interface ReadyBody {
  ready: boolean;
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
  t.equal(readiness(base).ready, true);
  t.match(readiness({ ...base, listening: false }), { ready: false, checks: { listening: { ok: false } } });
  t.match(readiness({ ...base, stopping: true }), { ready: false, checks: { listening: { reason: /stopping/ } } });
  const none = { ...base, lists: [{ id: 'demo', enforced: false }] };
  t.match(readiness({ ...none, starting: true }), { ready: false, checks: { lists: { reason: /wait/ } } });
  t.match(readiness({ ...none, refuseAll: true }), { ready: false, checks: { lists: { reason: /refuse/ } } });
  t.match(readiness(none), { ready: true, checks: { lists: { reason: /unfiltered/ } } }, 'the start policy is met');
  t.match(readiness({ ...base, lists: [] }), { ready: true, checks: { lists: { reason: /no lists/ } } });
  t.match(readiness({ ...base, upstreams: [{ name: '192.0.2.1:53', up: false }] }), {
    ready: false,
    checks: { upstreams: { ok: false, reason: /marked down/ } },
  });
  t.equal(
    readiness({
      ...base,
      upstreams: [
        { name: 'a', up: false },
        { name: 'b', up: true },
      ],
    }).ready,
    true,
    'one upstream up is enough',
  );
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
      upstream: { timeoutMs: 100, maxTries: 1, failureThreshold: 1, probeIntervalMs: 300 },
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

  await within(5000, h.registry.start());
  ops.listsStarted();
  const clock = new ManualClock();
  const daemon = await startDaemon(settings, {
    logger,
    lists: h.registry,
    events: ops.metrics,
    policyEvents: ops.metrics,
    clock,
  });
  t.teardown(() => within(5000, daemon.close(), 'daemon close'));
  await ops.attach(daemon);
  r = await ready();
  t.equal(r.status, 503, 'listening, but the list set to refuse has none yet');
  t.match(r.body.checks, { listening: { ok: true }, lists: { ok: false, reason: /refuse/ }, upstreams: { ok: true } });

  rel.publish(fullOf(listKey, 1, ['blocked.example']));
  t.equal(await within(5000, h.registry.pollNow('demo')), 'updated');
  r = await ready();
  t.equal(r.status, 200, 'ready once the list is in force');
  t.match(r.body, { ready: true, checks: { lists: { ok: true, reason: /demo/ } } });

  upstream.behaviour = 'silent';
  const unanswered = udpAsk(daemon.addresses.udp[0]!.port, query('a.example.test', TYPE.A), 5000);
  await until(() => upstream.queries.length === 1, 'the query upstream');
  clock.advance(100);
  await unanswered;
  r = await ready();
  t.equal(r.status, 503, 'not ready with every upstream marked down');
  t.match(r.body.checks.upstreams, { ok: false, reason: /marked down/ });
  const m = parseExposition((await httpGet(`${base}/metrics`)).body);
  t.equal(m.get('hashwall_ready'), 0, 'hashwall_ready says the same');

  upstream.behaviour = 'normal';
  clock.advance(300); // probeIntervalMs
  t.ok(await udpAsk(daemon.addresses.udp[0]!.port, query('a.example.test', TYPE.A), 1000), 'the probe query');
  r = await ready();
  t.equal(r.status, 200, 'ready again once the upstream answers');

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

t.test('a taken metrics address fails clearly', async (t) => {
  const logger = createLogger({ level: 'error' }, new LogSink());
  const root = tempDir(t, 'hw-ops-health-');
  const settings = settingsWith(join(root, 'state'), [], { metrics: { listen: '127.0.0.1:0' } });
  const h = harness(t, settings, new Clock());
  const first = await Operations.start(settings, { logger, lists: h.registry });
  t.teardown(() => first.close());
  const taken = settingsWith(join(root, 'state'), [], {
    metrics: { listen: `127.0.0.1:${first.metricsAddress!.port}` },
  });
  await t.rejects(Operations.start(taken, { logger, lists: h.registry }), {
    code: 'LISTEN_FAILED',
    key: 'metrics.listen',
    message: /^metrics\.listen: 127\.0\.0\.1:\d+: address in use/,
  });
});
