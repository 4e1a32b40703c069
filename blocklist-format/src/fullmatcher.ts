/**
 * A FULL parsed straight into the matcher's arrays (SPEC.md 2.1, 1.4): the same checks as `parseFull` (size cap,
 * header, body length, body-sha256, every line's bytes, strictly ascending hashes), but without the 32-byte-per-entry
 * array `parseFull` returns, which a daemon only turns into `MatcherParts` and drops. For a million entries that
 * array is 32 MiB of peak memory less during a load.
 *
 * The result equals `prepareMatcher(parseFull(bytes).entries...)` for every input `parseFull` accepts, and every
 * input `parseFull` refuses is refused with the same code (tests check both on random and mutated files); only the
 * line named in a MALFORMED message may differ.
 *
 * One code reads both a FULL held in one buffer (`parseFullMatcher`) and one read back in ~1 MiB pieces from a
 * spool or a stored file (`parseFullMatcherFrom`, spool.ts): the header from the first 4 KiB, then one pass over
 * the body that hashes each piece and decodes its lines. Tests check that both forms agree for any piece size.
 */
import { createHash } from 'node:crypto';

import { FormatError } from './errors.js';
import { FULL_LINE_BYTES, checkLength, readFullHeader, type FullHeader, type ParseOptions } from './full.js';
import { MAX_HEADER_BYTES, malformed } from './header.js';
import { KIND_D, KIND_H, KIND_P, KIND_U } from './kinds.js';
import { KEPT_HASH_BYTES, bucketIndex, type MatcherParts } from './matcher.js';
import { PIECE_BYTES, readAtOf, type FullFile, type ReadAt } from './spool.js';

/** A FULL's header facts with its entries as matcher arrays. */
export interface FullMatcher {
  readonly header: FullHeader;
  /** Entries in the file, U included (`parts.size` counts the entries kept: D, H and P). */
  readonly count: number;
  /** SHA-256 of the body bytes, 64 lower-case hex. */
  readonly bodySha256: string;
  readonly parts: MatcherParts;
}

// Lower-case hex only, as entries.ts: upper-case digits are malformed.
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[0x61 + i] = 10 + i;

/** Parses and checks a FULL as `parseFull` does, building the matcher's arrays directly. */
export function parseFullMatcher(bytes: Uint8Array, options?: ParseOptions): FullMatcher {
  return parseAt((position, length) => bytes.subarray(position, position + length), bytes.length, options);
}

/** Options of {@link parseFullMatcherFrom}. */
export interface ReadBackOptions extends ParseOptions {
  /**
   * The SHA-256 (hex) the file was verified with (the index's digest of the FULL). The bytes parsed are hashed
   * again as they are read, and a file that no longer has this digest is refused (DIGEST_MISMATCH): the parse can
   * only ever return what was verified, even if the storage changed between the check and the read.
   */
  readonly fileSha256?: string;
  /** Bytes read per piece (default ~1 MiB; rounded down to whole lines). For tests. */
  readonly pieceBytes?: number;
}

/**
 * {@link parseFullMatcher} over a file read back in pieces of ~1 MiB (a spool or a stored FULL, spool.ts): the same
 * code, checks and codes, with one ~1 MiB buffer instead of the whole file.
 */
export function parseFullMatcherFrom(file: FullFile, options?: ReadBackOptions): FullMatcher {
  const piece = Math.max(1, Math.floor((options?.pieceBytes ?? PIECE_BYTES) / FULL_LINE_BYTES)) * FULL_LINE_BYTES;
  return parseAt(readAtOf(file, piece), file.size, options, piece, options?.fileSha256);
}

/**
 * The one parse, over a file of `length` bytes that `read` gives piece by piece: the header from its first 4 KiB,
 * then the body in pieces of whole lines, each hashed (body-sha256, and the whole file when `fileSha256` is given)
 * and decoded into the arrays in the same pass. A defect in a line is remembered and the pass goes on hashing, so
 * the codes come in parseFull's order: TOO_LARGE, the header's, the body length, DIGEST_MISMATCH, then the lines'.
 * The arrays are sized for every entry; when U entries were dropped they are copied to their exact length.
 */
