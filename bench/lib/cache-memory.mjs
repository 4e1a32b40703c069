// What one packet-cache entry costs, and what a cache hit costs: the built daemon's PacketCache (daemon/dist) is
// filled with N upstream-shaped answers (the question, one A record, the upstream's OPT; names like
// u123456-abcdefgh.dyn.test, as the bench's unique names), keyed the way server.ts keys them, and the process's
// memory is read before and after (after full collections): V8 heap used, external and arrayBuffers, and RSS, each
// per entry. Then the hit path, timed in rounds over the stored names in a shuffled order: the key made from the
// client's question (fold, flag byte, latin1 string), get(), and the answer rendered into a reused buffer, as
// server.ts stage 7 does; and get() alone with keys made beforehand.
//
//   node bench/lib/cache-memory.mjs [N] [--dist=DIR] [--rounds=R]
//   (re-runs itself with --expose-gc; --dist: another build of the daemon, e.g. a copy of daemon/dist made before a
//   change, to compare the two side by side in one sitting)
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
const gc = globalThis.gc;

const args = process.argv.slice(2);
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 100000);
const distArg = args.find((a) => a.startsWith('--dist='));
const rounds = Number(args.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 5);
const here = dirname(fileURLToPath(import.meta.url));
const dist = distArg ? resolve(distArg.slice(7)) : join(here, '..', '..', 'daemon', 'dist');
const load = (m) => import(pathToFileURL(join(dist, m)).href);
const { PacketCache } = await load('dns/cache.js');
// An older build (--dist) has the answers' functions in cache.js, makeEntry a method of the cache.
const answerModule = await load('dns/answer.js').catch(() => load('dns/cache.js'));
const { renderEntry } = answerModule;
const makeEntry = (cache, ...args) =>
  answerModule.makeEntry ? answerModule.makeEntry(cache.settings, ...args) : cache.makeEntry(...args);
const { ParsedQuery, ResponseInfo, parseQuery, foldQuestion, scanResponse } = await load('dns/wire.js');
const { ScratchAnswers } = await load('dns/scratch.js');
const { PASS_DECISION } = await load('types/decision.js').catch(() => load('policy/verdict.js'));

/** A name like the bench's unique ones, 25 octets: u123456-abcdefgh.dyn.test. */
function nameOf(i) {
  let tag = '';
  for (let x = Math.imul(i + 1, 2654435761) >>> 0, k = 0; k < 8; k++, x = Math.imul(x ^ (x >>> 15), 2246822519) >>> 0)
    tag += String.fromCharCode(0x61 + (x % 26));
  return `u${String(i).padStart(6, '0')}-${tag}.dyn.test`;
}

/**
 * One buffer of `parts` (arrays of octets or latin1 strings), made with Buffer.alloc: never a slice of Node's shared
 * 8 KiB pool, which the cache's own entries (Buffer.allocUnsafe) could share and keep alive with this script's
 * garbage in it (in the daemon nothing else on the query path takes small buffers from the pool).
 */
function bytes(...parts) {
  const out = Buffer.alloc(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) at += typeof p === 'string' ? out.write(p, at, 'latin1') : (out.set(p, at), p.length);
  return out;
}

function wireName(name) {
  const out = [];
  for (const label of name.split('.')) out.push(label.length, ...Buffer.from(label, 'latin1'));
  out.push(0);
  return out;
}

/** The client's query: RD, one question (type A), an OPT (1232 octets, no DO). */
function queryOf(name, id) {
  const h = [id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
  const opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];
  return bytes(h, wireName(name), [0, 1, 0, 1], opt);
}

/** nsd's answer: QR AA RD, the question, one A record (TTL 300, owner compressed to the question), its OPT. */
function answerOf(name, id) {
  const h = [id >> 8, id & 0xff, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 1];
  const a = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 66];
  const opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];
  return bytes(h, wireName(name), [0, 1, 0, 1], a, opt);
}

const q = new ParsedQuery();
const kb = Buffer.alloc(512);
/** The cache key of `msg`'s question, as server.ts makes it. */
function keyOf(msg) {
  if (parseQuery(msg, q) !== 0) throw new Error('query did not parse');
  const klen = foldQuestion(q, kb, 4);
  kb[klen] = 0x30 + (q.dnssecOk ? 1 : 0) + (q.cd ? 2 : 0);
  return kb.toString('latin1', 0, klen + 1);
}

