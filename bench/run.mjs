#!/usr/bin/env node
// npm run bench: hashwalld side by side with Unbound and dnsdist, the upstream alone and a raw node:dgram responder,
// on 127.0.0.1, with the same seeded query mix and the same 1,000,000-name blocklist. See bench/README.md.
//
//   npm run bench                       full run (2 rounds of 10 s per load; about 10 minutes)
//   npm run bench -- --quick            1 round of 4 s per load, for development
//   npm run bench -- --quick --targets=echo,hashwalld          the gate: PASS or FAIL per target, exit 1 on a FAIL
//   npm run bench -- --quick --targets=echo,unbound,hashwalld --fifo   the same on a machine others are using
//   npm run bench -- --targets=echo,hashwalld --rounds=1 --dur=5
//   npm run bench -- --perf             also where each server's CPU goes per query (perf record; perf.md)
//   npm run bench -- --help
//
// Every server is started here, pinned with taskset, and stopped here by PID. Every load is bounded by dnsperf's
// -l and a kill timer. Results go to bench/results/<date-time>/ (table.md, results.jsonl, the logs).
import { createSocket } from 'node:dgram';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { hashwalldConf, nsdConf, unboundConf, dnsdistConf } from './lib/configs.mjs';
import { buildHwl1, generate, generatePairs } from './lib/data.mjs';
import { readDnsperf, runDnsperf } from './lib/dnsperf.mjs';
import { readH2load, runH2load, writeUris } from './lib/h2load.mjs';
import { pairsMedian, ratioTo } from './lib/pairs.mjs';
import { loopSummary, markLoop } from './lib/loop.mjs';
import { summarize, summaryText } from './lib/profile-summary.mjs';
import { daemonEnv, shippedFlags } from './lib/shipped.mjs';
import { makeTls, measureTlsSetup } from './lib/tls.mjs';
import { perfFigures, perfMarkdown, perfReport, perfUnavailable, recordPerf, removePerfMaps } from './lib/perf.mjs';
import {
  cpuDiff,
  cpuSnap,
  descendants,
  FIFO_PRIORITY,
  killAll,
  noiseOf,
  portFree,
  probe,
  queryFor,
  realtime,
  waitsForNoHelper,
  sleep,
  startPinned,
  stop,
  sumMb,
  threadDiff,
  threadSnap,
} from './lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');

