/**
 * Soak: mixed load on the real query path with a list update every 10 s and an upstream restart in the middle.
 *
 *   - load: HASHWALL_SOAK_QPS (default 1500) queries a second from 4 sockets: 80% repeated names (cached), 10% unique
 *     names (upstream every time), 10% names the list blocks; every answer is checked (rcode, and the A address the
 *     upstream gives that name);
 *   - the list: a real ListRegistry over a file:// mirror; every 10 s a new release is published (signed with
 *     @hashwall/format's buildRelease) and polled, each adding a new name and dropping the previous one;
 *   - the upstream is stopped for 3 s in the middle and started again on the same port.
 *
 * Must hold: no wrong answer (a unique name may get SERVFAIL while the upstream is down, nothing else may differ);
 * no query unanswered but those sent during the outage; after every update the new name is blocked and the dropped
 * one is not; RSS within 10% after the warm-up (the first third, and at least the first list update; the packet
 * cache is sized to be full by then, so what follows is a steady state). RSS is read after a full GC, at the same point of
 * each update's cycle: just before the next update and once after the load, when the list sync's worker thread
 * that loaded the previous release has ended (it ends after 5 s idle, and costs tens of MiB while it lives, so
 * samples taken with and without it would differ by design, not by a leak). Samples every 5 s are printed too.
 *
 * HASHWALL_SOAK_SECONDS sets the duration (default 60; tap's per-file timeout in .taprc bounds it).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { generateListKey } from '@hashwall/format';
import t from 'tap';

import { createLogger } from '../../daemon/dist/util/log.js';
import { ListRegistry } from '../../daemon/dist/lists/registry.js';
import { startDaemon } from '../../daemon/dist/daemon.js';
import { LogSink, ReleaseDir, fullOf, settingsWith, tempDir, within } from '../../daemon/test/lists/helpers.ts';
import { RestartableUpstream, addressOf, judgeAs, queryFor, runLoad, sleep } from './helpers.ts';

const SECONDS = Number(process.env.HASHWALL_SOAK_SECONDS ?? 60);
const QPS = Number(process.env.HASHWALL_SOAK_QPS ?? 1500);
const UPDATE_MS = 10_000;
const OUTAGE_MS = 3000;

// A full GC before each RSS sample, so the samples compare live memory rather than where the young generation was.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Asks one name over UDP; the rcode, or -1 after 2 s. */
async function rcodeOf(port: number, name: string): Promise<number> {
  const { createSocket } = await import('node:dgram');
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(-1);
    }, 2000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m[3]! & 15);
    });
    s.send(queryFor(name, 4242), port, '127.0.0.1');
  });
}

/** Memory after a full GC, MiB: RSS (what is judged), and the V8 heap in use and external memory (to read). */
interface Sample {
  readonly at: number;
  readonly mb: number;
  readonly heap: number;
  readonly ext: number;
}