function settle() {
  for (let i = 0; i < 4; i++) gc();
}
function mem() {
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

const cache = new PacketCache({
  maxEntries: N,
  maxBytes: 2 ** 40,
  minTtlSeconds: 0,
  maxTtlSeconds: 86400,
  maxNegativeTtlSeconds: 3600,
  serveStale: true,
  staleMaxAgeSeconds: 86400,
  staleAnswerTtlSeconds: 30,
});
const info = new ResponseInfo();
const t0 = performance.now();

// The queries and answers are made first (in memory before the first reading), so that the readings differ by what
// the cache keeps and by the garbage of storing (a string key and a normalized answer per entry), as in the daemon.
const queries = Array.from({ length: N }, (_, i) => queryOf(nameOf(i), i & 0xffff));
const answers = Array.from({ length: N }, (_, i) => answerOf(nameOf(i), i & 0xffff));
settle();
const before = mem();
for (let i = 0; i < N; i++) {
  const key = keyOf(queries[i]);
  const msg = answers[i];
  if (!scanResponse(msg, msg.length, info)) throw new Error('answer did not scan');
  const e = makeEntry(cache, msg, msg.length, info, 1232, t0, null, 1, PASS_DECISION);
  cache.set(key, e);
}
settle();
const after = mem();
if (process.env.DEBUG_MEM) console.log(before, after);
if (cache.size !== N) throw new Error(`cache holds ${cache.size} entries, not ${N}`);

const per = (k) => ((after[k] - before[k]) / N).toFixed(1);
console.log(`node ${process.versions.node}, ${N} entries, dist ${dist}`);
console.log(
  `bytes per entry: heap ${per('heap')}, external ${per('external')} (arrayBuffers ${per('arrayBuffers')}), ` +
    `rss ${per('rss')}; counted for maxBytes ${(cache.bytes / N).toFixed(1)}`,
);

// The hit path, over the stored names in a shuffled order. A build with getWire() is asked as server.ts asks it
// (with the key's octets; the string is made all the same, the policy stage needs it); an older one with the string.
const order = Array.from({ length: N }, (_, i) => i);
for (let i = N - 1; i > 0; i--) {
  const j = Math.floor(Math.random() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}
const shuffled = order.map((i) => queries[i]);
const keys = shuffled.map((m) => keyOf(m));
const wire = typeof cache.getWire === 'function';
const scratch = new ScratchAnswers();
let sink = 0;

function hitPath() {
  const now = t0 + 5000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const msg = shuffled[i];
    if (parseQuery(msg, q) !== 0) throw new Error('query did not parse');
    const klen = foldQuestion(q, kb, 4);
    kb[klen] = 0x30 + (q.dnssecOk ? 1 : 0) + (q.cd ? 2 : 0);
    const key = kb.toString('latin1', 0, klen + 1);
    const e = wire ? cache.getWire(kb, klen + 1, now) : cache.get(key, now);
    if (e === undefined || !(now < e.freshUntilMs)) throw new Error('miss');
    sink += renderEntry(e, q, now, 0, scratch)[7];
  }
  return Number(process.hrtime.bigint() - start) / N;
}
function getOnly() {
  const now = t0 + 5000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const e = cache.get(keys[i], now);
    if (e === undefined) throw new Error('miss');
    sink += e.freshUntilMs;
  }
  return Number(process.hrtime.bigint() - start) / N;
}
const hits = [];
const gets = [];
hitPath();
getOnly();
for (let r = 0; r < rounds; r++) {
  gc();
  hits.push(hitPath());
  gc();
  gets.push(getOnly());
}
const fmt = (xs) => xs.map((x) => x.toFixed(0)).join(' ');
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1].toFixed(0);
const min = (xs) => Math.min(...xs).toFixed(0);
console.log(`ns per hit (key + get + render): ${fmt(hits)} (median ${median(hits)}, min ${min(hits)})`);
console.log(`ns per get(string key made beforehand): ${fmt(gets)} (median ${median(gets)}, min ${min(gets)})`);
// The fixtures stay reachable to the end (a module-level const no longer read may be collected in between).
if (sink === -1) console.log(sink, answers.length, keys.length);
