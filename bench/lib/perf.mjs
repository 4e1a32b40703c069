// `npm run bench -- --perf`: where each server's CPU time goes during the saturation load, per query, from Linux
// perf. perf record samples the server's processes (every thread, kernel and user space) at PERF_HZ per second of
// CPU they use, for a window inside the load; perf report gives each (DSO, symbol) its share of the samples; each
// share is put in one category (below) and becomes nanoseconds per answered query:
//
//   ns/query = share x CPU seconds in the window (samples / PERF_HZ) / (the load's q/s x window seconds)
//
// The CPU comes from the samples rather than /proc because perf's own start (~0.6 s to its first sample) and end
// (~1 s to write its file) are not part of its window and cannot be timed from outside; the bench's /proc figure for
// the whole load is printed beside it as a check.
//
// Node targets run with --perf-basic-prof, so V8 writes /tmp/perf-<pid>.map (the names of its JIT code) for perf
// report to read; the maps are removed once the report is made.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PERF_HZ = 999;

/**
 * Whether perf can sample other processes' kernel and user space here: `perf` runs, and either this process is
 * root or /proc/sys/kernel/perf_event_paranoid is at most 1; then a one-second trial record must work (a container
 * can forbid perf_event_open whatever the sysctl says). Returns null when it can, else why not.
 */
