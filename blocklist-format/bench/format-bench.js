// The list benchmark of @hashwall/format: builds a 1,000,000-entry FULL of random reserved names (a mix of D, H, U
// and P), signs it with a fresh minisign key, then measures what a daemon does with it:
//   - verify (threshold check of the ED signature), parse (strict FULL codec), load (ListMatcher), each and total;
//   - heap and RSS once loaded (the file and parsed arrays dropped, garbage collected), bytes per entry;
//   - median and p99 of one verdict for 2- to 6-label names, hits and misses apart, string and bytes variants.
//
//   npx tsc -b && npm run bench -w blocklist-format        (ENTRIES=200000 for a quicker run)
//
// It re-runs itself with --expose-gc when started without it. Timings are wall clock on a shared machine: compare
// runs on one machine only.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const { HashKey } = await import('../dist/hash.js');
const { ListMatcher, MatcherSet } = await import('../dist/matcher.js');
const { makeFull, serializeFull, parseFull } = await import('../dist/full.js');
const { fullTrustedComment } = await import('../dist/indexfile.js');
const { generateKeyPair, sign, TrustStore, verifyThreshold } = await import('../dist/minisign.js');
const { KIND_D, KIND_H, KIND_U, KIND_P } = await import('../dist/kinds.js');

const ENTRIES = Number(process.env.ENTRIES ?? 1_000_000);
const QUERIES = Number(process.env.QUERIES ?? 20_000); // per label count, per hit/miss, per variant
const ROUNDS = 3; // verify + parse + load are run this many times; the median is shown
const LIST_ID = 'bench';
// The kind mix: mostly domains, some exact hosts, URL expressions and the P hosts that carry them.
const MIX = [
  [KIND_D, 0.6],
  [KIND_H, 0.15],
  [KIND_U, 0.2],
  [KIND_P, 0.05],
];
const TLDS = ['test', 'example', 'invalid'];

const gc = globalThis.gc;
const MiB = 1024 * 1024;
const fmt = (n, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

function memory() {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers, external: m.external, rss: m.rss };
}

function label(rand, length) {
  const a = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < length; i++) s += a[rand() % 36];
  return s;
}

// A small fast PRNG (xorshift32) so names are cheap to make; seeded from the CSPRNG.
function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

console.log(`@hashwall/format list benchmark: node ${process.version}, ${ENTRIES.toLocaleString('en-US')} entries`);
const base = memory();

// ---- Build the list: names, hashes, kinds; then sort the hashes ascending (SPEC.md 2.1).
let t0 = performance.now();
const rand = prng(randomBytes(4).readUInt32LE(0));
const listKey = new HashKey(randomBytes(32));
let hashes = new Uint8Array(ENTRIES * 32);
let kinds = new Uint8Array(ENTRIES);
const dNames = []; // a sample of D names, for hits
const hNames = [];
const enc = new TextEncoder();
const buf = new Uint8Array(512);
for (let i = 0; i < ENTRIES; i++) {
  let r = (rand() % 1_000_000) / 1_000_000;
  let kind = KIND_D;
  for (const [k, share] of MIX) {
    if (r < share) {
      kind = k;
      break;
    }
    r -= share;
  }
  // The entry number keeps names unique; the random part gives realistic lengths.
  const core = `${label(rand, 4 + (rand() % 12))}${i.toString(36)}.${TLDS[i % 3]}`;
  let name;
  if (kind === KIND_D) name = core;
  else if (kind === KIND_H) name = `www.${core}`;
  else if (kind === KIND_P) name = `p.${core}`;
  else name = `${core}/${label(rand, 6)}/`;
  if (kind === KIND_D && dNames.length < 50_000) dNames.push(core);
  if (kind === KIND_H && hNames.length < 50_000) hNames.push(name);
  const n = enc.encodeInto(name, buf).written;
  listKey.hashInto(buf, 0, n, hashes.subarray(i * 32, i * 32 + 32));
  kinds[i] = kind;
}
// Sort: 32-bit prefix and entry number in one double (ENTRIES <= 2^21), then fix runs of equal prefixes.
if (ENTRIES > 2 ** 21) throw new Error('ENTRIES must be at most 2^21');
let keys = new Float64Array(ENTRIES);
const dv = new DataView(hashes.buffer);
for (let i = 0; i < ENTRIES; i++) keys[i] = dv.getUint32(i * 32) * 2 ** 21 + i;
keys.sort();
let order = Array.from(keys, (k) => k % 2 ** 21);
const cmp = (a, b) => Buffer.compare(hashes.subarray(a * 32, a * 32 + 32), hashes.subarray(b * 32, b * 32 + 32));
for (let i = 0; i < ENTRIES;) {
  let j = i + 1;
  while (j < ENTRIES && Math.floor(keys[j] / 2 ** 21) === Math.floor(keys[i] / 2 ** 21)) j++;
  if (j - i > 1) order.splice(i, j - i, ...order.slice(i, j).sort(cmp));
  i = j;
}
let sortedHashes = new Uint8Array(ENTRIES * 32);
let sortedKinds = new Uint8Array(ENTRIES);
order.forEach((src, dst) => {
  sortedHashes.set(hashes.subarray(src * 32, src * 32 + 32), dst * 32);
  sortedKinds[dst] = kinds[src];
});
hashes = kinds = keys = order = null;

