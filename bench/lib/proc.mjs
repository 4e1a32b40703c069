// Processes for the bench: start pinned, stop only what was started here (by PID, never by name), read CPU and
// memory from /proc, and probe a DNS server until it gives the expected rcode.
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';

/** Every child this process started and has not yet seen exit. */
const started = new Set();

/**
 * Starts `cmd args` pinned to `cpus` (taskset execs the command, so the PID is the server's), output to `log`, a
 * file, or with `log: 'pipe'` to the returned process's stdout and stderr for the caller to read.
 */
export function startPinned(cpus, cmd, args, { log, env } = {}) {
  const fd = log === 'pipe' ? 'pipe' : log ? openSync(log, 'a') : 'ignore';
  const p = spawn('taskset', ['-c', String(cpus), cmd, ...args], {
    stdio: ['ignore', fd, fd],
    env: env ?? process.env,
  });
  started.add(p);
  p.exited = new Promise((resolve) =>
    p.on('exit', (code, signal) => {
      started.delete(p);
      resolve({ code, signal });
    }),
  );
  return p;
}

/** SIGTERM, up to `graceMs` to exit, then SIGKILL. Only for processes startPinned returned. */
export async function stop(p, graceMs = 10_000) {
  if (!started.has(p)) return;
  p.kill('SIGTERM');
  const timer = new Promise((r) => setTimeout(() => r('timeout'), graceMs));
  if ((await Promise.race([p.exited, timer])) === 'timeout') {
    p.kill('SIGKILL');
    await p.exited;
  }
}

/** Process groups of runTimed's commands still running. */
const groups = new Set();

/** Kills whatever is still running from here (on exit or interrupt). */
export function killAll() {
  for (const p of started) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const pgid of groups) killGroup(pgid);
}

function killGroup(pgid) {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** `pid` and its descendants (from /proc/PID/task/TID/children). */
export function descendants(pid) {
  const out = [];
  const walk = (p) => {
    out.push(p);
    for (const t of tasksOf(p)) {
      let kids = '';
      try {
        kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.trim().split(/\s+/).filter(Boolean)) walk(Number(k));
    }
  };
  walk(pid);
  return out;
}

/** A field of /proc/PID/status in kB (VmRSS, VmHWM), 0 when the process is gone. */
export function statusKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Sum of a status field over pids, in MiB. */
export function sumMb(pids, field) {
  return pids.reduce((a, p) => a + statusKb(p, field), 0) / 1024;
}

/** The thread ids of a process ([] when gone). */
function tasksOf(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
}

/** The fields of a /proc stat file after the command's name (state first), or null when gone. */
function statFields(path) {
  try {
    const s = readFileSync(path, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** utime + stime in clock ticks of a process (`/proc/PID/stat`) or a thread (`/proc/PID/task/TID/stat`). */
function ticksIn(path) {
  const f = statFields(path);
  return f === null ? 0 : Number(f[11]) + Number(f[12]);
}

const ticksOf = (pid) => ticksIn(`/proc/${pid}/stat`);

/**
 * Ticks of the whole machine: busy (user + nice + system; interrupts and steal are left out) and steal (time the
 * hypervisor ran something else while this VM's CPUs wanted to run: a stall of whatever they were doing that no
 * profile of ours shows).
 */
function machineTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0] + f[1] + f[2], steal: f[7] ?? 0 };
}

/** The machine's steal ticks so far (all CPUs, 1/HZ s each; machineTicks). */
export const stealTicks = () => machineTicks().steal;

const HZ = 100; // USER_HZ on Linux

/** A CPU snapshot: per-pid ticks for `groups` ({name: pids}), machine busy ticks, this process's own CPU. */
export function cpuSnap(groups) {
  const g = {};
  for (const [name, pids] of Object.entries(groups)) g[name] = pids.reduce((a, p) => a + ticksOf(p), 0);
  const self = process.cpuUsage();
  const m = machineTicks();
  return { t: performance.now(), g, machine: m.busy, steal: m.steal, self: (self.user + self.system) / 1e6 };
}

/**
 * CPU between two snapshots, in % of one core: each group's, and `foreign`: what the machine did beyond the
 * groups, `extraSeconds` (dnsperf's CPU, reported after it exited) and this process; `stealMs`: the milliseconds of
 * steal, all CPUs together (10 ms a tick).
 */
export function cpuDiff(a, b, extraSeconds) {
  const secs = (b.t - a.t) / 1000;
  const out = {};
  let ours = 0;
  for (const name of Object.keys(b.g)) {
    const d = (b.g[name] - (a.g[name] ?? 0)) / HZ;
    ours += d;
    out[name] = (100 * d) / secs;
  }
  ours += extraSeconds + (b.self - a.self);
  const machine = (b.machine - a.machine) / HZ;
  out.foreign = Math.max(0, (100 * (machine - ours)) / secs);
  out.stealMs = ((b.steal - a.steal) * 1000) / HZ;
  return out;
}

/** The wire form of a one-question query for `name` type A with ID `id`, RD set. */
export function queryFor(name, id) {
  const labels = name.split('.').filter(Boolean);
  const parts = [Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'));
  parts.push(Buffer.from([0, 0, 1, 0, 1]));
  return Buffer.concat(parts);
}

/**
 * Asks `name` (A) at 127.0.0.1:`port` every 50 ms until the answer's rcode is `rcode` ('any' for any answer) or
 * `timeoutMs` passes. Resolves with the seconds it took, or null.
 */
export function probe(port, name, rcode, timeoutMs) {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t0 = performance.now();
    let id = 1;
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      clearInterval(tick);
      clearTimeout(limit);
      s.close();
      resolve(v);
    };
    s.on('message', (m) => {
      if (m.length >= 12 && (rcode === 'any' || (m[3] & 15) === rcode)) finish((performance.now() - t0) / 1000);
    });
    s.on('error', () => undefined);
    const send = () => {
      id = (id + 1) & 0xffff;
      s.send(queryFor(name, id), port, '127.0.0.1', () => undefined);
    };
    const tick = setInterval(send, 50);
    const limit = setTimeout(() => finish(null), timeoutMs);
    send();
  });
}

