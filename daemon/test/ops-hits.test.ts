// The hit report: each block counts for the listed entry that matched (its hash, computed once per decision),
// entries under minCount are left out, the report is written atomically and served, windows are aligned, and no
// client data is in it.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { serializeListKey } from '@hashwall/format';

import t from 'tap';

import type { ConfigError } from '../dist/config/load.js';
import { settingsFromYaml } from '../dist/config/load.js';
import {
  HitCounter,
  HitReporter,
  mergeHitCounts,
  hitCountsFromJson,
  hitCountsToJson,
  type HitReport,
} from '../dist/ops/hits.js';
import { ManualClock } from '../dist/util/clock.js';
import { createLogger } from '../dist/util/log.js';
import { StaticListProvider } from '../dist/lists/static.js';
import { Policy } from '../dist/policy/verdict.js';
import { PASS } from '../dist/types/decision.js';
import { TYPE, query, tcpAsk, udpAsk } from './helpers/client.ts';
import { TEST_KEY, demoMatcher } from './helpers/lists.ts';
import { httpGet, startStack } from './helpers/ops.ts';
import { LogSink, tempDir } from './lists/helpers.ts';
import { plainNode } from '../../test/helpers/tools.ts';
import { HANG_MS } from '../../test/helpers/within.ts';

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
  // From the entry's second decision on (the first is not kept: the doorkeeper in policy/verdict.ts).
  t.equal(p.decideName('c.blocked.test', v), p.decideName('e.blocked.test', v), 'one object per entry');
});

/** 2026-12-06T10:30:00Z: half way through an hour. */
const T_1030 = Date.UTC(2026, 11, 6, 10, 30, 0);
const HOUR_MS = 3_600_000;

t.test('hits per entry over a window, written to its own file and served', async (t) => {
  const dir = tempDir(t, 'hw-hits-');
  const wall = new ManualClock(T_1030);
  const s = await startStack(t, {
    names: ['blocked.test', 'host.listed.test', 'other.test'],
    top: { hitReport: { enabled: true, intervalSeconds: 3600, minCount: 5, directory: dir, endpoint: true } },
    wallClock: wall,
  });
  t.match(await httpGet(`${s.metricsBase}/hit-report`), { status: 404 }, 'no window has ended yet');
  await udpAsk(s.port, query('blocked.test', TYPE.A));
  await udpAsk(s.port, query('www.blocked.test', TYPE.AAAA));
  await tcpAsk(s.port, [query('cdn.BLOCKED.test', TYPE.A)]);
  await udpAsk(s.port, query('to-blocked.example.test', TYPE.A)); // CNAME to cdn.blocked.test
  await udpAsk(s.port, query('x.blocked.test', TYPE.HTTPS));
  await udpAsk(s.port, query('host.listed.test', TYPE.A)); // once: under minCount
  await udpAsk(s.port, query('a.example.test', TYPE.A)); // not listed

  wall.advance(HOUR_MS / 2); // 11:00, the window's end
  await s.ops.hitReportIdle();
  const report = s.ops.hitReport;
  const hk = s.listKey.hashKey();
  t.match(report, {
    format: 'hashwall-hit-report/1',
    windowStart: '2026-12-06T10:00:00Z',
    windowEnd: '2026-12-06T11:00:00Z',
    complete: false,
    observedSeconds: 1800,
    minCount: 5,
    lists: [{ id: 'demo', serial: 1, entries: [{ hash: hk.hashHex('blocked.test'), hits: 5 }] }],
    uncountedHits: 0,
  });
  t.equal(report!.lists[0]!.entries.length, 1, 'host.listed.test (1 hit) and other.test (none) are left out');
  const file = join(dir, 'hit-report-20261206T100000Z.json');
  const onDisk = readFileSync(file, 'utf8');
  t.same(JSON.parse(onDisk), report, "the window's file holds the report");
  t.same(readdirSync(dir), ['hit-report-20261206T100000Z.json'], 'no temporary file left behind');
  t.notMatch(onDisk, /127\.0\.0\.1|\.test|client|address/, 'no client data and no names');
  const served = await httpGet(`${s.metricsBase}/hit-report`);
  t.equal(served.status, 200);
  t.same(JSON.parse(served.body), report, 'the endpoint serves the last window');

  wall.advance(HOUR_MS);
  await s.ops.hitReportIdle();
  const next = s.ops.hitReport!;
  t.match(next, { windowStart: '2026-12-06T11:00:00Z', windowEnd: '2026-12-06T12:00:00Z', complete: true });
  t.equal(next.observedSeconds, 3600);
  t.same(next.lists[0]!.entries, [], 'a new window starts empty');
  t.same(readdirSync(dir).sort(), ['hit-report-20261206T100000Z.json', 'hit-report-20261206T110000Z.json']);
  t.same(JSON.parse(readFileSync(file, 'utf8')), report, "the earlier window's file is kept as it was");
});