function parseAt(
  read: ReadAt,
  length: number,
  options: ParseOptions | undefined,
  pieceBytes = PIECE_BYTES,
  fileSha256?: string,
): FullMatcher {
  // The header: the cap first (before reading anything), then the first 4 KiB, copied (the view is reused).
  checkLength(length, options, 'FULL');
  const prefix = Uint8Array.from(read(0, Math.min(length, MAX_HEADER_BYTES)));
  const { header, count, bodySha256, bodyStart } = readFullHeader(prefix, length, options);
  const fileHash = fileSha256 === undefined ? undefined : createHash('sha256').update(prefix.subarray(0, bodyStart));
  const bodyHash = createHash('sha256');

  const restWords = KEPT_HASH_BYTES / 4 - 1;
  let first = new Int32Array(count);
  let rest = new Int32Array(count * restWords);
  let kinds = new Uint8Array(count);
  let d = 0;
  let h = 0;
  let u = 0;
  let p = 0;
  // `words` holds this line's hash, `prev` the last one's.
  const words = new Uint32Array(8);
  const prev = new Uint32Array(8);
  let j = 0;
  let n = 0;
  let defect: FormatError | undefined;
  const linesPerPiece = Math.max(1, Math.floor(pieceBytes / FULL_LINE_BYTES));
  for (let n0 = 0; n0 < count; n0 += linesPerPiece) {
    const lines = Math.min(linesPerPiece, count - n0);
    const bytes = read(bodyStart + n0 * FULL_LINE_BYTES, lines * FULL_LINE_BYTES);
    bodyHash.update(bytes);
    fileHash?.update(bytes);
    if (defect) continue;
    let at = 0;
    for (; n < n0 + lines; n++) {
      let bad = false;
      for (let w = 0; w < 8; w++) {
        let v = 0;
        for (let k = 0; k < 8; k++) {
          const x = HEX_VALUE[bytes[at + k]!]!;
          if (x < 0) bad = true;
          v = v * 16 + x;
        }
        words[w] = v;
        at += 8;
      }
      if (bad) {
        defect = malformed(`body line ${n + 1}: not 64 lower-case hex digits`);
        break;
      }
      const kind = bytes[at + 1]!;
      if (bytes[at] !== 0x20 || bytes[at + 2] !== 0x0a) {
        defect = malformed(`body line ${n + 1}: not "<hash> <D|H|U|P>" and LF`);
        break;
      }
      at += 3;
      if (n > 0) {
        let c = 0;
        for (let w = 0; w < 8 && c === 0; w++) c = words[w]! - prev[w]!;
        if (c <= 0) {
          defect = malformed(`body line ${n + 1}: not sorted or duplicate hash`);
          break;
        }
      }
      prev.set(words);
      if (kind === KIND_D) d++;
      else if (kind === KIND_H) h++;
      else if (kind === KIND_P) p++;
      else if (kind === KIND_U) {
        u++;
        continue;
      } else {
        defect = malformed(`body line ${n + 1}: not "<hash> <D|H|U|P>" and LF`);
        break;
      }
      first[j] = words[0]!;
      for (let w = 1; w <= restWords; w++) rest[j * restWords + w - 1] = words[w]!;
      kinds[j] = kind;
      j++;
    }
  }
  if (fileHash && fileHash.digest('hex') !== fileSha256) {
    throw new FormatError('DIGEST_MISMATCH', 'the FULL read back is not the file that was verified');
  }
  if (bodyHash.digest('hex') !== bodySha256)
    throw new FormatError('DIGEST_MISMATCH', 'body-sha256 does not match the body');
  if (defect) throw defect;
  if (n !== count || j !== count - u) throw new Error('internal: line count');

  const size = j;
  if (size !== count) {
    first = first.slice(0, size);
    rest = rest.slice(0, size * restWords);
    kinds = kinds.slice(0, size);
  }
  const { index, shift } = bucketIndex(first, size);
  return {
    header,
    count,
    bodySha256,
    parts: { size, counts: Object.freeze({ D: d, H: h, U: u, P: p }), first, rest, kinds, index, shift },
  };
}
