// The bench's data, generated from a seed so every target and every run gets the same names and the same queries.
//
// Names (all under .test, RFC 2606 reserved; nothing here is a real site):
//   - hot:     HOT names h<i>.hot.test, A records with a day's TTL: the repeated, cacheable part of the mix;
//   - unique:  <prefix><n>-<random>.dyn.test, answered by the upstream's wildcard and never asked twice in a file:
//              they go upstream on every target;
//   - blocked: BLOCK random registrable-looking names <random>.blk<k>.test; the upstream answers all of them
//              (a wildcard per blk zone, 192.0.2.66), so a target that did not block one answers NOERROR.
// Query files: each block of ten lines holds 8 hot names, 1 unique name and 1 blocked name (7 times in 10 the listed
// name itself, else www. below it, which exercises the suffix walk), shuffled.
//
// Outputs (in the data folder): blocklist.txt, zones/*.zone, queries-{warm,lat,sat}.txt, localzone.conf (Unbound),
// the HWL1 release (release/, with release.json holding the public key and the list's hash key), and from
// generatePairs the saturated pairs' queries-pair-<k>.txt.
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { buildRelease, generateKeyPair, generateListKey, makeFull, publicKeyToString } from '@hashwall/format';

const HOT = 10_000;
const BLK_ZONES = 16;
const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** sfc32: a small seeded generator (deterministic across Node versions, unlike Math.random). */
export function seeded(seed) {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed | 0;
  const next = () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

function label(rnd, min, max) {
  const n = min + Math.floor(rnd() * (max - min + 1));
  let s = '';
  for (let i = 0; i < n; i++) s += ALNUM[Math.floor(rnd() * ALNUM.length)];
  return s;
}

/** Writes lines through a stream in chunks; resolves when flushed. */
async function writeLines(path, count, lineAt) {
  const out = createWriteStream(path);
  let chunk = [];
  for (let i = 0; i < count; i++) {
    chunk.push(lineAt(i));
    if (chunk.length === 50_000) {
      if (!out.write(chunk.join('\n') + '\n')) await new Promise((r) => out.once('drain', r));
      chunk = [];
    }
  }
  if (chunk.length > 0) out.write(chunk.join('\n') + '\n');
  await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
}

const SOA = (zone) =>
  `$ORIGIN ${zone}.\n$TTL 3600\n@ IN SOA ns.${zone}. hostmaster.${zone}. 1 3600 600 86400 300\n@ IN NS ns.${zone}.\nns IN A 127.0.0.1\n`;

/**
 * Generates everything but the signed release into `dir` unless `dir/.stamp` says it is already there for these
 * parameters. Returns the zone names (for the upstream's config).
 */
export async function generate(dir, { seed, block, satQueries, latQueries }) {
  const stamp = JSON.stringify({ v: 2, seed, block, satQueries, latQueries });
  const zones = ['hot.test', 'dyn.test', ...Array.from({ length: BLK_ZONES }, (_, k) => `blk${k}.test`)];
  try {
    if (readFileSync(join(dir, '.stamp'), 'utf8') === stamp) return { zones, generated: false };
  } catch {
    // not generated yet
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'zones'), { recursive: true });
  const rnd = seeded(seed);

  // The blocklist: unique names.
  const seen = new Set();
  const blocked = [];
  while (blocked.length < block) {
    const name = `${label(rnd, 5, 14)}.blk${Math.floor(rnd() * BLK_ZONES)}.test`;
    if (seen.has(name)) continue;
    seen.add(name);
    blocked.push(name);
  }
  seen.clear();
  await writeLines(join(dir, 'blocklist.txt'), blocked.length, (i) => blocked[i]);
  await writeLines(join(dir, 'localzone.conf'), blocked.length + 1, (i) =>
    i === 0 ? 'server:' : `    local-zone: "${blocked[i - 1]}." always_nxdomain`,
  );

  // Zones for the upstream.
  let hot = SOA('hot.test');
  for (let i = 0; i < HOT; i++) hot += `h${i} 86400 IN A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}\n`;
  writeFileSync(join(dir, 'zones', 'hot.test.zone'), hot);
  writeFileSync(join(dir, 'zones', 'dyn.test.zone'), SOA('dyn.test') + '* 300 IN A 192.0.2.1\n');
  for (let k = 0; k < BLK_ZONES; k++) {
    writeFileSync(join(dir, 'zones', `blk${k}.test.zone`), SOA(`blk${k}.test`) + '* 300 IN A 192.0.2.66\n');
  }

  // Query files.
  const queries = (file, count, prefix) => writeQueries(join(dir, file), count, prefix, rnd, blocked);
  await queries('queries-sat.txt', satQueries, 's');
  await queries('queries-lat.txt', latQueries, 'l');
  await queries('queries-warm.txt', latQueries, 'w');
  writeFileSync(join(dir, '.stamp'), stamp);
  return { zones, generated: true };
}

