/**
 * tlog-tiles: the static resources of a tiled log. Tile and entry-bundle paths, their contents, reading the hashes
 * a proof needs from tiles (`TileHashReader`, over any `TileReader`: files, HTTP, a release source), and growing a
 * log (`LogAppender`: the tiles and bundles that appending entries creates).
 *
 * A tile at level L holds up to 256 consecutive hashes of level 8L of the tree; hashes of the levels in between are
 * recomputed from it. Tiles and bundles are immutable once written; a partial one (`.p/<W>`) is written for each
 * tree size a checkpoint names (tlog-tiles "Partial Tiles").
 */
import { TlogError, malformed } from './errors.js';
import {
  EMPTY_ROOT,
  HASH_BYTES,
  consistencyRanges,
  hashRange,
  inclusionRanges,
  leafHash,
  nodeHash,
  rangeNodes,
  sameHash,
  type Hash,
  type NodeId,
} from './merkle.js';

/** tlog-tiles: a full tile holds 256 hashes (8,192 bytes), the subtree of height 8 below it. */
export const TILE_WIDTH = 256;
export const TILE_HEIGHT = 8;
/** tlog-tiles: levels 0 to 63. */
export const MAX_TILE_LEVEL = 63;
/** tlog-tiles: an entry is prefixed by its length as a big-endian uint16. */
export const MAX_ENTRY_BYTES = 65535;
/** The largest entry bundle: 256 entries of the largest size with their prefixes. */
export const MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + MAX_ENTRY_BYTES);

