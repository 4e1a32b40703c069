/**
 * Compact entry arrays and the body-line codec. A list of a million entries is held as one byte array of
 * 32-byte hashes, sorted ascending and unique, and one byte array of kind codes: no object per entry.
 * Body lines are `<64 hex> <kind>` (FULL) or `-`/`+` followed by that (DELTA), LF-terminated.
 */
import { malformed } from './header.js';
import { KIND_D, KIND_H, KIND_P, KIND_U } from './kinds.js';

export interface Entries {
  readonly count: number;
  /** `count` * 32 bytes, ascending, no duplicates. */
  readonly hashes: Uint8Array;
  /** `count` kind codes (`KIND_D`...). */
  readonly kinds: Uint8Array;
}

export const HASH_BYTES = 32;
export const EMPTY_ENTRIES: Entries = { count: 0, hashes: new Uint8Array(0), kinds: new Uint8Array(0) };

// Lower-case hex only: upper-case digits are malformed (SPEC.md 2: one valid byte form).
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[0x61 + i] = 10 + i;
const HEX_CODE = new Uint8Array(16);
for (let i = 0; i < 16; i++) HEX_CODE[i] = '0123456789abcdef'.charCodeAt(i);

function isKind(c: number): boolean {
  return c === KIND_D || c === KIND_H || c === KIND_U || c === KIND_P;
}

/** Compares hash `i` of `a` with hash `j` of `b`: negative, zero or positive. */
export function compareHash(a: Uint8Array, i: number, b: Uint8Array, j: number): number {
  const ai = i * HASH_BYTES;
  const bj = j * HASH_BYTES;
  for (let k = 0; k < HASH_BYTES; k++) {
    const d = a[ai + k]! - b[bj + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Decodes `count` body lines of `prefix? <64 hex> <kind>\n` starting at `start` into entry arrays, checking
 * every byte, and that the hashes are strictly ascending. `what` names the section in errors.
 */
export function decodeLines(
  bytes: Uint8Array,
  start: number,
  count: number,
  prefix: number | undefined,
  what: string,
): Entries {
  const hashes = new Uint8Array(count * HASH_BYTES);
  const kinds = new Uint8Array(count);
  decodeLinesInto(bytes, start, count, prefix, what, { count, hashes, kinds }, 0);
  return { count, hashes, kinds };
}

/**
 * {@link decodeLines} into entries `at` to `at + count - 1` of `into` (a list read in pieces, each decoded where it
 * goes): entry `at` must sort after entry `at - 1`, already there, and errors number the lines from `at + 1`.
 */
export function decodeLinesInto(
  bytes: Uint8Array,
  start: number,
  count: number,
  prefix: number | undefined,
  what: string,
  into: Entries,
  at: number,
): void {
  const { hashes, kinds } = into;
  if (at + count > into.count) throw new RangeError('decodeLinesInto: past the end of the entries');
  const lineLength = prefix === undefined ? 67 : 68;
  let p = start;
  for (let n = at; n < at + count; n++) {
    if (prefix !== undefined) {
      if (bytes[p] !== prefix) throw malformed(`${what} line ${n + 1}: bad prefix`);
      p++;
    }
    const h = n * HASH_BYTES;
    for (let k = 0; k < HASH_BYTES; k++) {
      const hi = HEX_VALUE[bytes[p]!]!;
      const lo = HEX_VALUE[bytes[p + 1]!]!;
      if ((hi | lo) < 0) throw malformed(`${what} line ${n + 1}: not 64 lower-case hex digits`);
      hashes[h + k] = (hi << 4) | lo;
      p += 2;
    }
    const kind = bytes[p + 1]!;
    if (bytes[p] !== 0x20 || !isKind(kind) || bytes[p + 2] !== 0x0a) {
      throw malformed(`${what} line ${n + 1}: not "<hash> <D|H|U|P>" and LF`);
    }
    kinds[n] = kind;
    p += 3;
    if (n > 0 && compareHash(hashes, n - 1, hashes, n) >= 0) {
      throw malformed(`${what} line ${n + 1}: not sorted or duplicate hash`);
    }
  }
  if (p !== start + count * lineLength) throw new Error('internal: line length');
}

/** Encodes entries as body lines into `out` at `offset`; returns the offset after the last line. */
export function encodeLines(entries: Entries, prefix: number | undefined, out: Uint8Array, offset: number): number {
  let p = offset;
  const { hashes, kinds, count } = entries;
  for (let n = 0; n < count; n++) {
    if (prefix !== undefined) out[p++] = prefix;
    const h = n * HASH_BYTES;
    for (let k = 0; k < HASH_BYTES; k++) {
      const b = hashes[h + k]!;
      out[p++] = HEX_CODE[b >> 4]!;
      out[p++] = HEX_CODE[b & 15]!;
    }
    out[p++] = 0x20;
    out[p++] = kinds[n]!;
    out[p++] = 0x0a;
  }
  return p;
}

/** Checks that entry arrays are well formed (for serializers given arrays built elsewhere). */
export function checkEntries(entries: Entries, what: string): void {
  const { count, hashes, kinds } = entries;
  if (!Number.isSafeInteger(count) || count < 0 || hashes.length !== count * HASH_BYTES || kinds.length !== count) {
    throw new RangeError(`${what}: count, hashes and kinds disagree`);
  }
  for (let n = 0; n < count; n++) {
    if (!isKind(kinds[n]!)) throw new RangeError(`${what}: entry ${n} has an unknown kind`);
    if (n > 0 && compareHash(hashes, n - 1, hashes, n) >= 0) {
      throw new RangeError(`${what}: entries are not sorted and unique at ${n}`);
    }
  }
}

/** Builds sorted, unique entry arrays from `[hex, kind]` pairs (for tools and tests; not for huge lists). */
export function entriesFromPairs(pairs: Iterable<readonly [hash: string, kind: 'D' | 'H' | 'U' | 'P']>): Entries {
  const list = [...pairs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const hashes = new Uint8Array(list.length * HASH_BYTES);
  const kinds = new Uint8Array(list.length);
  list.forEach(([hex, kind], n) => {
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new RangeError(`not 64 lower-case hex digits: ${hex}`);
    hashes.set(Buffer.from(hex, 'hex'), n * HASH_BYTES);
    kinds[n] = kind.charCodeAt(0);
  });
  const entries = { count: list.length, hashes, kinds };
  checkEntries(entries, 'entries');
  return entries;
}

/** The entries as `[hex, kind]` pairs (for tools and tests). */
export function* entryPairs(entries: Entries): Generator<[string, 'D' | 'H' | 'U' | 'P']> {
  for (let n = 0; n < entries.count; n++) {
    const hex = Buffer.from(entries.hashes.subarray(n * HASH_BYTES, (n + 1) * HASH_BYTES)).toString('hex');
    yield [hex, String.fromCharCode(entries.kinds[n]!) as 'D' | 'H' | 'U' | 'P'];
  }
}
