// The young generation against the latency tail: one hashwalld process per set of V8 flags, placed as the bench
// places it (the server on --srv-cpu, nsd and dnsperf on --gen-cpu), an 8 s warm-up and a latency load at 10,000 q/s
// (`dnsperf -Q 10000 -v`), then a 4 s saturation load for the peak RSS. Per flag set and round it prints the latency
// percentiles by kind of query (a cached name, a listed name, a unique name that goes upstream), the scavenges of
// the latency load from V8's --trace-gc-nvp lines (count, pause, the copy and the ArrayBuffer sweep in it, bytes
// that survived and were promoted), the major collections, and the peak and anonymous RSS at the end.
//
//   node bench/lib/young-gen.mjs [--rounds=N] [--seconds=S] [--settle=S] [--fifo] [--keep] [--dist=DIR] "FLAGS" ...
//   e.g. node bench/lib/young-gen.mjs --fifo --rounds=2 "--max-semi-space-size=1 --single-threaded-gc" \
//          "--max-semi-space-size=4 --single-threaded-gc"
//
// The flag sets are run in turn, round after round. Needs what `npm run bench` leaves in bench/work (the data and
// the configs of nsd and hashwalld under run/); --dist runs another build's daemon/dist. --fifo: the latency load
// under SCHED_FIFO (dnsperf, nsd and the server's threads, the load only), as `npm run bench -- --fifo`. Run it as
// the bench is run on a shared machine: `flock -x /tmp/hashwall-measure.lock node bench/lib/young-gen.mjs ...`.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { runDnsperf } from './dnsperf.mjs';
import { daemonEnv } from './shipped.mjs';
import {
  descendants,
  killAll,
  probe,
  realtime,
  waitsForNoHelper,
  sleep,
  startPinned,
  statusKb,
  stealTicks,
  stop,
} from './proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const work = join(here, '..', 'work');
const run = join(work, 'run');
const data = join(work, 'data');
const args = process.argv.slice(2);
const opt = (name, dflt) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
const rounds = Number(opt('rounds', '1'));
const seconds = Number(opt('seconds', '8'));
// Seconds to leave the daemon idle once its list is in force, before the warm-up (its start-up transients pass).
const settle = Number(opt('settle', '0'));
const dist = resolve(opt('dist', join(here, '..', '..', 'daemon', 'dist')));
const fifo = args.includes('--fifo');
// --keep: leave each run's daemon log (its --trace-gc-nvp lines) as bench/work/young-gen-<pid>-r<round>-<set>.log.
const keep = args.includes('--keep');
const srvCpu = opt('srv-cpu', '1');
const genCpu = opt('gen-cpu', '0');
const OPTIONS = /^--(rounds|seconds|settle|dist|srv-cpu|gen-cpu)=|^--(fifo|keep)$/;
const flagSets = args.filter((a) => !OPTIONS.test(a));
if (flagSets.length === 0) {
  console.error(
    'usage: node bench/lib/young-gen.mjs [--rounds=N] [--seconds=S] [--fifo] [--keep] [--dist=DIR] "FLAGS" ...',
  );
  process.exit(2);
}
// The latency load must not wrap around its file: dnsperf would start it again, the unique names would then be in
// the cache, and the rest of the load would be a lighter mix (no query upstream, fewer bytes and more datagrams per
// scavenge). The bench sizes the file to its --dur (bench/run.mjs: latQueries).
const latLines = readFileSync(join(data, 'queries-lat.txt'), 'utf8').split('\n').filter(Boolean).length;
if (latLines < seconds * 10_000) {
  console.error(
    `young-gen: bench/work/data/queries-lat.txt holds ${latLines} queries, ${latLines / 10_000} s at 10,000 q/s, ` +
      `fewer than --seconds=${seconds} needs: run \`npm run bench -- --quick --targets=hashwalld --dur=${seconds}\` ` +
      'first (it sizes the file to its loads and writes the config of the release it signs), or a smaller --seconds',
  );
  process.exit(2);
}
const conf = join(run, 'hashwalld.yaml');
const port = Number(/127\.0\.0\.1:(\d+)/.exec(readFileSync(conf, 'utf8'))[1]);
// A listed name (NXDOMAIN once the list is in force), as the bench probes.
const listed = `www.${readFileSync(join(data, 'blocklist.txt'), 'utf8').split('\n', 1)[0]}`;
const stateDir = /stateDir: '([^']+)'/.exec(readFileSync(conf, 'utf8'))[1];
process.on('exit', killAll);
process.on('SIGINT', () => process.exit(130));

const nsd = startPinned(genCpu, 'nsd', ['-d', '-c', join(run, 'nsd.conf')], { log: '/dev/null' });
await sleep(1000);

/** Latency percentiles (ms) per kind of query from dnsperf -v's per-query lines. */
function byKind(file) {
  const kinds = { all: [], cached: [], listed: [], upstream: [] };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('> ') || line[2] === 'T') continue;
    const f = line.split(' ');
    const ms = Number(f[f.length - 1]) * 1000;
    const name = f[2];
    kinds.all.push(ms);
    kinds[name.includes('.dyn.') ? 'upstream' : /\.blk\d+\./.test(name) ? 'listed' : 'cached'].push(ms);
  }
  const out = [];
  for (const [k, xs] of Object.entries(kinds)) {
    xs.sort((a, b) => a - b);
    const p = (q) => (xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN).toFixed(3);
    out.push(`${k} p50 ${p(0.5)} p99 ${p(0.99)} p99.9 ${p(0.999)} max ${p(1)}`);
  }
  return out.join(' | ');
}