const ALL_TARGETS = [
  'echo',
  'echo-batch',
  'forward',
  'forward-ports',
  'upstream',
  'unbound',
  'dnsdist',
  'hashwalld',
  'hashwalld-w2',
  'dnsdist-dot',
  'hashwalld-dot',
  'dnsdist-doh',
  'hashwalld-doh',
];
/** The encrypted rows: the server, and the transport its loads use (dnsperf -m dot; h2load for DoH). */
const ENCRYPTED = {
  'dnsdist-dot': { base: 'dnsdist', mode: 'dot' },
  'hashwalld-dot': { base: 'hashwalld', mode: 'dot' },
  'dnsdist-doh': { base: 'dnsdist', mode: 'doh' },
  'hashwalld-doh': { base: 'hashwalld', mode: 'doh' },
};
const { values: o } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    targets: { type: 'string', default: process.env.TARGETS ?? ALL_TARGETS.join(',') },
    rounds: { type: 'string', default: process.env.ROUNDS },
    dur: { type: 'string', default: process.env.DUR },
    'lat-qps': { type: 'string', default: process.env.LAT_QPS ?? '10000' },
    warm: { type: 'string', default: process.env.WARM },
    outstanding: { type: 'string', default: process.env.OUTSTANDING ?? '200' },
    clients: { type: 'string', default: process.env.CLIENTS ?? '4' },
    seed: { type: 'string', default: process.env.SEED ?? '20261122' },
    block: { type: 'string', default: process.env.NBLOCK ?? '1000000' },
    'srv-cpu': { type: 'string', default: process.env.SRV_CPU ?? '1' },
    'gen-cpu': { type: 'string', default: process.env.GEN_CPU ?? '0' },
    // hashwalld runs with the V8 flags and the environment (MALLOC_ARENA_MAX) the hashwalld command and the systemd
    // unit give it (lib/shipped.mjs; daemon/README.md, "Memory"); --node-flags replaces the flags, a variable set
    // in the bench's own environment the shipped one.
    'node-flags': { type: 'string', default: process.env.NODE_FLAGS ?? shippedFlags.join(' ') },
    profile: { type: 'boolean', default: process.env.PROFILE === '1' },
    fifo: { type: 'boolean', default: process.env.FIFO === '1' },
    perf: { type: 'boolean', default: process.env.PERF === '1' },
    'foreign-max': { type: 'string', default: process.env.FOREIGN_MAX ?? '15' },
    // The host's steal (ms a second of a load, over both cores) past which a row is run again: 0-8 on this VM with a
    // quiet host, up to ~1,100 with a busy one (bench/README.md, "The gate").
    'steal-max': { type: 'string', default: process.env.STEAL_MAX ?? '20' },
    attempts: { type: 'string', default: process.env.MAX_ATTEMPTS ?? '3' },
    // The saturated pairs (bench/README.md, "Saturated pairs"): by default 5 when the targets hold the echo and
    // hashwalld, else none; each load --pair-dur seconds.
    pairs: { type: 'string', default: process.env.PAIRS },
    'pair-dur': { type: 'string', default: process.env.PAIR_DUR ?? '5' },
    // The gate's references when the run has no Unbound row: Unbound's p99 at the latency rate, its peak RSS and
    // its anonymous memory, as measured on this machine kind (bench/README.md, "The gate").
    'p99-ref': { type: 'string', default: process.env.P99_REF_MS ?? '0.15' },
    'rss-ref': { type: 'string', default: process.env.RSS_REF_MB ?? '431' },
    'anon-ref': { type: 'string', default: process.env.ANON_REF_MB ?? '422' },
    help: { type: 'boolean', default: false },
  },
});
if (o.help) {
  process.stdout.write(
    [
      'usage: npm run bench -- [--quick] [--targets=a,b] [--rounds=N] [--dur=S] [--warm=S] [--lat-qps=Q] [--outstanding=N]',
      '       [--clients=N] [--seed=N] [--block=N] [--srv-cpu=C] [--gen-cpu=C] [--node-flags="..."] [--profile]',
      '       [--perf] [--fifo] [--foreign-max=PCT] [--steal-max=MS] [--attempts=N] [--pairs=N] [--pair-dur=S]',
      '       [--p99-ref=MS] [--rss-ref=MIB] [--anon-ref=MIB]',
      `targets: ${ALL_TARGETS.join(', ')}`,
      'env: TARGETS ROUNDS DUR WARM LAT_QPS OUTSTANDING CLIENTS SEED NBLOCK SRV_CPU GEN_CPU NODE_FLAGS PROFILE=1',
      '     PERF=1 FIFO=1 FOREIGN_MAX STEAL_MAX MAX_ATTEMPTS PAIRS PAIR_DUR P99_REF_MS RSS_REF_MB ANON_REF_MB',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const ROUNDS = Number(o.rounds ?? (o.quick ? 1 : 2));
const DUR = Number(o.dur ?? (o.quick ? 4 : 10));
const LAT_QPS = Number(o['lat-qps']);
// The warm-up covers hashwalld's start-up transients (code compiled, the young generation sized, the collections
// after the list load, the list worker's exit: about 8 s from exec, bench/README.md), the same for every target.
const WARM = Number(o.warm ?? 8);
const SRV_CPU = o['srv-cpu'];
const GEN_CPU = o['gen-cpu'];
const TARGETS = o.targets.split(',').filter(Boolean);
for (const t of TARGETS) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t}`);
const BOTH_CPUS = `${GEN_CPU},${SRV_CPU}`;
const PAIRS = Number(o.pairs ?? (TARGETS.includes('echo') && TARGETS.includes('hashwalld') ? 5 : 0));
const PAIR_DUR = Number(o['pair-dur']);
const PORTS = {
  upstream: 5330,
  echo: 5331,
  unbound: 5332,
  dnsdist: 5333,
  hashwalld: 5334,
  'hashwalld-w2': 5335,
  forward: 5336,
  'dnsdist-dot': 5337,
  'hashwalld-dot': 5338,
  'dnsdist-doh': 5339,
  'hashwalld-doh': 5340,
  'echo-batch': 5341,
  'forward-ports': 5342,
};
/** The DoT or DoH port of each encrypted row (its plain port above answers the readiness probe). */
const TLS_PORTS = { 'dnsdist-dot': 8531, 'hashwalld-dot': 8532, 'dnsdist-doh': 4431, 'hashwalld-doh': 4432 };
const PERF = o.perf;
// --perf: perf record samples each saturation load for PERF_S seconds, started PERF_AT seconds in, on the
// generator's CPU: from 2 s in for DUR-4 s, at least 2 s. perf takes ~0.6 s from its start to its first sample
// (and ~1 s after its last to write its file), so for loads under 5 s the start moves earlier: the sampled window
// ends inside the load.
const PERF_S = Math.max(2, DUR - 4);
const PERF_AT = Math.max(0, Math.min(2, DUR - PERF_S - 1));
// --fifo: the latency loads under SCHED_FIFO (dnsperf, the upstream and each server's main thread), so that other
// work on a shared machine cannot preempt them (bench/README.md, "On a busy machine").
const FIFO = o.fifo;
if (FIFO) {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync('chrt', ['-f', String(FIFO_PRIORITY), 'true'], { encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(
      `bench: --fifo needs chrt and the right to use SCHED_FIFO (root or CAP_SYS_NICE): ${r.stderr}\n`,
    );
    process.exit(2);
  }
}
if (PERF) {
  const why = perfUnavailable();
  if (why !== null) {
    process.stderr.write(`bench: --perf needs Linux perf: ${why}\n`);
    process.exit(2);
  }
}

const stamp = new Date().toISOString().replace(/[:T]/g, '-').slice(0, 19);
const RES = join(here, 'results', stamp);
const WORK = join(here, 'work');
const DATA = join(WORK, 'data');
const RUN = join(WORK, 'run');
mkdirSync(RES, { recursive: true });
mkdirSync(RUN, { recursive: true });
const log = (s) => {
  const line = `[${new Date().toISOString().slice(11, 19)}] ${s}`;
  process.stderr.write(line + '\n');
  appendFileSync(join(RES, 'log.txt'), line + '\n');
};
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

// ---------------------------------------------------------------- data
const benchStart = performance.now();
log(`results -> ${RES}`);
log(
  `rounds=${ROUNDS} dur=${DUR}s lat-qps=${LAT_QPS} dnsperf -q ${o.outstanding} -c ${o.clients} on cpu ${GEN_CPU}, ` +
    `servers on cpu ${SRV_CPU}, upstream on cpu ${GEN_CPU}; ${availableParallelism()} cpus`,
);
const satQueries = Math.max(200_000, DUR * 200_000);
const latQueries = Math.max(50_000, Math.ceil(DUR * LAT_QPS * 1.2));
const gen = await generate(DATA, {
  seed: Number(o.seed),
  block: Number(o.block),
  satQueries,
  latQueries,
});
log(`data ${gen.generated ? 'generated' : 'reused'} (seed ${o.seed}, ${o.block} blocked names)`);
// A pair's file holds more than one server sharing the core asks in PAIR_DUR seconds (no row here has passed
// 100,000 q/s with a core of its own; dnsperf starts the file again at its end, and a unique name asked twice would
// be a cache hit).
const pairFiles =
  PAIRS > 0
    ? await generatePairs(DATA, { seed: Number(o.seed), pairs: PAIRS, count: Math.max(200_000, PAIR_DUR * 100_000) })
    : [];
let t0 = performance.now();
const release = buildHwl1(DATA);
log(
  `HWL1 release: ${release.entries} entries, FULL ${(release.fullBytes / 1048576).toFixed(1)} MiB, ` +
    `built and signed in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
const blocklistFirst = 'www.' + (await firstLine(join(DATA, 'blocklist.txt')));

async function firstLine(file) {
  const { createReadStream } = await import('node:fs');
  const { createInterface } = await import('node:readline');
  for await (const l of createInterface({ input: createReadStream(file) })) return l;
  return '';
}

for (const [name, port] of [...Object.entries(PORTS), ...Object.entries(TLS_PORTS)]) {
  if (!(await portFree(port, name in TLS_PORTS ? 'tcp' : 'udp'))) {
    log(`port 127.0.0.1:${port} (${name}) is in use by something this bench did not start: stopping`);
    process.exit(1);
  }
}

// A throwaway certificate for the DoT and DoH rows (openssl; the load generators do not verify it).
const tls = TARGETS.some((t) => t in ENCRYPTED) ? await makeTls(join(WORK, 'tls')) : null;

// ---------------------------------------------------------------- versions
{
  const { execFileSync } = await import('node:child_process');
  const v = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0];
    } catch (err) {
      return String(err.stderr ?? '').split('\n')[0] || 'missing';
    }
  };
  const versions = {
    node: process.version,
    dnsperf: v('sh', ['-c', 'dnsperf -h 2>&1 | sed -n "s/^Version //p"']),
    unbound: v('sh', ['-c', 'unbound -V | head -1']),
    dnsdist: v('dnsdist', ['--version']),
    nsd: v('sh', ['-c', 'nsd -v 2>&1 | head -1']),
    h2load: v('sh', ['-c', 'h2load --version 2>&1 | head -1']),
    openssl: v('openssl', ['version']),
    kernel: v('uname', ['-r']),
    cpus: availableParallelism(),
  };
  writeFileSync(join(RES, 'versions.json'), JSON.stringify(versions, null, 2));
  log(`versions: ${JSON.stringify(versions)}`);
}

// ---------------------------------------------------------------- upstream
writeFileSync(join(RUN, 'nsd.conf'), nsdConf({ port: PORTS.upstream, dataDir: DATA, runDir: RUN, zones: gen.zones }));
t0 = performance.now();
const nsd = startPinned(GEN_CPU, 'nsd', ['-d', '-c', join(RUN, 'nsd.conf')], { log: join(RES, 'nsd.log') });
if ((await probe(PORTS.upstream, 'h0.hot.test', 0, 60_000)) === null) {
  log('nsd did not answer within 60 s (see nsd.log)');
  process.exit(1);
}
const nsdLoad = (performance.now() - t0) / 1000;
const nsdPids = descendants(nsd.pid);
log(`upstream nsd ready in ${nsdLoad.toFixed(2)} s (pids ${nsdPids.join(' ')})`);

