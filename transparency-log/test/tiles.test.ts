// tlog-tiles: paths, the tiles of a tree size, entry bundles, reading proofs from tiles and growing a log.
import t from 'tap';

import {
  LogAppender,
  TILE_WIDTH,
  TileHashReader,
  TreeBuilder,
  bundlePath,
  encodeBundle,
  encodeTileIndex,
  leafHash,
  parseBundle,
  parseTile,
  parseTilePath,
  tilePath,
  tilesForSize,
  verifyConsistency,
  verifyInclusion,
  type BundleRef,
  type TileRef,
} from '../dist/index.js';
import { MemoryTiles, buildLog, entry, fixture, hex } from './helpers.ts';

interface TileVectors {
  indexes: { index: number; path: string }[];
  paths: { path: string; tile?: TileRef; bundle?: BundleRef }[];
  invalidPaths: string[];
  sizes: { size: number; levels: { full: number; partial: number }[] }[];
}
const v = fixture<TileVectors>('tiles.json');

t.test('tile indexes are 3-digit path elements, all but the last prefixed with x', async (t) => {
  for (const c of v.indexes) t.equal(encodeTileIndex(c.index), c.path, String(c.index));
});

t.test('tile and bundle paths parse and print in one form', async (t) => {
  for (const c of v.paths) {
    const parsed = parseTilePath(c.path);
    if (c.tile) {
      t.same(parsed, { kind: 'tile', tile: c.tile }, c.path);
      t.equal(tilePath(c.tile), c.path);
    } else {
      t.same(parsed, { kind: 'entries', bundle: c.bundle }, c.path);
      t.equal(bundlePath(c.bundle!), c.path);
    }
  }
  for (const bad of v.invalidPaths) t.throws(() => parseTilePath(bad), { code: 'LOG_MALFORMED' }, JSON.stringify(bad));
});

t.test('the tiles of a tree size are the ones tlog-tiles lists', async (t) => {
  for (const c of v.sizes) {
    const tiles = tilesForSize(c.size);
    const levels = c.levels.map((_, level) => ({
      full: tiles.filter((x) => x.level === level && x.width === TILE_WIDTH).length,
      partial: tiles.find((x) => x.level === level && x.width < TILE_WIDTH)?.width ?? 0,
    }));
    t.same(levels, c.levels, `size ${c.size}`);
    t.equal(Math.max(-1, ...tiles.map((x) => x.level)) + 1, c.levels.length, 'no other level');
  }
});

t.test('entry bundles are uint16-prefixed entries, exactly as many as the width', async (t) => {
  const entries = [new Uint8Array(0), entry(1), new Uint8Array(65535).fill(7)];
  const b = encodeBundle(entries);
  t.equal(b.byteLength, 2 + 0 + 2 + entries[1]!.byteLength + 2 + 65535);
  t.same(parseBundle(b, 3).map(hex), entries.map(hex));
  t.throws(() => parseBundle(b, 2), { code: 'LOG_MALFORMED' }, 'more entries than the width');
  t.throws(() => parseBundle(b, 4), { code: 'LOG_MALFORMED' }, 'fewer');
  t.throws(() => parseBundle(b.subarray(0, b.byteLength - 1), 3), { code: 'LOG_MALFORMED' }, 'cut short');
  t.throws(() => parseBundle(new Uint8Array([0]), 1), { code: 'LOG_MALFORMED' }, 'half a prefix');
  t.throws(() => encodeBundle([new Uint8Array(65536)]), { code: 'LOG_TOO_LARGE' });
  t.throws(() => LogAppender.empty().add(new Uint8Array(65536)), { code: 'LOG_TOO_LARGE' });
  t.throws(() => parseTile(new Uint8Array(33), 1), { code: 'LOG_MALFORMED' });
});

t.test('a log written entry by entry holds the entries and leaf hashes tlog-tiles describes', async (t) => {
  const { tiles, entries } = buildLog(600);
  t.same([...tiles.files.keys()].sort(), [
    'tile/0/000',
    'tile/0/001',
    'tile/0/002.p/88',
    'tile/1/000.p/2',
    'tile/entries/000',
    'tile/entries/001',
    'tile/entries/002.p/88',
  ]);
  const bundle = parseBundle(tiles.files.get('tile/entries/001')!, 256);
  t.same(bundle.map(hex), entries.slice(256, 512).map(hex));
  const level0 = parseTile(tiles.files.get('tile/0/002.p/88')!, 88);
  t.same(
    level0.map(hex),
    entries.slice(512).map((e) => hex(leafHash(e))),
  );
  const b = new TreeBuilder();
  for (const e of entries.slice(0, 256)) b.addLeafHash(leafHash(e));
  t.equal(
    hex(parseTile(tiles.files.get('tile/1/000.p/2')!, 2)[0]!),
    hex(b.root()),
    'level 1 holds the roots of full level-0 tiles',
  );
});