/** The collections in `text` (--trace-gc-nvp lines). */
function collections(text) {
  const field = (line, k) => Number(new RegExp(`(?:^| )${k.replace('.', '\\.')}=([\\d.]+)`).exec(line)?.[1] ?? 0);
  const s = [];
  const major = [];
  const others = [];
  // Each line starts with [pid:isolate]; the main thread's isolate is the one with the scavenges of the load, any
  // other is the list worker's (its collections are reported apart: they stop only the worker's thread).
  const isolate = (line) => /^\[\d+:(0x[0-9a-f]+)\]/.exec(line)?.[1];
  const counts = new Map();
  for (const line of text.split('\n'))
    if (line.includes(' gc=s ')) counts.set(isolate(line), (counts.get(isolate(line)) ?? 0) + 1);
  const main = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
  for (const line of text.split('\n')) {
    if (isolate(line) !== undefined && main !== undefined && isolate(line) !== main) {
      if (/ gc=(mc|ms|s) /.test(line)) others.push(field(line, 'pause'));
    } else if (line.includes(' gc=s ')) {
      s.push({
        pause: field(line, 'pause'),
        copy: field(line, 'scavenge.parallel'),
        sweep: field(line, 'scavenge.sweep_array_buffers'),
        survived: field(line, 'new_space_survived'),
        promoted: field(line, 'promoted'),
      });
    } else if (/ gc=(mc|ms) /.test(line)) major.push(field(line, 'pause'));
  }
  const mean = (k) => (s.reduce((a, x) => a + x[k], 0) / Math.max(1, s.length)).toFixed(2);
  const kb = (k) => (s.reduce((a, x) => a + x[k], 0) / Math.max(1, s.length) / 1024).toFixed(0);
  return (
    `${s.length} scavenges, pause mean ${mean('pause')} ms (copy ${mean('copy')}, ArrayBuffer sweep ${mean('sweep')}), ` +
    `longest ${Math.max(0, ...s.map((x) => x.pause)).toFixed(2)} ms, total ${s.reduce((a, x) => a + x.pause, 0).toFixed(1)} ms, ` +
    `survived ${kb('survived')} KB and promoted ${kb('promoted')} KB each; ${major.length} major ` +
    `(longest ${Math.max(0, ...major).toFixed(2)} ms); other threads' collections ${others.length} ` +
    `(longest ${Math.max(0, ...others).toFixed(2)} ms)`
  );
}

for (let r = 1; r <= rounds; r++) {
  for (const [set, flags] of flagSets.entries()) {
    rmSync(stateDir, { recursive: true, force: true });
    const log = join(work, `young-gen-${process.pid}-r${r}-${set + 1}.log`);
    const nodeArgs = [...flags.split(' ').filter(Boolean), '--trace-gc-nvp', join(dist, 'main.js'), '--config', conf];
    // The daemon's output (the collector's trace) is read through a pipe into memory: the daemon writes no file
    // during the loads (with or without, the 45-55 ms stalls of bench/README.md, "Stalls that are not the
    // server's", came alike).
    const hw = startPinned(srvCpu, process.execPath, nodeArgs, { log: 'pipe', env: daemonEnv() });
    let text = '';
    for (const s of [hw.stdout, hw.stderr]) {
      s.setEncoding('utf8');
      s.on('data', (d) => (text += d));
    }
    if ((await probe(port, listed, 3, 120_000)) === null) throw new Error('hashwalld did not block in 120 s');
    await sleep(settle * 1000);
    const load = (file, extra, l, outFile, rt) =>
      runDnsperf({
        cpu: genCpu,
        args: ['-s', '127.0.0.1', '-p', port, '-d', join(data, file), '-l', l, ...extra],
        outFile,
        limitSeconds: l,
        fifo: rt,
      });
    const out = join(work, `young-gen-${process.pid}.out`);
    await load('queries-warm.txt', ['-Q', 10000, '-q', 500], 8, out, false);
    const from = text.length;
    const steal0 = stealTicks();
    // SCHED_FIFO for the latency load only, as the bench does: held longer (it was set from before the warm-up), the
    // kernel's fair server took the query thread's core for ~50 ms in every second in which a SCHED_OTHER thread
    // there had waited (bench/README.md, "Stalls that are not the server's").
    const rtPids = [hw.pid, ...descendants(nsd.pid)];
    if (fifo) for (const pid of rtPids) realtime(pid, true, genCpu, pid !== hw.pid || waitsForNoHelper(nodeArgs));
    await load('queries-lat.txt', ['-Q', 10000, '-q', 500, '-c', 1, '-v'], seconds, out, fifo);
    if (fifo) for (const pid of rtPids) realtime(pid, false, genCpu);
    const stealMs = (stealTicks() - steal0) * 10;
    const gcText = text.slice(from);
    const latency = byKind(out);
    await load('queries-sat.txt', ['-q', 200, '-c', 4], 4, out, false);
    const peak = statusKb(hw.pid, 'VmHWM') / 1024;
    const anon = statusKb(hw.pid, 'RssAnon') / 1024;
    await stop(hw);
    console.log(`[round ${r}] ${flags}`);
    console.log(`  latency at 10,000 q/s, ms: ${latency}; steal ${stealMs} ms`);
    console.log(`  ${collections(gcText)}`);
    console.log(`  peak RSS ${peak.toFixed(0)} MiB, anonymous at the end ${anon.toFixed(0)} MiB`);
    if (keep) writeFileSync(log, text);
    rmSync(out, { force: true });
  }
}
await stop(nsd);
