/**
 * A FULL parsed straight into the matcher's arrays (FORMAT.md 2.1, 1.4): the same checks as `parseFull` (size cap,
 * header, body length, body-sha256, every line's bytes, strictly ascending hashes), but without the 32-byte-per-entry
 * array `parseFull` returns, which a daemon only turns into `MatcherParts` and drops. For a million entries that
 * array is 32 MiB of peak memory less during a load.
 *
 * The result equals `prepareMatcher(parseFull(bytes).entries...)` for every input `parseFull` accepts, and every
 * input `parseFull` refuses is refused with the same code (tests check both on random and mutated files); only the
 * line named in a MALFORMED message may differ (the kind bytes are checked in a first pass, the rest in a second).
 */
import { FULL_LINE_BYTES, readFullHead, type FullHeader, type ParseOptions } from './full.js';
import { malformed } from './header.js';
import { KIND_D, KIND_H, KIND_P, KIND_U } from './kinds.js';
import { KEPT_HASH_BYTES, type MatcherParts } from './matcher.js';

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
  const { header, count, bodySha256, bodyStart } = readFullHead(bytes, options);

  // Pass 1: the kind byte of every line (at a fixed offset: the body length is count * 67), to size the arrays.
  let d = 0;
  let h = 0;
  let u = 0;
  let p = 0;
  for (let n = 0, at = bodyStart + 65; n < count; n++, at += FULL_LINE_BYTES) {
    const c = bytes[at];
    if (c === KIND_D) d++;
    else if (c === KIND_H) h++;
    else if (c === KIND_U) u++;
    else if (c === KIND_P) p++;
    else throw malformed(`body line ${n + 1}: not "<hash> <D|H|U|P>" and LF`);
  }
  const size = count - u;
  const first = new Int32Array(size);
  const restWords = KEPT_HASH_BYTES / 4 - 1;
  const rest = new Int32Array(size * restWords);
  const kinds = new Uint8Array(size);
  const bits = Math.min(24, Math.max(1, Math.ceil(Math.log2(Math.max(size, 1)))));
  const shift = 32 - bits;
  const index = new Uint32Array((1 << bits) + 1);

  // Pass 2: every byte of every line, the order, and the arrays. `words` holds this line's hash, `prev` the last.
  const words = new Uint32Array(8);
  const prev = new Uint32Array(8);
  let j = 0;
  let at = bodyStart;
  for (let n = 0; n < count; n++) {
    for (let w = 0; w < 8; w++) {
      let v = 0;
      for (let k = 0; k < 8; k++) {
        const x = HEX_VALUE[bytes[at + k]!]!;
        if (x < 0) throw malformed(`body line ${n + 1}: not 64 lower-case hex digits`);
        v = v * 16 + x;
      }
      words[w] = v;
      at += 8;
    }
    const kind = bytes[at + 1]!;
    if (bytes[at] !== 0x20 || bytes[at + 2] !== 0x0a) {
      throw malformed(`body line ${n + 1}: not "<hash> <D|H|U|P>" and LF`);
    }
    at += 3;
    if (n > 0) {
      let c = 0;
      for (let w = 0; w < 8 && c === 0; w++) c = words[w]! - prev[w]!;
      if (c <= 0) throw malformed(`body line ${n + 1}: not sorted or duplicate hash`);
    }
    prev.set(words);
    if (kind === KIND_U) continue;
    first[j] = words[0]!;
    for (let w = 1; w <= restWords; w++) rest[j * restWords + w - 1] = words[w]!;
    kinds[j] = kind;
    index[(words[0]! >>> shift) + 1]!++;
    j++;
  }
  if (at !== bodyStart + count * FULL_LINE_BYTES || j !== size) throw new Error('internal: line count');
  for (let b = 1; b < index.length; b++) index[b]! += index[b - 1]!;
  return {
    header,
    count,
    bodySha256,
    parts: { size, counts: Object.freeze({ D: d, H: h, U: u, P: p }), first, rest, kinds, index, shift },
  };
}
