/**
 * The in-memory matcher (SPEC.md 1.4): a compact set of one list's hashes and the suffix walk that turns a query
 * name into a verdict, plus `MatcherSet`, which combines several lists.
 *
 * Layout. Each entry keeps the first 128 bits of its hash (KEPT_HASH_BYTES: a false match has probability 2^-108
 * per lookup for a million entries) as big-endian 32-bit words in the FULL's ascending order: the first word of
 * every entry in one Int32Array, the next three in a second, the kinds one byte each. A bucket index on the top
 * `bits` bits of the first word (about one entry per bucket; HMAC output is uniform) gives the run of entries to
 * compare, so a lookup that misses reads the index and the first-word array only. U entries are dropped: a DNS
 * daemon never acts on them (SPEC.md 1.4), and a host name's hash never equals a URL expression's (an expression
 * contains '/'). That is 17 bytes per entry kept plus 4 to 8 bytes of index.
 *
 * The walk. A query name is copied once into a scratch buffer (folding A-Z, RFC 4343) and scanned from the right:
 * a suffix is tested only when every one of its labels passes SPEC.md 1.1 rule 3 and it has two labels or more
 * (so a suffix holding a bad label, and every longer one, is skipped, but shorter ones are still tested: a D entry
 * covers every name below it, listable or not). The name itself is tested against D, H and P, each shorter suffix
 * against D only, longest first; the first match decides. A matched name that is itself a public suffix is inert
 * and the walk goes on; the Public Suffix List is consulted only after a hash matched, so a miss costs one HMAC per
 * tested suffix and nothing else. The byte checks here mirror `queryNameIsListable` (names.ts) on bytes, so the hot
 * path needs no string; a test checks that both agree on every suffix of random names.
 */
import { Doorkeeper } from './doorkeeper.js';
import { compareHash } from './entries.js';
import { FormatError } from './errors.js';
import type { HashKey } from './hash.js';
import { isListId } from './header.js';
import { KIND_D, KIND_H, KIND_P, KIND_U } from './kinds.js';
import { isPublicSuffix } from './psl.js';

/** What a DNS daemon may do with a name: block it (D, H) or steer it to a filtering proxy (P). Never U. */
export type VerdictKind = 'D' | 'H' | 'P';

export interface Verdict {
  readonly kind: VerdictKind;
  /** The list whose entry decided. */
  readonly listId: string;
  /**
   * Where the matched name starts in the input (a string index, or a byte offset for the bytes variants): the
   * input's start when the name itself matched, else the first byte after a dot.
   */
  readonly matchStart: number;
}

/** Anything that gives verdicts: one list (`ListMatcher`) or several (`MatcherSet`). */
export interface VerdictSource {
  /** The verdict for `name`: ASCII, any case (A-Z are folded), one trailing root dot allowed. */
  verdict(name: string): Verdict | null;
  /** The same for the dotted name in `bytes[start..end)`, without building a string. */
  verdictBytes(bytes: Uint8Array, start: number, end: number): Verdict | null;
}

// Limits of SPEC.md 1.1 rule 3.
const MAX_NAME = 253;
const MAX_LABEL = 63;
const DOT = 0x2e;
const HYPHEN = 0x2d;
/** Marks a byte that cannot occur in a listable name (non-ASCII, or anything outside [a-z0-9_-.]). */
const BAD = 0xff;

// Per byte: 1 for [a-z0-9_-] (after folding A-Z), 0 otherwise.
const NAME_CHAR = new Uint8Array(256);
for (let c = 0x61; c <= 0x7a; c++) NAME_CHAR[c] = 1;
for (let c = 0x30; c <= 0x39; c++) NAME_CHAR[c] = 1;
NAME_CHAR[HYPHEN] = 1;
NAME_CHAR[0x5f] = 1;

// Scratch shared by every matcher (JavaScript runs one verdict at a time and nothing below calls back out).
// NAME holds the (tail of the) query name; CANDIDATES the starts of the suffixes to test, longest first.
const SCRATCH = MAX_NAME + 1;
// A Buffer so that a suffix becomes a string without a view object (nameSlice: toString with a range).
const NAME = Buffer.alloc(SCRATCH);
const CANDIDATES = new Int32Array(SCRATCH);
const Q = new Int32Array(8);
let nameLength = 0;
/** Input position of NAME[0]. */
let nameBase = 0;
/** Whether NAME[0] is the first byte of the input's name (not a truncated tail). */
let nameWhole = true;

