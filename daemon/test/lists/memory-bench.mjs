// The list sync's memory benchmark: the RSS of one daemon process (memory-child.mjs, wired as hashwalld runs with
// `workers: 1`) while it loads and holds a list of N entries (default 1,000,000 D entries, as bench/ uses).
//
//   npx tsc -b && node daemon/test/lists/memory-bench.mjs [entries] [settleSeconds]
//
// Phases, each printed as one JSON line:
//   fresh    the process starts with an empty state directory and downloads the FULL from a file:// mirror
//   delta    the next serial, through a delta (1% of the entries changed), the first list still in force
//   full     the next serial again, with no delta listed: the whole FULL, the previous list in force meanwhile
//   restart  a new process opens the state directory (re-verifies the stored list) before any mirror answers
// For each: `ms` (the load, or the poll), `peakMiB` (VmHWM: the kernel's high-water mark of the process's RSS,
// reset through /proc/<pid>/clear_refs before each poll), and after `settleSeconds` of idle (default 10)
// `settledMiB` (VmRSS) and the main thread's heap figures. Each phase checks with a DNS query, before the settle
// time, that a name listed in the new serial is blocked (NXDOMAIN from the daemon, while the upstream answers
// NOERROR).
import { randomBytes } from 'node:crypto';
import { fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { buildRelease, generateKeyPair, generateListKey, makeFull, publicKeyToString } from '@hashwall/format';

const N = Number(process.argv[2] ?? 1_000_000);
const SETTLE_MS = Number(process.argv[3] ?? 10) * 1000;
// HW_BENCH_GC=1: the daemon runs with --expose-gc and each phase also reports the RSS after a full collection
// of the main thread (what is held, rather than what is garbage not yet collected).
const GC = process.env.HW_BENCH_GC === '1';
const CHILD = fileURLToPath(new URL('./memory-child.mjs', import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** VmHWM and VmRSS of a process, MiB. */
function status(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { hwm: Math.round(kib('VmHWM') / 102.4) / 10, rss: Math.round(kib('VmRSS') / 102.4) / 10 };
}

/** Resets the process's RSS high-water mark to its current RSS (Linux: `echo 5 > /proc/PID/clear_refs`). */
function resetPeak(pid) {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

// 101 hashes per 100 entries of a serial: serial s leaves out the hashes whose position is (s * 37) mod 101 in
// each group of 101, so each serial has N entries and two serials differ in 1% of them.
function universe(listKey, listed) {
  const total = Math.ceil(N / 100) * 101;
  const raw = randomBytes(total * 32);
  const views = [];
  for (let i = 0; i < total; i++) views.push(raw.subarray(i * 32, i * 32 + 32));
  // One hash per serial is a known name's, so that a DNS query can check what is in force.
  listed.forEach((name, s) => views[s * 101 + 7].set(listKey.hashKey().hash(name)));
  views.sort(Buffer.compare);
  return views;
}

function serialEntries(views, serial, listKey, listed) {
  // The known names of this serial and earlier ones are listed; those of later serials are not.
  const known = new Map(listed.map((n, s) => [listKey.hashKey().hash(n).toString('hex'), s <= serial]));
  const skip = (serial * 37) % 101;
  const kept = views.filter((v, i) => known.get(v.toString('hex')) ?? i % 101 !== skip).slice(0, N);
  return { count: kept.length, hashes: Buffer.concat(kept), kinds: new Uint8Array(kept.length).fill(0x44) };
}

function query(port, name, id) {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head[2] = 1;
  head.writeUInt16BE(1, 4);
  const msg = Buffer.concat([head, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
  const sock = createSocket('udp4');
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sock.close();
      resolve('timeout');
    }, 2000);
    sock.on('message', (m) => {
      clearTimeout(timer);
      sock.close();
      resolve((m[3] & 15) === 3 ? 'NXDOMAIN' : `rcode ${m[3] & 15}`);
    });
    sock.send(msg, port, '127.0.0.1');
  });
}

const root = mkdtempSync(join(tmpdir(), 'hw-mem-bench-'));
const children = new Set();
try {
  const key = generateKeyPair();
  const listKey = generateListKey('bench-2026a');
  const listed = ['s0.listed.example', 's1.listed.example', 's2.listed.example', 's3.listed.example'];
  const now = Math.floor(Date.now() / 1000);
  let t = performance.now();
  const views = universe(listKey, listed);
  const rel = join(root, 'release');
  const fulls = [];
  const publish = (serial, withDelta) => {
    const full = makeFull(
      {
        listId: 'bench',
        serial,
        created: now - 60,
        expires: now + 7 * 86400,
        hashKey: { mode: 'licensed', id: listKey.id },
        extensions: [],
      },
      serialEntries(views, serial, listKey, listed),
    );
    const prev = fulls.at(-1);
    const { files } = buildRelease({
      full,
      bases: withDelta && prev ? [prev] : [],
      seq: serial,
      created: now - 60,
      expires: now + 86400,
      minPoll: 60,
      signers: [key],
    });
    fulls.push(full);
    // The index last, as a publisher writes it.
    for (const [path, bytes] of files) {
      mkdirSync(dirname(join(rel, path)), { recursive: true });
      writeFileSync(join(rel, path), bytes);
    }
    return files;
  };
  const files = publish(1, false);
  console.log(
    JSON.stringify({
      built: `${N} entries, FULL ${(files.get('full/1.hwl').length / 1048576).toFixed(1)} MiB`,
      s: ((performance.now() - t) / 1000).toFixed(1),
    }),
  );

  // An upstream that answers NOERROR with no records: a name the daemon does not block is not NXDOMAIN.
  const upstream = createSocket('udp4');
  upstream.on('message', (msg, from) => {
    const out = Buffer.from(msg);
    out[2] |= 0x80;
    out[3] &= 0xf0;
    upstream.send(out, from.port, from.address);
  });
  await new Promise((r) => upstream.bind(0, '127.0.0.1', r));
  const raw = {
    listen: ['127.0.0.1:0'],
    upstreams: [`127.0.0.1:${upstream.address().port}`],
    upstream: { timeoutMs: 200, maxTries: 1 },
    stateDir: join(root, 'state'),
    metrics: { listen: '' },
    logging: { level: 'warn' },
    lists: [
      {
        id: 'bench',
        mirrors: [pathToFileURL(rel).href + '/'],
        keys: [publicKeyToString(key.publicKey)],
        hashKey: { id: listKey.id, key: listKey.keyHex() },
        schedule: '0 0 1 1 *',
        maxListBytes: 128 * 1024 * 1024,
        onStartWithoutList: 'wait',
        startWaitMs: 120000,
      },
    ],
  };
  const settingsPath = join(root, 'settings.json');
  writeFileSync(settingsPath, JSON.stringify(raw));

  const start = async () => {
    const child = fork(CHILD, [settingsPath], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: GC ? ['--expose-gc'] : [],
    });
    children.add(child);
    child.on('exit', () => children.delete(child));
    const replies = [];
    let wake;
    child.on('message', (m) => {
      replies.push(m);
      wake?.();
    });
    const next = async (op) => {
      const deadline = Date.now() + 300_000;
      for (;;) {
        const i = replies.findIndex((m) => m.op === op);
        if (i >= 0) return replies.splice(i, 1)[0];
        if (Date.now() > deadline) throw new Error(`no ${op} from the daemon`);
        await new Promise((r) => {
          wake = r;
          setTimeout(r, 1000);
        });
      }
    };
    return { child, next };
  };

  const settle = async (proc, phase, fields) => {
    const peak = status(proc.child.pid).hwm;
    // The check query first: a serving daemon sees queries all the time, and the query path lets go of the
    // previous list's matcher at its first query after a swap (not at the swap itself).
    const serial = fulls.length - 1;
    const blocked = await query(proc.port, listed[serial], serial + 1);
    await sleep(SETTLE_MS);
    proc.child.send({ op: 'mem' });
    const mem = await proc.next('mem');
    const settledMiB = status(proc.child.pid).rss;
    let afterGc;
    if (GC) {
      proc.child.send({ op: 'mem', gc: true });
      afterGc = await proc.next('mem');
    }
    console.log(JSON.stringify({ phase, ...fields, peakMiB: peak, settledMiB, blocked, mem, afterGc }));
  };

  // fresh
  let proc = await start();
  let ready = await proc.next('ready');
  proc.port = ready.port;
  await settle(proc, 'fresh', { ms: ready.ms, serial: ready.stats.serial, entries: ready.stats.entries });

  // delta, then full
  for (const [phase, serial, withDelta] of [
    ['delta', 2, true],
    ['full', 3, false],
  ]) {
    publish(serial, withDelta);
    resetPeak(proc.child.pid);
    proc.child.send({ op: 'poll' });
    const p = await proc.next('poll');
    await settle(proc, phase, {
      ms: p.ms,
      outcome: p.outcome,
      serial: p.stats.serial,
      entries: p.stats.entries,
      deltaFallbacks: p.stats.deltaFallbacks,
    });
  }
  proc.child.send({ op: 'stop' });
  await new Promise((r) => proc.child.once('exit', r));

  // restart
  proc = await start();
  ready = await proc.next('ready');
  proc.port = ready.port;
  await settle(proc, 'restart', { ms: ready.ms, serial: ready.stats.serial, origin: ready.stats.origin });
  proc.child.send({ op: 'stop' });
  await new Promise((r) => proc.child.once('exit', r));
  upstream.close();
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
}