/** Whether `port` on 127.0.0.1 can be bound over UDP (or TCP): nothing of anyone else's is there. */
export function portFree(port, kind = 'udp') {
  return new Promise((resolve) => {
    if (kind === 'tcp') {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
      return;
    }
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The real-time priority of --fifo (bench/README.md): above every ordinary process, below the kernel's threads. */
export const FIFO_PRIORITY = 50;

/**
 * --fifo on (`on`) or off for the process `pid`, by chrt run on `cpu` (the generator's, not the server's): its main
 * thread SCHED_FIFO at FIFO_PRIORITY and every other thread one below (`helpersBelow`) or one above, or all
 * SCHED_OTHER.
 * - Below, for a process whose main thread waits for none of its other threads in a scavenge (a Node process with
 *   `--single-threaded-gc` or without the parallel scavenge, as hashwalld ships, and single-threaded servers): the
 *   others (V8's compile jobs and sweeping, the list worker, libuv's pool) stay ahead of other work but never take
 *   the main thread's core, as on a server with a core to spare for them. Above it, each of their slices was a
 *   stall of the query thread (bench/README.md, "The helpers' priority under --fifo").
 * - Above, for a Node process whose scavenges run on V8's helpers too (the echo, the forwarder, `--node-flags`
 *   with V8's defaults): its main thread waits for them in every scavenge, and spins for them at times (at one
 *   priority with them it spun at 94% of the core); below it they would never run while it does.
 */
export function realtime(pid, on, cpu, helpersBelow = true) {
  const chrt = (args) => execFileSync('taskset', ['-c', String(cpu), 'chrt', ...args, String(pid)]);
  if (!on) {
    chrt(['-a', '-o', '-p', '0']);
    return;
  }
  chrt(['-a', '-f', '-p', String(FIFO_PRIORITY + (helpersBelow ? -1 : 1))]);
  chrt(['-f', '-p', String(FIFO_PRIORITY)]);
}

/**
 * Whether a Node process started with `args` scavenges on its main thread alone (realtime's `helpersBelow`):
 * `--single-threaded-gc`, or `--no-parallel-scavenge` as hashwalld ships (its helpers sweep beside the main thread;
 * a full collection that finds a sweep still running waits for it, and below the main thread it then runs at once).
 */
export const waitsForNoHelper = (args) =>
  args.includes('--single-threaded-gc') || args.includes('--no-parallel-scavenge');

/**
 * Per-thread CPU of `pids`: ticks per thread, the main threads' (a thread whose id is its process's) apart from
 * the others (V8's helpers, worker threads, libuv's pool), and the nanoseconds the main threads waited on a run
 * queue while runnable (/proc/PID/schedstat: time the scheduler gave the core to something else, ours or not), and
 * the processes' major page faults (a page read back from disk: the thread sleeps, a stall no profile shows).
 */
export function threadSnap(pids) {
  const ticks = new Map();
  let mainWaitNs = 0;
  let majorFaults = 0;
  for (const pid of pids) {
    majorFaults += Number(statFields(`/proc/${pid}/stat`)?.[9] ?? 0);
    for (const tid of tasksOf(pid)) {
      const main = Number(tid) === pid;
      ticks.set(`${pid}/${tid}`, { main, ticks: ticksIn(`/proc/${pid}/task/${tid}/stat`) });
      if (!main) continue;
      try {
        mainWaitNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
      } catch {
        // gone
      }
    }
  }
  return { t: performance.now(), ticks, mainWaitNs, majorFaults };
}

/**
 * Between two threadSnaps: the main and the other threads' CPU in % of a core (a thread started in between counts
 * from 0; one that ended in between is counted in `ended`, its CPU unknown), and the main threads' run-queue wait.
 */
export function threadDiff(a, b) {
  const secs = (b.t - a.t) / 1000;
  let main = 0;
  let other = 0;
  for (const [k, x] of b.ticks) {
    const d = x.ticks - (a.ticks.get(k)?.ticks ?? 0);
    if (x.main) main += d;
    else other += d;
  }
  return {
    mainPct: (100 * main) / HZ / secs,
    otherPct: (100 * other) / HZ / secs,
    ended: [...a.ticks.keys()].filter((k) => !b.ticks.has(k)).length,
    mainWaitMsPerS: (b.mainWaitNs - a.mainWaitNs) / 1e6 / secs,
    majorFaults: b.majorFaults - a.majorFaults,
  };
}

/**
 * Runs `cmd args` pinned to `cpu` under bash, whose `times` reports the CPU the command used (user + system seconds
 * of bash's children) after it exits; its output (stdout, and stderr with `withStderr`) goes to `outFile`. Bounded
 * by a kill timer `limitSeconds` + 30 s. With `fifo`, under SCHED_FIFO at FIFO_PRIORITY (run.mjs --fifo). Resolves
 * with { code, cpuSeconds }.
 */
export function runTimed({ cpu, cmd, args, outFile, limitSeconds, withStderr = false, fifo = false }) {
  return new Promise((resolve) => {
    const fd = openSync(outFile, 'w');
    const quoted = args.map((a) => `'${String(a).replace(/'/g, `'\\''`)}'`).join(' ');
    const redirect = withStderr ? '>&3 2>&3' : '>&3';
    const rt = fifo ? `chrt -f ${FIFO_PRIORITY} ` : '';
    // Its own process group, so that the kill timer stops the command too, not only bash (a dnsperf left behind
    // keeps loading the next rows).
    const p = spawn('bash', ['-c', `${rt}taskset -c ${cpu} ${cmd} ${quoted} ${redirect}; rc=$?; times; exit $rc`], {
      stdio: ['ignore', 'pipe', 'ignore', fd],
      detached: true,
    });
    groups.add(p.pid);
    let out = '';
    p.stdout.on('data', (c) => (out += c.toString()));
    const timer = setTimeout(() => killGroup(p.pid), (limitSeconds + 30) * 1000);
    p.on('close', (code) => {
      clearTimeout(timer);
      // Whatever of the group outlived bash (a command that ignored the end of its run) goes with it.
      killGroup(p.pid);
      groups.delete(p.pid);
      closeSync(fd);
      // `times` prints two lines: the shell's own user/sys, then its children's ("0m1.234s 0m0.567s").
      const child = (out.trim().split('\n')[1] ?? '').trim().split(/\s+/);
      const secs = (x) => {
        const m = /^(\d+)m([\d.]+)s$/.exec(x ?? '');
        return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
      };
      resolve({ code, cpuSeconds: secs(child[0]) + secs(child[1]) });
    });
  });
}

/**
 * Why a row's figures are not the server's alone, or null: another process's CPU over `foreignMax` percent of a core,
 * or the host's steal over `stealMax` ms a second of a load (`loadSeconds` long), in its latency or saturation load.
 */
export function noiseOf(row, { foreignMax, stealMax, loadSeconds }) {
  const foreign = Math.max(row.lat.foreignCpu, row.sat.foreignCpu);
  if (foreign > foreignMax)
    return `other work on the machine used ${foreign.toFixed(0)}% of a core, past --foreign-max`;
  const steal = Math.max(row.lat.stealMs ?? 0, row.sat.stealMs ?? 0) / loadSeconds;
  if (steal > stealMax)
    return `the host kept this VM's cores ${steal.toFixed(0)} ms a second of a load, past --steal-max`;
  return null;
}