const now = Math.floor(Date.now() / 1000);
const header = {
  listId: LIST_ID,
  serial: 2026112201,
  created: now,
  expires: now + 7 * 86400,
  hashKey: { mode: 'licensed', id: 'bench-key' },
  extensions: [],
};
let fileBytes = serializeFull(makeFull(header, { count: ENTRIES, hashes: sortedHashes, kinds: sortedKinds }));
const secretKey = generateKeyPair();
const sigText = sign(fileBytes, secretKey, fullTrustedComment(header));
const trust = new TrustStore([[LIST_ID, { keys: [secretKey.publicKey], threshold: 1 }]]);
console.log(
  `built and signed in ${fmt((performance.now() - t0) / 1000, 1)} s: FULL of ${fmt(fileBytes.length / MiB, 1)} MiB`,
);

// ---- Verify, parse, load.
const times = { verify: [], parse: [], load: [] };
let matcher = null;
for (let r = 0; r < ROUNDS; r++) {
  matcher = null;
  gc();
  t0 = performance.now();
  const { trustedComment } = verifyThreshold(fileBytes, [sigText], trust, LIST_ID);
  const t1 = performance.now();
  let full = parseFull(fileBytes);
  if (trustedComment !== fullTrustedComment(full.header)) throw new Error('trusted comment disagrees');
  const t2 = performance.now();
  matcher = new ListMatcher(full.header.listId, listKey, full.entries.hashes, full.entries.kinds);
  const t3 = performance.now();
  full = null;
  times.verify.push(t1 - t0);
  times.parse.push(t2 - t1);
  times.load.push(t3 - t2);
}
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const total = med(times.verify.map((v, i) => v + times.parse[i] + times.load[i]));
console.log(`\nverify + parse + load, median of ${ROUNDS} (ms):`);
console.log(
  `  verify ${fmt(med(times.verify))}   parse ${fmt(med(times.parse))}   load ${fmt(med(times.load))}   total ${fmt(total)}`,
);

// ---- Memory once loaded: the file and the parsed arrays are gone; what the matcher holds is what disappears
// when it is dropped too (measured at the end, after the verdicts).
fileBytes = sortedHashes = sortedKinds = null;
const loaded = memory();
const held = matcher.byteLength;
console.log(
  `\nmemory once loaded (${fmt(matcher.size)} entries held: D ${fmt(matcher.counts.D)}, H ${fmt(matcher.counts.H)}, ` +
    `P ${fmt(matcher.counts.P)}; the ${fmt(matcher.counts.U)} U entries are not kept):`,
);
console.log(
  `  matcher arrays: ${fmt(held / MiB, 1)} MiB = ${fmt(held / matcher.size, 1)} bytes per entry held, ` +
    `${fmt(held / ENTRIES, 1)} per list entry`,
);
console.log(
  `  process: heap ${fmt(loaded.heap / MiB, 1)} MiB, array buffers ${fmt(loaded.buffers / MiB, 1)} MiB, ` +
    `RSS ${fmt(loaded.rss / MiB, 1)} MiB (at start: heap ${fmt(base.heap / MiB, 1)}, RSS ${fmt(base.rss / MiB, 1)})`,
);

