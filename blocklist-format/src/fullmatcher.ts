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
 * spool or a stored file (`parseFullMatcherFrom`, spool.ts): FullReader (full.ts) reads the header and hands over
 * the body a piece at a time, hashed; each piece's lines are decoded here. Tests check that both forms agree for
 * any piece size.
 */
import {
  FULL_LINE_BYTES,
  readerOfBytes,
  readerOfFile,
  type FullHeader,
  type FullReader,
  type ParseOptions,
  type ReadBackOptions,
} from './full.js';
import { malformed } from './header.js';
import { KIND_D, KIND_H, KIND_P, KIND_U } from './kinds.js';
import { KEPT_HASH_BYTES, bucketIndex, type MatcherParts } from './matcher.js';
import type { FullFile } from './spool.js';

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
  return parseAt(readerOfBytes(bytes, options));
}

export type { ReadBackOptions } from './full.js';

/**
 * {@link parseFullMatcher} over a file read back in pieces of ~1 MiB (a spool or a stored FULL, spool.ts): the same
 * code, checks and codes, with one ~1 MiB buffer instead of the whole file.
 */
export function parseFullMatcherFrom(file: FullFile, options?: ReadBackOptions): FullMatcher {
  return parseAt(readerOfFile(file, options));
}

/**
 * The one parse into the matcher's arrays, over the pieces `reader` gives (FullReader in full.ts: the header, the
 * body's digests and the order of refusals): each piece's lines are decoded into the arrays as it comes. The
 * arrays are sized for every entry; when U entries were dropped they are copied to their exact length.
 */
function parseAt(reader: FullReader): FullMatcher {
  const { header, count, bodySha256 } = reader;
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
  for (;;) {
    const bytes = reader.next();
    if (bytes.length === 0) break;
    if (reader.defect) continue;
    const end = n + bytes.length / FULL_LINE_BYTES;
    let at = 0;
    for (; n < end; n++) {
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
        reader.fail(malformed(`body line ${n + 1}: not 64 lower-case hex digits`));
        break;
      }
      const kind = bytes[at + 1]!;
      if (bytes[at] !== 0x20 || bytes[at + 2] !== 0x0a) {
        reader.fail(malformed(`body line ${n + 1}: not "<hash> <D|H|U|P>" and LF`));
        break;
      }
      at += 3;
      if (n > 0) {
        let c = 0;
        for (let w = 0; w < 8 && c === 0; w++) c = words[w]! - prev[w]!;
        if (c <= 0) {
          reader.fail(malformed(`body line ${n + 1}: not sorted or duplicate hash`));
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
        reader.fail(malformed(`body line ${n + 1}: not "<hash> <D|H|U|P>" and LF`));
        break;
      }
      first[j] = words[0]!;
      for (let w = 1; w <= restWords; w++) rest[j * restWords + w - 1] = words[w]!;
      kinds[j] = kind;
      j++;
    }
  }
  reader.finish();
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