export function perfUnavailable() {
  let version;
  try {
    version = execFileSync('perf', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return '`perf` is not installed or does not run (Debian: apt-get install linux-perf)';
  }
  let paranoid = NaN;
  try {
    paranoid = Number(readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8').trim());
  } catch {
    return 'no /proc/sys/kernel/perf_event_paranoid: this kernel has no perf events';
  }
  const root = process.getuid?.() === 0;
  if (!root && !(paranoid <= 1)) {
    return (
      `kernel.perf_event_paranoid is ${paranoid}: sampling the servers' kernel time needs 1 or less ` +
      '(sysctl -w kernel.perf_event_paranoid=1) or running the bench as root'
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'hw-perf-check-'));
  try {
    execFileSync('perf', ['record', '-F', String(PERF_HZ), '-g', '-o', join(dir, 'check.data'), '--', 'sleep', '0.2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
  } catch (err) {
    const why = String(err.stderr ?? err.message)
      .split('\n')
      .find((l) => l.trim() !== '');
    return `${version}: a trial \`perf record\` failed (${why ?? 'no message'})`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return null;
}

/**
 * `perf record` of `pids` for `seconds`, written to `out`, pinned to `cpu`, under bash, whose `times` gives the CPU
 * perf itself used (so the bench does not count it as other work on the machine). Its messages go to `log`.
 * Resolves with { code, cpuSeconds }. Bounded: perf's own `sleep` plus a kill timer.
 */
export function recordPerf({ cpu, pids, out, seconds, log }) {
  return new Promise((resolve) => {
    const fd = openSync(log, 'a');
    const args = [
      'record',
      '-F',
      String(PERF_HZ),
      '-g',
      '-p',
      pids.join(','),
      '-o',
      out,
      '--',
      'sleep',
      String(seconds),
    ];
    const p = spawn(
      'bash',
      ['-c', `taskset -c ${Number(cpu)} perf ${args.join(' ')} >&3 2>&3; rc=$?; times; exit $rc`],
      {
        stdio: ['ignore', 'pipe', 'ignore', fd],
      },
    );
    let text = '';
    p.stdout.on('data', (c) => (text += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), (seconds + 30) * 1000);
    p.on('close', (code) => {
      clearTimeout(timer);
      closeSync(fd);
      // `times`: the shell's own user and system time, then its children's ("0m0.123s 0m0.045s").
      const child = (text.trim().split('\n')[1] ?? '').trim().split(/\s+/);
      const secs = (x) => {
        const m = /^(\d+)m([\d.]+)s$/.exec(x ?? '');
        return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
      };
      resolve({ code, cpuSeconds: secs(child[0]) + secs(child[1]) });
    });
  });
}

/** Categories, in the order of the table's columns. */
export const CATEGORIES = [
  ['kernel', 'kernel'],
  ['gc', 'V8 collector'],
  ['malloc', 'malloc/free'],
  ['runtime', 'node/V8 runtime'],
  ['jsNode', "JIT: Node's JS"],
  ['jsServer', "JIT: server's JS"],
  ['jsLib', 'JIT: npm libraries'],
  ['other', 'other'],
];

const FIELD_SEP = '\x1f';
// The collector's code in the node binary: V8's collectors, sweepers and marking (concurrent and incremental), the
// young generation's evacuation, and the heap's own bookkeeping.
const GC = /Scaveng|MarkCompact|Marking|ArrayBufferSweeper|Sweeper|Evacuat|Heap::|GC|heap::base::|cppgc::/;
const MALLOC =
  /^(?:__libc_)?(?:malloc|free|calloc|realloc|cfree)(?:@.*)?$|^_int_|^malloc_|^unlink_chunk|^tcache_|^__libc_(?:malloc|free|calloc|realloc)/;
const base = (dso) => dso.slice(dso.lastIndexOf('/') + 1);

/** The category of one perf report line: its DSO, and its symbol with perf's `[k]`/`[.]` mark in front. */
export function categorize(dso, sym) {
  if (sym.startsWith('[k]')) return 'kernel';
  const name = sym.replace(/^\[[^\]]*\]\s*/, '');
  const d = base(dso);
  if (d.startsWith('[JIT]') || /^perf-\d+\.map$/.test(d) || /^jitted-\d+-\d+\.so$/.test(d)) {
    if (/ node:\S+$/.test(name)) return 'jsNode';
    if (/ (?:file:\/\/)?\/\S*\/node_modules\/\S+$/.test(name)) return 'jsLib';
    if (/ (?:file:\/\/)?\/\S+$/.test(name)) return 'jsServer';
    return 'other';
  }
  if (d === 'node' || d.startsWith('libnode.so')) {
    if ((name.includes('v8::internal') || name.startsWith('heap::') || name.startsWith('cppgc::')) && GC.test(name))
      return 'gc';
    return 'runtime';
  }
  if (d.startsWith('libc.so') || d.startsWith('libc-')) return MALLOC.test(name) ? 'malloc' : 'other';
  if (d.startsWith('libstdc++') || d.startsWith('libuv')) return 'runtime';
  return 'other';
}

/**
 * Runs `perf report` on `file` (pinned to `cpu`) and resolves with { event, lines }: the sampled event's name
 * (cpu-clock where the machine has no hardware counters, as in most VMs) and the report's lines,
 * { dso, sym, samples, period }.
 */
export async function perfReport(file, cpu) {
  const run = (args) =>
    new Promise((resolve, reject) => {
      execFile(
        'taskset',
        ['-c', String(cpu), 'perf', ...args],
        { maxBuffer: 256 * 1024 * 1024, timeout: 300_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      );
    });
  const event = (await run(['evlist', '-i', file])).trim().split('\n')[0] ?? '';
  // Every sample once (no call graph), the fields separated by FIELD_SEP; the rows whose first field is a number.
  const report = async (...args) => {
    const out = await run(['report', '-i', file, '--no-children', '-q', '-g', 'none', ...args, '-t', FIELD_SEP]);
    return out
      .split('\n')
      .map((line) => line.split(FIELD_SEP).map((x) => x.trim()))
      .filter((f) => f.length >= 2 && /^\d+$/.test(f[0]));
  };
  const lines = (await report('--sort', 'dso,sym', '-F', 'sample,period,dso,sym'))
    .filter((f) => f.length >= 4)
    .map((f) => ({ samples: Number(f[0]), period: Number(f[1]), dso: f[2], sym: f.slice(3).join(FIELD_SEP) }));
  // The same samples by the system call they were taken under: the nearest caller in the (kernel) call chain that
  // is a system call's entry (perf's --parent); user-space samples and the kernel's other work get "[other]".
  const parents = (await report('--sort', 'parent', `--parent=${SYSCALL_ENTRY}`, '-F', 'period,parent')).map((f) => ({
    period: Number(f[0]),
    parent: f[1],
  }));
  // perf report (of perf 6.1) has no sort key for the offset into a symbol; perf script names every sample's. The
  // rest of the report stands without it.
  const hotSpots = ownJsSpots(await run(['script', '-i', file, '-G', '-F', 'ip,sym,symoff']).catch(() => ''));
  return { event, lines, parents, hotSpots };
}

/**
 * The server's own JS by instruction, from `perf script -G -F ip,sym,symoff`: { sym, offset, samples } per function
 * and offset into its code, the most sampled first.
 */
export function ownJsSpots(script) {
  const spots = new Map();
  for (const line of script.split('\n')) {
    const m = /^\s*[0-9a-f]+ (JS:.*)\+(0x[0-9a-f]+)$/.exec(line);
    if (m === null || categorize('[JIT]', m[1]) !== 'jsServer') continue;
    const key = `${m[1]}\x00${m[2]}`;
    spots.set(key, (spots.get(key) ?? 0) + 1);
  }
  return [...spots]
    .map(([key, samples]) => ({ sym: key.split('\x00')[0], offset: key.split('\x00')[1], samples }))
    .sort((a, b) => b.samples - a.samples);
}

// A system call's entry in the kernel, as perf's call chains name them.
const SYSCALL_ENTRY = '^__sys_[a-z0-9_]+$|^__x64_sys_[a-z0-9_]+$|^__do_sys_[a-z0-9_]+$|^do_epoll_wait$';

/** Kernel columns: time under each kind of system call, and the rest. */
export const KERNEL_PARTS = [
  ['send', 'send (sendmsg, sendmmsg, sendto)'],
  ['recv', 'receive (recvmsg, recvmmsg, recvfrom)'],
  ['wait', 'wait (epoll, poll, futex)'],
  ['sys', 'other system calls'],
  ['rest', 'not in a system call'],
];

function kernelPart(parent) {
  if (/send/.test(parent)) return 'send';
  if (/recv/.test(parent)) return 'recv';
  if (/epoll|poll|select|futex/.test(parent)) return 'wait';
  return 'sys';
}

/**
 * The figures of one window: `report` from perfReport, the window's length (seconds of sampling), the load's
 * answered q/s and the server's CPU over the whole load from /proc (% of one core, shown beside the window's).
 * ns per query per category, and the top `top` symbols, overall and outside the kernel.
 */
export function perfFigures({ event, lines, parents = [], hotSpots = [] }, { windowS, qps, loadCpuPct, top = 15 }) {
  const totalPeriod = lines.reduce((a, l) => a + l.period, 0);
  const samples = lines.reduce((a, l) => a + l.samples, 0);
  const cpuS = samples / PERF_HZ;
  const nsTotal = qps > 0 && windowS > 0 ? (cpuS * 1e9) / (qps * windowS) : NaN;
  const ns = Object.fromEntries(CATEGORIES.map(([k]) => [k, 0]));
  const syms = [];
  for (const l of lines) {
    // perf's percentages weigh samples by their period; so does this (with a fixed frequency they are near equal).
    const share = totalPeriod > 0 ? l.period / totalPeriod : 0;
    const cat = categorize(l.dso, l.sym);
    ns[cat] += share * nsTotal;
    syms.push({ dso: l.dso, sym: l.sym.replace(/^\[[^\]]*\]\s*/, ''), cat, share, ns: share * nsTotal });
  }
  syms.sort((a, b) => b.share - a.share);
  // The kernel's part by system call; whatever kernel time is under none of them (interrupts, page faults) is
  // `rest`. Shares of the same samples as above.
  const parentPeriod = parents.reduce((a, x) => a + x.period, 0);
  const kernel = Object.fromEntries(KERNEL_PARTS.map(([k]) => [k, 0]));
  for (const x of parents) {
    if (x.parent === '[other]' || parentPeriod === 0) continue;
    kernel[kernelPart(x.parent)] += (x.period / parentPeriod) * nsTotal;
  }
  kernel.rest = Math.max(0, ns.kernel - kernel.send - kernel.recv - kernel.wait - kernel.sys);
  return {
    event,
    windowS,
    qps,
    samples,
    cpuS,
    cpuPct: (100 * cpuS) / windowS,
    loadCpuPct,
    ns,
    kernel,
    nsTotal,
    top: syms.slice(0, top),
    topUser: syms.filter((x) => x.cat !== 'kernel').slice(0, top),
    // The server's own JavaScript function by function (what the "own code under 10% of a query" counts).
    ownJs: syms.filter((x) => x.cat === 'jsServer').slice(0, 2 * top),
    // ...and its hottest instructions (function and offset), with the same ns/query per sample.
    ownJsSpots: hotSpots.slice(0, top).map((h) => ({ ...h, ns: samples > 0 ? (h.samples / samples) * nsTotal : 0 })),
  };
}

/** Removes the JIT maps V8 wrote for `pids` (only those: other processes' maps are theirs). */
export function removePerfMaps(pids) {
  // V8 writes them to /tmp whatever TMPDIR says.
  for (const p of pids) rmSync(`/tmp/perf-${p}.map`, { force: true });
}

const CAT_NAME = Object.fromEntries(CATEGORIES);

/** perf.md: one table of ns/query per category (rows: target and round), then each row's top symbols. */
export function perfMarkdown(rows, { stamp }) {
  const n = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'NA');
  const events = [...new Set(rows.map((r) => r.perf.event))].join(', ');
  const lines = [
    `hashwall bench ${stamp} UTC: where each server's CPU goes during the saturation load, in ns per answered query`,
    '',
    `\`perf record -F ${PERF_HZ} -g -p <server pids>\` (event: ${events || 'none'}) for a window inside each ` +
      "saturation load; every sample in one category; ns/query = the category's share of the samples x the CPU " +
      "seconds perf sampled (samples / frequency) / (the load's q/s x the window's seconds). Server CPU: over the " +
      'whole load from /proc, and in the window from the samples. Categories: kernel (system calls, the network ' +
      "stack, interrupts taken in the process); V8 collector (the node binary's scavenger, mark-compact, marking, " +
      "sweepers, evacuation, heap bookkeeping); malloc/free (libc's allocator); node/V8 runtime (the rest of the " +
      "node binary: V8's builtins and runtime, Node's C++ bindings, libuv; libstdc++); JIT code of Node's own JS " +
      "(`node:` modules), of the server's JS (its files) and of npm libraries (files under node_modules); other " +
      '(the rest of libc, the vdso, JIT stubs and regexps; for unbound, dnsdist and nsd, their own code). With ' +
      'the cpu-clock event (no hardware counters, as in most VMs) time the kernel spends with interrupts off is ' +
      'charged to where it turns them back on ' +
      '(`_raw_spin_unlock_irqrestore`): the kernel total holds, that symbol is not its own cost. Sampling costs ' +
      "the servers a little and perf shares the generator's CPU: compare rows of one --perf run, not with a run " +
      'without it.',
    '',
    '| target | round | sat q/s | server CPU % (load / window) | window s | samples | ' +
      CATEGORIES.map(([, h]) => h).join(' | ') +
      ' | total ns/query |',
    '|' + '---|'.repeat(6 + CATEGORIES.length + 1),
  ];
  for (const r of rows) {
    const p = r.perf;
    lines.push(
      `| ${r.target} | ${r.round} | ${n(p.qps)} | ${n(p.loadCpuPct)} / ${n(p.cpuPct)} | ${p.windowS.toFixed(1)} | ` +
        `${p.samples} | ` +
        CATEGORIES.map(([k]) => n(p.ns[k])).join(' | ') +
        ` | ${n(p.nsTotal)} |`,
    );
  }
  lines.push(
    '',
    "The kernel's part by the system call it was spent under (the samples' call chains), ns/query:",
    '',
    '| target | round | kernel | ' + KERNEL_PARTS.map(([, h]) => h).join(' | ') + ' |',
    '|' + '---|'.repeat(3 + KERNEL_PARTS.length),
  );
  for (const r of rows) {
    const p = r.perf;
    lines.push(
      `| ${r.target} | ${r.round} | ${n(p.ns.kernel)} | ` +
        KERNEL_PARTS.map(([k]) => n(p.kernel[k])).join(' | ') +
        ' |',
    );
  }
  const symTable = (title, syms) => {
    lines.push('', title, '', '| ns/query | share | category | DSO | symbol |', '|---|---|---|---|---|');
    for (const x of syms) {
      const sym = x.sym.replace(/\|/g, '\\|').replace(/`/g, "'");
      lines.push(
        `| ${x.ns.toFixed(1)} | ${(100 * x.share).toFixed(2)}% | ${CAT_NAME[x.cat]} | ${x.dso} | \`${sym}\` |`,
      );
    }
  };
  for (const r of rows) {
    const p = r.perf;
    symTable(`${r.target}, round ${r.round}: the top ${p.top.length} symbols (${n(p.nsTotal)} ns/query in all)`, p.top);
    symTable(`${r.target}, round ${r.round}: the top ${p.topUser.length} outside the kernel`, p.topUser);
    if (p.ownJs.length > 0) {
      symTable(
        `${r.target}, round ${r.round}: the server's own JS, its top ${p.ownJs.length} functions ` +
          `(${n(p.ns.jsServer)} ns/query in all; callees V8 inlined are counted in their caller)`,
        p.ownJs,
      );
    }
    if (p.ownJsSpots.length > 0) {
      lines.push(
        '',
        `${r.target}, round ${r.round}: the server's own JS, its ${p.ownJsSpots.length} hottest instructions ` +
          '(offsets into V8\'s optimized code of the function: `--node-flags="--print-opt-code ' +
          '--print-opt-code-filter=<function>"` prints that code, offsets in its second column, into the ' +
          "server's log; a load that waits on memory is charged to the instruction after it)",
        '',
        '| ns/query | samples | function | offset |',
        '|---|---|---|---|',
      );
      for (const h of p.ownJsSpots) {
        lines.push(`| ${h.ns.toFixed(1)} | ${h.samples} | \`${h.sym.replace(/\|/g, '\\|')}\` | ${h.offset} |`);
      }
    }
  }
  return lines.join('\n') + '\n';
}
