/**
 * Guards against over-blocking, shared by both ends of a release: the signer's gates refuse to publish, and a
 * daemon holds rather than applies, a list that blocks a name of a guard set (the bundled popular names, and a
 * maintainer's or an operator's own) or that changes by more entries at once than a cap allows.
 *
 * The bundled popular names are `data/top-sites.txt` of this package (one canonical name a line, `#` comments):
 * {@link TOP_SITES_URL} says where; the caller reads it (this library reads no file itself) and parses it with
 * {@link parseGuardNames}. Which names a list blocks is the matcher's business (`exemptNames`, matcher.ts).
 */
import type { Entries } from './entries.js';
import { compareHash } from './entries.js';
import { FormatError } from './errors.js';
import { FULL_LINE_BYTES, readFullHeader } from './full.js';
import { MAX_HEADER_BYTES } from './header.js';
import { canonicalHost } from './names.js';
import { PIECE_BYTES, readAtOf, type FullFile, type ReadAt } from './spool.js';

/** The bundled popular names (the Moz Top 500 of the `top-sites` package, reserved names left out). */
export const TOP_SITES_URL = new URL('../data/top-sites.txt', import.meta.url);

/** A name not to block, and where it comes from (`top-sites.txt:12`): messages name the place, never the name. */
export interface GuardName {
  readonly name: string;
  readonly from: string;
}

/**
 * Parses a file of guard names: one a line, blank lines and `#` comments ignored, each canonicalized (SPEC.md 1.1).
 * A line that is not a host name is INVALID_NAME, naming `label:line`.
 */
export function parseGuardNames(text: string, label: string): GuardName[] {
  const out: GuardName[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    try {
      out.push({ name: canonicalHost(line), from: `${label}:${i + 1}` });
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      throw new FormatError('INVALID_NAME', `${label}:${i + 1}: not a host name: ${err.message}`, { cause: err });
    }
  });
  return out;
}

/** Additions and removals from one list to the next, as a delta counts them: a changed kind is one of each. */
export interface ChangeCounts {
  readonly added: number;
  readonly removed: number;
}

/**
 * The largest number of additions, and of removals, allowed at once after a list of `previousEntries`: `count`
 * entries or `percent` of the list, whichever is larger.
 */
export function changeAllowance(previousEntries: number, percent: number, count: number): number {
  return Math.max(count, Math.floor((previousEntries * percent) / 100));
}

/** Two ascending runs of entries merged: `cmp` compares their heads, `sameKind` their kinds when equal. */
interface Merge {
  readonly lengths: readonly [number, number];
  cmp(i: number, j: number): number;
  sameKind(i: number, j: number): boolean;
}

function countMerge(m: Merge): ChangeCounts {
  const [a, b] = m.lengths;
  let i = 0;
  let j = 0;
  let added = 0;
  let removed = 0;
  while (i < a || j < b) {
    const c = i >= a ? 1 : j >= b ? -1 : m.cmp(i, j);
    if (c < 0) {
      removed++;
      i++;
    } else if (c > 0) {
      added++;
      j++;
    } else {
      if (!m.sameKind(i, j)) {
        added++;
        removed++;
      }
      i++;
      j++;
    }
  }
  return { added, removed };
}

/** Additions and removals from `previous` to `next` (entry arrays, ascending). */
export function changeCounts(previous: Entries, next: Entries): ChangeCounts {
  return countMerge({
    lengths: [previous.count, next.count],
    cmp: (i, j) => compareHash(previous.hashes, i, next.hashes, j),
    sameKind: (i, j) => previous.kinds[i] === next.kinds[j],
  });
}

/** The body lines of a FULL file, read in ~1 MiB pieces: line `n`'s bytes at `at(n)` until the next call. */
function bodyLines(file: FullFile): { count: number; line(n: number): { bytes: Uint8Array; at: number } } {
  const read: ReadAt = readAtOf(file);
  const prefix = Uint8Array.from(read(0, Math.min(file.size, MAX_HEADER_BYTES)));
  const { count, bodyStart } = readFullHeader(prefix, file.size, { maxBytes: file.size });
  const perPiece = Math.max(1, Math.floor(PIECE_BYTES / FULL_LINE_BYTES));
  let first = -1;
  let piece: Uint8Array = new Uint8Array(0);
  return {
    count,
    line(n) {
      if (first < 0 || n < first || n >= first + perPiece) {
        first = n - (n % perPiece);
        const lines = Math.min(perPiece, count - first);
        piece = read(bodyStart + first * FULL_LINE_BYTES, lines * FULL_LINE_BYTES);
      }
      return { bytes: piece, at: (n - first) * FULL_LINE_BYTES };
    },
  };
}

/**
 * {@link changeCounts} over two FULL files read in pieces (a stored list and a new one in a spool), never held
 * whole. Both were verified before (this compares lines, it checks nothing): the hex digits of a line sort as its
 * hash does, and its kind is the line's 66th byte.
 */
export function changeCountsFrom(previous: FullFile, next: FullFile): ChangeCounts {
  const a = bodyLines(previous);
  const b = bodyLines(next);
  const compare = (i: number, j: number, span: number, offset: number): number => {
    const x = a.line(i);
    const y = b.line(j);
    for (let k = offset; k < offset + span; k++) {
      const d = x.bytes[x.at + k]! - y.bytes[y.at + k]!;
      if (d !== 0) return d;
    }
    return 0;
  };
  return countMerge({
    lengths: [a.count, b.count],
    cmp: (i, j) => compare(i, j, 64, 0),
    sameKind: (i, j) => compare(i, j, 1, 65) === 0,
  });
}
