/**
 * Soak: mixed load on the real query path with a list update every 10 s and an upstream outage in the middle.
 *
 *   - load: HASHWALL_SOAK_QPS (default 1500) queries a second from 4 sockets: 80% repeated names (cached), 10% unique
 *     names (upstream every time), 10% names the list blocks; every answer is checked (rcode, and the A address the
 *     upstream gives that name);
 *   - the list: a real ListRegistry over a file:// mirror; every 10 s a new release is published (signed with
 *     @hashwall/format's buildRelease) and polled, each adding a new name and dropping the previous one;
 *   - the upstream goes silent for 3 s in the middle (an outage: it keeps its port) and then answers again.
 *
 * Must hold: no wrong answer (a unique name may get SERVFAIL while the upstream is down, nothing else may differ);
 * no query unanswered but those sent during the outage; after every update the new name is blocked and the dropped
 * one is not; and no leak. The memory judged is the live memory of the V8 heap the daemon runs in: the heap in use
 * plus external memory (buffers), read after a full GC every 2 s. Its floor (the least sample) over the last 10 s of
 * the load may be at most LEAK_BOUND_MIB above its floor over the first 10 s after the warm-up (the first third, and
 * at least one update: the packet cache is sized to be full by then, so what follows is a steady state). RSS is
 * printed beside it but not judged: it also counts the test runner (its TypeScript compiler alone is tens of MiB),
 * the list sync's worker thread while it lives, memory the allocator keeps after a GC and the V8 heap's reserve, all
 * of which a busy machine moves without anything leaking.
 *
 * HASHWALL_SOAK_SECONDS sets the duration (default 60; tap's per-file timeout in .taprc bounds it).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { generateListKey } from '@hashwall/format';
import t from 'tap';

import { createLogger } from '../../daemon/dist/util/log.js';
import { ListRegistry } from '../../daemon/dist/lists/registry.js';
import { startDaemon } from '../../daemon/dist/daemon.js';
import { LogSink, ReleaseDir, fullOf, settingsWith, tempDir, within } from '../../daemon/test/lists/helpers.ts';
import { ZoneUpstream, addressOf, judgeAs, queryFor, runLoad, sleep } from './helpers.ts';

const SECONDS = Number(process.env.HASHWALL_SOAK_SECONDS ?? 60);
const QPS = Number(process.env.HASHWALL_SOAK_QPS ?? 1500);
const UPDATE_MS = 10_000;
const SAMPLE_MS = 2000;
const OUTAGE_MS = 3000;
/**
 * How much the live memory's floor may rise over the steady state, MiB. What it guards against is memory that grows
 * with the queries answered or with the lists swapped in. At the defaults the two windows it compares are 30 s
 * apart: 45,000 queries, over which a leak of 72 bytes per query (less than any object a retained query would
 * leave) crosses it, and three updates, over which a list kept after its swap (50,000 entries: over 1 MiB of
 * arrays) crosses it. A steady run's floor moves by about a MiB either way (the packet cache's content changes with
 * the names in it).
 */
const LEAK_BOUND_MIB = 3;

// A full GC before each RSS sample, so the samples compare live memory rather than where the young generation was.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Asks one name over UDP; the rcode, or -1 after 10 s (a busy machine may take seconds to answer). */
async function rcodeOf(port: number, name: string): Promise<number> {
  const { createSocket } = await import('node:dgram');
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(-1);
    }, 10_000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m[3]! & 15);
    });
    s.send(queryFor(name, 4242), port, '127.0.0.1');
  });
}

/** Memory after a full GC, MiB: the V8 heap in use and external memory (their sum is judged), and RSS (to read). */
interface Sample {
  readonly at: number;
  readonly rss: number;
  readonly heap: number;
  readonly ext: number;
}

const live = (s: Sample): number => s.heap + s.ext;