// ---------------------------------------------------------------- targets
// --perf: V8 writes the names of its JIT code to /tmp/perf-<pid>.map for perf report. The flag also turns on V8's
// event log (isolate-*-v8.log in the working directory): one file in the results folder instead.
const perfFlags = PERF
  ? ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(RES, 'v8-events.log')}`]
  : [];
// Every Node row: the event-loop delay and the collector's pauses per load (lib/loop-delay.mjs; the children
// inherit the folder through the environment, cluster workers the flag through execArgv).
const LOOP_DIR = join(RES, 'loop');
mkdirSync(LOOP_DIR, { recursive: true });
process.env.HW_BENCH_LOOP_DIR = LOOP_DIR;
const nodeFlags = [...perfFlags, '--import', join(here, 'lib', 'loop-delay.mjs')];

/**
 * How each target is started; `block` is true when it must answer NXDOMAIN for listed names, `node` when it is a
 * Node process (perf-basic-prof maps to remove).
 */
function targetSpec(t, round) {
  const port = PORTS[t];
  const enc = ENCRYPTED[t];
  const extra = enc === undefined ? {} : { [enc.mode]: TLS_PORTS[t], tls };
  switch (enc?.base ?? t) {
    case 'echo':
      return {
        port,
        cpus: SRV_CPU,
        cmd: process.execPath,
        args: [...nodeFlags, join(here, 'lib', 'echo.mjs'), '127.0.0.1', port],
        node: true,
      };
    case 'echo-batch':
      return {
        port,
        cpus: SRV_CPU,
        cmd: process.execPath,
        args: [...nodeFlags, join(here, 'lib', 'echo.mjs'), '127.0.0.1', port, '--batch'],
        node: true,
      };
    case 'forward':
    case 'forward-ports':
      return {
        port,
        cpus: SRV_CPU,
        cmd: process.execPath,
        args: [
          ...nodeFlags,
          join(here, 'lib', 'forward.mjs'),
          '127.0.0.1',
          port,
          '127.0.0.1',
          PORTS.upstream,
          ...(t === 'forward-ports' ? ['--ports'] : []),
        ],
        node: true,
      };
    case 'unbound': {
      const conf = join(RUN, 'unbound.conf');
      writeFileSync(
        conf,
        unboundConf({
          port,
          upstreamPort: PORTS.upstream,
          runDir: RUN,
          localZoneFile: join(DATA, 'localzone.conf'),
        }),
      );
      return { port, cpus: SRV_CPU, cmd: 'unbound', args: ['-d', '-c', conf], block: true };
    }
    case 'dnsdist': {
      const conf = join(RUN, `${t}.conf`);
      writeFileSync(
        conf,
        dnsdistConf({ port, upstreamPort: PORTS.upstream, blocklistFile: join(DATA, 'blocklist.txt'), ...extra }),
      );
      return {
        port,
        ...(enc && { mode: enc.mode, loadPort: TLS_PORTS[t] }),
        cpus: SRV_CPU,
        cmd: 'dnsdist',
        args: ['--supervised', '--disable-syslog', '-C', conf],
        block: true,
      };
    }
    case 'hashwalld':
    case 'hashwalld-w2': {
      const workers = t === 'hashwalld-w2' ? 2 : 1;
      const stateDir = join(RUN, `state-${t}`);
      rmSync(stateDir, { recursive: true, force: true });
      const conf = join(RUN, `${t}.yaml`);
      writeFileSync(conf, hashwalldConf({ port, upstreamPort: PORTS.upstream, stateDir, release, workers, ...extra }));
      const flags = [...nodeFlags, ...o['node-flags'].split(' ').filter(Boolean)];
      if (o.profile) flags.push('--cpu-prof', `--cpu-prof-dir=${join(RES, `prof-${t}-r${round}`)}`);
      return {
        port,
        ...(enc && { mode: enc.mode, loadPort: TLS_PORTS[t] }),
        // One process: the server core. Two workers: both cores (shared with dnsperf and the upstream).
        cpus: workers === 1 ? SRV_CPU : BOTH_CPUS,
        cmd: process.execPath,
        args: [...flags, join(repo, 'daemon', 'dist', 'main.js'), '--config', conf],
        env: daemonEnv(),
        block: true,
        node: true,
      };
    }
    default:
      throw new Error(t);
  }
}

const rows = [];
const isBlocked = (name) => /\.blk\d+\.test\.?$/.test(name);

/** Where the loads of `spec` go: dnsperf's arguments for plain DNS and DoT; DoH goes to h2load (lib/h2load.mjs). */
function dnsperfTarget(spec) {
  return spec.mode === 'dot'
    ? ['-m', 'dot', '-s', '127.0.0.1', '-p', spec.loadPort]
    : ['-s', '127.0.0.1', '-p', spec.port];
}

/** The DoH URIs of query file `file` for `spec` (made once per target and file, at most `max` of them). */
async function urisFor(spec, file, max) {
  const out = join(RUN, `uris-${spec.loadPort}-${file.replace(/\W/g, '')}.txt`);
  await writeUris(join(DATA, file), out, `https://127.0.0.1:${spec.loadPort}/dns-query`, max);
  return out;
}

/**
 * One load: dnsperf (plain and DoT), h2load (DoH: -c 1, -m the outstanding queries, --rps the fixed rate). With
 * `blocking`, dnsperf's per-query rcodes are checked (listed names NXDOMAIN, others NOERROR); h2load sees HTTP only.
 */
async function load(t, round, attempt, mode, spec, pids, blocking, node) {
  const file = mode === 'lat' ? 'queries-lat.txt' : 'queries-sat.txt';
  const out = join(RES, `${t}-r${round}a${attempt}-${mode}.out`);
  const groups = { srv: pids, upstream: t === 'upstream' ? [] : nsdPids };
  // --fifo: the latency load's processes under SCHED_FIFO (every thread), back to SCHED_OTHER after it.
  const fifo = FIFO && mode === 'lat';
  const rtPids = [...pids, ...(t === 'upstream' ? [] : nsdPids)];
  let run;
  let logFile = null;
  if (spec.mode === 'doh') {
    const rate = mode === 'lat' ? LAT_QPS : 0;
    const uris = await urisFor(spec, file, Math.min(400_000, Math.ceil(DUR * (rate || 40_000) * 1.2)));
    const args = ['-i', uris, '-c', 1, '-D', DUR, '-m', mode === 'lat' ? 500 : o.outstanding];
    if (mode === 'lat') {
      logFile = join(RES, `${t}-r${round}a${attempt}-lat.h2log`);
      args.push('--rps', LAT_QPS, `--log-file=${logFile}`);
    }
    run = () => runH2load({ cpu: GEN_CPU, args, outFile: out, limitSeconds: DUR });
  } else {
    const args = [...dnsperfTarget(spec), '-d', join(DATA, file), '-l', DUR, '-t', 2];
    if (mode === 'lat') args.push('-Q', LAT_QPS, '-q', 500, '-c', 1, '-v');
    else args.push('-q', o.outstanding, '-c', o.clients);
    run = () => runDnsperf({ cpu: GEN_CPU, args, outFile: out, limitSeconds: DUR, fifo });
  }
  // A Node server's helper threads below its main thread only when it waits for none of them (lib/proc.mjs).
  const below = !node || waitsForNoHelper(spec.args.map(String));
  if (fifo) for (const p of pids) realtime(p, true, GEN_CPU, below);
  if (fifo && t !== 'upstream') for (const p of nsdPids) realtime(p, true, GEN_CPU);
  // A Node row's event-loop delay and collections: from here to the end of the load.
  if (node) await markLoop(pids, LOOP_DIR);
  const a = cpuSnap(groups);
  const ta = node ? threadSnap(pids) : null;
  const sampling = PERF && mode === 'sat' ? perfWindow(t, round, pids) : null;
  // The load's window on the monotonic clock in microseconds, the clock of a --cpu-prof profile's timestamps.
  const fromUs = Number(process.hrtime.bigint() / 1000n);
  const { cpuSeconds } = await run();
  const toUs = Number(process.hrtime.bigint() / 1000n);
  const b = cpuSnap(groups);
  const threads = node ? threadDiff(ta, threadSnap(pids)) : null;
  const loopLines = node ? loopSummary(await markLoop(pids, LOOP_DIR)) : null;
  const loop = loopLines === null ? null : { ...loopLines, threads };
  if (fifo) for (const p of rtPids) realtime(p, false, GEN_CPU);
  const perf = sampling === null ? null : await sampling;
  // perf's own CPU (on the generator's core) is not the machine's other work.
  const cpu = cpuDiff(a, b, cpuSeconds + (perf?.perfCpuS ?? 0));
  const r =
    spec.mode === 'doh'
      ? await readH2load(out, logFile)
      : await readDnsperf(out, mode === 'lat' && blocking ? (n) => (isBlocked(n) ? 'NXDOMAIN' : 'NOERROR') : null);
  // Per-query lines: large; the figures are kept in results.jsonl.
  if (mode === 'lat') rmSync(out);
  if (logFile !== null) rmSync(logFile, { force: true });
  return {
    ...r,
    srvCpu: cpu.srv,
    foreignCpu: cpu.foreign,
    stealMs: cpu.stealMs,
    loop,
    window: { fromUs, toUs },
    ...(perf === null ? {} : { perfWindow: perf }),
  };
}

