/** FULL files (SPEC.md 2.1): the complete list of one serial. */
import { createHash } from 'node:crypto';

import { FormatError } from './errors.js';
import { HASH_BYTES, decodeLines, encodeLines, checkEntries, type Entries } from './entries.js';
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
 * Everything parseFull checks except the body lines themselves: the size cap, the header, the body length against
 * `entries`, and body-sha256 over the body. For parsers that decode the lines into another layout (fullmatcher.ts).
 */
export function readFullHead(
  bytes: Uint8Array,
  options: ParseOptions | undefined,
): { header: FullHeader; count: number; bodySha256: string; bodyStart: number } {
  const head = readFullHeader(bytes.subarray(0, MAX_HEADER_BYTES), bytes.length, options);
  const body = bytes.subarray(head.bodyStart);
  if (sha256Hex(body) !== head.bodySha256) {
    throw new FormatError('DIGEST_MISMATCH', 'body-sha256 does not match the body');
  }
  return head;
}

/**
 * readFullHead's checks before the body digest, from the first bytes of a file of `length` bytes: the size cap,
 * the header, and the body length against `entries`. `prefix` is the file's first min(length, MAX_HEADER_BYTES)
 * bytes (or more): the header ends within them or is refused, exactly as over the whole file. The caller checks
 * body-sha256 over the body (a file read in pieces hashes them as they come: fullmatcher.ts).
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

/** Parses a FULL strictly. The caller verifies its signatures over these same bytes first (SPEC.md 3). */
export function parseFull(bytes: Uint8Array, options?: ParseOptions): FullList {
  const { header, count, bodySha256, bodyStart } = readFullHead(bytes, options);
  const entries = decodeLines(bytes, bodyStart, count, undefined, 'body');
  return { header, entries, bodySha256 };
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
