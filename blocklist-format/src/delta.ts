/**
 * DELTA files (SPEC.md 2.2): the change from the FULL of `base-serial` to the FULL of `serial`. Removals come
 * first, then additions, each sorted; a changed kind is the removal and the addition of the same hash. Applying a
 * delta must give the target FULL byte for byte; any mismatch discards the delta (the client then fetches the FULL).
 */
import { createHash } from 'node:crypto';

import { FormatError } from './errors.js';
import {
  EMPTY_ENTRIES,
  HASH_BYTES,
  checkEntries,
  compareHash,
  decodeLines,
  encodeLines,
  type Entries,
} from './entries.js';
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
  FULL_LINE_BYTES,
  MAX_LIST_VALIDITY_DAYS,
  checkSize,
  fullBodySha256,
  fullHeaderText,
  hashKeyFields,
  readHashKey,
  readerOfFile,
  type FullHeader,
  type FullReader,
  type FullList,
  type HashKeyRef,
  type ParseOptions,
} from './full.js';
import { PIECE_BYTES, fileSha256, type FullFile, type FullSpool } from './spool.js';

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

/** Copies entry `i` of `from` to slot `n` of `to` (a loop: no view made per entry of a million). */
function copyEntry(from: Entries, i: number, hashes: Uint8Array, kinds: Uint8Array, n: number): void {
  const src = from.hashes;
  const at = i * HASH_BYTES;
  const to = n * HASH_BYTES;
  for (let x = 0; x < HASH_BYTES; x++) hashes[to + x] = src[at + x]!;
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

/** The FULL a delta gives: its header is the delta's fields (SPEC.md 2.2). */
function resultHeader(d: DeltaHeader): FullHeader {
  return {
    listId: d.listId,
    serial: d.serial,
    created: d.created,
    expires: d.expires,
    hashKey: d.hashKey,
    extensions: d.extensions,
  };
}

/** The base is the one the delta names: its list-id, serial and body-sha256. */
function checkBase(header: FullHeader, bodySha256: string, d: DeltaHeader): void {
  if (header.listId !== d.listId) throw mismatch('delta is for another list-id');
  if (header.serial !== d.baseSerial) throw mismatch(`delta base ${d.baseSerial} is not serial ${header.serial}`);
  if (bodySha256 !== d.baseBodySha256) throw mismatch('base-body-sha256 does not match the base');
}

/** The entry count of the result, checked against the delta's `entries` before anything is merged. */
function resultCount(baseCount: number, delta: DeltaList): number {
  const max = baseCount - delta.removals.count + delta.additions.count;
  if (max < 0 || max !== delta.header.entries) throw mismatch('entry count after applying does not match');
  return max;
}

/** Receives the result's entries in order: entry `i` of `from` is the next one. */
type Push = (from: Entries, i: number) => void;

/**
 * The one merge (SPEC.md 2.2): the base's `baseCount` entries, handed over in pieces by `nextBase` (the whole
 * list as one piece in memory, ~1 MiB of lines at a time from a file), with the removals taken out and the
 * additions put in, each entry of the result pushed in order. Throws DELTA_MISMATCH when a removal is absent (or has
 * another kind), an addition is already present, or the count differs from the delta's `entries`.
 */
function merge(baseCount: number, nextBase: () => Entries, delta: DeltaList, push: Push): void {
  const max = resultCount(baseCount, delta);
  const r = delta.removals;
  const a = delta.additions;
  let b = EMPTY_ENTRIES; // the current piece of the base
  let loaded = 0; // base entries in the pieces loaded so far
  let i = 0; // in the piece
  let k = 0; // removals
  let j = 0; // additions
  let n = 0; // result
  for (;;) {
    if (i >= b.count && loaded < baseCount) {
      b = nextBase();
      i = 0;
      loaded += b.count;
      if (b.count === 0 || loaded > baseCount) throw new Error('internal: the base pieces disagree with its count');
    }
    const hasBase = i < b.count;
    if (!hasBase && j >= a.count) break;
    // Skip base entries that are removed, checking each removal exists with the same kind.
    if (hasBase && k < r.count) {
      const c = compareHash(r.hashes, k, b.hashes, i);
      if (c < 0) throw mismatch(`removal ${k + 1} is not in the base`);
      if (c === 0) {
        if (r.kinds[k] !== b.kinds[i]) throw mismatch(`removal ${k + 1} has another kind in the base`);
        i++;
        k++;
        continue;
      }
    }
    const c = !hasBase ? 1 : j >= a.count ? -1 : compareHash(b.hashes, i, a.hashes, j);
    if (c === 0) throw mismatch(`addition ${j + 1} is already in the base`);
    if (n >= max) throw mismatch('entry count after applying does not match');
    if (c < 0) push(b, i++);
    else push(a, j++);
    n++;
  }
  if (k < r.count) throw mismatch(`removal ${k + 1} is not in the base`);
  if (n !== max) throw mismatch('entry count after applying does not match');
}

/**
 * Applies a delta to its base FULL. Throws DELTA_MISMATCH when the base is not the one the delta names, a removal
 * is absent (or has another kind), an addition is already present, or the result's count or digest differs from
 * the delta header (SPEC.md 2.2). The result carries the delta's header fields. The same merge as
 * {@link applyDeltaFrom}, over the base held in memory as one piece and into entry arrays.
 */
export function applyDelta(base: FullList, delta: DeltaList): FullList {
  const d = delta.header;
  checkBase(base.header, base.bodySha256, d);
  const max = resultCount(base.entries.count, delta);
  const hashes = new Uint8Array(max * HASH_BYTES);
  const kinds = new Uint8Array(max);
  let n = 0;
  let given = false;
  merge(
    base.entries.count,
    () => {
      if (given) return EMPTY_ENTRIES;
      given = true;
      return base.entries;
    },
    delta,
    (from, i) => copyEntry(from, i, hashes, kinds, n++),
  );
  const entries = { count: n, hashes, kinds };
  if (fullBodySha256(entries) !== d.bodySha256) throw mismatch('result does not match body-sha256');
  return { header: resultHeader(d), entries, bodySha256: d.bodySha256 };
}

/** What {@link applyDeltaFrom} wrote to the spool: the result FULL, `size` bytes. */
export interface AppliedFull {
  readonly header: FullHeader;
  /** Entries in the result. */
  readonly count: number;
  /** body-sha256 of the result (the delta's, checked over the lines written). */
  readonly bodySha256: string;
  /** Bytes written to the spool: the whole file. */
  readonly size: number;
  /** SHA-256 (hex) of the file written, as an index names a FULL. */
  readonly fileSha256: string;
}

/** Options of {@link applyDeltaFrom}. */
export interface ApplyFromOptions extends ParseOptions {
  /**
   * The SHA-256 (hex) the base file must have (the one the enforced index named): the base is hashed as it is read,
   * and one that does not have it is refused (DIGEST_MISMATCH), whatever else it was found to be (but over the cap).
   */
  readonly baseFileSha256?: string;
  /** Bytes per piece read from the base and written to the spool (default ~1 MiB; whole lines, at least one). */
  readonly pieceBytes?: number;
}

/** A base FULL read in pieces: its header, then its entries a piece at a time, hashed as they are read. */
interface BaseReader {
  readonly header: FullHeader;
  readonly count: number;
  readonly bodySha256: string;
  /** The next piece of entries (none at the end); throws MALFORMED for a bad line (also kept for `finish`). */
  next(): Entries;
  /**
   * Reads and hashes what the merge did not, checking its lines too, then refuses the base in parseFull's order:
   * DIGEST_MISMATCH (the file, then body-sha256), then a malformed line. So a base is refused as parseFull refuses
   * it, wherever the merge stopped.
   */
  finish(): void;
}

function notVerified(): FormatError {
  return new FormatError('DIGEST_MISMATCH', 'the base FULL is not the file that was verified');
}

function readBase(file: FullFile, options: ApplyFromOptions | undefined, pieceLines: number): BaseReader {
  const want = options?.baseFileSha256;
  const pieceBytes = pieceLines * FULL_LINE_BYTES;
  let reader: FullReader;
  try {
    reader = readerOfFile(file, { maxBytes: options?.maxBytes, fileSha256: want, pieceBytes });
  } catch (err) {
    // A header that cannot be read, in a file that is not the verified one, is refused as the latter (but a file
    // over the cap is refused before a byte of it is read).
    if (
      want !== undefined &&
      err instanceof FormatError &&
      err.code !== 'TOO_LARGE' &&
      fileSha256(file, pieceBytes) !== want
    ) {
      throw notVerified();
    }
    throw err;
  }
  const last = new Uint8Array(HASH_BYTES); // the last hash of the previous piece

  const next = (): Entries => {
    if (reader.defect) throw reader.defect;
    const first = reader.line;
    const bytes = reader.next();
    if (bytes.length === 0) return EMPTY_ENTRIES;
    let piece: Entries;
    try {
      piece = decodeLines(bytes, 0, bytes.length / FULL_LINE_BYTES, undefined, 'base FULL body');
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      const defect = malformed(`${err.message} (of the piece from line ${first + 1})`);
      reader.fail(defect);
      throw defect;
    }
    if (first > 0 && compareHash(last, 0, piece.hashes, 0) >= 0) {
      const defect = malformed(`base FULL body line ${first + 1}: not sorted or duplicate hash`);
      reader.fail(defect);
      throw defect;
    }
    last.set(piece.hashes.subarray((piece.count - 1) * HASH_BYTES, piece.count * HASH_BYTES));
    return piece;
  };
  const finish = (): void => {
    // The lines the merge did not reach are checked too (until a defect; after one they are only hashed).
    while (reader.line < reader.count && !reader.defect) {
      try {
        next();
      } catch (err) {
        if (err !== reader.defect) throw err;
      }
    }
    reader.finish();
  };
  return { header: reader.header, count: reader.count, bodySha256: reader.bodySha256, next, finish };
}

/**
 * {@link applyDelta} without holding the base, the entries or the result: the base FULL is read from `base` in
 * pieces (~1 MiB), merged with the delta's removals and additions ({@link applyDelta}'s merge, its checks and
 * codes), and the result FULL is written to `out` a piece at a time while its SHA-256 is computed. The file written
 * is byte for byte `serializeFull(applyDelta(parseFull(base), delta))`: the header is the delta's fields, written
 * first (its `entries` and `body-sha256` are the delta's; the lines written are checked against them at the end).
 *
 * What it refuses, it refuses with the code the in-memory path gives (the base checked against `baseFileSha256` as
 * openStored checks it, parsed by parseFull, then applyDelta): a base over the cap (TOO_LARGE); whose bytes do not
 * have `baseFileSha256` (DIGEST_MISMATCH); with a bad header or body length (MALFORMED); whose body does not have its
 * body-sha256 (DIGEST_MISMATCH); with a bad line (MALFORMED); then DELTA_MISMATCH. A base is read to its end
 * before any refusal, so this order holds wherever the merge stopped. After a refusal `out` holds part of a file:
 * the caller discards it.
 */
export function applyDeltaFrom(
  base: FullFile,
  delta: DeltaList,
  out: FullSpool,
  options?: ApplyFromOptions,
): AppliedFull {
  const pieceLines = Math.max(1, Math.floor((options?.pieceBytes ?? PIECE_BYTES) / FULL_LINE_BYTES));
  const b = readBase(base, options, pieceLines);
  const d = delta.header;
  const header = resultHeader(d);
  const fileHash = createHash('sha256');
  const bodyHash = createHash('sha256');
  let size = 0;
  const write = (bytes: Uint8Array): void => {
    fileHash.update(bytes);
    out.write(bytes);
    size += bytes.length;
  };
  // The result's lines, encoded a piece at a time into one buffer (a spool's chunk is only valid during the call).
  const hashes = new Uint8Array(pieceLines * HASH_BYTES);
  const kinds = new Uint8Array(pieceLines);
  const lines = Buffer.allocUnsafe(pieceLines * FULL_LINE_BYTES);
  let held = 0;
  const flush = (): void => {
    if (held === 0) return;
    const piece = { count: held, hashes: hashes.subarray(0, held * HASH_BYTES), kinds: kinds.subarray(0, held) };
    const end = encodeLines(piece, undefined, lines, 0);
    bodyHash.update(lines.subarray(0, end));
    write(lines.subarray(0, end));
    held = 0;
  };

  let failure: FormatError | undefined;
  try {
    checkBase(b.header, b.bodySha256, d);
    resultCount(b.count, delta);
    // The header does not depend on the lines: SPEC.md 2.2 gives the result's count and digest in the delta.
    write(Buffer.from(fullHeaderText(header, d.entries, d.bodySha256), 'latin1'));
    merge(
      b.count,
      () => b.next(),
      delta,
      (from, i) => {
        copyEntry(from, i, hashes, kinds, held);
        if (++held === pieceLines) flush();
      },
    );
    flush();
  } catch (err) {
    // A refusal waits until the base is read to its end: a base that is not the verified file is refused as such.
    if (!(err instanceof FormatError)) throw err;
    failure = err;
  }
  b.finish();
  if (failure) throw failure;
  if (bodyHash.digest('hex') !== d.bodySha256) throw mismatch('result does not match body-sha256');
  return { header, count: d.entries, bodySha256: d.bodySha256, size, fileSha256: fileHash.digest('hex') };
}