t.test('proofs across tile levels verify (sizes around 256 and 65,536)', async (t) => {
  const entries = Array.from({ length: 65_600 }, (_, i) => entry(i));
  const b = new TreeBuilder();
  const roots = new Map<number, Uint8Array>();
  const a = LogAppender.empty();
  const stores = new Map<number, MemoryTiles>();
  const at = [1, 255, 256, 257, 65_535, 65_536, 65_537, 65_600];
  for (let i = 0; i < entries.length; i++) {
    a.add(entries[i]!);
    b.addLeafHash(leafHash(entries[i]!));
    if (at.includes(i + 1)) {
      roots.set(i + 1, b.root());
      stores.set(i + 1, new MemoryTiles().add(a.finish()));
      t.equal(hex(a.root()), hex(b.root()), `the appender's root at ${i + 1}`);
    }
  }
  // Every size's store holds the tiles of that size only; full tiles of earlier sizes are shared.
  const all = new MemoryTiles();
  for (const s of stores.values()) all.add(s.files);
  for (const n of at) {
    const reader = new TileHashReader(all, n);
    t.equal(hex(await reader.root()), hex(roots.get(n)!), `root of ${n} from tiles`);
    for (const i of [0, n - 1, Math.floor(n / 2)]) {
      verifyInclusion(i, n, leafHash(entries[i]!), await reader.inclusionProof(i), roots.get(n)!);
    }
    for (const m of at.filter((m) => m < n)) {
      verifyConsistency(m, n, roots.get(m)!, roots.get(n)!, await reader.consistencyProof(m));
    }
  }
  t.ok(stores.get(65_536)!.files.has('tile/2/000.p/1'), 'a level-2 tile at 65,536');
});

t.test('a reader fetches each tile once, and falls back to the full tile when a partial one is gone', async (t) => {
  const { tiles, entries } = buildLog(300);
  const small = buildLog(200).tiles;
  const merged = new MemoryTiles().add(small.files).add(tiles.files);
  merged.files.delete('tile/0/000.p/200');
  const reader = new TileHashReader(merged, 200);
  const before = merged.reads;
  const b = new TreeBuilder();
  for (const e of entries.slice(0, 200)) b.addLeafHash(leafHash(e));
  t.equal(hex(await reader.root()), hex(b.root()), 'the first 200 hashes of tile/0/000');
  await reader.inclusionProof(5);
  await reader.consistencyProof(100);
  t.equal(merged.reads - before, 2, 'the missing partial tile, then the full one; nothing read twice');
  await t.rejects(new TileHashReader(new MemoryTiles(), 5).root(), { code: 'LOG_FETCH_FAILED' });
});

t.test('resuming a damaged log is refused', async (t) => {
  const { tiles, entries } = buildLog(300);
  const b = new TreeBuilder();
  for (const e of entries) b.addLeafHash(leafHash(e));
  const root = b.root();
  const resumed = await LogAppender.resume(tiles, 300, root);
  t.equal(resumed.size, 300);
  const badTile = new MemoryTiles().add(tiles.files);
  const tile = new Uint8Array(badTile.files.get('tile/0/001.p/44')!);
  tile[0]! ^= 1;
  badTile.files.set('tile/0/001.p/44', tile);
  await t.rejects(LogAppender.resume(badTile, 300, root), { code: 'LOG_TILE_MISMATCH' }, 'a damaged tile');
  const badBundle = new MemoryTiles().add(tiles.files);
  badBundle.files.set('tile/entries/001.p/44', encodeBundle([...entries.slice(256, 299), entry(9999)]));
  await t.rejects(
    LogAppender.resume(badBundle, 300, root),
    { code: 'LOG_TILE_MISMATCH' },
    'a bundle that is not the tile',
  );
  await t.rejects(LogAppender.resume(tiles, 300, leafHash(entries[0]!)), { code: 'LOG_TILE_MISMATCH' }, 'another root');
});