/** A reporter over a ManualClock whose timers fire `earlyMs` before (or, negative, after) their time. */
function reporterOn(
  clock: ManualClock,
  o: { directory?: string; carryFile?: string; keepWindows?: number; earlyMs?: number; counter?: HitCounter },
) {
  const counter = o.counter ?? new HitCounter(100);
  const early = o.earlyMs ?? 0;
  const skewed = {
    now: () => clock.now(),
    setTimeout: (fn: () => void, ms: number) => clock.setTimeout(fn, Math.max(0, ms - early)),
    clearTimeout: (timer: object) => clock.clearTimeout(timer),
  };
  const reporter = new HitReporter({
    intervalSeconds: 3600,
    minCount: 5,
    directory: o.directory ?? '',
    keepWindows: o.keepWindows ?? 90,
    carryFile: o.carryFile ?? '',
    take: () => counter.take(),
    lists: () => [{ id: 'a', serial: 7 }],
    logger: createLogger({ level: 'error' }, new LogSink()),
    clock: skewed,
  });
  return { reporter, counter };
}

t.test('windows are labelled by their scheduled boundaries, though the timer fires early or late', async (t) => {
  for (const earlyMs of [1, 999, -1, -999]) {
    const clock = new ManualClock(T_1030);
    const { reporter } = reporterOn(clock, { earlyMs });
    await reporter.start();
    const seen: [string, string, number][] = [];
    for (let i = 0; i < 20; i++) {
      clock.advance(HOUR_MS);
      await reporter.idle();
      const r = reporter.latest!;
      seen.push([r.windowStart, r.windowEnd, r.observedSeconds]);
    }
    const expected = Array.from({ length: 20 }, (_, i): [string, string, number] => [
      new Date(T_1030 - HOUR_MS / 2 + i * HOUR_MS).toISOString().replace('.000Z', 'Z'),
      new Date(T_1030 + HOUR_MS / 2 + i * HOUR_MS).toISOString().replace('.000Z', 'Z'),
      i === 0 ? 1800 : 3600,
    ]);
    t.same(seen, expected, `20 consecutive one-hour windows with the timer ${earlyMs} ms early`);
    await reporter.stop();
  }
});

t.test('a timer that fires more than a window late skips to the window of now', async (t) => {
  const clock = new ManualClock(T_1030);
  const { reporter, counter } = reporterOn(clock, { earlyMs: -2.5 * HOUR_MS });
  await reporter.start();
  for (let i = 0; i < 5; i++) counter.record('a', 'h1');
  clock.advance(3 * HOUR_MS); // 13:30: the 11:00 timer fired at 13:30
  await reporter.idle();
  t.match(reporter.latest, { windowStart: '2026-12-06T10:00:00Z', windowEnd: '2026-12-06T11:00:00Z' });
  t.match(reporter.latest!.lists[0]!.entries, [{ hash: 'h1', hits: 5 }]);
  clock.advance(3 * HOUR_MS); // the 14:00 timer fires at 16:30
  await reporter.idle();
  t.match(reporter.latest, {
    windowStart: '2026-12-06T13:00:00Z',
    windowEnd: '2026-12-06T14:00:00Z',
    complete: false,
    observedSeconds: 1800,
  });
  await reporter.stop();
});

t.test('a restart within a window goes on counting it; each window keeps its file; old ones are pruned', async (t) => {
  const dir = tempDir(t, 'hw-hits-restart-');
  const reports = join(dir, 'reports');
  const carryFile = join(dir, 'state', 'hit-report-window.json');
  const clock = new ManualClock(T_1030);
  const first = reporterOn(clock, { directory: reports, carryFile, keepWindows: 3 });
  await first.reporter.start();
  for (let i = 0; i < 3; i++) first.counter.record('a', 'h1');
  clock.advance(HOUR_MS / 2); // 11:00: the 10:00 window ends (3 hits: under minCount)
  await first.reporter.idle();
  for (let i = 0; i < 3; i++) first.counter.record('a', 'h2');
  clock.advance(HOUR_MS / 6); // 11:10: stop (a restart)
  await first.reporter.stop();
  const partial = JSON.parse(readFileSync(join(reports, 'hit-report-20261206T110000Z.json'), 'utf8')) as HitReport;
  t.match(partial, { complete: false, observedSeconds: 600, lists: [{ entries: [] }] }, 'written at the stop');
  t.equal(statSync(carryFile).mode & 0o777, 0o600, "the window's counts are kept, readable by the daemon only");

  clock.advance(HOUR_MS / 6); // 11:20: started again
  const second = reporterOn(clock, { directory: reports, carryFile, keepWindows: 3 });
  await second.reporter.start();
  t.notOk(existsSync(carryFile), 'the carried counts are taken once');
  for (let i = 0; i < 2; i++) second.counter.record('a', 'h2');
  clock.advance((2 * HOUR_MS) / 3); // 12:00
  await second.reporter.idle();
  const merged = JSON.parse(readFileSync(join(reports, 'hit-report-20261206T110000Z.json'), 'utf8')) as HitReport;
  t.match(merged, {
    windowStart: '2026-12-06T11:00:00Z',
    windowEnd: '2026-12-06T12:00:00Z',
    complete: false,
    observedSeconds: 600 + 2400,
    lists: [{ id: 'a', entries: [{ hash: 'h2', hits: 5 }] }],
  });
  t.match(
    JSON.parse(readFileSync(join(reports, 'hit-report-20261206T100000Z.json'), 'utf8')),
    { windowEnd: '2026-12-06T11:00:00Z', observedSeconds: 1800 },
    'the window before the restart keeps its own file',
  );

  clock.advance(3 * HOUR_MS);
  await second.reporter.idle();
  t.same(
    readdirSync(reports).sort(),
    ['hit-report-20261206T120000Z.json', 'hit-report-20261206T130000Z.json', 'hit-report-20261206T140000Z.json'],
    'keepWindows: 3 (of the five windows ended)',
  );
  await second.reporter.stop();

  // A start in a later window drops counts kept for an earlier one.
  clock.advance(2 * HOUR_MS);
  const third = reporterOn(clock, { directory: reports, carryFile });
  await third.reporter.start();
  t.notOk(existsSync(carryFile));
  clock.advance(HOUR_MS);
  await third.reporter.idle();
  t.same(third.reporter.latest!.lists[0]!.entries, [], 'nothing carried from another window');
  await third.reporter.stop();
});