/**
 * --perf: PERF_AT seconds into the load, `perf record` on the server's processes for PERF_S seconds of sampling,
 * on the generator's CPU. Resolves with { file, perfCpuS } (file null when perf failed; perfCpuS: the CPU perf
 * itself used, for the other-work figure).
 */
async function perfWindow(t, round, pids) {
  await sleep(PERF_AT * 1000);
  const file = join(RES, `perf-${t}-r${round}.data`);
  const rec = await recordPerf({
    cpu: GEN_CPU,
    pids,
    out: file,
    seconds: PERF_S,
    log: join(RES, `perf-${t}-r${round}.log`),
  });
  if (rec.code !== 0) log(`    perf record exited with ${rec.code} (see perf-${t}-r${round}.log)`);
  return { file: rec.code === 0 ? file : null, perfCpuS: rec.cpuSeconds };
}

/**
 * Starts target `t` (not the upstream) for `round` and waits until it answers; null when it did not in 180 s (it is
 * stopped). Resolves with its spec, process, PIDs, start-up time and RSS when ready.
 */
async function startTarget(t, round, attempt) {
  const spec = targetSpec(t, round);
  const t1 = performance.now();
  const proc = startPinned(spec.cpus, spec.cmd, spec.args.map(String), {
    log: join(RES, `${t}-r${round}.log`),
    env: spec.env,
  });
  const ok = await probe(spec.port, spec.block ? blocklistFirst : 'h1.hot.test', spec.block ? 3 : 'any', 180_000);
  if (ok === null) {
    log(`  ${t} did not become ready in 180 s (see ${t}-r${round}.log)`);
    await stop(proc);
    return null;
  }
  const loadS = (performance.now() - t1) / 1000;
  const pids = descendants(proc.pid);
  const rssReady = sumMb(pids, 'VmRSS');
  if (spec.block && (await probe(spec.port, 'h2.hot.test', 0, 5000)) === null) {
    log(`  warning: ${t} does not forward h2.hot.test`);
  }
  if (t.startsWith('forward') && !(await answersWithRecords(spec.port, `ready-${round}-${attempt}.dyn.test`, 5000))) {
    log(`  warning: ${t} did not pass a .dyn.test question to the upstream (no answer with records)`);
  }
  return { spec, proc, pids, loadS, rssReady };
}

/**
 * The warm-up, the same for every target: the latency load's rate and mix (its own unique names) for WARM seconds,
 * so the figures are of a running server (caches filled, code compiled), not of its first seconds.
 */
async function warmUp(spec) {
  if (WARM <= 0) return;
  if (spec.mode === 'doh') {
    const uris = await urisFor(spec, 'queries-warm.txt', Math.ceil(WARM * LAT_QPS * 1.2));
    await runH2load({
      cpu: GEN_CPU,
      args: ['-i', uris, '-c', 1, '-D', WARM, '-m', 500, '--rps', LAT_QPS],
      outFile: join(RES, 'warm.out'),
      limitSeconds: WARM,
    });
  } else {
    await runDnsperf({
      cpu: GEN_CPU,
      args: [...dnsperfTarget(spec), '-d', join(DATA, 'queries-warm.txt'), '-l', WARM, '-Q', LAT_QPS, '-q', 500],
      outFile: join(RES, 'warm.out'),
      limitSeconds: WARM,
    });
  }
}

async function runTarget(t, round, attempt) {
  let pids;
  let proc = null;
  let loadS;
  let rssReady;
  let spec;
  if (t === 'upstream') {
    spec = { port: PORTS.upstream, block: false };
    // The upstream alone: moved to the server core for its row, then back.
    for (const p of nsdPids) await taskset(p, SRV_CPU);
    pids = nsdPids;
    loadS = nsdLoad;
    rssReady = sumMb(pids, 'VmRSS');
  } else {
    const started = await startTarget(t, round, attempt);
    if (started === null) return null;
    ({ spec, proc, pids, loadS, rssReady } = started);
  }
  log(
    `  ${t} round ${round}${attempt > 1 ? ` attempt ${attempt}` : ''}: ready in ${loadS.toFixed(2)} s, ${rssReady.toFixed(0)} MiB`,
  );
  await warmUp(spec);
  const node = spec.node === true;
  const lat = await load(t, round, attempt, 'lat', spec, pids, spec.block === true, node);
  log(
    `    lat@${LAT_QPS}: avg ${lat.avgMs.toFixed(3)} p50 ${lat.p50Ms.toFixed(3)} p99 ${lat.p99Ms.toFixed(3)} ` +
      `p99.9 ${lat.p999Ms.toFixed(3)} ms, lost ${lat.lost}, wrong ${lat.wrong ?? '-'}, srv ${lat.srvCpu.toFixed(0)}% ` +
      `foreign ${lat.foreignCpu.toFixed(0)}% steal ${lat.stealMs.toFixed(0)} ms${loopText(lat.loop)}`,
  );
  const sat = await load(t, round, attempt, 'sat', spec, pids, spec.block === true, node);
  log(
    `    sat: ${sat.qps.toFixed(0)} q/s, avg ${sat.avgMs.toFixed(3)} ms, lost ${sat.lost}, NX ${sat.nxPct.toFixed(1)}%, ` +
      `srv ${sat.srvCpu.toFixed(0)}% foreign ${sat.foreignCpu.toFixed(0)}%${loopText(sat.loop)}`,
  );
  const allPids = t === 'upstream' ? pids : descendants(proc.pid);
  // DoT and DoH: what a new TLS session costs the server (full handshakes, s_time -new).
  const setup = spec.mode
    ? await measureTlsSetup({ cpu: GEN_CPU, port: spec.loadPort, seconds: Math.min(DUR, 5), pids: allPids })
    : null;
  if (setup !== null) {
    log(
      `    TLS set-up: ${setup.perSecond.toFixed(0)} new sessions/s, ${setup.serverCpuUs.toFixed(0)} µs of server CPU each`,
    );
  }
  const peak = sumMb(allPids, 'VmHWM');
  // What the RSS is made of at the end of the saturation load (where the peak usually is: caches full): anonymous
  // memory (heaps, the list, caches) and file-backed pages (the executable and libraries, shared between processes
  // running the same binary and given back under memory pressure).
  const rssEnd = { anonMb: sumMb(allPids, 'RssAnon'), fileMb: sumMb(allPids, 'RssFile') };
  if (t === 'upstream') for (const p of nsdPids) await taskset(p, GEN_CPU);
  else await stop(proc);
  const row = { target: t, round, attempt, loadS, rssReadyMb: rssReady, peakRssMb: peak, rssEnd, lat, sat, setup };
  // One hashwalld process (its plain, DoT and DoH rows): the profile's windows.
  if (o.profile && (t === 'hashwalld' || ENCRYPTED[t]?.base === 'hashwalld'))
    profileWindow(t, round, proc.pid, lat, sat);
  if (PERF) {
    // After the server stopped (the report takes a few seconds of the generator's CPU), before its maps go.
    const w = sat.perfWindow;
    if (w?.file) {
      try {
        const report = await perfReport(w.file, GEN_CPU);
        row.perf = perfFigures(report, { windowS: PERF_S, qps: sat.qps, loadCpuPct: sat.srvCpu });
        const p = row.perf;
        log(
          `    perf (${p.event}): ${p.nsTotal.toFixed(0)} ns/query, ${p.samples} samples (CPU ${p.cpuPct.toFixed(0)}% ` +
            `in the window), kernel ${p.ns.kernel.toFixed(0)}, collector ${p.ns.gc.toFixed(0)}, ` +
            `server's JS ${p.ns.jsServer.toFixed(0)}`,
        );
      } catch (err) {
        log(`    perf report failed: ${String(err.message).split('\n')[0]}`);
      }
    }
    if (spec.node) removePerfMaps(allPids);
  }
  appendFileSync(join(RES, 'results.jsonl'), JSON.stringify(row) + '\n');
  return row;
}