/** A tile: `width` hashes (1 to 256; 256 is a full tile) at tile level `level`, the `index`-th of its level. */
export interface TileRef {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

/** An entry bundle: `width` entries (256 when full), the `index`-th bundle. */
export interface BundleRef {
  readonly index: number;
  readonly width: number;
}

function isIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/**
 * tlog-tiles: the index N as zero-padded 3-digit path elements, all but the last prefixed with `x`
 * (1234067 is `x001/x234/067`).
 */
export function encodeTileIndex(n: number): string {
  if (!isIndex(n)) throw new RangeError(`bad tile index ${n}`);
  let rest = Math.floor(n / 1000);
  let path = String(n % 1000).padStart(3, '0');
  while (rest > 0) {
    path = `x${String(rest % 1000).padStart(3, '0')}/${path}`;
    rest = Math.floor(rest / 1000);
  }
  return path;
}

function suffix(width: number): string {
  if (!(Number.isInteger(width) && width >= 1 && width <= TILE_WIDTH)) throw new RangeError(`bad width ${width}`);
  return width === TILE_WIDTH ? '' : `.p/${width}`;
}

/** `tile/<L>/<N>[.p/<W>]` */
export function tilePath(tile: TileRef): string {
  if (!(Number.isInteger(tile.level) && tile.level >= 0 && tile.level <= MAX_TILE_LEVEL)) {
    throw new RangeError(`bad tile level ${tile.level}`);
  }
  return `tile/${tile.level}/${encodeTileIndex(tile.index)}${suffix(tile.width)}`;
}

/** `tile/entries/<N>[.p/<W>]` */
export function bundlePath(bundle: BundleRef): string {
  return `tile/entries/${encodeTileIndex(bundle.index)}${suffix(bundle.width)}`;
}

export type ParsedTilePath =
  { readonly kind: 'tile'; readonly tile: TileRef } | { readonly kind: 'entries'; readonly bundle: BundleRef };

const INDEX_GROUPS = /^((?:x[0-9]{3}\/)*)([0-9]{3})$/;

/** Parses a tile or bundle path strictly (the one form `tilePath` / `bundlePath` writes); LOG_MALFORMED otherwise. */
export function parseTilePath(path: string): ParsedTilePath {
  const m = /^tile\/(entries|0|[1-9][0-9]?)\/(.+?)(?:\.p\/([1-9][0-9]{0,2}))?$/.exec(path);
  if (m === null) throw malformed(`not a tile path: ${JSON.stringify(path.slice(0, 80))}`);
  const [, levelText, indexText, widthText] = m;
  const g = INDEX_GROUPS.exec(indexText!);
  if (g === null) throw malformed('a tile index is 3-digit path elements, all but the last starting with x');
  const groups = [
    ...g[1]!
      .split('/')
      .filter((s) => s !== '')
      .map((s) => s.slice(1)),
    g[2]!,
  ];
  if (groups.length > 1 && groups[0] === '000') throw malformed('a tile index has no leading x000 element');
  const index = Number(groups.join(''));
  if (!Number.isSafeInteger(index)) throw malformed('a tile index over 2^53 - 1');
  const width = widthText === undefined ? TILE_WIDTH : Number(widthText);
  if (widthText !== undefined && width >= TILE_WIDTH) throw malformed('a partial tile has 1 to 255 entries');
  if (levelText === 'entries') return { kind: 'entries', bundle: { index, width } };
  const level = Number(levelText);
  if (level > MAX_TILE_LEVEL) throw malformed('tile levels are 0 to 63');
  return { kind: 'tile', tile: { level, index, width } };
}

/** Hashes of tree level 8 * `level` a tree of `size` leaves has: floor(size / 256^level). */
function hashesAtTileLevel(size: number, level: number): number {
  return Math.floor(size / TILE_WIDTH ** level);
}

/** The tile of a tree of `size` leaves that holds hash `i` of tile level `level` (full, or partial at the end). */
export function tileHolding(level: number, i: number, size: number): TileRef {
  const count = hashesAtTileLevel(size, level);
  if (!(isIndex(i) && i < count)) throw new RangeError(`hash ${i} of tile level ${level} is not in a tree of ${size}`);
  const index = Math.floor(i / TILE_WIDTH);
  const full = Math.floor(count / TILE_WIDTH);
  return { level, index, width: index < full ? TILE_WIDTH : count % TILE_WIDTH };
}

/** The entry bundle of a tree of `size` leaves that holds entry `i`. */
export function bundleHolding(i: number, size: number): BundleRef {
  const t = tileHolding(0, i, size);
  return { index: t.index, width: t.width };
}

/**
 * Every tile that describes a tree of `size` leaves: the full tiles of each level and the partial tile at its end
 * (tlog-tiles: a tree of 70,000 has 273 full level-0 tiles, one of width 112, one full level-1 tile, one of width
 * 17 and one level-2 tile of width 1). Level by level, left to right.
 */
export function tilesForSize(size: number): TileRef[] {
  if (!isIndex(size)) throw new RangeError(`bad tree size ${size}`);
  const out: TileRef[] = [];
  for (let level = 0; level <= MAX_TILE_LEVEL; level++) {
    const count = hashesAtTileLevel(size, level);
    if (count === 0) break;
    for (let n = 0; n * TILE_WIDTH < count; n++) out.push(tileHolding(level, n * TILE_WIDTH, size));
  }
  return out;
}

/** Every entry bundle of a tree of `size` leaves, in order. */
export function bundlesForSize(size: number): BundleRef[] {
  return tilesForSize(size)
    .filter((t) => t.level === 0)
    .map((t) => ({ index: t.index, width: t.width }));
}

/** tlog-tiles "Log entries": each entry as a big-endian uint16 length and its bytes. */
export function encodeBundle(entries: readonly Uint8Array[]): Uint8Array {
  if (entries.length < 1 || entries.length > TILE_WIDTH) throw new RangeError('a bundle has 1 to 256 entries');
  let total = 0;
  for (const e of entries) {
    if (e.byteLength > MAX_ENTRY_BYTES) throw new TlogError('LOG_TOO_LARGE', `an entry over ${MAX_ENTRY_BYTES} bytes`);
    total += 2 + e.byteLength;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const e of entries) {
    out[o] = e.byteLength >> 8;
    out[o + 1] = e.byteLength & 0xff;
    out.set(e, o + 2);
    o += 2 + e.byteLength;
  }
  return out;
}

/** Parses an entry bundle that must hold exactly `width` entries and nothing after them. */
export function parseBundle(bytes: Uint8Array, width: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let o = 0;
  while (o < bytes.byteLength) {
    if (out.length === width) throw malformed(`entry bundle: bytes after its ${width} entries`);
    if (o + 2 > bytes.byteLength) throw malformed('entry bundle: a length prefix cut short');
    const n = (bytes[o]! << 8) | bytes[o + 1]!;
    if (o + 2 + n > bytes.byteLength) throw malformed('entry bundle: an entry cut short');
    out.push(bytes.subarray(o + 2, o + 2 + n));
    o += 2 + n;
  }
  if (out.length !== width) throw malformed(`entry bundle: ${out.length} entries, expected ${width}`);
  return out;
}

/** Splits a tile's bytes into its hashes, which must be exactly `width`. */
export function parseTile(bytes: Uint8Array, width: number): Hash[] {
  if (bytes.byteLength !== width * HASH_BYTES) {
    throw malformed(`tile: ${bytes.byteLength} bytes, expected ${width} hashes (${width * HASH_BYTES} bytes)`);
  }
  const out: Hash[] = [];
  for (let i = 0; i < width; i++) out.push(bytes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES));
  return out;
}