// ---- Verdicts.
function randomName(labels) {
  const parts = [];
  for (let i = 0; i < labels - 1; i++) parts.push(label(rand, 3 + (rand() % 8)));
  parts.push(TLDS[rand() % 3]);
  return parts.join('.');
}
function queries(labels, hit) {
  const out = [];
  for (let i = 0; i < QUERIES; i++) {
    if (!hit) out.push(randomName(labels));
    else if (labels === 2) out.push(dNames[rand() % dNames.length]);
    // k labels below a listed D domain: the walk hashes k-1 names before the match (the longest walk for a hit).
    else out.push(`${randomName(labels - 1).replace(/\.[a-z]+$/, '')}.${dNames[rand() % dNames.length]}`);
  }
  // Flat strings, as a name decoded from a packet is: a concatenation would be flattened inside the timed call.
  return out.map((s) => Buffer.from(s, 'latin1').toString('latin1'));
}
const timerCost = (() => {
  const xs = [];
  for (let i = 0; i < 100_000; i++) {
    const a = process.hrtime.bigint();
    xs.push(Number(process.hrtime.bigint() - a));
  }
  return med(xs);
})();
function time(names, fn, expectHit) {
  for (let i = 0; i < 2000; i++) fn(names[i % names.length]); // warm-up
  const xs = new Float64Array(names.length);
  for (let i = 0; i < names.length; i++) {
    const a = process.hrtime.bigint();
    const v = fn(names[i]);
    xs[i] = Number(process.hrtime.bigint() - a) - timerCost;
    if ((v !== null) !== expectHit) throw new Error(`unexpected verdict for ${names[i]}`);
  }
  xs.sort();
  return { median: xs[xs.length >> 1], p99: xs[Math.floor(xs.length * 0.99)], all: xs };
}
const asBytes = (names) => names.map((s) => Buffer.from(s, 'latin1'));

console.log(`\nverdict, ns per call (${fmt(QUERIES)} names each; timer cost of ${timerCost} ns taken off):`);
console.log('  labels   hit median   hit p99   miss median   miss p99   | bytes variant: hit median   miss median');
const pooled = { hit: [], miss: [] };
for (let labels = 2; labels <= 6; labels++) {
  const hits = queries(labels, true);
  const misses = queries(labels, false);
  const h = time(hits, (s) => matcher.verdict(s), true);
  const m = time(misses, (s) => matcher.verdict(s), false);
  const hb = time(asBytes(hits), (b) => matcher.verdictBytes(b, 0, b.length), true);
  const mb = time(asBytes(misses), (b) => matcher.verdictBytes(b, 0, b.length), false);
  pooled.hit.push(...h.all);
  pooled.miss.push(...m.all);
  console.log(
    `  ${labels}        ${fmt(h.median).padStart(7)}  ${fmt(h.p99).padStart(8)}     ${fmt(m.median).padStart(7)}  ${fmt(m.p99).padStart(9)}   |            ${fmt(hb.median).padStart(7)}       ${fmt(mb.median).padStart(7)}`,
  );
}
for (const k of ['hit', 'miss']) pooled[k].sort((a, b) => a - b);
const q = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))];
console.log(
  `  2-6 pooled  hit median ${fmt(q(pooled.hit, 0.5))}, p99 ${fmt(q(pooled.hit, 0.99))}; miss median ${fmt(q(pooled.miss, 0.5))}, p99 ${fmt(q(pooled.miss, 0.99))}`,
);
const hostHits = time(
  hNames.slice(0, QUERIES).map((s) => Buffer.from(s, 'latin1').toString('latin1')),
  (s) => matcher.verdict(s),
  true,
);
console.log(`  exact H hits (3 labels, first hash matches): median ${fmt(hostHits.median)}, p99 ${fmt(hostHits.p99)}`);

// Names never asked before under a few common parents (a CDN's hosts, a scanner's random labels): MatcherSet with
// its memo of clear parents against the same set without it, the same names, one after the other. The set in use
// is a module variable, not a closure's: a closure kept by a call site's feedback would keep the matcher alive
// through the memory measure below.
let currentSet = null;
const viaSet = (b) => currentSet.verdictBytes(b, 0, b.length);
console.log('\nnames never seen before under 16 common parents, MatcherSet verdictBytes, ns per call (median, p99):');
for (const labels of [3, 4, 5]) {
  const parents = Array.from({ length: 16 }, () => randomName(labels - 1));
  const names = asBytes(Array.from({ length: QUERIES }, (_, i) => `${label(rand, 10)}${i}.${parents[i % 16]}`));
  currentSet = new MatcherSet([matcher]);
  const memo = time(names, viaSet, false);
  currentSet = new MatcherSet([matcher], { clearParents: 0 });
  const plain = time(names, viaSet, false);
  currentSet = null;
  console.log(
    `  ${labels} labels: memo ${fmt(memo.median)} (p99 ${fmt(memo.p99)}), without ${fmt(plain.median)} ` +
      `(p99 ${fmt(plain.p99)}): ${(memo.median / plain.median).toFixed(2)}x`,
  );
}

// What the matcher retains: heap and array buffers with it, less without it (name samples stay in both).
const withMatcher = memory();
matcher = null;
const without = memory();
const retained = withMatcher.heap + withMatcher.buffers - without.heap - without.buffers;
console.log(
  `\nretained by the matcher (heap + array buffers, with it less without it): ${fmt(retained / MiB, 1)} MiB = ` +
    `${fmt(retained / ENTRIES, 1)} bytes per list entry`,
);
