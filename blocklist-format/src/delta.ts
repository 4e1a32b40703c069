/**
 * DELTA files (FORMAT.md 2.2): the change from the FULL of `base-serial` to the FULL of `serial`. Removals come
 * first, then additions, each sorted; a changed kind is the removal and the addition of the same hash. Applying a
 * delta must give the target FULL byte for byte; any mismatch discards the delta (the client then fetches the FULL).
 */
import { FormatError } from './errors.js';
import { HASH_BYTES, checkEntries, compareHash, decodeLines, encodeLines, type Entries } from './entries.js';
import {
  HeaderReader,
  checkValidity,
  formatTime,
  isListId,
  malformed,
  parseHex64,
  parseInteger,
  parseListId,
  parseTime,
  splitHeader,
  writeHeader,
  type Extension,
} from './header.js';
import {
  MAX_LIST_VALIDITY_DAYS,
  checkSize,
  fullBodySha256,
  hashKeyFields,
  readHashKey,
  type FullList,
  type HashKeyRef,
  type ParseOptions,
} from './full.js';

const DELTA_LINE_BYTES = 68;
const MINUS = 0x2d;
const PLUS = 0x2b;

export interface DeltaHeader {
  readonly listId: string;
  readonly baseSerial: number;
  /** body-sha256 of the base FULL. */
  readonly baseBodySha256: string;
  readonly serial: number;
  readonly created: number;
  readonly expires: number;
  readonly hashKey: HashKeyRef;
  /** Entry count of the result. */
  readonly entries: number;
  /** body-sha256 of the result. */
  readonly bodySha256: string;
  readonly extensions: readonly Extension[];
}

export interface DeltaList {
  readonly header: DeltaHeader;
  readonly removals: Entries;
  readonly additions: Entries;
}

function mismatch(message: string): FormatError {
  return new FormatError('DELTA_MISMATCH', message);
}

/** Rejects a hash that is both removed and added with the same kind: a no-op pair, so not the one byte form. */
function checkNoNoOp(removals: Entries, additions: Entries, raise: (m: string) => Error): void {
  let i = 0;
  let j = 0;
  while (i < removals.count && j < additions.count) {
    const c = compareHash(removals.hashes, i, additions.hashes, j);
    if (c === 0 && removals.kinds[i] === additions.kinds[j]) {
      throw raise(`removal ${i + 1} and addition ${j + 1} are the same entry`);
    }
    if (c <= 0) i++;
    if (c >= 0) j++;
  }
}

/** Parses a DELTA strictly. The caller verifies its signatures over these same bytes first. */
export function parseDelta(bytes: Uint8Array, options?: ParseOptions): DeltaList {
  checkSize(bytes, options, 'DELTA');
  const { fields, bodyStart } = splitHeader(bytes, 'HWL1 DELTA');
  const h = new HeaderReader(fields);
  const listId = parseListId(h.take('list-id'));
  const baseSerial = parseInteger(h.take('base-serial'), 'base-serial');
  const baseBodySha256 = parseHex64(h.take('base-body-sha256'), 'base-body-sha256');
  const serial = parseInteger(h.take('serial'), 'serial');
  if (serial <= baseSerial) throw malformed('serial is not above base-serial');
  const created = parseTime(h.take('created'), 'created');
  const expires = parseTime(h.take('expires'), 'expires');
  checkValidity(created, expires, MAX_LIST_VALIDITY_DAYS);
  const hashKey = readHashKey(h);
  const entries = parseInteger(h.take('entries'), 'entries');
  const bodySha256 = parseHex64(h.take('body-sha256'), 'body-sha256');
  const extensions = h.extensions();

  const bodyLength = bytes.length - bodyStart;
  if (bodyLength % DELTA_LINE_BYTES !== 0) throw malformed(`body is ${bodyLength} bytes, not whole lines`);
  const lines = bodyLength / DELTA_LINE_BYTES;
  let nRemovals = 0;
  while (nRemovals < lines && bytes[bodyStart + nRemovals * DELTA_LINE_BYTES] === MINUS) nRemovals++;
  const removals = decodeLines(bytes, bodyStart, nRemovals, MINUS, 'removal');
  const additions = decodeLines(
    bytes,
    bodyStart + nRemovals * DELTA_LINE_BYTES,
    lines - nRemovals,
    PLUS,
    'addition (or a removal after additions)',
  );
  checkNoNoOp(removals, additions, malformed);
  return {
    header: {
      listId,
      baseSerial,
      baseBodySha256,
      serial,
      created,
      expires,
      hashKey,
      entries,
      bodySha256,
      extensions,
    },
    removals,
    additions,
  };
}

