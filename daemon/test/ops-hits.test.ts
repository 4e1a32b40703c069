// The hit report: each block counts for the listed entry that matched (its hash, computed once per decision),
// entries under minCount are left out, the report is written atomically and served, windows are aligned, and no
// client data is in it.
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { serializeListKey } from '@hashwall/format';

import t from 'tap';

import type { ConfigError } from '../dist/config/load.js';
import { settingsFromYaml } from '../dist/config/load.js';
import { HitCounter, HitReporter, mergeHitCounts, hitCountsFromJson, hitCountsToJson } from '../dist/ops/hits.js';
import { createLogger } from '../dist/util/log.js';
import { StaticListProvider } from '../dist/lists/static.js';
import { Policy } from '../dist/policy/verdict.js';
import { PASS } from '../dist/types/decision.js';
import { TYPE, query, tcpAsk, udpAsk } from './helpers/client.ts';
import { TEST_KEY, demoMatcher } from './helpers/lists.ts';
import { httpGet, startStack } from './helpers/ops.ts';
import { LogSink, tempDir } from './lists/helpers.ts';

t.test("a decision carries the matched entry's hash; an allowlisted one too", async (t) => {
  const hk = TEST_KEY.hashKey();
  const lists = new StaticListProvider([demoMatcher()]);
  const p = new Policy({ allowlist: ['ok.allowed.test'], steer: true });
  const v = lists.view();
  t.match(p.decideName('a.b.blocked.test', v), { listId: 'demo', kind: 'D', entry: hk.hashHex('blocked.test') });
  t.match(p.decideName('host.listed.test', v), { kind: 'H', entry: hk.hashHex('host.listed.test') });
  t.match(p.decideName('partial.test', v), { kind: 'P', entry: hk.hashHex('partial.test') });
  t.match(p.decideName('ok.allowed.test', v), {
    action: PASS,
    allowlisted: true,
    listId: 'demo',
    entry: hk.hashHex('allowed.test'),
  });
  t.match(p.decideName('x.example.test', v), { action: PASS, allowlisted: false, entry: '' });
  t.equal(p.decideName('a.b.blocked.test', v), p.decideName('c.blocked.test', v), 'one object per entry');
});