/**
 * --profile: the latency and the saturated windows of one hashwalld process's --cpu-prof profile, summarized
 * (lib/profile-summary.mjs) into prof-<target>-r<round>-<lat|sat>.txt: whose code the busy time went to, in ns per
 * answered query, and per function.
 */
function profileWindow(t, round, pid, lat, sat) {
  const dir = join(RES, `prof-${t}-r${round}`);
  const file = readdirSync(dir).find((f) => f.includes(`.${pid}.`) && f.endsWith('.cpuprofile'));
  if (file === undefined) {
    log(`    no profile of ${pid} in ${dir}`);
    return;
  }
  const prof = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  for (const [mode, load, qps] of [
    ['lat', lat, LAT_QPS],
    ['sat', sat, sat.qps],
  ]) {
    // The load's first and last second left out: dnsperf starting and stopping.
    const s = summarize(prof, { fromUs: load.window.fromUs + 1e6, toUs: load.window.toUs - 1e6 });
    const text = summaryText(s, { top: 40, qps });
    writeFileSync(join(RES, `prof-${t}-r${round}-${mode}.txt`), `${file}, ${mode} window\n${text}`);
    const own = (100 * s.categories.own) / s.busyUs;
    const nsq = (us) => (us * 1000) / (qps * (s.totalUs / 1e6));
    log(
      `    profile (${mode} window, prof-${t}-r${round}-${mode}.txt): busy ${nsq(s.busyUs).toFixed(0)} ns/query, ` +
        `own JS ${own.toFixed(1)}% of it, ` +
        Object.entries(s.features)
          .map(([k, us]) => `${k.replace(/ \(.*/, '')} ${((100 * us) / s.busyUs).toFixed(1)}%`)
          .join(', '),
    );
    load.profile = {
      ownPct: own,
      categories: s.categories,
      features: s.features,
      busyUs: s.busyUs,
      totalUs: s.totalUs,
    };
  }
}

/** A load's event-loop delay and collections, for the log line ('' for a row that is not a Node process). */
function loopText(l) {
  if (!l) return '';
  return (
    `; loop delay p99 ${l.p99Ms.toFixed(2)} p99.9 ${l.p999Ms.toFixed(2)} max ${l.maxMs.toFixed(2)} ms, ` +
    `GC ${l.gc.minor} minor ${l.gc.major} major, longest ${l.gc.maxMs.toFixed(2)} ms (${l.gc.maxKind || '-'}); ` +
    `main thread ${l.threads.mainPct.toFixed(0)}%, other threads ${l.threads.otherPct.toFixed(1)}%` +
    `${l.threads.ended ? ` (${l.threads.ended} ended)` : ''}, main thread ` +
    `waiting for the core ${l.threads.mainWaitMsPerS.toFixed(1)} ms/s, ${l.threads.majorFaults} major page faults`
  );
}

/** Whether a question for `name` (A) at 127.0.0.1:`port` gets an answer with at least one record in time. */
function answersWithRecords(port, name, timeoutMs) {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const done = (v) => {
      clearTimeout(timer);
      s.close();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.on('message', (m) => {
      if (m.length >= 12 && m[0] === 0x12 && m[1] === 0x34) done(((m[6] << 8) | m[7]) > 0);
    });
    s.on('error', () => undefined);
    s.send(queryFor(name, 0x1234), port, '127.0.0.1', () => undefined);
  });
}

async function taskset(pid, cpus) {
  const p = startPinned(GEN_CPU, 'taskset', ['-p', '-c', cpus, String(pid)]);
  await p.exited;
}

const foreignMax = Number(o['foreign-max']);
const stealMax = Number(o['steal-max']);
for (let round = 1; round <= ROUNDS; round++) {
  for (const t of TARGETS) {
    log(`round ${round}: ${t}`);
    for (let attempt = 1; attempt <= Number(o.attempts); attempt++) {
      const row = await runTarget(t, round, attempt);
      if (row === null) break;
      const noise = noiseOf(row, { foreignMax, stealMax, loadSeconds: DUR });
      if (noise === null || attempt === Number(o.attempts)) {
        row.noisy = noise !== null;
        row.noise = noise;
        rows.push(row);
        break;
      }
      log(`    ${noise}: again`);
      await sleep(2000);
    }
  }
}
const pairs = PAIRS > 0 ? await runPairs() : [];
await stop(nsd);

/**
 * The saturated pairs (bench/README.md, "Saturated pairs"): the echo and one hashwalld process (and the echo-batch
 * and the forwarders when they are targets too) started side by side on the server core and warmed up, then PAIRS
 * times all of them saturated at once for PAIR_DUR seconds, a dnsperf each on the generator's core, each time with a
 * query file of its own so that its unique names go upstream as in a round. They share the core and whatever the
 * host leaves of it at the same moment, so the ratio of their CPU per answered query holds still where the q/s of
 * rows minutes apart swing with the host. Returns one record a pair.
 */
async function runPairs() {
  const names = ['echo', ...['echo-batch', 'forward', 'forward-ports'].filter((t) => TARGETS.includes(t)), 'hashwalld'];
  const servers = {};
  for (const t of names) {
    const started = await startTarget(t, 'pairs', 1);
    if (started === null) break;
    servers[t] = started;
  }
  if (Object.keys(servers).length < names.length) {
    for (const x of Object.values(servers)) await stop(x.proc);
    return [];
  }
  log(`saturated pairs: ${names.join(', ')} loaded at once on one core, ${PAIRS} times ${PAIR_DUR} s`);
  for (const x of Object.values(servers)) await warmUp(x.spec);
  const groups = { ...Object.fromEntries(names.map((t) => [t, servers[t].pids])), upstream: nsdPids };
  const out = [];
  // Pair 0 is not counted: one load of them all from queries-sat.txt (whose unique names these processes have not
  // seen) first, since a process's first saturated seconds ran slower (under Node 24 the first pair was 0.59x where
  // the others were 0.63-0.68x, in two runs).
  for (let k = 0; k <= PAIRS; k++) {
    const file = k === 0 ? join(DATA, 'queries-sat.txt') : pairFiles[k - 1];
    const outFile = (t) => join(RES, `${t}-p${k}-pair.out`);
    const a = cpuSnap(groups);
    const runs = await Promise.all(
      names.map((t) =>
        runDnsperf({
          cpu: GEN_CPU,
          args: [
            ...dnsperfTarget(servers[t].spec),
            '-d',
            file,
            '-l',
            PAIR_DUR,
            '-t',
            2,
            '-q',
            o.outstanding,
            '-c',
            o.clients,
          ],
          outFile: outFile(t),
          limitSeconds: PAIR_DUR,
        }),
      ),
    );
    const b = cpuSnap(groups);
    if (k === 0) continue;
    const cpu = cpuDiff(
      a,
      b,
      runs.reduce((x, r) => x + r.cpuSeconds, 0),
    );
    const secs = (b.t - a.t) / 1000;
    const loads = {};
    for (const t of names) {
      const r = await readDnsperf(outFile(t));
      // The server's CPU over the window (all loads ran inside it, and nothing else asked it) per answer.
      const usPerQuery = ((cpu[t] / 100) * secs * 1e6) / r.completed;
      loads[t] = { qps: r.qps, completed: r.completed, lost: r.lost, srvCpu: cpu[t], usPerQuery };
    }
    const window = { foreignCpu: cpu.foreign, stealMs: cpu.stealMs };
    const noise = noiseOf({ lat: window, sat: window }, { foreignMax, stealMax, loadSeconds: PAIR_DUR });
    const pair = {
      pair: k,
      loads,
      ratio: ratioTo({ loads }, 'echo'),
      foreignCpu: cpu.foreign,
      stealMs: cpu.stealMs,
      noise,
    };
    log(
      `  pair ${k}: ` +
        names
          .map(
            (t) =>
              `${t} ${loads[t].qps.toFixed(0)} q/s (${loads[t].srvCpu.toFixed(0)}% CPU, ${loads[t].usPerQuery.toFixed(1)} µs a query)`,
          )
          .join(', ') +
        `; hashwalld lost ${loads.hashwalld.lost}, ${pair.ratio.toFixed(2)}x the echo${noise === null ? '' : `; ${noise}`}`,
    );
    appendFileSync(join(RES, 'pairs.jsonl'), JSON.stringify(pair) + '\n');
    out.push(pair);
  }
  for (const x of Object.values(servers)) await stop(x.proc);
  return out;
}