t.test(`a ${SECONDS} s soak: list updates, an upstream restart, no lost or wrong answers, flat memory`, async (t) => {
  const dir = tempDir(t, 'hw-soak-');
  const upstream = new RestartableUpstream('soak.test', 300);
  await upstream.start();
  t.teardown(() => upstream.stop());

  // The list: 2,000 stable names, plus one that changes with every release.
  const listKey = generateListKey('soak-key');
  const stable = Array.from({ length: 2000 }, (_, i) => `b${i}.blocked.soak.test`);
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
  };
  publish();
  mkdirSync(join(dir, 'state'));
  const settings = settingsWith(join(dir, 'state'), [{ mirrors: [rel.url], keys: [rel.key], listKey }], {
    listen: ['127.0.0.1:0'],
    upstreams: [upstream.address],
    upstream: { timeoutMs: 200, maxTries: 2, failureThreshold: 3, probe: { intervalMs: 500 } },
    metrics: { listen: '' },
    // Room for the 500 repeated names and for the unique names of the warm-up (10% of the queries): past the
    // warm-up the cache evicts as fast as it fills, so memory is in its steady state and any growth is a leak.
    cache: { maxEntries: 500 + Math.ceil((QPS / 10) * (SECONDS / 3)) },
  });
  const logger = createLogger({ level: 'error' }, new LogSink());
  const registry = new ListRegistry(settings, { logger });
  t.teardown(() => registry.close());
  await within(20_000, registry.start(), 'list start');
  await within(20_000, registry.pollNow('demo'), 'first poll'); // start() does not wait under serve-unfiltered
  const daemon = await startDaemon(settings, { logger, lists: registry });
  t.teardown(() => within(5000, daemon.close(), 'daemon close'));
  const port = daemon.addresses.udp[0]!.port;
  t.equal(await rcodeOf(port, churn(1)), 3, 'the first release is enforced');

  // The schedule: updates every 10 s, the outage in the middle, RSS samples every 5 s.
  const t0 = performance.now();
  let outage: { from: number; to: number } | null = null;
  const updates: { serial: number; ok: boolean }[] = [];
  const rss: Sample[] = [];
  /** RSS with no list worker alive: just before each update and after the load (see the header). */
  const steady: Sample[] = [];
  /** This process's OS threads (Linux; null elsewhere): a list worker thread is one more while it lives. */
  const threads = (): number | null => {
    try {
      const m = /^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
      return m ? Number(m[1]) : null;
    } catch {
      return null;
    }
  };
  let fewestThreads = Infinity;
  /**
   * Waits (up to 3 s) until no list worker is alive, i.e. the process has no more threads than the fewest seen: on
   * a loaded machine the worker that loaded the last release can outlive its 5 s of idleness past the next sample.
   */
  const noListWorker = async (): Promise<void> => {
    for (let i = 0; i < 30; i++) {
      const n = threads();
      if (n === null) return;
      fewestThreads = Math.min(fewestThreads, n);
      if (n <= fewestThreads) return;
      await sleep(100);
    }
  };
  const sampleRss = (into: Sample[]): void => {
    const n = threads();
    if (n !== null) fewestThreads = Math.min(fewestThreads, n);
    gc();
    const m = process.memoryUsage();
    into.push({
      at: performance.now() - t0,
      mb: m.rss / 1048576,
      heap: m.heapUsed / 1048576,
      ext: m.external / 1048576,
    });
  };
  let lastPoll = performance.now();
  let running = true;
  const schedule = (async () => {
    let nextUpdate = UPDATE_MS;
    let nextSample = 0;
    const outageAt = (SECONDS * 1000) / 2;
    let outageDone = false;
    while (running) {
      const el = performance.now() - t0;
      if (el >= nextSample) {
        sampleRss(rss);
        nextSample += 5000;
      }
      if (!outageDone && el >= outageAt) {
        outageDone = true;
        outage = { from: el, to: el + OUTAGE_MS };
        upstream.stop();
        await sleep(OUTAGE_MS);
        await upstream.start();
        outage.to = performance.now() - t0;
      }
      if (el >= nextUpdate) {
        nextUpdate += UPDATE_MS;
        await noListWorker();
        sampleRss(steady);
        serial++;
        publish();
        const outcome = await within(15_000, registry.pollNow('demo'), 'poll');
        lastPoll = performance.now();
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
  // The last sample once the worker that loaded the last release has ended (5 s idle, and a margin).
  await sleep(Math.max(0, lastPoll + 6500 - performance.now()));
  await noListWorker();
  sampleRss(steady);

  t.comment(
    `sent ${report.sent}, answered ${report.answered}, lost ${report.lost}, wrong ${report.wrong}, rcodes ` +
      `${JSON.stringify(report.rcodes)}, updates ${updates.length}, outage ${JSON.stringify(outage)}`,
  );
  t.equal(report.wrong, 0, `no wrong answer ${report.wrongSamples.join('; ')}`);
  const outsideLost = report.lostAt.filter((s) => !inOutage(s * 1000 + 500)).length;
  t.equal(outsideLost, 0, `no query lost outside the outage (${report.lost} lost in all)`);
  t.ok(report.sent >= QPS * SECONDS * 0.9, `the load ran (${report.sent} queries)`);
  t.ok(outage !== null, 'the upstream was restarted');
  t.ok(updates.length >= Math.floor(SECONDS / 10) - 1, `${updates.length} list updates`);
  t.ok(
    updates.every((u) => u.ok),
    'after every update the new name is blocked and the dropped one is not',
  );
  const show = (xs: Sample[]): string =>
    xs.map((x) => `${x.mb.toFixed(1)} (heap ${x.heap.toFixed(1)}, ext ${x.ext.toFixed(1)})`).join(' ');
  t.comment(`RSS every 5 s (MiB): ${show(rss)}`);
  t.comment(`RSS with no list worker (MiB): ${show(steady)}`);
  // Warm-up: the first third, and at least one whole update cycle (steady[0] is taken before the first update:
  // the first worker thread that runs after it leaves native memory that stays, whatever the heap does).
  const after = steady
    .slice(1)
    .filter((s) => s.at >= (SECONDS * 1000) / 3)
    .map((s) => s.mb);
  const min = Math.min(...after);
  const max = Math.max(...after);
  t.comment(`RSS with no list worker, after warm-up (MiB): ${after.map((x) => x.toFixed(1)).join(' ')}`);
  t.ok(after.length >= 2, 'RSS sampled');
  t.ok(max <= min * 1.1, `RSS flat within 10% after warm-up (${min.toFixed(1)}..${max.toFixed(1)} MiB)`);
});