t.test('hits per entry over a window, written atomically and served', async (t) => {
  const dir = tempDir(t, 'hw-hits-');
  const file = join(dir, 'hit-report.json');
  const s = await startStack(t, {
    names: ['blocked.test', 'host.listed.test', 'other.test'],
    top: { hitReport: { enabled: true, minCount: 2, file, endpoint: true } },
  });
  t.match(await httpGet(`${s.metricsBase}/hit-report`), { status: 404 }, 'no window has ended yet');
  await udpAsk(s.port, query('blocked.test', TYPE.A));
  await udpAsk(s.port, query('www.blocked.test', TYPE.AAAA));
  await tcpAsk(s.port, [query('cdn.BLOCKED.test', TYPE.A)]);
  await udpAsk(s.port, query('to-blocked.example.test', TYPE.A)); // CNAME to cdn.blocked.test
  await udpAsk(s.port, query('host.listed.test', TYPE.A)); // once: under minCount
  await udpAsk(s.port, query('a.example.test', TYPE.A)); // not listed

  const report = await s.ops.rollHitReport();
  const hk = s.listKey.hashKey();
  t.match(report, {
    format: 'hashwall-hit-report/1',
    complete: true,
    minCount: 2,
    lists: [{ id: 'demo', serial: 1, entries: [{ hash: hk.hashHex('blocked.test'), hits: 4 }] }],
    uncountedHits: 0,
  });
  t.equal(report!.lists[0]!.entries.length, 1, 'host.listed.test (1 hit) and other.test (none) are left out');
  t.match(report!.windowStart, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const onDisk = readFileSync(file, 'utf8');
  t.same(JSON.parse(onDisk), report, 'the file holds the report');
  t.same(readdirSync(dir), ['hit-report.json'], 'no temporary file left behind');
  t.notMatch(onDisk, /127\.0\.0\.1|\.test|client|address/, 'no client data and no names');
  const served = await httpGet(`${s.metricsBase}/hit-report`);
  t.equal(served.status, 200);
  t.same(JSON.parse(served.body), report, 'the endpoint serves the last window');

  const next = await s.ops.rollHitReport();
  t.same(next!.lists[0]!.entries, [], 'a new window starts empty');
  t.equal(next!.windowStart, report!.windowEnd, 'windows follow each other');
});

t.test('the counter is bounded, merges across processes, and the reporter aligns windows', async (t) => {
  const c = new HitCounter(2);
  c.record('a', 'h1');
  c.record('a', 'h1');
  c.record('a', 'h2');
  c.record('b', 'h3');
  c.record('a', '');
  const taken = c.take();
  t.same(
    [...taken.lists.get('a')!],
    [
      ['h1', 2],
      ['h2', 1],
    ],
  );
  t.equal(taken.uncounted, 1, 'the third distinct entry is not counted');
  t.equal(c.take().lists.size, 0, 'take() starts a new window');
  const merged = mergeHitCounts(taken, hitCountsFromJson(JSON.parse(JSON.stringify(hitCountsToJson(taken)))));
  t.same(
    [...merged.lists.get('a')!],
    [
      ['h1', 4],
      ['h2', 2],
    ],
  );
  t.equal(merged.uncounted, 2);

  let now = 86400 * 3 + 100.5;
  const counter = new HitCounter(10);
  const reporter = new HitReporter({
    intervalSeconds: 86400,
    minCount: 1,
    file: '',
    take: () => counter.take(),
    lists: () => [{ id: 'a', serial: 7 }],
    logger: createLogger({ level: 'error' }, new LogSink()),
    clock: () => now,
  });
  counter.record('a', 'h1');
  now = 86400 * 4 + 3;
  const r = await reporter.roll(true, true);
  t.equal(r.windowStart, '1970-01-04T00:01:40Z', 'the first window starts at start-up');
  t.equal(r.windowEnd, '1970-01-05T00:00:00Z', 'and ends at the day boundary, though the timer fired late');
  t.same(r.lists, [{ id: 'a', serial: 7, entries: [{ hash: 'h1', hits: 1 }] }]);
  now += 60;
  await reporter.stop();
  t.match(reporter.latest, { complete: false, windowStart: '1970-01-05T00:00:00Z', windowEnd: '1970-01-05T00:01:03Z' });
});

t.test("examples/hit-report/match.mjs matches a report to the maintainer's source", async (t) => {
  const dir = tempDir(t, 'hw-hits-match-');
  const file = join(dir, 'hit-report.json');
  const s = await startStack(t, {
    names: ['blocked.test', 'host.listed.test', 'quiet.test'],
    top: { hitReport: { enabled: true, minCount: 1, file } },
  });
  await udpAsk(s.port, query('www.blocked.test', TYPE.A));
  await udpAsk(s.port, query('cdn.blocked.test', TYPE.A));
  await udpAsk(s.port, query('host.listed.test', TYPE.A));
  await s.ops.rollHitReport();
  writeFileSync(join(dir, 'source.txt'), 'domain blocked.test\nhost host.listed.test\ndomain quiet.test\n');
  writeFileSync(join(dir, 'demo.listkey'), serializeListKey(s.listKey), { mode: 0o600 });
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'hit-report', 'match.mjs');
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      [script, '--source', join(dir, 'source.txt'), '--list-key', join(dir, 'demo.listkey'), '--list', 'demo', file],
      { timeout: 20000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
  t.match(out, /list demo: 1 report window/);
  t.match(out, /^\s+2 {2}line 1: domain blocked\.test$/m);
  t.match(out, /^\s+1 {2}line 2: host host\.listed\.test$/m);
  t.match(out, /^\s+0 {2}line 3: domain quiet\.test$/m);
  t.match(out, /1 source line\(s\) without a reported hit/);
});

t.test('a hit report that goes nowhere is a configuration error', async (t) => {
  const dir = tempDir(t, 'hw-hits-cfg-');
  const problems = (yaml: string): readonly string[] => {
    try {
      settingsFromYaml(yaml, dir);
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  t.match(problems('hitReport: { enabled: true }'), [/^hitReport\.file: .*goes nowhere/]);
  t.match(problems("hitReport: { enabled: true, endpoint: true }\nmetrics: { listen: '' }"), [
    /^hitReport\.endpoint: .*metrics\.listen is empty/,
  ]);
  t.match(problems('hitReport: { enabled: true, minCount: 0, file: r.json }'), [/^hitReport\.minCount: /]);
  t.same(problems('hitReport: { enabled: true, file: r.json }'), []);
  t.equal(
    settingsFromYaml('hitReport: { file: r.json }', dir).config.hitReport.file,
    join(dir, 'r.json'),
    'relative to the config',
  );
  t.equal(settingsFromYaml('', dir).config.hitReport.enabled, false, 'off by default');
});