// ---------------------------------------------------------------- table
const by = (t) => rows.filter((r) => r.target === t);
const f = (xs, d = 0) => xs.map((x) => (Number.isFinite(x) ? x.toFixed(d) : 'NA')).join(' / ');
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const qpsOf = (t, round) => rows.find((r) => r.target === t && r.round === round)?.sat.qps;
const echoQps = (round) => qpsOf('echo', round);
const forwardQps = (round) => qpsOf('forward', round);
const lines = [];
lines.push(
  `hashwall bench ${stamp} UTC: ${ROUNDS} round(s), ${DUR} s per load, latency at ${LAT_QPS} q/s, ` +
    `${o.block} blocked names, seed ${o.seed}, ${WARM} s warm-up` +
    `${FIFO ? ', latency loads under SCHED_FIFO (--fifo)' : ''}; figures per round (r1 / r2)`,
  '',
  '| target | load s | RSS ready MiB | peak RSS MiB | sat q/s | sat q/s mean | / echo (same round) | / forward (same round) | ' +
    'sat avg ms | sat lost | lat avg ms | lat p50 ms | lat p99 ms | lat p99.9 ms | lat lost | wrong answers | NX % | ' +
    'srv CPU % (sat) | other CPU % (sat) |',
  '|' + '---|'.repeat(19),
);
for (const t of TARGETS) {
  const rs = by(t);
  if (rs.length === 0) {
    lines.push(`| ${t} | did not start |` + ' |'.repeat(17));
    continue;
  }
  const ratio = rs.map((r) => (echoQps(r.round) ? r.sat.qps / echoQps(r.round) : NaN));
  const ratioFwd = rs.map((r) => (forwardQps(r.round) ? r.sat.qps / forwardQps(r.round) : NaN));
  lines.push(
    `| ${t}${rs.some((r) => r.noisy) ? ' (noisy)' : ''} | ${f(
      rs.map((r) => r.loadS),
      2,
    )} | ${f(rs.map((r) => r.rssReadyMb))} | ` +
      `${f(rs.map((r) => r.peakRssMb))} | ${f(rs.map((r) => r.sat.qps))} | ${mean(rs.map((r) => r.sat.qps)).toFixed(0)} | ` +
      `${f(ratio, 2)} | ${f(ratioFwd, 2)} | ${f(
        rs.map((r) => r.sat.avgMs),
        2,
      )} | ${f(rs.map((r) => r.sat.lost))} | ` +
      `${f(
        rs.map((r) => r.lat.avgMs),
        3,
      )} | ${f(
        rs.map((r) => r.lat.p50Ms),
        3,
      )} | ${f(
        rs.map((r) => r.lat.p99Ms),
        3,
      )} | ` +
      `${f(
        rs.map((r) => r.lat.p999Ms),
        3,
      )} | ${f(rs.map((r) => r.lat.lost))} | ` +
      `${rs.map((r) => r.lat.wrong ?? '-').join(' / ')} | ${f(
        rs.map((r) => r.sat.nxPct),
        1,
      )} | ` +
      `${f(rs.map((r) => r.sat.srvCpu))} | ${f(rs.map((r) => r.sat.foreignCpu))} |`,
  );
}
lines.push(
  '',
  'Memory at the end of the saturation load (MiB, r1 / r2): anonymous (heaps, lists, caches) and file-backed (the ' +
    'executable and libraries, shared and reclaimable):',
  '',
  '| target | peak RSS | RSS anon at end | RSS file at end |',
  '|---|---|---|---|',
);
for (const t of TARGETS) {
  const rs = by(t);
  if (rs.length === 0) continue;
  lines.push(
    `| ${t} | ${f(rs.map((r) => r.peakRssMb))} | ${f(rs.map((r) => r.rssEnd.anonMb))} | ${f(
      rs.map((r) => r.rssEnd.fileMb),
    )} |`,
  );
}
if (pairs.length > 0) {
  const m = pairsMedian(pairs);
  const others = Object.keys(pairs[0].loads).filter((t) => t !== 'hashwalld');
  lines.push(
    '',
    `Saturated pairs: ${Object.keys(pairs[0].loads).join(', ')} on the server core, saturated at once for ` +
      `${PAIR_DUR} s, each time with its own unique names (q/s, and the server's CPU per answered query in µs); ` +
      "hashwalld's ratio to each is the other's CPU per query over its own:",
    '',
    `| pair | ${others.map((t) => `${t} q/s (µs)`).join(' | ')} | hashwalld q/s (µs) | ` +
      `${others.map((t) => `hashwalld / ${t}`).join(' | ')} | other CPU % | steal ms | noise |`,
    '|' + '---|'.repeat(2 * others.length + 5),
  );
  const cell = (x) => `${x.qps.toFixed(0)} (${x.usPerQuery.toFixed(1)})`;
  for (const p of pairs) {
    const l = p.loads;
    lines.push(
      `| ${p.pair} | ${others.map((t) => cell(l[t])).join(' | ')} | ${cell(l.hashwalld)} | ` +
        `${others.map((t) => ratioTo(p, t).toFixed(2)).join(' | ')} | ` +
        `${p.foreignCpu.toFixed(0)} | ${p.stealMs.toFixed(0)} | ${p.noise ?? '-'} |`,
    );
  }
  lines.push(
    '',
    `hashwalld / echo: median ${m.median.toFixed(2)}x over ${m.used} ` +
      `${m.noisy ? 'pairs (fewer than half were clean: all of them)' : 'clean pairs'}, ${m.min.toFixed(2)}-` +
      `${m.max.toFixed(2)}x.`,
  );
}
// The targets next (against the echo and the forwarder), and the ratios against Unbound printed last, after the
// perf tables too: they go to unboundLines.
const u = by('unbound');
const unboundLines = [];
if (u.length > 0) {
  const uq = mean(u.map((r) => r.sat.qps));
  unboundLines.push(
    '',
    `Against Unbound (means over rounds; Unbound: ${uq.toFixed(0)} q/s, p99 ${mean(u.map((r) => r.lat.p99Ms)).toFixed(3)} ms, load ${mean(u.map((r) => r.loadS)).toFixed(2)} s, peak RSS ${mean(u.map((r) => r.peakRssMb)).toFixed(0)} MiB):`,
    '',
  );
  unboundLines.push('| target | sat q/s | lat p99 | load time | peak RSS |', '|---|---|---|---|---|');
  for (const t of TARGETS) {
    const rs = by(t);
    if (rs.length === 0 || t === 'unbound') continue;
    const x = (k) => mean(rs.map(k)) / mean(u.map(k));
    unboundLines.push(
      `| ${t} | ${x((r) => r.sat.qps).toFixed(2)}x | ${x((r) => r.lat.p99Ms).toFixed(2)}x | ${x((r) => r.loadS).toFixed(2)}x | ${x((r) => r.peakRssMb).toFixed(2)}x |`,
    );
  }
}
// The event-loop delay and the collector's pauses of each Node row, per load (lib/loop-delay.mjs).
const nodeRows = TARGETS.filter((t) => by(t).some((r) => r.lat.loop || r.sat.loop));
if (nodeRows.length > 0) {
  const l = (rs, mode, k, d = 2) =>
    f(
      rs.map((r) => r[mode].loop?.[k] ?? NaN),
      d,
    );
  const g = (rs, mode) =>
    rs.map((r) => (r[mode].loop ? `${r[mode].loop.gc.minor}+${r[mode].loop.gc.major}` : 'NA')).join(' / ');
  const th = (rs, mode, k, d = 1) =>
    f(
      rs.map((r) => r[mode].loop?.threads?.[k] ?? NaN),
      d,
    );
  const gmax = (rs, mode) =>
    f(
      rs.map((r) => r[mode].loop?.gc.maxMs ?? NaN),
      2,
    );
  lines.push(
    '',
    'Event-loop delay (ms beyond a 1 ms timer tick; the worst process of the row), collections (minor+major, ' +
      "the longest pause in ms), and at the latency rate the CPU of the processes' other threads (V8's helpers, " +
      'worker threads; % of a core) and how long their main threads waited, runnable, for a core (ms per second), per load:',
    '',
    '| target | lat loop p99 | lat loop p99.9 | lat loop max | lat GCs | lat longest GC | lat other threads % | ' +
      'lat main wait ms/s | sat loop p99 | sat loop max | sat GCs | sat longest GC |',
    '|' + '---|'.repeat(12),
  );
  for (const t of nodeRows) {
    const rs = by(t);
    lines.push(
      `| ${t} | ${l(rs, 'lat', 'p99Ms')} | ${l(rs, 'lat', 'p999Ms')} | ${l(rs, 'lat', 'maxMs')} | ${g(rs, 'lat')} | ` +
        `${gmax(rs, 'lat')} | ${th(rs, 'lat', 'otherPct')} | ${th(rs, 'lat', 'mainWaitMsPerS')} | ${l(rs, 'sat', 'p99Ms')} | ${l(rs, 'sat', 'maxMs')} | ${g(rs, 'sat')} | ${gmax(rs, 'sat')} |`,
    );
  }
}
// DoT and DoH: each row against dnsdist's on the same transport and against its own server over UDP, same round.
const encrypted = TARGETS.filter((t) => t in ENCRYPTED && by(t).length > 0);
if (encrypted.length > 0) {
  const ratioTo = (t, other) =>
    by(t).map((r) => {
      const q = qpsOf(other, r.round);
      return q ? r.sat.qps / q : NaN;
    });
  // On a machine shared with other work a server may not get its whole core: q/s per second of its own CPU.
  const perCore = (r) => (r.sat.srvCpu > 0 ? r.sat.qps / (r.sat.srvCpu / 100) : NaN);
  const perCoreRatio = (t, other) =>
    by(t).map((r) => {
      const o = rows.find((x) => x.target === other && x.round === r.round);
      return o ? perCore(r) / perCore(o) : NaN;
    });
  lines.push(
    '',
    `Encrypted transports (r1 / r2; DoT loads by dnsperf -m dot, DoH by h2load -c 1; latency at ${LAT_QPS} q/s; ` +
      'TLS set-up: openssl s_time -new, full handshakes one after another):',
    '',
    '| target | sat q/s | / dnsdist, same transport | / itself over UDP | q/s per server core | / dnsdist per core | ' +
      'lat p50 ms | lat p99 ms | lost | peak RSS MiB | new sessions/s | server CPU µs per new session |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const t of encrypted) {
    const rs = by(t);
    const { base, mode } = ENCRYPTED[t];
    lines.push(
      `| ${t} | ${f(rs.map((r) => r.sat.qps))} | ${f(ratioTo(t, `dnsdist-${mode}`), 2)} | ${f(ratioTo(t, base), 2)} | ` +
        `${f(rs.map(perCore))} | ${f(perCoreRatio(t, `dnsdist-${mode}`), 2)} | ` +
        `${f(
          rs.map((r) => r.lat.p50Ms),
          3,
        )} | ${f(
          rs.map((r) => r.lat.p99Ms),
          3,
        )} | ${f(rs.map((r) => r.sat.lost + r.lat.lost))} | ${f(rs.map((r) => r.peakRssMb))} | ` +
        `${f(rs.map((r) => r.setup?.perSecond ?? NaN))} | ${f(rs.map((r) => r.setup?.serverCpuUs ?? NaN))} |`,
    );
  }
  for (const mode of ['dot', 'doh']) {
    if (by(`hashwalld-${mode}`).length === 0 || by(`dnsdist-${mode}`).length === 0) continue;
    const x = ratioTo(`hashwalld-${mode}`, `dnsdist-${mode}`);
    const y = perCoreRatio(`hashwalld-${mode}`, `dnsdist-${mode}`);
    lines.push(
      '',
      `- hashwalld over ${mode === 'dot' ? 'DoT' : 'DoH'} >= 0.5 x dnsdist's, same round, one core: ${f(x, 2)} ` +
        `${x.every((v) => v >= 0.5) ? 'MET' : 'NOT MET'} (per second of server CPU: ${f(y, 2)})`,
    );
  }
}

