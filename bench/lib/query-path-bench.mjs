// The query path's own cost, without client sockets: the built daemon's QueryPath is handed datagrams directly (the
// listener's handler, captured as startDaemon opens it) with a client whose reply() only counts. Per path (a cached
// name, a listed name, a unique name that goes upstream) it prints the time per query and the bytes the V8 heap
// allocated per query and kept after a scavenge (GC-free batches: a 64 MiB semi-space, v8.GCProfiler checks that
// no collection ran inside a batch), with the process's CPU time per query beside the wall time. Run against the
// bench's data and upstream (nsd on 127.0.0.1:5330 must be up: the first pass fills the cache from it;
// `npm run bench -- --targets=upstream` leaves nothing running, so start nsd with bench/work/run/nsd.conf, or run
// this while a bench runs).
//
//   node bench/lib/query-path-bench.mjs [rounds] [--sites[=many]] [--kept] [--promoted] [--live[=S]] [--paths]
//     [--semi=S]
//   (re-runs itself with --expose-gc and a 64 MiB semi-space, V8's default with --default-gc, at most S MiB with
//   --semi=S; --live alone skips the per-path batches unless --paths)
//
// --sites: also samples the heap's allocations (the inspector's sampling heap profiler, one sample per 128 bytes)
// during one more batch per path and prints the functions that allocated most, so "who allocates" has an answer;
// --kept: only the objects still alive at the end of that batch (who the survivors are); --promoted: only those no
// scavenge freed (still alive, or freed by a full collection: what reached the old generation), with --semi=4 and
// --live as hashwalld runs.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import v8 from 'node:v8';

import { ListKey, ListMatcher, parseFull } from '@hashwall/format';

import { queryFor } from './proc.mjs';

// --default-gc: V8's own semi-space sizes, for --live's collector figures; --semi=S: a semi-space of at most S MiB
// (hashwalld runs with 4: daemon/README.md, "Memory").
const semiArg = process.argv.find((a) => a.startsWith('--semi='));
const FLAGS =
  semiArg !== undefined
    ? ['--expose-gc', `--max-semi-space-size=${semiArg.split('=')[1]}`]
    : process.argv.includes('--default-gc')
      ? ['--expose-gc']
      : ['--expose-gc', '--max-semi-space-size=64', '--min-semi-space-size=64'];
