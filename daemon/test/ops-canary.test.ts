// The canary check through the daemon's own query path: it passes while the list in force blocks its canary,
// and fails (metric 0, an error line saying what to check) when the list drops it, when the allowlist covers it,
// and when no list is in force. Daemon.probe itself is not counted as a query.
import t from 'tap';

import { BLOCK } from '../dist/types/decision.js';
import { ManualClock } from '../dist/util/clock.js';
import { TYPE, query, udpAsk } from './helpers/client.ts';
import { httpGet, parseExposition, startStack, type Stack } from './helpers/ops.ts';
import { fullOf, within } from './lists/helpers.ts';

const CANARY = 'canary.hashwall.test';

async function canaryMetric(s: Stack): Promise<number | undefined> {
  return parseExposition((await httpGet(`${s.metricsBase}/metrics`)).body).get('hashwall_list_canary_ok{list="demo"}');
}

function canaryErrors(s: Stack): Record<string, unknown>[] {
  return s.log.lines.filter((l) => l.level === 'error' && /canary check failed/.test(String(l.msg)));
}

t.test('passes while the list blocks its canary, fails after an update that drops it', async (t) => {
  const s = await startStack(t, { names: ['blocked.test', CANARY], list: { canary: CANARY } });
  t.equal(await canaryMetric(s), 1, 'checked at start: blocked');
  t.same(canaryErrors(s), []);
  t.match(s.ops.checkCanaries(), [{ listId: 'demo', ok: true, reason: 'ok', blockedBy: 'demo' }]);

  s.rel.publish(fullOf(s.listKey, 2, ['blocked.test']));
  t.equal(await within(s.h.registry.pollNow('demo')), 'updated', 'serial 2 without the canary');
  t.equal(await canaryMetric(s), 0, 'checked after the update: failing');
  t.match(canaryErrors(s), [{ list: 'demo', reason: 'not-listed', rcode: 0, blockedBy: null }]);
  t.match(canaryErrors(s)[0]!.msg, /hash key/, 'the line says what to check');

  s.rel.publish(fullOf(s.listKey, 3, ['blocked.test', CANARY]));
  t.equal(await within(s.h.registry.pollNow('demo')), 'updated', 'serial 3 lists it again');
  t.equal(await canaryMetric(s), 1, 'passing again');
  t.ok(s.log.lines.some((l) => l.level === 'info' && l.msg === 'canary check passes again'));
  t.notMatch(s.log.raw.join('\n'), /canary\.hashwall\.test/, 'the canary name is not logged');
});

t.test('fails when the allowlist lets the canary through the query path', async (t) => {
  const s = await startStack(t, {
    names: ['blocked.test', CANARY],
    list: { canary: CANARY },
    top: { blocking: { allowlist: ['hashwall.test'] } },
  });
  t.equal(await canaryMetric(s), 0);
  t.match(canaryErrors(s), [{ list: 'demo', reason: 'not-blocked' }]);
  t.match(canaryErrors(s)[0]!.msg, /allowlist/);
});

t.test('fails while no list is in force', async (t) => {
  const s = await startStack(t, { names: [], list: { canary: CANARY }, publish: false });
  t.equal(await canaryMetric(s), 0);
  t.match(canaryErrors(s), [{ list: 'demo', reason: 'not-enforced' }]);
});

t.test('a probe goes through the query path but is no query', async (t) => {
  const wall = new ManualClock(Date.UTC(2026, 11, 6, 10, 30));
  const s = await startStack(t, {
    names: ['blocked.test'],
    top: { hitReport: { enabled: true, endpoint: true, minCount: 5, intervalSeconds: 3600 } },
    wallClock: wall,
  });
  const p = s.daemon.probe('www.blocked.test');
  t.equal(p.rcode, 3, 'NXDOMAIN, as a client would get');
  t.match(p.decision, { action: BLOCK, listId: 'demo', kind: 'D' });
  t.same(s.daemon.probe('a.example.test'), { rcode: 0, decision: null }, 'a name no list blocks: the local answer');
  t.equal(s.upstream.queries.length, 0, 'nothing went upstream');
  t.throws(() => s.daemon.probe(`${'a'.repeat(64)}.test`), RangeError);
  t.ok(await udpAsk(s.port, query('blocked.test', TYPE.A)), 'one client query');
  const m = parseExposition((await httpGet(`${s.metricsBase}/metrics`)).body);
  t.equal(m.get('hashwall_blocked_queries_total{list="demo",mode="nxdomain",via="name"}'), 1, 'only the client');
  for (let i = 0; i < 5; i++) s.daemon.probe('www.blocked.test');
  for (let i = 1; i < 5; i++) await udpAsk(s.port, query('blocked.test', TYPE.A, { id: i }));
  wall.advance(1_800_000);
  await s.ops.hitReportIdle();
  const report = s.ops.hitReport;
  t.match(report?.lists[0]?.entries, [{ hits: 5 }], 'and the probes are no hits: five, from the client');
  t.equal(report?.lists[0]?.entries.length, 1);
});