/** The one byte form of a DELTA. */
export function serializeDelta(delta: DeltaList): Buffer {
  const { header: d, removals, additions } = delta;
  if (!isListId(d.listId)) throw new RangeError(`bad list-id ${d.listId}`);
  if (!(d.serial > d.baseSerial)) throw new RangeError('serial is not above base-serial');
  checkValidity(d.created, d.expires, MAX_LIST_VALIDITY_DAYS);
  checkEntries(removals, 'removals');
  checkEntries(additions, 'additions');
  checkNoNoOp(removals, additions, (m) => new RangeError(m));
  const head = writeHeader(
    'HWL1 DELTA',
    [
      ['list-id', d.listId],
      ['base-serial', String(d.baseSerial)],
      ['base-body-sha256', d.baseBodySha256],
      ['serial', String(d.serial)],
      ['created', formatTime(d.created)],
      ['expires', formatTime(d.expires)],
      ...hashKeyFields(d.hashKey),
      ['entries', String(d.entries)],
      ['body-sha256', d.bodySha256],
    ],
    d.extensions,
  );
  const body = Buffer.allocUnsafe((removals.count + additions.count) * DELTA_LINE_BYTES);
  encodeLines(additions, PLUS, body, encodeLines(removals, MINUS, body, 0));
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** Copies entry `i` of `from` to slot `n` of `to`. */
function copyEntry(from: Entries, i: number, hashes: Uint8Array, kinds: Uint8Array, n: number): void {
  hashes.set(from.hashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES), n * HASH_BYTES);
  kinds[n] = from.kinds[i]!;
}

/** The delta that turns `base` into `target` (same list-id, a higher serial). */
export function computeDelta(base: FullList, target: FullList): DeltaList {
  if (base.header.listId !== target.header.listId) {
    throw new FormatError('LIST_MISMATCH', 'base and target are different lists');
  }
  if (!(target.header.serial > base.header.serial)) throw new RangeError('target serial is not above base serial');
  const a = base.entries;
  const b = target.entries;
  const rm = { hashes: new Uint8Array(a.count * HASH_BYTES), kinds: new Uint8Array(a.count), count: 0 };
  const add = { hashes: new Uint8Array(b.count * HASH_BYTES), kinds: new Uint8Array(b.count), count: 0 };
  let i = 0;
  let j = 0;
  while (i < a.count || j < b.count) {
    const c = i >= a.count ? 1 : j >= b.count ? -1 : compareHash(a.hashes, i, b.hashes, j);
    if (c < 0) copyEntry(a, i++, rm.hashes, rm.kinds, rm.count++);
    else if (c > 0) copyEntry(b, j++, add.hashes, add.kinds, add.count++);
    else {
      if (a.kinds[i] !== b.kinds[j]) {
        copyEntry(a, i, rm.hashes, rm.kinds, rm.count++);
        copyEntry(b, j, add.hashes, add.kinds, add.count++);
      }
      i++;
      j++;
    }
  }
  const trim = (e: typeof rm): Entries => ({
    count: e.count,
    hashes: e.hashes.slice(0, e.count * HASH_BYTES),
    kinds: e.kinds.slice(0, e.count),
  });
  const t = target.header;
  return {
    header: {
      listId: t.listId,
      baseSerial: base.header.serial,
      baseBodySha256: base.bodySha256,
      serial: t.serial,
      created: t.created,
      expires: t.expires,
      hashKey: t.hashKey,
      entries: b.count,
      bodySha256: target.bodySha256,
      extensions: t.extensions,
    },
    removals: trim(rm),
    additions: trim(add),
  };
}

/**
 * Applies a delta to its base FULL. Throws DELTA_MISMATCH when the base is not the one the delta names, a removal
 * is absent (or has another kind), an addition is already present, or the result's count or digest differs from
 * the delta header (FORMAT.md 2.2). The result carries the delta's header fields.
 */
export function applyDelta(base: FullList, delta: DeltaList): FullList {
  const d = delta.header;
  if (base.header.listId !== d.listId) throw mismatch('delta is for another list-id');
  if (base.header.serial !== d.baseSerial)
    throw mismatch(`delta base ${d.baseSerial} is not serial ${base.header.serial}`);
  if (base.bodySha256 !== d.baseBodySha256) throw mismatch('base-body-sha256 does not match the base');
  const b = base.entries;
  const r = delta.removals;
  const a = delta.additions;
  const max = b.count - r.count + a.count;
  if (max < 0 || max !== d.entries) throw mismatch('entry count after applying does not match');
  const hashes = new Uint8Array(max * HASH_BYTES);
  const kinds = new Uint8Array(max);
  let n = 0;
  let i = 0; // base
  let k = 0; // removals
  let j = 0; // additions
  while (i < b.count || j < a.count) {
    // Skip base entries that are removed, checking each removal exists with the same kind.
    if (i < b.count && k < r.count) {
      const c = compareHash(r.hashes, k, b.hashes, i);
      if (c < 0) throw mismatch(`removal ${k + 1} is not in the base`);
      if (c === 0) {
        if (r.kinds[k] !== b.kinds[i]) throw mismatch(`removal ${k + 1} has another kind in the base`);
        i++;
        k++;
        continue;
      }
    }
    const c = i >= b.count ? 1 : j >= a.count ? -1 : compareHash(b.hashes, i, a.hashes, j);
    if (c === 0) throw mismatch(`addition ${j + 1} is already in the base`);
    if (n >= max) throw mismatch('entry count after applying does not match');
    if (c < 0) copyEntry(b, i++, hashes, kinds, n++);
    else copyEntry(a, j++, hashes, kinds, n++);
  }
  if (k < r.count) throw mismatch(`removal ${k + 1} is not in the base`);
  if (n !== max) throw mismatch('entry count after applying does not match');
  const entries = { count: n, hashes, kinds };
  if (fullBodySha256(entries) !== d.bodySha256) throw mismatch('result does not match body-sha256');
  return {
    header: {
      listId: d.listId,
      serial: d.serial,
      created: d.created,
      expires: d.expires,
      hashKey: d.hashKey,
      extensions: d.extensions,
    },
    entries,
    bodySha256: d.bodySha256,
  };
}