if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, [...FLAGS, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
/** V8's collector, exposed by --expose-gc: `gc()` is a full collection, `gc({ type: 'minor' })` a scavenge. */
const gc = globalThis.gc;

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', '..', 'daemon', 'dist');
const { Listener } = await import(join(dist, 'dns', 'listeners.js'));
const { startDaemon } = await import(join(dist, 'daemon.js'));
const { settingsFrom } = await import(join(dist, 'config', 'load.js'));
const { createLogger } = await import(join(dist, 'util', 'log.js'));
const { Metrics } = await import(join(dist, 'ops', 'metrics.js'));
const { StaticListProvider } = await import(join(dist, 'lists', 'static.js'));

const data = join(here, '..', 'work', 'data');
const release = JSON.parse(readFileSync(join(data, 'release.json'), 'utf8'));
const full = parseFull(readFileSync(join(release.release, 'full', '1.hwl')), { maxBytes: 256 * 1024 * 1024 });
const lk = new ListKey(release.hashKey.id, Buffer.from(release.hashKey.key, 'hex'));
const matcher = new ListMatcher('bench', lk.hashKey(), full.entries.hashes, full.entries.kinds);

let handler = null;
const open = Listener.open;
Listener.open = (spec, h, ...rest) => {
  handler = h;
  return open.call(Listener, spec, h, ...rest);
};
const settings = settingsFrom(
  { listen: ['127.0.0.1:0'], upstreams: ['127.0.0.1:5330'], metrics: { listen: '' }, stateDir: '/tmp' },
  '/tmp',
);
const lists = new StaticListProvider([matcher]);
// The production events sink (ops/metrics.ts), as main.ts wires it.
const metrics = new Metrics({ processMetrics: false });
const daemon = await startDaemon(settings, {
  logger: createLogger({ level: 'warn' }),
  lists,
  events: metrics,
  policyEvents: metrics,
});

const lines = readFileSync(join(data, 'queries-sat.txt'), 'utf8').split('\n', 400_000).filter(Boolean);
const kinds = { hot: [], blocked: [], unique: [] };
for (const l of lines) {
  const name = l.split(' ')[0];
  const k = name.includes('.hot.') ? 'hot' : name.includes('.dyn.') ? 'unique' : 'blocked';
  kinds[k].push(queryFor(name, 0x1234));
}
let answered = 0;
const client = {
  transport: 'udp',
  address: '127.0.0.1',
  port: 40000,
  reply: () => void answered++,
  drop: () => void answered++,
  keep() {
    return this;
  },
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Hands `msgs` to the query path in chunks and waits (at most 10 s) until each chunk is answered. */
async function paced(msgs, chunk = 200) {
  for (let i = 0; i < msgs.length; i += chunk) {
    const want = answered + Math.min(chunk, msgs.length - i);
    for (let j = i; j < i + chunk && j < msgs.length; j++) handler.handle(msgs[j], client);
    const limit = performance.now() + 10_000;
    while (answered < want && performance.now() < limit) await sleep(1);
  }
}
// Fill the cache with every hot name (answers from nsd).
const seen = new Set();
await paced(
  kinds.hot.filter((m) => {
    const k = m.toString('latin1');
    return seen.has(k) ? false : (seen.add(k), true);
  }),
);
console.log(`cache: ${daemon.cacheSize()} entries`);

const args = process.argv.slice(2);
const kept = args.includes('--kept');
const promotedOnly = args.includes('--promoted');
const sites = args.includes('--sites=many') ? 'many' : args.includes('--sites') || kept || promotedOnly;
const liveArg = args.find((a) => a.startsWith('--live'));
const liveSeconds = liveArg === undefined ? 0 : Number(liveArg.split('=')[1] ?? 5);
const rounds = Number(args.find((a) => /^\d+$/.test(a)) ?? 5);
const used = () => v8.getHeapStatistics().used_heap_size;

/**
 * One GC-free batch: bytes allocated on the V8 heap per query (used heap after the batch less before it, after a
 * full collection), and bytes still there after a scavenge and a full collection (what the path keeps).
 */
async function allocBatch(msgs, run) {
  gc();
  gc();
  const before = used();
  const prof = new v8.GCProfiler();
  prof.start();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  await run(msgs);
  const cpu = process.cpuUsage(cpu0);
  const ns = Number(process.hrtime.bigint() - t0);
  const after = used();
  const gcs = prof.stop().statistics.length;
  gc({ type: 'minor' });
  const afterScavenge = used();
  gc();
  const afterFull = used();
  return {
    ns: ns / msgs.length,
    // CPU time (user + system, 1 µs resolution) of this process: on a busy machine the wall time also holds the
    // time other processes had the core.
    cpuNs: ((cpu.user + cpu.system) * 1000) / msgs.length,
    alloc: (after - before) / msgs.length,
    scavengeKept: (afterScavenge - before) / msgs.length,
    fullKept: (afterFull - before) / msgs.length,
    gcs,
  };
}
const sync = (msgs) => {
  for (const m of msgs) handler.handle(m, client);
};
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
/** Allocation sites of one more batch: self bytes per function (sampled), the largest first. */
async function allocationSites(msgs, run) {
  await sampledSites(
    () => run(msgs),
    () => msgs.length,
  );
}
/** Samples the heap's allocations while `work()` runs; prints bytes per query (`count()` queries) per function. */
async function sampledSites(work, count) {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  gc();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 128,
    // --kept: only what is still alive when sampling stops (who the survivors are), else everything allocated;
    // --promoted: what no scavenge freed (still alive, or freed by a full collection: what was promoted).
    includeObjectsCollectedByMajorGC: !kept,
    includeObjectsCollectedByMinorGC: !kept && !promotedOnly,
  });
  await work();
  if (kept) gc(); // the survivors only: what a collection now leaves
  const { profile } = await session.post('HeapProfiler.stopSampling');
  const n = count();
  session.disconnect();
  const by = new Map();
  const name = (cf) => {
    const file = cf.url.replace(/^file:\/\//, '').replace(/.*\/(daemon|blocklist-format|node_modules)\//, '$1/');
    return `${cf.functionName || '(anonymous)'} ${file}${file ? `:${cf.lineNumber + 1}` : ''}`.trim();
  };
  // A built-in (no script: Map, set, next, the V8 API) is named with the script function that called it.
  const walk = (node, caller) => {
    const cf = node.callFrame;
    const here = cf.url === '' && caller !== '' ? `${name(cf)} < ${caller}` : name(cf);
    if (node.selfSize > 0) by.set(here, (by.get(here) ?? 0) + node.selfSize);
    for (const c of node.children) walk(c, cf.url === '' ? caller : name(cf));
  };
  walk(profile.head, '');
  const total = [...by.values()].reduce((a, b) => a + b, 0);
  console.log(`  allocation sites (sampled, ${(total / n).toFixed(0)} B/query in all):`);
  for (const [site, bytes] of [...by].sort((a, b) => b[1] - a[1]).slice(0, sites === 'many' ? 40 : 14)) {
    console.log(`    ${(bytes / n).toFixed(1).padStart(7)} B/query  ${site}`);
  }
}

// Each listed and unique name is asked once per path: a batch per round from the names not asked yet, so a listed
// name costs its first decision (as most do in the bench's mix); `blocked-again` asks the first batch once more.
const perRound = (msgs) => Math.min(10_000, Math.floor(msgs.length / (rounds + 2)));
const nb = perRound(kinds.blocked);
const nu = perRound(kinds.unique);
const paths = [
  ['hot', (r) => kinds.hot.slice(r * 10_000, (r + 1) * 10_000), sync],
  ['blocked', (r) => kinds.blocked.slice(r * nb, (r + 1) * nb), sync],
  ['blocked-again', () => kinds.blocked.slice(0, nb), sync],
  ['unique', (r) => kinds.unique.slice(r * nu, (r + 1) * nu), (msgs) => paced(msgs)],
];
for (const [k, batchOf, run] of liveArg === undefined || args.includes('--paths') ? paths : []) {
  const out = [];
  for (let r = 0; r <= rounds; r++) {
    const m = await allocBatch(batchOf(r), run);
    if (r > 0 || k === 'blocked') out.push(m); // the first round warms up (but for new listed names)
  }
  const f = (key, d = 0) => median(out.map((m) => m[key])).toFixed(d);
  console.log(
    `${k.padEnd(13)} ${String(batchOf(0).length).padStart(6)} queries/round: ${f('ns')} ns/query` +
      `${k === 'unique' ? ' (wall, with the upstream)' : ''} (CPU ${f('cpuNs')}), heap allocated ${f('alloc')} B/query, ` +
      `kept after a scavenge ${f('scavengeKept')} B/query, after a full GC ${f('fullKept')} B/query ` +
      `(GCs inside batches: ${out.map((m) => m.gcs).join(' ')})`,
  );
  if (sites) await allocationSites(batchOf(rounds + 1), run);
}
if (liveSeconds > 0) await live(liveSeconds);
await daemon.close();

/**
 * --live[=S]: the whole process as it serves, sockets included: dnsperf (queries-lat.txt, the bench's latency mix)
 * at 10,000 q/s for S seconds against the daemon's own UDP listener. Bytes allocated are summed from every
 * collection's before and after heap figures (v8.GCProfiler) plus the growth since the last one; bytes promoted
 * are what each scavenge moved to the old generation. --sites samples a second run (queries-warm.txt: names not
 * asked yet). Counts every query answered (the listener's view). The latency percentiles (dnsperf -v) are this
 * process's, which also holds the parsed FULL and every query of the batches: a diagnosis, not the bench's figure,
 * and only on a quiet machine.
 */
async function live(seconds) {
  const { spawn } = await import('node:child_process');
  const port = daemon.addresses.udp[0].port;
  const { openSync, closeSync, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { readDnsperf } = await import('./dnsperf.mjs');
  const outFile = join(mkdtempSync(join(tmpdir(), 'qpb-')), 'dnsperf.out');
  // dnsperf -v (a line per query, for the percentiles) into a file, not this process's heap; on CPU --gen-cpu
  // (default 0) when taskset is there: run this bench as `taskset -c 1 node ...` to place it as the bench does.
  const genCpu = (args.find((a) => a.startsWith('--gen-cpu=')) ?? '--gen-cpu=0').split('=')[1];
  const runDnsperf = (file) =>
    new Promise((resolve) => {
      const fd = openSync(outFile, 'w');
      const dnsperf = ['-s', '127.0.0.1', '-p', port, '-d', join(data, file), '-l', seconds, '-Q', 10000, '-t', 2];
      const p = spawn('taskset', ['-c', genCpu, 'dnsperf', ...dnsperf.map(String), '-v'], {
        stdio: ['ignore', fd, 'inherit'],
      });
      const timer = setTimeout(() => p.kill('SIGKILL'), (seconds + 30) * 1000);
      p.on('close', () => {
        clearTimeout(timer);
        closeSync(fd);
        resolve(outFile);
      });
    });
  const completed = (file) => Number(/Queries completed:\s+(\d+)/.exec(readFileSync(file, 'utf8'))?.[1] ?? 0);
  // Per heap space: bytes allocated = growth between collections; new_space's is what makes scavenges come.
  const spaces = () => Object.fromEntries(v8.getHeapSpaceStatistics().map((x) => [x.space_name, x.space_used_size]));
  const fromGc = (h) => Object.fromEntries(h.heapSpaceStatistics.map((x) => [x.spaceName, x.spaceUsedSize]));
  gc();
  const start = spaces();
  const prof = new v8.GCProfiler();
  prof.start();
  const out = await runDnsperf('queries-lat.txt');
  const end = spaces();
  const stats = prof.stop().statistics;
  // ArrayBuffers (their backing stores, process.memoryUsage().arrayBuffers) that no scavenge frees: after two
  // scavenges, less after a full collection. Those reached the old generation and died there: the ones a full
  // collection's ArrayBuffer sweep frees.
  gc({ type: 'minor' });
  gc({ type: 'minor' });
  const abYoungSwept = process.memoryUsage().arrayBuffers;
  gc();
  const abOldGarbage = abYoungSwept - process.memoryUsage().arrayBuffers;
  const alloc = {};
  let last = start;
  let promoted = 0;
  let scavenges = 0;
  let scavengeMs = 0;
  let scavengeMax = 0;
  const grow = (from, to) => {
    for (const [k, v] of Object.entries(to)) alloc[k] = (alloc[k] ?? 0) + Math.max(0, v - (from[k] ?? 0));
  };
  for (const g of stats) {
    const b = fromGc(g.beforeGC);
    const a = fromGc(g.afterGC);
    grow(last, b);
    last = a;
    if (g.gcType === 'Scavenge') {
      scavenges++;
      scavengeMs += g.cost / 1000;
      scavengeMax = Math.max(scavengeMax, g.cost / 1000);
      promoted += (a.old_space ?? 0) - (b.old_space ?? 0);
    }
  }
  grow(last, end);
  const allocated = Object.values(alloc).reduce((x, y) => x + y, 0);
  const n = completed(out);
  const lat = await readDnsperf(out);
  console.log(
    `live: latency p50 ${lat.p50Ms.toFixed(3)} p99 ${lat.p99Ms.toFixed(3)} p99.9 ${lat.p999Ms.toFixed(3)} ` +
      `max ${lat.maxMs.toFixed(3)} ms (dnsperf -v), lost ${lat.lost}`,
  );
  console.log(
    `live: ${n} queries in ${seconds} s at 10,000 q/s (sockets, dnsperf): heap allocated ${(allocated / n).toFixed(0)} ` +
      `B/query (new space ${((alloc.new_space ?? 0) / n).toFixed(0)}, other spaces ${Object.entries(alloc)
        .filter(([k, v]) => k !== 'new_space' && v / n >= 1)
        .map(([k, v]) => `${k} ${(v / n).toFixed(0)}`)
        .join(', ')}), promoted by scavenges ${(promoted / n).toFixed(0)} B/query; ${scavenges} scavenges ` +
      `(${scavengeMs.toFixed(1)} ms, longest ${scavengeMax.toFixed(1)} ms), ${stats.length - scavenges} other ` +
      `collections (${stats
        .filter((g) => g.gcType !== 'Scavenge')
        .map((g) => `${g.gcType} ${(g.cost / 1000).toFixed(1)} ms`)
        .join(', ')})`,
  );
  console.log(
    `live: ArrayBuffer bytes promoted and dead at the end (freed by a full collection, not by two scavenges): ` +
      `${abOldGarbage} (${(abOldGarbage / n).toFixed(2)} B/query; a full collection ran in the load: ` +
      `${stats.some((g) => g.gcType !== 'Scavenge') ? 'yes' : 'no'})`,
  );
  if (sites) {
    let m = 0;
    await sampledSites(
      async () => (m = completed(await runDnsperf('queries-warm.txt'))),
      () => m,
    );
  }
}
