/** FULL files (SPEC.md 2.1): the complete list of one serial. */
import { createHash, type Hash } from 'node:crypto';

import { FormatError } from './errors.js';
import { HASH_BYTES, checkEntries, decodeLinesInto, encodeLines, type Entries } from './entries.js';
import {
  HeaderReader,
  MAX_HEADER_BYTES,
  checkValidity,
  formatTime,
  isHex64,
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
import { PIECE_BYTES, readAtOf, type FullFile, type ReadAt } from './spool.js';

/** SPEC.md 4: a FULL is at most 256 MiB, whatever a caller's cap says. */
export const HARD_MAX_LIST_BYTES = 256 * 1024 * 1024;
/** SPEC.md 4: the default cap for a FULL (and a DELTA). */
export const DEFAULT_MAX_LIST_BYTES = 64 * 1024 * 1024;
/** SPEC.md 2.1: expires - created <= 31 days. */
export const MAX_LIST_VALIDITY_DAYS = 31;
export const FULL_LINE_BYTES = 67;

/** The hash key a list was hashed with: a licensed key id, or the public key itself (SPEC.md 1.3). */
export type HashKeyRef =
  { readonly mode: 'licensed'; readonly id: string } | { readonly mode: 'public'; readonly key: string };

export interface FullHeader {
  readonly listId: string;
  readonly serial: number;
  /** Seconds since the epoch. */
  readonly created: number;
  /** Seconds since the epoch. */
  readonly expires: number;
  readonly hashKey: HashKeyRef;
  /** `x-` header keys, kept in file order so a file re-serializes to the same bytes. */
  readonly extensions: readonly Extension[];
}

export interface FullList {
  readonly header: FullHeader;
  readonly entries: Entries;
  /** SHA-256 of the body bytes, 64 lower-case hex. */
  readonly bodySha256: string;
}

export interface ParseOptions {
  /** Refuse files larger than this (default 64 MiB; never more than 256 MiB). */
  readonly maxBytes?: number;
}

export function checkSize(bytes: Uint8Array, options: ParseOptions | undefined, what: string): void {
  checkLength(bytes.length, options, what);
}

/** {@link checkSize} for a file of `length` bytes that is not held in one buffer. */
export function checkLength(length: number, options: ParseOptions | undefined, what: string): void {
  const cap = Math.min(options?.maxBytes ?? DEFAULT_MAX_LIST_BYTES, HARD_MAX_LIST_BYTES);
  if (length > cap) throw new FormatError('TOO_LARGE', `${what} is ${length} bytes, over the cap of ${cap}`);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads `hash`, `hash-key-id` and, in public mode, `hash-key` (SPEC.md 2.1). */
export function readHashKey(h: HeaderReader): HashKeyRef {
  if (h.take('hash') !== 'hmac-sha256') throw malformed('hash: only hmac-sha256 is defined');
  const id = h.take('hash-key-id');
  if (id === 'public') return { mode: 'public', key: parseHex64(h.take('hash-key'), 'hash-key') };
  if (!isListId(id)) throw malformed('hash-key-id: not "public" nor [a-z0-9][a-z0-9-]{0,62}');
  return { mode: 'licensed', id };
}

export function hashKeyFields(ref: HashKeyRef): Extension[] {
  if (ref.mode === 'public') {
    if (!isHex64(ref.key)) throw new RangeError('public hash-key: not 64 lower-case hex digits');
    return [
      ['hash', 'hmac-sha256'],
      ['hash-key-id', 'public'],
      ['hash-key', ref.key],
    ];
  }
  if (!isListId(ref.id) || ref.id === 'public') throw new RangeError(`bad hash-key-id ${ref.id}`);
  return [
    ['hash', 'hmac-sha256'],
    ['hash-key-id', ref.id],
  ];
}

/**
 * The checks of a FULL before its body digest, from the first bytes of a file of `length` bytes: the size cap, the
 * header, and the body length against `entries`. `prefix` is the file's first min(length, MAX_HEADER_BYTES) bytes
 * (or more): the header ends within them or is refused, exactly as over the whole file. {@link FullReader} then
 * checks body-sha256 over the body as it reads it.
 */
export function readFullHeader(
  prefix: Uint8Array,
  length: number,
  options: ParseOptions | undefined,
): { header: FullHeader; count: number; bodySha256: string; bodyStart: number } {
  checkLength(length, options, 'FULL');
  if (prefix.length < Math.min(length, MAX_HEADER_BYTES)) throw new RangeError('readFullHeader: prefix too short');
  const { fields, bodyStart } = splitHeader(prefix.subarray(0, Math.min(length, MAX_HEADER_BYTES)), 'HWL1 FULL');
  const h = new HeaderReader(fields);
  const listId = parseListId(h.take('list-id'));
  const serial = parseInteger(h.take('serial'), 'serial');
  const created = parseTime(h.take('created'), 'created');
  const expires = parseTime(h.take('expires'), 'expires');
  checkValidity(created, expires, MAX_LIST_VALIDITY_DAYS);
  const hashKey = readHashKey(h);
  const count = parseInteger(h.take('entries'), 'entries');
  const bodySha256 = parseHex64(h.take('body-sha256'), 'body-sha256');
  const extensions = h.extensions();

  const bodyLength = length - bodyStart;
  if (bodyLength !== count * FULL_LINE_BYTES) {
    throw malformed(`body is ${bodyLength} bytes; ${count} entries need ${count * FULL_LINE_BYTES}`);
  }
  return { header: { listId, serial, created, expires, hashKey, extensions }, count, bodySha256, bodyStart };
}

/** Options of a FULL read back from a file ({@link parseFullFrom}, and the matcher's and the delta base's reads). */
export interface ReadBackOptions extends ParseOptions {
  /**
   * The SHA-256 (hex) the file was verified with (the index's digest of the FULL). The bytes parsed are hashed
   * again as they are read, and a file that no longer has this digest is refused (DIGEST_MISMATCH): the parse can
   * only ever return what was verified, even if the storage changed between the check and the read.
   */
  readonly fileSha256?: string;
  /** Bytes read per piece (default ~1 MiB; rounded down to whole lines, at least one). */
  readonly pieceBytes?: number;
}

/** Body lines per piece for `pieceBytes` (whole lines, at least one). */
export function pieceLinesOf(pieceBytes = PIECE_BYTES): number {
  return Math.max(1, Math.floor(pieceBytes / FULL_LINE_BYTES));
}

/**
 * The one reading of a FULL's bytes (SPEC.md 2.1), whatever its entries become (entry arrays here, the matcher's
 * arrays in fullmatcher.ts, the merge of a delta in delta.ts) and wherever the bytes are (one buffer, or a spool or
 * a stored file read back in pieces, spool.ts): the size cap before anything is read, the header from the first 4
 * KiB, then the body a piece of whole lines at a time, each hashed (body-sha256, and the whole file against
 * `fileSha256` when given) as it is handed to the caller to decode. A defect the caller finds in a piece is
 * remembered ({@link fail}) while the reading goes on, so that {@link finish} refuses in parseFull's order:
 * TOO_LARGE, the header's codes, the body length, DIGEST_MISMATCH (the file, then body-sha256), then the defect.
 */
export class FullReader {
  readonly header: FullHeader;
  /** Entries (body lines) in the file. */
  readonly count: number;
  readonly bodySha256: string;
  readonly #read: ReadAt;
  readonly #bodyStart: number;
  readonly #pieceLines: number;
  readonly #bodyHash = createHash('sha256');
  readonly #fileHash: Hash | undefined;
  readonly #fileSha256: string | undefined;
  #line = 0;
  #defect: FormatError | undefined;

  /** Reads and checks the header; `read` gives the file's bytes, pieces of `pieceLines` lines at a time. */
  constructor(read: ReadAt, length: number, options: ReadBackOptions | undefined, pieceLines: number) {
    checkLength(length, options, 'FULL');
    // Copied: a file's read gives a view that the next read reuses.
    const prefix = Uint8Array.from(read(0, Math.min(length, MAX_HEADER_BYTES)));
    const { header, count, bodySha256, bodyStart } = readFullHeader(prefix, length, options);
    this.header = header;
    this.count = count;
    this.bodySha256 = bodySha256;
    this.#read = read;
    this.#bodyStart = bodyStart;
    this.#pieceLines = pieceLines;
    this.#fileSha256 = options?.fileSha256;
    this.#fileHash =
      this.#fileSha256 === undefined ? undefined : createHash('sha256').update(prefix.subarray(0, bodyStart));
  }

  /** Lines read so far (the next piece starts at this line, counted from 0). */
  get line(): number {
    return this.#line;
  }

  /** The defect remembered, if any. */
  get defect(): FormatError | undefined {
    return this.#defect;
  }

  /**
   * The next piece of body lines, hashed; empty at the end. The view is only valid until the next call (a file's
   * read reuses its buffer).
   */
  next(): Uint8Array {
    const lines = Math.min(this.#pieceLines, this.count - this.#line);
    if (lines <= 0) return EMPTY;
    const bytes = this.#read(this.#bodyStart + this.#line * FULL_LINE_BYTES, lines * FULL_LINE_BYTES);
    this.#bodyHash.update(bytes);
    this.#fileHash?.update(bytes);
    this.#line += lines;
    return bytes;
  }

  /** Remembers the first defect found in the lines (thrown by {@link finish} once the digests hold). */
  fail(defect: FormatError): void {
    this.#defect ??= defect;
  }

  /** Reads and hashes what is left, then refuses: the file's digest, body-sha256, then the defect remembered. */
  finish(): void {
    while (this.next().length > 0) {
      // hashed by next()
    }
    if (this.#fileHash && this.#fileHash.digest('hex') !== this.#fileSha256) {
      throw new FormatError('DIGEST_MISMATCH', 'the FULL read back is not the file that was verified');
    }
    if (this.#bodyHash.digest('hex') !== this.bodySha256) {
      throw new FormatError('DIGEST_MISMATCH', 'body-sha256 does not match the body');
    }
    if (this.#defect) throw this.#defect;
  }
}

const EMPTY = new Uint8Array(0);

/** A {@link FullReader} over a FULL held in one buffer: the whole body is one piece, read where it lies (views). */
export function readerOfBytes(bytes: Uint8Array, options?: ReadBackOptions): FullReader {
  const read: ReadAt = (position, length) => bytes.subarray(position, position + length);
  return new FullReader(read, bytes.length, options, Math.max(1, Math.floor(bytes.length / FULL_LINE_BYTES)));
}

/** A {@link FullReader} over a file read back in pieces of ~1 MiB (`options.pieceBytes`) through one buffer. */
export function readerOfFile(file: FullFile, options?: ReadBackOptions): FullReader {
  const pieceLines = pieceLinesOf(options?.pieceBytes);
  return new FullReader(readAtOf(file, pieceLines * FULL_LINE_BYTES), file.size, options, pieceLines);
}

/** Parses a FULL strictly. The caller verifies its signatures over these same bytes first (SPEC.md 3). */
export function parseFull(bytes: Uint8Array, options?: ParseOptions): FullList {
  return parseEntries(readerOfBytes(bytes, options));
}

/**
 * {@link parseFull} over a file read back in pieces of ~1 MiB (a spool or a stored FULL, spool.ts): the same checks
 * and codes (and DIGEST_MISMATCH when the file is not the one `fileSha256` names), with the entry arrays and one
 * piece in memory instead of the whole file.
 */
export function parseFullFrom(file: FullFile, options?: ReadBackOptions): FullList {
  return parseEntries(readerOfFile(file, options));
}

/** The entries of the pieces `reader` gives, each decoded where it goes in one pair of arrays. */
function parseEntries(reader: FullReader): FullList {
  const entries: Entries = {
    count: reader.count,
    hashes: new Uint8Array(reader.count * HASH_BYTES),
    kinds: new Uint8Array(reader.count),
  };
  for (;;) {
    const at = reader.line;
    const bytes = reader.next();
    if (bytes.length === 0) break;
    if (reader.defect) continue;
    try {
      decodeLinesInto(bytes, 0, bytes.length / FULL_LINE_BYTES, undefined, 'body', entries, at);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      reader.fail(err);
    }
  }
  reader.finish();
  return { header: reader.header, entries, bodySha256: reader.bodySha256 };
}

/** The body bytes of a list: one `<hash> <kind>` line per entry. */
export function encodeFullBody(entries: Entries): Buffer {
  const body = Buffer.allocUnsafe(entries.count * FULL_LINE_BYTES);
  encodeLines(entries, undefined, body, 0);
  return body;
}

/** Entries encoded per step by {@link fullBodySha256}: 16,384 lines, ~1 MiB of body at a time. */
const DIGEST_STEP_ENTRIES = 16_384;

/**
 * The body-sha256 of a list with these entries (SPEC.md 2.1): the same digest as hashing
 * {@link encodeFullBody}'s output, computed over ~1 MiB of encoded lines at a time instead of the whole body (a
 * million entries would otherwise need a 64 MiB buffer only to be hashed). Throws RangeError when count, hashes
 * and kinds disagree in length.
 */
export function fullBodySha256(entries: Entries): string {
  const { count, hashes, kinds } = entries;
  if (!Number.isSafeInteger(count) || count < 0 || hashes.length !== count * HASH_BYTES || kinds.length !== count) {
    throw new RangeError('fullBodySha256: count, hashes and kinds disagree');
  }
  const hash = createHash('sha256');
  const out = Buffer.allocUnsafe(Math.min(count, DIGEST_STEP_ENTRIES) * FULL_LINE_BYTES);
  for (let first = 0; first < count; first += DIGEST_STEP_ENTRIES) {
    const n = Math.min(DIGEST_STEP_ENTRIES, count - first);
    const part: Entries = {
      count: n,
      hashes: hashes.subarray(first * HASH_BYTES, (first + n) * HASH_BYTES),
      kinds: kinds.subarray(first, first + n),
    };
    const end = encodeLines(part, undefined, out, 0);
    hash.update(out.subarray(0, end));
  }
  return hash.digest('hex');
}

/** The header of a FULL with these fields, `count` entries and this body digest (its one byte form). */
export function fullHeaderText(header: FullHeader, count: number, bodySha256: string): string {
  if (!isListId(header.listId)) throw new RangeError(`bad list-id ${header.listId}`);
  checkValidity(header.created, header.expires, MAX_LIST_VALIDITY_DAYS);
  return writeHeader(
    'HWL1 FULL',
    [
      ['list-id', header.listId],
      ['serial', String(header.serial)],
      ['created', formatTime(header.created)],
      ['expires', formatTime(header.expires)],
      ...hashKeyFields(header.hashKey),
      ['entries', String(count)],
      ['body-sha256', bodySha256],
    ],
    header.extensions,
  );
}

/** Builds a FullList from a header and entries, computing the body digest. */
export function makeFull(header: FullHeader, entries: Entries): FullList {
  checkEntries(entries, 'FULL');
  if (!Number.isSafeInteger(header.serial) || header.serial < 0) throw new RangeError('bad serial');
  const bodySha256 = fullBodySha256(entries);
  fullHeaderText(header, entries.count, bodySha256);
  return { header, entries, bodySha256 };
}

/**
 * The one byte form of a FULL, built in one buffer: the body is encoded in place after the header (whose length
 * does not depend on the digest: body-sha256 is always 64 hex digits), then the header is written with the digest.
 */
export function serializeFull(list: { header: FullHeader; entries: Entries }): Buffer {
  checkEntries(list.entries, 'FULL');
  const count = list.entries.count;
  const placeholder = Buffer.from(fullHeaderText(list.header, count, '0'.repeat(64)), 'latin1');
  const out = Buffer.allocUnsafeSlow(placeholder.length + count * FULL_LINE_BYTES);
  const end = encodeLines(list.entries, undefined, out, placeholder.length);
  if (end !== out.length) throw new Error('internal: FULL body length');
  const digest = sha256Hex(out.subarray(placeholder.length));
  const head = Buffer.from(fullHeaderText(list.header, count, digest), 'latin1');
  if (head.length !== placeholder.length) throw new Error('internal: FULL header length');
  out.set(head, 0);
  return out;
}
