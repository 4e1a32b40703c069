// The bench's raw servers (bench/lib/echo.mjs, bench/lib/forward.mjs) and the DNS and perf helpers they and
// `npm run bench -- --perf` use: the rows the bench compares hashwalld with must answer what they claim to.
// Real processes and sockets on 127.0.0.1; the upstream is a dgram socket started here.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import t, { type Test } from 'tap';

import { generate, generatePairs } from '../bench/lib/data.mjs';
import { pairsMedian, ratioTo } from '../bench/lib/pairs.mjs';
import { categorize, ownJsSpots } from '../bench/lib/perf.mjs';
import { noiseOf, waitsForNoHelper } from '../bench/lib/proc.mjs';
import { emptyAnswer, endsWith, questionEnd, wireSuffix } from '../bench/lib/raw-dns.mjs';
import { daemonEnv, shippedEnv, shippedFlags } from '../bench/lib/shipped.mjs';
import { plainCommand, plainNode } from './helpers/tools.ts';

const execFileP = promisify(execFile);

const lib = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'bench', 'lib');

/** A query for `name` (type A, class IN) with `id` and RD set. */
function query(name: string, id: number): Buffer {
  const labels = name.split('.').filter(Boolean);
  const q = Buffer.concat([
    Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels.flatMap((l) => [Buffer.from([l.length]), Buffer.from(l, 'latin1')]),
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
  return q;
}

t.test("the bench starts hashwalld as the hashwalld command's first line does", async (t) => {
  const first = readFileSync(join(lib, '..', '..', 'daemon', 'src', 'main.ts'), 'utf8').split('\n', 1)[0]!;
  t.equal(
    first,
    `#!/usr/bin/env -S ${Object.entries(shippedEnv)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')} node ${shippedFlags.join(' ')}`,
  );
  t.ok(shippedEnv.MALLOC_ARENA_MAX !== undefined);
  const saved = process.env.MALLOC_ARENA_MAX;
  try {
    delete process.env.MALLOC_ARENA_MAX;
    t.equal(daemonEnv().MALLOC_ARENA_MAX, shippedEnv.MALLOC_ARENA_MAX, 'the shipped value by default');
    process.env.MALLOC_ARENA_MAX = '8';
    t.equal(daemonEnv().MALLOC_ARENA_MAX, '8', "the bench's own environment wins, to compare");
  } finally {
    if (saved === undefined) delete process.env.MALLOC_ARENA_MAX;
    else process.env.MALLOC_ARENA_MAX = saved;
  }
});

t.test("the shipped flags: the collector's helpers sweep, the query thread waits for none of them", async (t) => {
  // V8 as these flags leave it (--print-flag-values): the scavenge, marking and compaction on the main thread, so
  // it never waits for a helper that shares its core, but the sweeping (the datagrams' ArrayBuffers among it)
  // beside it. --single-threaded-gc would turn the sweeping off too, whatever follows it on the command line.
  const [file, args] = plainCommand(process.execPath, [...shippedFlags, '--print-flag-values', '-e', '0']);
  const v8 = new Set((await execFileP(file, args)).stdout.split('\n'));
  for (const f of [
    '--no-parallel-scavenge',
    '--no-parallel-marking',
    '--no-concurrent-marking',
    '--no-parallel-compaction',
    '--no-parallel-pointer-update',
    '--concurrent-sweeping',
    '--concurrent-array-buffer-sweeping',
    '--no-single-threaded-gc',
  ])
    t.ok(v8.has(f), f);
  t.ok(waitsForNoHelper(shippedFlags), "under --fifo the bench puts the daemon's helpers below its main thread");
  t.notOk(waitsForNoHelper(['--max-semi-space-size=2']), "but not those of a process with V8's default flags");
});

t.test('raw-dns finds the question and answers it empty', async (t) => {
  const q = query('Www.Example.test', 0x1234);
  const end = questionEnd(q);
  t.equal(end, q.length);
  const a = emptyAnswer(q, end);
  t.equal(a.readUInt16BE(0), 0x1234, 'the ID');
  t.equal(a[2]! & 0x80, 0x80, 'QR');
  t.equal(a[2]! & 0x01, 0x01, 'RD kept');
  t.equal(a[3]! & 0x0f, 0, 'NOERROR');
  t.same([a.readUInt16BE(4), a.readUInt16BE(6), a.readUInt16BE(8), a.readUInt16BE(10)], [1, 0, 0, 0]);
  t.same(a.subarray(12), q.subarray(12), 'the question as asked');
  t.equal(questionEnd(Buffer.alloc(11)), -1, 'shorter than a header');
  t.equal(questionEnd(a), -1, 'a response is not a query');
  t.equal(questionEnd(q.subarray(0, q.length - 1)), -1, 'a question cut short');
});

t.test('raw-dns matches a suffix by whole labels, any case', async (t) => {
  const dyn = wireSuffix('dyn.test');
  const m = (name: string): boolean => {
    const q = query(name, 1);
    return endsWith(q, questionEnd(q), dyn);
  };
  t.ok(m('u1-abc.dyn.test'));
  t.ok(m('A.B.DYN.Test'), 'case folded');
  t.ok(m('dyn.test'), 'the suffix itself');
  t.notOk(m('xdyn.test'), 'not inside a label');
  t.notOk(m('dyn.test.example'));
  t.notOk(m('test'), 'shorter than the suffix');
});

t.test(
  'perf categories: kernel, collector, malloc, runtime, JIT of Node, of the server and of npm libraries',
  async (t) => {
    const cases: [string, string, string][] = [
      ['[kernel.kallsyms]', '[k] udp_sendmsg', 'kernel'],
      ['node', '[.] v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>', 'gc'],
      ['node', '[.] Builtins_FindOrderedHashMapEntry', 'runtime'],
      ['libc.so.6', '[.] malloc_consolidate', 'malloc'],
      ['libc.so.6', '[.] __libc_sendmsg', 'other'],
      ['[JIT] tid 123', '[.] JS:*Socket.send node:dgram:586:33', 'jsNode'],
      ['[JIT] tid 123', '[.] JS:*getWire file:///srv/hashwall/daemon/dist/dns/cache.js:352:12', 'jsServer'],
      ['[JIT] tid 123', '[.] JS:*parseImpl /srv/hashwall/node_modules/tldts/dist/cjs/index.js:919:19', 'jsLib'],
      ['unbound', '[.] worker_handle_request', 'other'],
    ];
    for (const [dso, sym, want] of cases) t.equal(categorize(dso, sym), want, `${dso} ${sym}`);
  },
);

t.test(
  "perf's hot instructions: the server's own JS only, by function and offset, the most sampled first",
  async (t) => {
    const own = 'JS:*getWire file:///srv/hashwall/daemon/dist/dns/cache.js:374:12';
    const script = [
      `     7f3bea17a5b3 ${own}+0x433`,
      `     7f3bea17a69d ${own}+0x51d`,
      `     7f3bea17a69d ${own}+0x51d`,
      '     7f3bea1471ed JS:*Socket.send node:dgram:586:33+0x4d',
      '     7f3bea14f7c4 JS:*parseImpl /srv/hashwall/node_modules/tldts/dist/cjs/index.js:919:19+0x12',
      '          9f4754 node::UDPWrap::DoSend+0x5a4',
      '',
    ].join('\n');
    t.same(ownJsSpots(script), [
      { sym: own, offset: '0x51d', samples: 2 },
      { sym: own, offset: '0x433', samples: 1 },
    ]);
  },
);

/** Starts a bench server script and waits for its "listening" line; returns it and the port it listens on. */
async function startServer(script: string, args: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(...plainNode(join(lib, script), ['127.0.0.1', '0', ...args]), {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 10 s: ${out}`)), 10000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}): ${out}`));
    });
  });
  return { proc, port };
}