// The gate: each target of hashwalld in one process, PASS or FAIL (bench/README.md, "The gate"), printed last.
const gate = gateLines();

lines.push('', `bench wall time ${((performance.now() - benchStart) / 60000).toFixed(1)} min`);
writeFileSync(join(RES, 'table.md'), [...lines, ...unboundLines, ...gate.lines].join('\n') + '\n');
process.stdout.write('\n' + lines.join('\n') + '\n');
if (PERF) {
  const measured = rows.filter((r) => r.perf);
  const md = perfMarkdown(measured, { stamp });
  writeFileSync(join(RES, 'perf.md'), md);
  process.stdout.write('\n' + md);
  if (measured.length < rows.length)
    log(`perf: ${rows.length - measured.length} row(s) without perf figures (see log.txt)`);
}
// Last: the ratios against Unbound, then the gate.
if (unboundLines.length > 0) process.stdout.write(unboundLines.join('\n') + '\n');
process.stdout.write(gate.lines.join('\n') + '\n');
if (gate.failed) process.exitCode = 1;

/**
 * PASS or FAIL for each target of hashwalld (one process), every round judged: p99 at the latency rate at most
 * twice Unbound's (this run's Unbound row, else --p99-ref) and p99.9 under 1 ms; saturated q/s at least 0.8x the
 * echo of the same round, or the median of the saturated pairs when they ran; peak RSS at most a quarter of Unbound's, or anonymous memory at most a fifth (this run's
 * Unbound row, else --rss-ref and --anon-ref); the list loaded in under 2 s; no wrong answer. A target that needs a
 * row the run does not have is "not judged"; a verdict on a noisy row says so.
 */