t.test('the counter is bounded and merges across processes', async (t) => {
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
});

t.test("examples/hit-report/match.mjs matches a report to the maintainer's source", async (t) => {
  const dir = tempDir(t, 'hw-hits-match-');
  const reports = join(dir, 'reports');
  const wall = new ManualClock(T_1030);
  const s = await startStack(t, {
    names: ['blocked.test', 'host.listed.test', 'quiet.test'],
    top: { hitReport: { enabled: true, intervalSeconds: 3600, minCount: 5, directory: reports } },
    wallClock: wall,
  });
  for (const name of ['www.blocked.test', 'cdn.blocked.test', 'a.blocked.test', 'b.blocked.test', 'blocked.test']) {
    await udpAsk(s.port, query(name, TYPE.A));
  }
  for (let i = 0; i < 5; i++) await udpAsk(s.port, query('host.listed.test', TYPE.A, { id: i }));
  wall.advance(HOUR_MS / 2);
  await s.ops.hitReportIdle();
  await udpAsk(s.port, query('host.listed.test', TYPE.A));
  wall.advance(HOUR_MS);
  await s.ops.hitReportIdle();
  writeFileSync(join(dir, 'source.txt'), 'domain blocked.test\nhost host.listed.test\ndomain quiet.test\n');
  writeFileSync(join(dir, 'demo.listkey'), serializeListKey(s.listKey), { mode: 0o600 });
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'hit-report', 'match.mjs');
  const files = readdirSync(reports)
    .sort()
    .map((f) => join(reports, f));
  t.equal(files.length, 2, 'one file a window');
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      ...plainNode(script, [
        '--source',
        join(dir, 'source.txt'),
        '--list-key',
        join(dir, 'demo.listkey'),
        '--list',
        'demo',
        ...files,
      ]),
      { timeout: HANG_MS },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
  t.match(out, /list demo: 2 report window/);
  t.match(out, /^\s+5 {2}line 1: domain blocked\.test$/m);
  t.match(out, /^\s+5 {2}line 2: host host\.listed\.test$/m, 'the sixth hit, alone in its window, is left out');
  t.match(out, /^\s+0 {2}line 3: domain quiet\.test$/m);
  t.match(out, /1 source line\(s\) without a reported hit/);
});

t.test(
  'a hit report that goes nowhere, or that could tell when one person looked, is a configuration error',
  async (t) => {
    const dir = tempDir(t, 'hw-hits-cfg-');
    const problems = (yaml: string): readonly string[] => {
      try {
        settingsFromYaml(yaml, dir);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    t.match(problems('hitReport: { enabled: true }'), [/^hitReport\.directory: .*goes nowhere/]);
    t.match(problems("hitReport: { enabled: true, endpoint: true }\nmetrics: { listen: '' }"), [
      /^hitReport\.endpoint: .*metrics\.listen is empty/,
    ]);
    t.match(problems('hitReport: { enabled: true, minCount: 4, directory: r }'), [/^hitReport\.minCount: .*>=5/]);
    t.match(problems('hitReport: { enabled: true, intervalSeconds: 60, directory: r }'), [
      /^hitReport\.intervalSeconds: .*>=3600/,
    ]);
    t.same(problems('hitReport: { enabled: true, minCount: 5, intervalSeconds: 3600, directory: r }'), []);
    t.match(problems('hitReport: { enabled: true, file: r.json }'), [/^hitReport\.file: unknown key/]);
    const c = settingsFromYaml('hitReport: { directory: r }', dir).config.hitReport;
    t.equal(c.directory, join(dir, 'r'), 'relative to the config');
    t.same([c.enabled, c.intervalSeconds, c.minCount, c.keepWindows], [false, 86400, 10, 90], 'the defaults');
  },
);