async function stopServer(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}

/** Sends `msg` from `sock` to the port and waits (at most 5 s) for one datagram back. */
async function ask(sock: Socket, port: number, msg: Buffer): Promise<Buffer> {
  const got = new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer within 5 s')), 5000);
    sock.once('message', (m: Buffer) => {
      clearTimeout(timer);
      resolve(m);
    });
  });
  sock.send(msg, port, '127.0.0.1');
  return got;
}

t.test('the echo answers every query empty, with its own ID', async (t) => {
  const { proc, port } = await startServer('echo.mjs', []);
  t.teardown(() => stopServer(proc));
  const client = createSocket('udp4');
  t.teardown(() => client.close());
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
  const q = query('h1.hot.test', 0xbeef);
  t.same(await ask(client, port, q), emptyAnswer(q, questionEnd(q)));
});

/**
 * Starts the forwarder with `mode` ([] or ['--ports']) before an upstream started here, asks it 20 .dyn.test
 * questions and a hot name, checks what came back, and resolves with the source ports the upstream saw and the
 * forwarder's open file descriptors before and after the 20.
 */
async function forwards(t: Test, mode: string[]): Promise<{ sourcePorts: number[]; fds: [number, number] }> {
  // The upstream: answers every query with its own payload after the question, so the test can tell it from the
  // forwarder's empty answers.
  const upstream = createSocket('udp4');
  t.teardown(() => upstream.close());
  const seen: Buffer[] = [];
  const sourcePorts: number[] = [];
  upstream.on('message', (m: Buffer, r) => {
    seen.push(Buffer.from(m));
    sourcePorts.push(r.port);
    const a = Buffer.concat([emptyAnswer(m, questionEnd(m)), Buffer.from('upstream')]);
    upstream.send(a, r.port, r.address);
  });
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', r));
  const { proc, port } = await startServer('forward.mjs', ['127.0.0.1', String(upstream.address().port), ...mode]);
  t.teardown(() => stopServer(proc));
  const client = createSocket('udp4');
  t.teardown(() => client.close());
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
  const openFds = () => readdirSync(`/proc/${proc.pid}/fd`).length;
  const before = openFds();

  const ids = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const q = query(`u${i}-x.dyn.test`, 0x0a00 + i);
    const a = await ask(client, port, q);
    t.equal(a.readUInt16BE(0), 0x0a00 + i, `u${i}: the client's ID back`);
    t.equal(a.subarray(a.length - 8).toString(), 'upstream', `u${i}: the upstream's answer`);
    t.same(a.subarray(12, q.length), q.subarray(12), `u${i}: its question`);
    ids.add(seen[i]!.readUInt16BE(0));
  }
  t.equal(seen.length, 20, 'every .dyn.test question went upstream');
  t.ok(ids.size >= 19, `the upstream saw fresh IDs (${ids.size} distinct of 20)`);

  const hot = query('h2.hot.test', 0x0bbb);
  t.same(await ask(client, port, hot), emptyAnswer(hot, questionEnd(hot)), 'another name: answered as the echo does');
  t.equal(seen.length, 20, 'and not sent upstream');
  return { sourcePorts, fds: [before, openFds()] };
}