function gateLines() {
  const h = by('hashwalld');
  const out = ['', 'Gate (hashwalld, one process; every round must pass):', ''];
  if (h.length === 0) return { lines: [...out, '- no hashwalld row: nothing judged'], failed: false };
  let failed = false;
  // Any row: the echo's and Unbound's figures are the references of the ratios.
  const noisyRow = rows.find((r) => r.noisy);
  const noisy = noisyRow === undefined ? '' : ` (noisy, ${noisyRow.target} row: ${noisyRow.noise})`;
  // `noise`: what a FAIL says of noise (by default the rows'; the pairs' verdict says its own in `detail`).
  const verdict = (name, pass, detail, noise = noisy) => {
    if (pass === null) {
      out.push(`- NOT JUDGED  ${name}: ${detail}`);
      return;
    }
    if (!pass) failed = true;
    out.push(`- ${pass ? 'PASS' : 'FAIL'}  ${name}: ${detail}${pass ? '' : noise}`);
  };
  const u = by('unbound');
  const uP99 = u.length ? mean(u.map((r) => r.lat.p99Ms)) : Number(o['p99-ref']);
  const uSrc = u.length ? `Unbound ${uP99.toFixed(3)} ms in this run` : `--p99-ref ${uP99} ms, no Unbound row`;
  const p99s = h.map((r) => r.lat.p99Ms);
  verdict(
    `p99 at ${LAT_QPS} q/s <= 2x Unbound's`,
    p99s.every((x) => x <= 2 * uP99),
    `${f(p99s, 3)} ms, ${f(
      p99s.map((x) => x / uP99),
      2,
    )}x (${uSrc})`,
  );
  const p999s = h.map((r) => r.lat.p999Ms);
  verdict(
    `p99.9 at ${LAT_QPS} q/s < 1 ms`,
    p999s.every((x) => x < 1),
    `${f(p999s, 3)} ms`,
  );
  // The echo's own tail: what the machine adds to any Node process in this run (it swung 0.6-5.6 ms at p99.9 on
  // this project's VM with nothing else running, bench/README.md), to read the two lines above against.
  const e = by('echo');
  if (e.length > 0) {
    out.push(
      `- (shown)     the echo at ${LAT_QPS} q/s: p99 ${f(
        e.map((r) => r.lat.p99Ms),
        3,
      )} ms, p99.9 ${f(
        e.map((r) => r.lat.p999Ms),
        3,
      )} ms`,
    );
  }
  // Steal: time the hypervisor kept this VM's cores during the latency load, a stall no profile of the server
  // shows (1,230 ms of it in one 4 s load with hashwalld's p99 at 5.9 ms; bench/README.md, "Stalls that are not
  // the server's").
  out.push(
    `- (shown)     steal during the latency load (the host keeping this VM's cores): ${f(
      h.map((r) => r.lat.stealMs ?? NaN),
      0,
    )} ms`,
  );
  const loops = h.map((r) => r.lat.loop);
  if (loops.every(Boolean)) {
    out.push(
      `- (shown)     event-loop delay at ${LAT_QPS} q/s: p99 ${f(
        loops.map((x) => x.p99Ms),
        2,
      )} ms, max ${f(
        loops.map((x) => x.maxMs),
        2,
      )} ms; longest collection ${f(
        loops.map((x) => x.gc.maxMs),
        2,
      )} ms; the main thread runnable and waiting for its core ${f(
        loops.map((x) => x.threads?.mainWaitMsPerS ?? NaN),
        1,
      )} ms/s`,
    );
    // Under --fifo nothing of ours outranks the main thread on its core, so a wait of tens of ms a second there is
    // the kernel's real-time throttling (bench/README.md, "Node 24: the 50 ms stops of the latency load").
  }
  const ratio = h.map((r) => (echoQps(r.round) ? r.sat.qps / echoQps(r.round) : NaN));
  // The own JavaScript's share of a saturated query: from --profile (V8's sampler: it inflates small functions,
  // bench/README.md) or else from --perf (the kernel's sampler: V8 untouched; inlined callees in their caller).
  const byProfile = h.some((r) => r.sat.profile !== undefined);
  const own = h.map((r) =>
    byProfile ? (r.sat.profile?.ownPct ?? NaN) : r.perf ? (100 * r.perf.ns.jsServer) / r.perf.nsTotal : NaN,
  );
  const ownText = own.every(Number.isNaN)
    ? ''
    : `; own JS ${f(own, 1)}% of ${byProfile ? 'the busy time (--profile)' : 'the CPU per query (--perf)'}`;
  // With saturated pairs, their median ratio is judged (the rounds' ratios shown beside it); else every round's.
  const roundsText = ratio.every(Number.isNaN)
    ? 'no echo row'
    : `${f(ratio, 2)}x (hashwalld ${f(h.map((r) => r.sat.qps))} q/s)`;
  if (pairs.length > 0) {
    const m = pairsMedian(pairs);
    verdict(
      `saturated q/s >= 0.8x the echo (the median of ${pairs.length} pairs), or the server's own JS < 10% of a query ` +
        '(--profile, --perf)',
      m.median >= 0.8 || own.every((x) => x < 10),
      `${m.median.toFixed(2)}x over ${m.used} ` +
        `${m.noisy ? 'pairs, noisy (fewer than half were clean)' : 'clean pairs'}, ${m.min.toFixed(2)}-` +
        `${m.max.toFixed(2)}x; rounds ${roundsText}${ownText}`,
      '',
    );
    // The other servers of the pairs, for what the rest of the gap is made of (bench/README.md, "Saturated pairs").
    for (const other of Object.keys(pairs[0].loads).filter((x) => x !== 'echo' && x !== 'hashwalld')) {
      const mo = pairsMedian(pairs.map((p) => ({ ratio: ratioTo(p, other), noise: p.noise })));
      out.push(
        `- (shown)     saturated pairs against ${other}: median ${mo.median.toFixed(2)}x, ` +
          `${mo.min.toFixed(2)}-${mo.max.toFixed(2)}x`,
      );
    }
  } else {
    verdict(
      "saturated q/s >= 0.8x the echo of the same round, or the server's own JS < 10% of a query (--profile, --perf)",
      ratio.every(Number.isNaN) && own.every(Number.isNaN) ? null : h.every((r, i) => ratio[i] >= 0.8 || own[i] < 10),
      roundsText + ownText,
    );
  }
  const uPeak = u.length ? mean(u.map((r) => r.peakRssMb)) : Number(o['rss-ref']);
  const uAnon = u.length ? mean(u.map((r) => r.rssEnd.anonMb)) : Number(o['anon-ref']);
  const peaks = h.map((r) => r.peakRssMb);
  const anons = h.map((r) => r.rssEnd.anonMb);
  verdict(
    "peak RSS <= 1/4 of Unbound's, or anonymous memory <= 1/5",
    h.every((r) => r.peakRssMb <= uPeak / 4 || r.rssEnd.anonMb <= uAnon / 5),
    `peak ${f(peaks)} MiB (${f(
      peaks.map((x) => x / uPeak),
      2,
    )}x), anonymous ${f(anons)} MiB (${f(
      anons.map((x) => x / uAnon),
      2,
    )}x) against Unbound's ${uPeak.toFixed(0)} / ${uAnon.toFixed(0)} MiB` +
      (u.length ? '' : ' (--rss-ref / --anon-ref, no Unbound row)'),
  );
  verdict(
    '1M-entry list loaded in < 2 s',
    h.every((r) => r.loadS < 2),
    `${f(
      h.map((r) => r.loadS),
      2,
    )} s`,
  );
  verdict(
    'no wrong answer',
    h.every((r) => (r.lat.wrong ?? 0) === 0),
    `${h.map((r) => r.lat.wrong ?? '-').join(' / ')}`,
  );
  const fw = by('forward');
  if (fw.length > 0) {
    const ratioFwd = h.map((r) => (forwardQps(r.round) ? r.sat.qps / forwardQps(r.round) : NaN));
    out.push(`- (shown)     saturated q/s against the raw forwarder of the same round: ${f(ratioFwd, 2)}x`);
  }
  const w2 = by('hashwalld-w2');
  if (w2.length > 0) {
    out.push(
      `- (shown)     workers = 2 (both cores, shared with dnsperf and nsd): ${f(w2.map((r) => r.sat.qps))} q/s, ` +
        `${(mean(w2.map((r) => r.sat.qps)) / mean(h.map((r) => r.sat.qps))).toFixed(2)}x one process, ` +
        `p99 ${f(
          w2.map((r) => r.lat.p99Ms),
          3,
        )} ms`,
    );
  }
  out.push(`- ${failed ? 'FAIL' : 'PASS'}  overall`);
  return { lines: out, failed };
}