/** Copies `s` into NAME: folds A-Z, drops one trailing dot, keeps at most the last 254 bytes. */
function loadString(s: string): void {
  let end = s.length;
  if (end > 0 && s.charCodeAt(end - 1) === DOT) end--;
  const start = end > SCRATCH ? end - SCRATCH : 0;
  nameBase = start;
  nameWhole = start === 0;
  nameLength = end - start;
  for (let i = 0; i < nameLength; i++) {
    const c = s.charCodeAt(start + i);
    NAME[i] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c < 0x80 ? c : BAD;
  }
}

function loadBytes(bytes: Uint8Array, from: number, to: number): void {
  if (!(from >= 0 && from <= to && to <= bytes.length)) throw new RangeError('verdictBytes: range out of bounds');
  let end = to;
  if (end > from && bytes[end - 1] === DOT) end--;
  const start = end - from > SCRATCH ? end - SCRATCH : from;
  nameBase = start;
  nameWhole = start === from;
  nameLength = end - start;
  for (let i = 0; i < nameLength; i++) {
    const c = bytes[start + i]!;
    NAME[i] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c < 0x80 ? c : BAD;
  }
}

/** WHATWG URL "ends in a number" on NAME[from..to): all digits, or `0x` and hex digits (the name is lower case). */
function isNumericLabel(from: number, to: number): boolean {
  let digits = true;
  for (let i = from; i < to; i++) {
    const c = NAME[i]!;
    if (c < 0x30 || c > 0x39) {
      digits = false;
      break;
    }
  }
  if (digits) return true;
  if (to - from < 2 || NAME[from] !== 0x30 || NAME[from + 1] !== 0x78) return false;
  for (let i = from + 2; i < to; i++) {
    const c = NAME[i]!;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/**
 * Scans NAME from the right and fills CANDIDATES with the starts of the suffixes SPEC.md 1.4 tests, longest
 * first; returns their count. A suffix qualifies when all its labels pass rule 3 (1..63 octets of [a-z0-9_-], no
 * '-' at either end), it has two labels or more, it is at most 253 octets, and the last label is not numeric.
 */
function scan(): number {
  const len = nameLength;
  let count = 0;
  let labelEnd = len;
  let labels = 0;
  for (let i = len - 1; i >= -1; i--) {
    const c = i >= 0 ? NAME[i]! : DOT;
    if (c !== DOT) {
      if (NAME_CHAR[c] === 0) break;
      continue;
    }
    // NAME[i+1..labelEnd) is a whole label.
    const labelStart = i + 1;
    const labelLength = labelEnd - labelStart;
    if (labelLength === 0 || labelLength > MAX_LABEL) break;
    if (NAME[labelStart] === HYPHEN || NAME[labelEnd - 1] === HYPHEN) break;
    if (i < 0 && !nameWhole) break; // the first label of a truncated tail is not whole
    if (len - labelStart > MAX_NAME) break;
    labels++;
    if (labels === 1) {
      if (isNumericLabel(labelStart, labelEnd)) return 0; // every suffix ends in it
    } else {
      CANDIDATES[count++] = labelStart;
    }
    labelEnd = i;
  }
  // Collected shortest first; the walk wants longest first.
  for (let a = 0, b = count - 1; a < b; a++, b--) {
    const t = CANDIDATES[a]!;
    CANDIDATES[a] = CANDIDATES[b]!;
    CANDIDATES[b] = t;
  }
  return count;
}

function nameSlice(from: number): string {
  return NAME.toString('latin1', from, nameLength);
}

/** One list's walk over the scanned candidates (SPEC.md 1.4). */
function walk(m: ListMatcher, count: number): Verdict | null {
  if (m.size === 0) return null;
  for (let k = 0; k < count; k++) {
    const start = CANDIDATES[k]!;
    m.key.hashInto(NAME, start, nameLength, Q);
    const code = m.lookup(Q);
    if (code === 0) continue;
    const itself = start === 0 && nameWhole;
    // The name itself against D, H and P; a parent against D only.
    if (code !== KIND_D && !(itself && (code === KIND_H || code === KIND_P))) continue;
    // SPEC.md 1.4: a name that is itself a public suffix is never tested (`D com`, `D github.io` are inert).
    if (isPublicSuffix(nameSlice(start))) continue;
    return {
      kind: code === KIND_D ? 'D' : code === KIND_H ? 'H' : 'P',
      listId: m.listId,
      matchStart: nameBase + start,
    };
  }
  return null;
}

/**
 * The names SPEC.md 1.4 hashes for `name`, longest first (the name itself first when it is listable): every
 * suffix that could be listed (rule 3) and has two labels or more. A public suffix among them is only skipped when
 * its hash matches. For tools that explain a verdict, and for tests.
 */
export function testedSuffixes(name: string): string[] {
  loadString(name);
  const count = scan();
  const out: string[] = [];
  for (let k = 0; k < count; k++) out.push(nameSlice(CANDIDATES[k]!));
  return out;
}

/** Entries per kind in the list a matcher was built from (U included, though the matcher does not keep them). */
export interface KindCounts {
  readonly D: number;
  readonly H: number;
  readonly U: number;
  readonly P: number;
}

/**
 * A matcher's arrays, built by {@link prepareMatcher}. Plain typed arrays, so a worker thread can build them and
 * transfer their buffers to the thread that answers queries, which then wraps them without copying.
 */
export interface MatcherParts {
  /** Entries held (D, H and P). */
  readonly size: number;
  readonly counts: KindCounts;
  /** First big-endian word of each held hash, ascending. */
  readonly first: Int32Array<ArrayBuffer>;
  /** Words 1 to REST_WORDS of each held hash (see {@link KEPT_HASH_BYTES}). */
  readonly rest: Int32Array<ArrayBuffer>;
  readonly kinds: Uint8Array<ArrayBuffer>;
  /** Bucket starts on the top bits of the first word; length 2^bits + 1. */
  readonly index: Uint32Array<ArrayBuffer>;
  /** 32 - bits. */
  readonly shift: number;
}

/**
 * Bytes of each 32-byte entry hash the matcher keeps and compares: the first 128 bits. A name's hash is HMAC-SHA-256
 * under the list's hash key (SPEC.md 1.3); its first 16 bytes equal a held entry's by chance with probability
 * n * 2^-128 per hash looked up (2^-108 for a million entries): never, over any machine's lifetime. Finding a
 * name that collides on purpose takes ~2^108 hashes even with a public hash key. Half the entry bytes of the whole
 * hash: 16 MiB less for a million entries, on every list held and every update built beside it.
 */
export const KEPT_HASH_BYTES = 16;
/** The words after the first each entry keeps. */
const REST_WORDS = KEPT_HASH_BYTES / 4 - 1;

/**
 * Builds the set's arrays from a FULL's entry arrays: `hashes` is 32*n bytes, ascending and unique (SPEC.md 2.1),
 * `kinds` n kind codes. This is the costly part of loading a list (tens of ms for 1,000,000 entries); run it off
 * the query thread for large lists. Throws MALFORMED when the arrays disagree in length, are not strictly
 * ascending, or hold a code that is not a kind.
 */
export function prepareMatcher(hashes: Uint8Array, kinds: Uint8Array): MatcherParts {
  const n = kinds.length;
  if (hashes.length !== n * 32) throw new FormatError('MALFORMED', 'matcher: hashes are not 32 bytes per kind');
  let d = 0;
  let h = 0;
  let u = 0;
  let p = 0;
  for (let i = 0; i < n; i++) {
    const c = kinds[i];
    if (c === KIND_D) d++;
    else if (c === KIND_H) h++;
    else if (c === KIND_U) u++;
    else if (c === KIND_P) p++;
    else throw new FormatError('MALFORMED', `matcher: entry ${i} has no valid kind`);
  }
  const size = n - u;
  const first = new Int32Array(size);
  const rest = new Int32Array(size * REST_WORDS);
  const kept = new Uint8Array(size);
  let j = 0;
  for (let i = 0; i < n; i++) {
    const o = i * 32;
    // SPEC.md 2.1: sorted bytewise, each hash at most once. Checked over all entries, U included.
    if (i > 0 && compareHash(hashes, i - 1, hashes, i) >= 0) {
      throw new FormatError('MALFORMED', `matcher: hash ${i} is not above hash ${i - 1}`);
    }
    if (kinds[i] === KIND_U) continue;
    first[j] = (hashes[o]! << 24) | (hashes[o + 1]! << 16) | (hashes[o + 2]! << 8) | hashes[o + 3]!;
    for (let k = 1; k <= REST_WORDS; k++) {
      const b = o + 4 * k;
      rest[j * REST_WORDS + k - 1] =
        (hashes[b]! << 24) | (hashes[b + 1]! << 16) | (hashes[b + 2]! << 8) | hashes[b + 3]!;
    }
    kept[j] = kinds[i]!;
    j++;
  }
  const { index, shift } = bucketIndex(first, size);
  return { size, counts: Object.freeze({ D: d, H: h, U: u, P: p }), first, rest, kinds: kept, index, shift };
}

/**
 * The bucket index of `size` ascending first words (see {@link MatcherParts}): about one entry per bucket, on the
 * top bits of the first word.
 */
export function bucketIndex(first: Int32Array, size: number): { index: Uint32Array<ArrayBuffer>; shift: number } {
  // At least 2 buckets and at most 2^24. Measured on 1,000,000 random hashes: a lookup that misses costs ~40-80 ns
  // with one entry per bucket, ~200 ns with 16 (a smaller index, longer runs).
  const bits = Math.min(24, Math.max(1, Math.ceil(Math.log2(Math.max(size, 1)))));
  const shift = 32 - bits;
  const index = new Uint32Array((1 << bits) + 1);
  for (let i = 0; i < size; i++) index[(first[i]! >>> shift) + 1]!++;
  for (let b = 1; b < index.length; b++) index[b]! += index[b - 1]!;
  return { index, shift };
}

/** The position of the entry whose hash is `words` (as `HashKey.hashInto` writes them) in `parts`, or -1. */
function entryAt(
  first: Int32Array,
  rest: Int32Array,
  index: Uint32Array,
  shift: number,
  words: Int32Array | Uint32Array,
): number {
  const w0 = words[0]! | 0;
  const bucket = w0 >>> shift;
  for (let i = index[bucket]!, end = index[bucket + 1]!; i < end; i++) {
    const f = first[i]!;
    if (f !== w0) {
      // Ascending within a bucket, and its entries share the sign bit, so a signed compare is the byte order.
      if (f > w0) return -1;
      continue;
    }
    // REST_WORDS is 3: the first 128 bits decide (KEPT_HASH_BYTES).
    const o = i * REST_WORDS;
    if (rest[o] === (words[1]! | 0) && rest[o + 1] === (words[2]! | 0) && rest[o + 2] === (words[3]! | 0)) return i;
  }
  return -1;
}

/** What {@link exemptNames} left out of a list. */
export interface Exempted {
  /** The parts without those entries (the same object when none was left out). */
  readonly parts: MatcherParts;
  /** Indexes (into the names given) of the names the list blocked. */
  readonly blocked: readonly number[];
  /** Entries left out. */
  readonly entries: number;
}

/**
 * A list's parts without the entries that make it block any of `names` (a guard set: names a daemon must never
 * block). For each name, as long as the list blocks it (a D or H verdict, SPEC.md 1.4), the entry that decides is
 * left out, so the walk goes on to shorter suffixes as if that entry had never been listed: a `D` on a parent goes
 * with everything it covers, an `H` or a `D` on the name itself with the name. A steer (P) is no block and stays.
 * Run it where the parts are built (a worker thread): it copies them when it leaves anything out.
 */
export function exemptNames(parts: MatcherParts, key: HashKey, names: readonly string[]): Exempted {
  const out = new Set<number>();
  const blocked: number[] = [];
  if (parts.size > 0) {
    names.forEach((name, n) => {
      loadString(name);
      const count = scan();
      let hit = false;
      for (let k = 0; k < count; k++) {
        const start = CANDIDATES[k]!;
        key.hashInto(NAME, start, nameLength, Q);
        const i = entryAt(parts.first, parts.rest, parts.index, parts.shift, Q);
        if (i < 0 || out.has(i)) continue;
        const code = parts.kinds[i]!;
        const itself = start === 0 && nameWhole;
        // As walk(): the name itself against D, H and P, a parent against D only; a public suffix is inert.
        if (code !== KIND_D && !(itself && (code === KIND_H || code === KIND_P))) continue;
        if (isPublicSuffix(nameSlice(start))) continue;
        if (code === KIND_P) break;
        out.add(i);
        hit = true;
      }
      if (hit) blocked.push(n);
    });
  }
  if (out.size === 0) return { parts, blocked, entries: 0 };
  const size = parts.size - out.size;
  const first = new Int32Array(size);
  const rest = new Int32Array(size * REST_WORDS);
  const kinds = new Uint8Array(size);
  const counts = { ...parts.counts };
  let j = 0;
  for (let i = 0; i < parts.size; i++) {
    const kind = parts.kinds[i]!;
    if (out.has(i)) {
      if (kind === KIND_D) counts.D--;
      else if (kind === KIND_H) counts.H--;
      continue;
    }
    first[j] = parts.first[i]!;
    rest.set(parts.rest.subarray(i * REST_WORDS, (i + 1) * REST_WORDS), j * REST_WORDS);
    kinds[j] = kind;
    j++;
  }
  const { index, shift } = bucketIndex(first, size);
  return {
    parts: { size, counts: Object.freeze(counts), first, rest, kinds, index, shift },
    blocked,
    entries: out.size,
  };
}

/** The buffers to transfer with `postMessage(parts, transferList(parts))`. */
export function matcherTransferList(parts: MatcherParts): ArrayBuffer[] {
  return [parts.first.buffer, parts.rest.buffer, parts.kinds.buffer, parts.index.buffer];
}

/** Cheap shape checks on parts that crossed a thread boundary (no pass over the entries). */
function checkParts(parts: MatcherParts): void {
  const { size, first, rest, kinds, index, shift } = parts;
  const ok =
    Number.isInteger(size) &&
    first instanceof Int32Array &&
    rest instanceof Int32Array &&
    kinds instanceof Uint8Array &&
    index instanceof Uint32Array &&
    first.length === size &&
    rest.length === size * REST_WORDS &&
    kinds.length === size &&
    Number.isInteger(shift) &&
    shift >= 8 &&
    shift <= 31 &&
    index.length === 2 ** (32 - shift) + 1 &&
    index[0] === 0 &&
    index[index.length - 1] === size;
  if (!ok) throw new FormatError('MALFORMED', 'matcher: parts do not fit together');
}

/** One list's entries, ready for verdicts. Immutable once built. */
export class ListMatcher implements VerdictSource {
  readonly listId: string;
  readonly key: HashKey;
  /** Entries held (D, H and P). */
  readonly size: number;
  readonly counts: KindCounts;
  readonly #first: Int32Array;
  readonly #rest: Int32Array;
  readonly #kinds: Uint8Array;
  readonly #index: Uint32Array;
  readonly #shift: number;

  /**
   * Builds the set from a FULL's entry arrays (see {@link prepareMatcher}; the arrays are copied, so the caller
   * may drop or reuse them), or wraps parts that `prepareMatcher` built elsewhere (not copied, only shape-checked).
   */
  constructor(listId: string, key: HashKey, hashes: Uint8Array, kinds: Uint8Array);
  constructor(listId: string, key: HashKey, parts: MatcherParts);
  constructor(listId: string, key: HashKey, hashesOrParts: Uint8Array | MatcherParts, kinds?: Uint8Array) {
    if (!isListId(listId)) throw new FormatError('MALFORMED', 'matcher: list-id is not [a-z0-9][a-z0-9-]{0,62}');
    let parts: MatcherParts;
    if (hashesOrParts instanceof Uint8Array) {
      if (!(kinds instanceof Uint8Array)) throw new FormatError('MALFORMED', 'matcher: kinds are missing');
      parts = prepareMatcher(hashesOrParts, kinds);
    } else {
      parts = hashesOrParts;
      checkParts(parts);
    }
    this.listId = listId;
    this.key = key;
    this.size = parts.size;
    this.counts = Object.freeze({ ...parts.counts });
    this.#first = parts.first;
    this.#rest = parts.rest;
    this.#kinds = parts.kinds;
    this.#index = parts.index;
    this.#shift = parts.shift;
  }

  /** Bytes held by the set's arrays (hashes, kinds, bucket index). */
  get byteLength(): number {
    return this.#first.byteLength + this.#rest.byteLength + this.#kinds.byteLength + this.#index.byteLength;
  }

  /**
   * The kind code (KIND_D, KIND_H or KIND_P) of the entry whose hash is `words` (8 words as `HashKey.hashInto`
   * writes them), or 0 when there is none.
   */
  lookup(words: Int32Array | Uint32Array): number {
    const i = entryAt(this.#first, this.#rest, this.#index, this.#shift, words);
    return i < 0 ? 0 : this.#kinds[i]!;
  }

  verdict(name: string): Verdict | null {
    loadString(name);
    return walk(this, scan());
  }

  verdictBytes(bytes: Uint8Array, start: number, end: number): Verdict | null {
    loadBytes(bytes, start, end);
    return walk(this, scan());
  }
}

export interface MatcherSetOptions {
  /**
   * Parent suffixes the set remembers as clear (see {@link MatcherSet}); 0 turns the memo off. Default 4,096: a
   * few hundred KiB at most, emptied whole when full.
   */
  readonly clearParents?: number;
}

/**
 * Several lists' matchers as one verdict source. A name that any list blocks (D or H) is blocked, and the verdict
 * names that list; when two lists block it, the first in the given order wins (the configuration order), whatever
 * each list's matched suffix. A P verdict (steer) comes out only when no list blocks, again from the first such
 * list. Within each list the longest match decides (SPEC.md 1.4), so a list holding `P www.example.test` and
 * `D example.test` steers `www.example.test` rather than blocking it. No list gives no verdict.
 */
export class MatcherSet implements VerdictSource {
  readonly matchers: readonly ListMatcher[];
  /**
   * The memo of clear parents: a suffix under which no list holds a D entry, at it or at any suffix of it that is
   * tested (a set's lists never change, so this stays true for the set's life). A name whose immediate parent
   * (its second candidate) is in it is tested as itself only: one HMAC and one lookup per list instead of one per
   * candidate: names never asked before under a common parent (a CDN's host names, a scanner's random labels) cost
   * 0.49-0.82x (README.md, "Benchmark"). A parent is remembered the second time a walk finds it clear (a
   * doorkeeper), so random parents do not fill it.
   */
  readonly #clear = new Set<string>();
  readonly #maxClear: number;
  readonly #door: Doorkeeper | null;

  constructor(matchers: readonly ListMatcher[], options: MatcherSetOptions = {}) {
    // A copy, not frozen: V8 reads a frozen array's elements through its generic inline cache (the walk reads one
    // per list per decision; the daemon's bench/README.md, "Buffer's methods off the query path"). The type keeps
    // it read-only.
    this.matchers = [...matchers];
    this.#maxClear = matchers.length === 0 ? 0 : (options.clearParents ?? 4096);
    this.#door = this.#maxClear > 0 ? new Doorkeeper(1 << 15) : null;
  }

  verdict(name: string): Verdict | null {
    loadString(name);
    return this.#decide(scan());
  }

  verdictBytes(bytes: Uint8Array, start: number, end: number): Verdict | null {
    loadBytes(bytes, start, end);
    return this.#decide(scan());
  }

  /** Parents remembered as clear (for tests and metrics). */
  get clearParents(): number {
    return this.#clear.size;
  }

  #decide(count: number): Verdict | null {
    if (count === 0) return null;
    // The memo (see #clear): the immediate parent is CANDIDATES[1]; every later candidate is a suffix of it.
    let parent: string | null = null;
    let tested = count;
    if (count > 1 && this.#maxClear > 0) {
      parent = nameSlice(CANDIDATES[1]!);
      if (this.#clear.has(parent)) {
        tested = 1;
        parent = null;
      }
    }
    let steer: Verdict | null = null;
    // An index loop: for-of made an iterator object per decision.
    const matchers = this.matchers;
    for (let i = 0; i < matchers.length; i++) {
      const v = walk(matchers[i]!, tested);
      if (v === null) continue;
      if (v.kind !== 'P') return v;
      steer ??= v;
      // A match stops that list's walk: its later candidates are untested, so the parent is not known clear.
      parent = null;
    }
    if (parent !== null && this.#door!.seenBefore(parent)) {
      if (this.#clear.size >= this.#maxClear) this.#clear.clear();
      this.#clear.add(parent);
    }
    return steer;
  }
}