t.test('the forwarder sends .dyn.test upstream with a fresh ID and returns the answer with the ID asked', async (t) => {
  const { sourcePorts } = await forwards(t, []);
  t.equal(new Set(sourcePorts).size, 1, 'from its one upstream socket');
});

t.test('the forwarder with --ports sends each query from a socket of its own on a random port', async (t) => {
  const { sourcePorts, fds } = await forwards(t, ['--ports']);
  t.ok(new Set(sourcePorts).size >= 19, `from fresh ports (${new Set(sourcePorts).size} distinct of 20)`);
  t.ok(
    sourcePorts.every((p) => p >= 1024),
    'none below 1024',
  );
  t.equal(fds[1], fds[0], 'each socket closed once its answer came: as many descriptors open as before');
});

t.test("a row is noisy when another process's CPU or the host's steal passes its limit in either load", async (t) => {
  const limits = { foreignMax: 15, stealMax: 20, loadSeconds: 4 };
  const row = (latForeign: number, satForeign: number, latSteal: number, satSteal: number) => ({
    lat: { foreignCpu: latForeign, stealMs: latSteal },
    sat: { foreignCpu: satForeign, stealMs: satSteal },
  });
  t.equal(noiseOf(row(2, 3, 40, 80), limits), null, '80 ms of steal in a 4 s load is 20 ms a second: not past it');
  t.match(noiseOf(row(2, 3, 40, 84), limits), /21 ms a second of a load, past --steal-max/, 'the saturation load');
  t.match(noiseOf(row(2, 3, 400, 0), limits), /100 ms a second of a load, past --steal-max/, 'the latency load');
  t.match(noiseOf(row(16, 0, 0, 0), limits), /used 16% of a core, past --foreign-max/, 'another process');
  t.match(noiseOf(row(0, 30, 400, 0), limits), /--foreign-max/, 'the other CPU named first when both are past');
  t.equal(noiseOf({ lat: { foreignCpu: 0 }, sat: { foreignCpu: 0 } }, limits), null, 'no steal read: not noisy');
});