function joinHashes(hashes: readonly Hash[]): Uint8Array {
  const out = new Uint8Array(hashes.length * HASH_BYTES);
  hashes.forEach((h, i) => out.set(h, i * HASH_BYTES));
  return out;
}

/** The root of a perfect subtree given its 2^k bottom hashes. */
function perfectRoot(hashes: readonly Hash[]): Hash {
  let level = [...hashes];
  while (level.length > 1) {
    const next: Hash[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    level = next;
  }
  return level[0]!;
}

/**
 * Where a log's tiles, bundles and checkpoint are read from, relative to its prefix (`tile/0/000.p/5`,
 * `checkpoint`): a directory, an HTTP server, a release source. `read` returns undefined when the resource does
 * not exist (HTTP 404), refuses (LOG_TOO_LARGE) more than `maxBytes`, and throws LOG_FETCH_FAILED on any other
 * failure. Implementations must cap and time out what they read.
 */
export interface TileReader {
  read(path: string, maxBytes: number): Promise<Uint8Array | undefined>;
}

/** The bytes of a tile, checked for its width; a missing partial tile is read from the full tile (tlog-tiles). */
async function readTile(reader: TileReader, tile: TileRef): Promise<Hash[]> {
  const path = tilePath(tile);
  let bytes = await reader.read(path, tile.width * HASH_BYTES);
  if (bytes === undefined && tile.width < TILE_WIDTH) {
    // tlog-tiles: a log may delete a partial tile once the full one exists; its first W hashes are the same.
    const full = await reader.read(tilePath({ ...tile, width: TILE_WIDTH }), TILE_WIDTH * HASH_BYTES);
    if (full !== undefined) bytes = full.subarray(0, Math.min(full.byteLength, tile.width * HASH_BYTES));
  }
  if (bytes === undefined) throw new TlogError('LOG_FETCH_FAILED', `${path}: not found`);
  return parseTile(bytes, tile.width);
}

/** The entries of one bundle, checked for their count; a missing partial bundle is read from the full one. */
export async function readBundle(reader: TileReader, bundle: BundleRef): Promise<Uint8Array[]> {
  const path = bundlePath(bundle);
  const bytes = await reader.read(path, bundle.width * (2 + MAX_ENTRY_BYTES));
  if (bytes === undefined && bundle.width < TILE_WIDTH) {
    const full = await reader.read(bundlePath({ ...bundle, width: TILE_WIDTH }), MAX_BUNDLE_BYTES);
    if (full !== undefined) return parseBundle(full, TILE_WIDTH).slice(0, bundle.width);
  }
  if (bytes === undefined) throw new TlogError('LOG_FETCH_FAILED', `${path}: not found`);
  return parseBundle(bytes, bundle.width);
}

function nodeKey(id: NodeId): string {
  return `${id.level}/${id.index}`;
}

/**
 * The hashes of a tree of `size` leaves, read from its tiles: complete subtrees, leaf ranges, proofs. Tiles are
 * fetched once each (in parallel, per call) and kept for the reader's life. Nothing read is trusted: a proof made
 * from a lying tile fails verification against the signed root.
 */
export class TileHashReader {
  readonly size: number;
  readonly #reader: TileReader;
  readonly #tiles = new Map<string, Promise<Hash[]>>();

  constructor(reader: TileReader, size: number) {
    if (!isIndex(size)) throw new RangeError(`bad tree size ${size}`);
    this.#reader = reader;
    this.size = size;
  }

  /** The tile and the slice of it that a complete subtree's hash is computed from. */
  #locate(id: NodeId): { tile: TileRef; from: number; count: number } {
    const tileLevel = Math.floor(id.level / TILE_HEIGHT);
    const below = 2 ** (id.level - tileLevel * TILE_HEIGHT);
    const first = id.index * below;
    const tile = tileHolding(tileLevel, first + below - 1, this.size);
    return { tile, from: first - tile.index * TILE_WIDTH, count: below };
  }

  #tile(tile: TileRef): Promise<Hash[]> {
    const key = tilePath(tile);
    let p = this.#tiles.get(key);
    if (p === undefined) {
      p = readTile(this.#reader, tile);
      this.#tiles.set(key, p);
    }
    return p;
  }

  /** The hashes of complete subtrees (each must be complete within the tree). */
  async nodes(ids: readonly NodeId[]): Promise<Map<string, Hash>> {
    const located = ids.map((id) => ({ id, ...this.#locate(id) }));
    const tiles = await Promise.all(located.map((l) => this.#tile(l.tile)));
    const out = new Map<string, Hash>();
    located.forEach((l, i) => out.set(nodeKey(l.id), perfectRoot(tiles[i]!.slice(l.from, l.from + l.count))));
    return out;
  }

  /** MTH of each leaf range, read with one round of tile fetches. */
  async hashRanges(ranges: readonly (readonly [number, number])[]): Promise<Hash[]> {
    const ids = ranges.flatMap(([a, b]) => rangeNodes(a, b));
    const known = await this.nodes(ids);
    return ranges.map(([a, b]) => hashRange(a, b, (id) => known.get(nodeKey(id))!));
  }

  /** MTH of the first `size` leaves (the tree's own root by default); EMPTY_ROOT for zero. */
  async root(size = this.size): Promise<Hash> {
    if (size === 0) return EMPTY_ROOT;
    const [root] = await this.hashRanges([[0, size]]);
    return root!;
  }

  /** RFC 9162 2.1.3.1: the inclusion proof of leaf `index` in this tree. */
  inclusionProof(index: number): Promise<Hash[]> {
    return this.hashRanges(inclusionRanges(index, this.size));
  }

  /** RFC 9162 2.1.4.1: the consistency proof from the tree of `oldSize` leaves to this one. */
  consistencyProof(oldSize: number): Promise<Hash[]> {
    return this.hashRanges(consistencyRanges(oldSize, this.size));
  }

  /** The leaf hash at `index`, as the tiles give it. */
  async leafHash(index: number): Promise<Hash> {
    const [h] = await this.hashRanges([[index, index + 1]]);
    return h!;
  }
}

/** The current (last) tile of one tile level while a log grows. */
interface OpenTile {
  index: number;
  hashes: Hash[];
  dirty: boolean;
}

/**
 * Grows a log one entry at a time and gives the tiles and entry bundles that change, keyed by path. Started
 * empty, or resumed from a log's tiles at a size whose root is known (checked before anything is appended). Full
 * tiles and bundles are handed out as they fill; `finish` adds the partial ones of the final size.
 */
export class LogAppender {
  #size: number;
  readonly #levels: OpenTile[];
  #bundle: { index: number; entries: Uint8Array[]; dirty: boolean };
  #out = new Map<string, Uint8Array>();

  private constructor(size: number, levels: OpenTile[], bundle: Uint8Array[]) {
    this.#size = size;
    this.#levels = levels;
    this.#bundle = { index: Math.floor(size / TILE_WIDTH), entries: bundle, dirty: false };
  }

  /** A new, empty log. */
  static empty(): LogAppender {
    return new LogAppender(0, [], []);
  }

  /**
   * The log whose tiles `reader` serves at `size` leaves, which must hash to `root` (else LOG_TILE_MISMATCH: a
   * damaged log is never extended). Reads the partial tile of each level and the partial entry bundle.
   */
  static async resume(reader: TileReader, size: number, root: Hash): Promise<LogAppender> {
    if (!isIndex(size)) throw new RangeError(`bad tree size ${size}`);
    const levels: OpenTile[] = [];
    for (let level = 0; hashesAtTileLevel(size, level) > 0; level++) {
      const count = hashesAtTileLevel(size, level);
      const width = count % TILE_WIDTH;
      const index = Math.floor(count / TILE_WIDTH);
      const hashes = width === 0 ? [] : await readTile(reader, { level, index, width });
      levels.push({ index, hashes, dirty: false });
    }
    const width = size % TILE_WIDTH;
    const bundle = width === 0 ? [] : await readBundle(reader, { index: Math.floor(size / TILE_WIDTH), width });
    const appender = new LogAppender(size, levels, bundle);
    if (!sameHash(appender.root(), root)) {
      throw new TlogError('LOG_TILE_MISMATCH', `the log's tiles at size ${size} do not give its root`);
    }
    // The partial bundle is appended to: its entries must be the leaves the (now checked) level-0 tile holds.
    const leaves = levels[0]?.hashes ?? [];
    if (bundle.length !== leaves.length || bundle.some((e, i) => !sameHash(leafHash(e), leaves[i]!))) {
      throw new TlogError('LOG_TILE_MISMATCH', `the log's last entry bundle does not match its tiles`);
    }
    return appender;
  }

  get size(): number {
    return this.#size;
  }

  #addHash(level: number, hash: Hash): void {
    let open = this.#levels[level];
    if (open === undefined) {
      open = { index: 0, hashes: [], dirty: false };
      this.#levels[level] = open;
    }
    open.hashes.push(hash);
    open.dirty = true;
    if (open.hashes.length === TILE_WIDTH) {
      this.#out.set(tilePath({ level, index: open.index, width: TILE_WIDTH }), joinHashes(open.hashes));
      const root = perfectRoot(open.hashes);
      this.#levels[level] = { index: open.index + 1, hashes: [], dirty: false };
      this.#addHash(level + 1, root);
    }
  }

  /** Appends one entry (at most 65,535 bytes). */
  add(entry: Uint8Array): void {
    if (entry.byteLength > MAX_ENTRY_BYTES) {
      throw new TlogError('LOG_TOO_LARGE', `a log entry is at most ${MAX_ENTRY_BYTES} bytes (tlog-tiles)`);
    }
    const b = this.#bundle;
    b.entries.push(entry);
    b.dirty = true;
    if (b.entries.length === TILE_WIDTH) {
      this.#out.set(bundlePath({ index: b.index, width: TILE_WIDTH }), encodeBundle(b.entries));
      this.#bundle = { index: b.index + 1, entries: [], dirty: false };
    }
    this.#addHash(0, leafHash(entry));
    this.#size++;
  }

  /** The full tiles and bundles completed since the last call (path to bytes), and forgets them. */
  take(): Map<string, Uint8Array> {
    const out = this.#out;
    this.#out = new Map();
    return out;
  }

  /** `take()`, plus the partial tiles and bundle that changed since the start: what the current size needs. */
  finish(): Map<string, Uint8Array> {
    const out = this.take();
    this.#levels.forEach((open, level) => {
      if (open.dirty && open.hashes.length > 0) {
        out.set(tilePath({ level, index: open.index, width: open.hashes.length }), joinHashes(open.hashes));
      }
    });
    const b = this.#bundle;
    if (b.dirty && b.entries.length > 0) {
      out.set(bundlePath({ index: b.index, width: b.entries.length }), encodeBundle(b.entries));
    }
    return out;
  }

  /** RFC 6962 2.1: MTH of every entry so far, from the open tiles. */
  root(): Hash {
    if (this.#size === 0) return EMPTY_ROOT;
    return hashRange(0, this.#size, (id) => {
      const tileLevel = Math.floor(id.level / TILE_HEIGHT);
      const below = 2 ** (id.level - tileLevel * TILE_HEIGHT);
      const open = this.#levels[tileLevel]!;
      const from = id.index * below - open.index * TILE_WIDTH;
      // The complete subtrees of RFC 6962's split of [0, size) all lie in the open tile of their level.
      if (from < 0 || from + below > open.hashes.length) throw new Error('internal: subtree outside its open tile');
      return perfectRoot(open.hashes.slice(from, from + below));
    });
  }
}