/**
 * Writes `count` queries of the mix to `path` (see the top of this file): blocks of ten, 8 hot names, 1 unique name
 * `<prefix><n>-<random>.dyn.test` and 1 listed name (7 times in 10 itself, else www. below it), shuffled by `rnd`.
 */
function writeQueries(path, count, prefix, rnd, blocked) {
  const block10 = new Array(10);
  return writeLines(path, Math.ceil(count / 10), (u) => {
    for (let i = 0; i < 8; i++) block10[i] = `h${Math.floor(rnd() * HOT)}.hot.test A`;
    block10[8] = `${prefix}${u.toString(36)}-${label(rnd, 4, 8)}.dyn.test A`;
    const b = blocked[Math.floor(rnd() * blocked.length)];
    block10[9] = `${rnd() < 0.7 ? b : `www.${b}`} A`;
    for (let i = 9; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [block10[i], block10[j]] = [block10[j], block10[i]];
    }
    return block10.join('\n');
  });
}

/**
 * The query files of the saturated pairs (bench/README.md, "Saturated pairs"): queries-pair-<k>.txt for k = 1 to
 * `pairs`, `count` queries each, the mix of the other files with unique names of their own (prefix p<k>-), so that
 * no load of a pair finds the unique names of an earlier one in a cache. Made from `dir`'s blocklist.txt, unless
 * `dir/.pairs-stamp` says they are already there for these parameters. Returns the files' paths.
 */
export async function generatePairs(dir, { seed, pairs, count }) {
  const files = Array.from({ length: pairs }, (_, k) => join(dir, `queries-pair-${k + 1}.txt`));
  const stamp = JSON.stringify({ v: 1, seed, pairs, count, list: readFileSync(join(dir, '.stamp'), 'utf8') });
  try {
    if (readFileSync(join(dir, '.pairs-stamp'), 'utf8') === stamp) return files;
  } catch {
    // not generated yet
  }
  const blocked = readFileSync(join(dir, 'blocklist.txt'), 'utf8').split('\n').filter(Boolean);
  const rnd = seeded(seed ^ 0x70616972);
  for (let k = 0; k < pairs; k++) await writeQueries(files[k], count, `p${k + 1}-`, rnd, blocked);
  writeFileSync(join(dir, '.pairs-stamp'), stamp);
  return files;
}

/**
 * Builds and signs the HWL1 release of blocklist.txt (1 FULL, D entries) into `dir/release`, valid from now: a
 * fresh signing key and list hash key each time (nothing secret is kept). Returns what a daemon config needs.
 */
export function buildHwl1(dir) {
  const names = readFileSync(join(dir, 'blocklist.txt'), 'utf8').split('\n').filter(Boolean);
  const key = generateKeyPair();
  const listKey = generateListKey('bench-key');
  const hk = listKey.hashKey();
  const raw = Buffer.allocUnsafe(names.length * 32);
  for (let i = 0; i < names.length; i++) raw.set(hk.hash(names[i]), i * 32);
  const views = [];
  for (let i = 0; i < names.length; i++) views.push(raw.subarray(i * 32, i * 32 + 32));
  views.sort(Buffer.compare);
  const entries = { count: views.length, hashes: Buffer.concat(views), kinds: new Uint8Array(views.length).fill(0x44) };
  const now = Math.floor(Date.now() / 1000);
  const full = makeFull(
    {
      listId: 'bench',
      serial: 1,
      created: now - 60,
      expires: now + 7 * 86400,
      hashKey: { mode: 'licensed', id: listKey.id },
      extensions: [],
    },
    entries,
  );
  const { files } = buildRelease({
    full,
    bases: [],
    seq: 1,
    created: now - 60,
    expires: now + 2 * 86400,
    minPoll: 3600,
    signers: [key],
  });
  const rel = join(dir, 'release');
  rmSync(rel, { recursive: true, force: true });
  let fullBytes = 0;
  for (const [path, bytes] of files) {
    mkdirSync(dirname(join(rel, path)), { recursive: true });
    writeFileSync(join(rel, path), bytes);
    if (path === 'full/1.hwl') fullBytes = bytes.length;
  }
  const info = {
    release: rel,
    publicKey: publicKeyToString(key.publicKey),
    hashKey: { id: listKey.id, key: listKey.keyHex() },
    entries: entries.count,
    fullBytes,
  };
  writeFileSync(join(dir, 'release.json'), JSON.stringify(info, null, 2));
  return info;
}