t.test("the saturated pairs' query files: the mix of the others, unique names of their own, made once", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hw-bench-pairs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await generate(dir, { seed: 7, block: 500, satQueries: 2000, latQueries: 1000 });
  const files = await generatePairs(dir, { seed: 7, pairs: 3, count: 1000 });
  t.same(
    files.map((f) => f.slice(dir.length + 1)),
    ['queries-pair-1.txt', 'queries-pair-2.txt', 'queries-pair-3.txt'],
  );
  const listed = new Set(readFileSync(join(dir, 'blocklist.txt'), 'utf8').split('\n').filter(Boolean));
  const lines = (f: string) => readFileSync(f, 'utf8').split('\n').filter(Boolean);
  const uniqueOf = (f: string) => lines(f).filter((l) => l.endsWith('.dyn.test A'));
  const seen = new Set(uniqueOf(join(dir, 'queries-sat.txt')));
  files.forEach((f, k) => {
    const all = lines(f);
    t.equal(all.length, 1000, `pair ${k + 1}: the count asked`);
    t.equal(all.filter((l) => /^h\d+\.hot\.test A$/.test(l)).length, 800, 'eight hot names in ten');
    const blocked = all.filter((l) => l.includes('.blk'));
    t.equal(blocked.length, 100, 'one listed name in ten');
    t.ok(
      blocked.every((l) => listed.has(l.slice(0, -2).replace(/^www\./, ''))),
      'each a listed name or www. below one',
    );
    const unique = uniqueOf(f);
    t.equal(unique.length, 100, 'one unique name in ten');
    t.ok(
      unique.every((l) => l.startsWith(`p${k + 1}-`)),
      'under the prefix of its pair',
    );
    t.ok(
      unique.every((l) => !seen.has(l)),
      'none asked by another file',
    );
    for (const l of unique) seen.add(l);
  });
  const before = statSync(files[0]!).mtimeMs;
  await generatePairs(dir, { seed: 7, pairs: 3, count: 1000 });
  t.equal(statSync(files[0]!).mtimeMs, before, 'the same parameters: the files are kept');
  await generatePairs(dir, { seed: 7, pairs: 3, count: 500 });
  t.equal(lines(files[0]!).length, 500, 'another count: made again');
});

t.test("the pairs' verdict: the median over the clean pairs, over all when fewer than half are clean", async (t) => {
  const pair = {
    loads: { echo: { usPerQuery: 20 }, 'forward-ports': { usPerQuery: 28 }, hashwalld: { usPerQuery: 30 } },
  };
  t.equal(ratioTo(pair, 'echo').toFixed(3), '0.667', "a pair's ratio: the other's CPU per query over hashwalld's");
  t.equal(ratioTo(pair, 'forward-ports').toFixed(3), '0.933');
  const p = (ratio: number, noisy = false) => ({ ratio, noise: noisy ? 'steal' : null });
  t.same(pairsMedian([p(0.7), p(0.9, true), p(0.68), p(0.72), p(0.5, true)]), {
    median: 0.7,
    used: 3,
    noisy: false,
    min: 0.68,
    max: 0.72,
  });
  t.same(
    pairsMedian([p(0.7), p(0.8), p(0.9, true), p(0.6, true)]),
    {
      median: 0.75,
      used: 2,
      noisy: false,
      min: 0.7,
      max: 0.8,
    },
    'half clean is enough; an even count takes the middle two',
  );
  t.same(
    pairsMedian([p(0.7), p(0.9, true), p(0.5, true)]),
    {
      median: 0.7,
      used: 3,
      noisy: true,
      min: 0.5,
      max: 0.9,
    },
    'one clean pair in three: all of them, said to be noisy',
  );
});