t.test(`a ${SECONDS} s soak: list updates, an upstream outage, no lost or wrong answers, flat memory`, async (t) => {
  const dir = tempDir(t, 'hw-soak-');
  const upstream = new ZoneUpstream('soak.test', 300);
  await upstream.start();
  t.teardown(() => upstream.close());

  // The list: 50,000 stable names (so that a list kept after its swap shows in the memory check), plus one that
  // changes with every release.
  const listKey = generateListKey('soak-key');
  const stable = Array.from({ length: 50_000 }, (_, i) => `b${i}.blocked.soak.test`);
  const rel = new ReleaseDir(join(dir, 'release'));
  const now = (): number => Math.floor(Date.now() / 1000);
  let serial = 1;
  const churn = (s: number): string => `churn${s}.soak.test`;
  const publish = (): void => {
    rel.publish(fullOf(listKey, serial, [...stable, churn(serial)], { created: now() - 60, expires: now() + 86400 }), {
      created: now() - 60,
      expires: now() + 86400,
      bases: [],
    });
    // The release folder keeps every list it published, as delta bases for other tests; this one publishes no
    // delta, and the memory judged below must be the daemon's, not a history kept by the test.
    rel.published.splice(0);
  };
  publish();
  mkdirSync(join(dir, 'state'));
  const settings = settingsWith(join(dir, 'state'), [{ mirrors: [rel.url], keys: [rel.key], listKey }], {
    listen: ['127.0.0.1:0'],
    upstreams: [upstream.address],
    // An upstream try may take a second on a busy machine (the upstream runs in this process) before it is a failure.
    upstream: { timeoutMs: 1000, maxTries: 2, failureThreshold: 3, probe: { intervalMs: 500 } },
    metrics: { listen: '' },
    // Room for the 500 repeated names and for the unique names of the warm-up (10% of the queries): past the
    // warm-up the cache evicts as fast as it fills, so memory is in its steady state and any growth is a leak.
    cache: { maxEntries: 500 + Math.ceil((QPS / 10) * (SECONDS / 3)) },
  });
  const logger = createLogger({ level: 'error' }, new LogSink());
  const registry = new ListRegistry(settings, { logger });
  t.teardown(() => registry.close());
  await within(registry.start(), 'list start');
  await within(registry.pollNow('demo'), 'first poll'); // start() does not wait under serve-unfiltered
  const daemon = await startDaemon(settings, { logger, lists: registry });
  t.teardown(() => within(daemon.close(), 'daemon close'));
  const port = daemon.addresses.udp[0]!.port;
  t.equal(await rcodeOf(port, churn(1)), 3, 'the first release is enforced');

  // The schedule: updates every 10 s, the outage in the middle, memory samples every 2 s.
  const t0 = performance.now();
  let outage: { from: number; to: number } | null = null;
  const updates: { serial: number; ok: boolean }[] = [];
  const samples: Sample[] = [];
  const sampleMemory = (): void => {
    gc();
    const m = process.memoryUsage();
    samples.push({
      at: performance.now() - t0,
      rss: m.rss / 1048576,
      heap: m.heapUsed / 1048576,
      ext: m.external / 1048576,
    });
  };
  let running = true;
  const schedule = (async () => {
    let nextUpdate = UPDATE_MS;
    let nextSample = 0;
    const outageAt = (SECONDS * 1000) / 2;
    let outageDone = false;
    while (running) {
      const el = performance.now() - t0;
      if (el >= nextSample) {
        sampleMemory();
        nextSample += SAMPLE_MS;
      }
      if (!outageDone && el >= outageAt) {
        outageDone = true;
        outage = { from: el, to: el + OUTAGE_MS };
        upstream.goSilent();
        await sleep(OUTAGE_MS);
        upstream.silent = false;
        outage.to = performance.now() - t0;
      }
      if (el >= nextUpdate) {
        nextUpdate += UPDATE_MS;
        serial++;
        publish();
        const outcome = await within(registry.pollNow('demo'), 'poll');
        const blockedNew = (await rcodeOf(port, churn(serial))) === 3;
        const freedOld = (await rcodeOf(port, churn(serial - 1))) !== 3;
        updates.push({ serial, ok: outcome === 'updated' && blockedNew && freedOld });
      }
      await sleep(100);
    }
  })();

  // The load: judged per query. Unique names may get SERVFAIL while the upstream is down (and just after, while
  // the daemon's health check still has it down).
  const inOutage = (atMs: number): boolean => outage !== null && atMs >= outage.from - 500 && atMs <= outage.to + 2000;
  let unique = 0;
  const report = await runLoad({
    port,
    qps: QPS,
    durationMs: SECONDS * 1000,
    // A machine too busy to answer QPS gets fewer queries, not a backlog its sockets would drop.
    maxInFlight: 256,
    next: (i) => {
      const r = i % 10;
      if (r < 8) {
        const name = `h${(i * 7919) % 500}.soak.test`;
        return { name, judge: judgeAs(name, { rcode: 0, address: addressOf(name) }) };
      }
      if (r === 8) {
        const name = `u${unique++}.soak.test`;
        const sentAt = performance.now() - t0;
        const strict = judgeAs(name, { rcode: 0, address: addressOf(name) });
        return {
          name,
          judge: (a) => (inOutage(sentAt) && (a[3]! & 15) === 2 ? null : strict(a)),
        };
      }
      const name = stable[(i * 31) % stable.length]!;
      return { name, judge: judgeAs(name, { rcode: 3 }) };
    },
  });
  running = false;
  await schedule;

  t.comment(
    `sent ${report.sent}, answered ${report.answered}, lost ${report.lost}, wrong ${report.wrong}, rcodes ` +
      `${JSON.stringify(report.rcodes)}, throttled ${report.throttled}, updates ${updates.length}, ` +
      `outage ${JSON.stringify(outage)}`,
  );
  t.equal(report.wrong, 0, `no wrong answer ${report.wrongSamples.join('; ')}`);
  const outsideLost = report.lostAt.filter((s) => !inOutage(s * 1000 + 500)).length;
  t.equal(outsideLost, 0, `no query lost outside the outage (${report.lost} lost in all)`);
  t.ok(
    report.sent + report.throttled >= QPS * SECONDS * 0.9 && report.answered > 0,
    `the load ran: ${report.sent} queries sent, ${report.throttled} held back while 256 were unanswered`,
  );
  t.ok(outage !== null, 'the upstream went silent for a while');
  t.ok(updates.length >= Math.floor(SECONDS / 10) - 1, `${updates.length} list updates`);
  t.ok(
    updates.every((u) => u.ok),
    'after every update the new name is blocked and the dropped one is not',
  );
  t.comment(
    `live memory every ${SAMPLE_MS / 1000} s (MiB): ` +
      samples.map((x) => `${live(x).toFixed(1)} (${x.heap.toFixed(1)}+${x.ext.toFixed(1)})`).join(' '),
  );
  t.comment(`RSS (MiB, not judged): ${samples.map((x) => x.rss.toFixed(0)).join(' ')}`);
  // The floor (the least of the samples) of the first 10 s after the warm-up, and of the last 10 s of the load: a
  // leak raises every sample, where the content of the packet cache moves single samples both ways.
  const warm = Math.max((SECONDS * 1000) / 3, UPDATE_MS + SAMPLE_MS);
  const end = SECONDS * 1000;
  const floor = (from: number, to: number): number =>
    Math.min(...samples.filter((x) => x.at >= from && x.at < to).map(live));
  const early = floor(warm, warm + UPDATE_MS);
  const late = floor(end - UPDATE_MS, end + 1);
  t.ok(Number.isFinite(early) && Number.isFinite(late) && end - UPDATE_MS > warm, 'memory sampled after the warm-up');
  const grown = late - early;
  const queries = (report.answered * (end - UPDATE_MS - warm)) / end;
  t.comment(
    `live memory floor ${early.toFixed(1)} MiB after the warm-up, ${late.toFixed(1)} MiB at the end; over about ` +
      `${Math.round(queries)} queries, a leak of ${Math.ceil((LEAK_BOUND_MIB * 1048576) / Math.max(queries, 1))} ` +
      'bytes per query would cross the bound',
  );
  t.ok(
    grown <= LEAK_BOUND_MIB,
    `live memory flat after the warm-up: ${grown >= 0 ? '+' : ''}${grown.toFixed(2)} MiB (at most ${LEAK_BOUND_MIB})`,
  );
});
