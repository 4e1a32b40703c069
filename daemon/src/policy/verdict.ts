/**
 * The policy stage: given a query name (or a CNAME/DNAME target), pass, block (naming the list) or steer.
 *
 * Order: the operator's allowlist first (a name at or below an allowlisted name always passes, SPEC.md has no
 * say over it), then the lists through MatcherSet (SPEC.md 1.4: the longest match within a list decides; across
 * lists a block beats a steer and the first list in configuration order wins a tie). A P verdict steers only when
 * `blocking.partial` is `steer`; otherwise it passes.
 *
 * Decisions are cached per name and per list generation: the cache is emptied the moment a query brings a view
 * with another generation, so a decision never outlives the lists it was made under. The cache is a plain Map,
 * emptied whole when it reaches its bound (cheaper than an LRU on the hot path; a refill costs one matcher walk,
 * ~3 µs, per name). A plain pass is not cached by query name (decideWire): the packet cache entry of the question
 * memoizes it (server.ts), and a Map entry per name that passes would only make garbage that survives.
 *
 * A decision names the listed entry that made it: `entry` is the entry's hash (SPEC.md 1.3, 64 hex digits), for
 * the maintainers' hit report (ops/hits.ts). It is computed the first time it is read (one HMAC of the matched
 * suffix, kept), never per query, and never for a decision nobody reports: making it with every new listed name
 * was ~700 of the ~1,430 heap bytes such a query allocated (`node bench/lib/query-path-bench.mjs --sites --paths`).
 * A name at or below an allowlisted name is still walked through the lists on a cache miss, so that a pass the
 * allowlist forced (a list would have blocked or steered) is told apart and counted.
 */
import { Buffer } from 'node:buffer';

import { Doorkeeper, MatcherSet } from '@hashwall/format';

import { BLOCK, PASS, PASS_DECISION, STEER, type Decision } from '../types/decision.js';
import type { ListView } from '../types/lists.js';
import { dottedFromWire } from '../util/names.js';

export interface PolicyOptions {
  /** Lower-case names without the root dot; each passes with everything below it. */
  readonly allowlist: readonly string[];
  /** `blocking.partial === 'steer'`. */
  readonly steer: boolean;
  /**
   * Bound of each decision cache (default 10,000 names; a full cache is emptied and refilled). Names that are asked
   * again and again (a few listed domains, the usual case) stay in it; a long tail of names asked once each only
   * cost memory there: in `npm run bench`, whose listed names are drawn from a million, 100,000 per cache held
   * ~50 MiB of heap after 10 s of saturation and 10,000 holds ~5 MiB, and a name not in the cache costs one
   * matcher walk (~1.5-3 µs) instead.
   */
  readonly maxCachedDecisions?: number;
}

export class Policy {
  readonly #allow: ReadonlySet<string>;
  readonly #steer: boolean;
  readonly #max: number;
  #generation = -1;
  #set = new MatcherSet([]);
  #hasLists = false;
  /** Keyed by the folded wire form of the query name. */
  readonly #byWire = new Map<string, Decision>();
  /** Keyed by dotted alias targets. */
  readonly #byName = new Map<string, Decision>();
  /**
   * One decision per listed entry, by matched suffix (names below a D entry share it): a decision with another
   * list, kind or action for the same suffix is made but not interned. Emptied with the generation (the list's key
   * may have changed).
   */
  readonly #interned = new Map<string, ListDecision>();
  readonly #dotted = Buffer.alloc(512);
  /**
   * The doorkeeper of #byWire, #byName and #interned: a listed name (or suffix, or alias target) is cached the second
   * time it is decided, not the first, so a name asked once (a scanner's random names, an answer's one-off CNAME
   * target) costs no cache entry: those entries, kept until the cache is emptied, were half of what survived each
   * scavenge at 10,000 q/s with one listed name in ten, all different (bench/README.md, "The decision memo's
   * doorkeeper"). A name asked again is cached as before.
   */
  readonly #seen = new Doorkeeper();

  constructor(options: PolicyOptions) {
    this.#allow = new Set(options.allowlist);
    this.#steer = options.steer;
    this.#max = options.maxCachedDecisions ?? 10_000;
  }

  /**
   * Switches to `view`'s lists if its generation differs from the one the caches hold. Queries call it with the
   * view they run under; the query path also calls it when the lists swap, so the previous lists' arrays (tens of
   * MiB for a large list) are let go of at once rather than at the next query.
   */
  sync(view: ListView): void {
    if (view.generation === this.#generation) return;
    this.#generation = view.generation;
    this.#set = new MatcherSet(view.matchers);
    this.#hasLists = view.matchers.length > 0;
    this.#byWire.clear();
    this.#byName.clear();
    this.#interned.clear();
  }

  /**
   * The decision for the uncompressed query name at `msg[offset..)`, whose folded wire form is `key` (the cache
   * key). The dotted form is built only on a cache miss.
   */
  decideWire(key: string, msg: Uint8Array, offset: number, view: ListView): Decision {
    this.sync(view);
    if (!this.#hasLists && this.#allow.size === 0) return PASS_DECISION;
    const cached = this.#byWire.get(key);
    if (cached !== undefined) return cached;
    const n = dottedFromWire(msg, offset, this.#dotted);
    const d = this.#decideBytes(this.#dotted, n);
    if (d === PASS_DECISION || !this.#seen.seenBefore(key)) return d;
    if (this.#byWire.size >= this.#max) this.#byWire.clear();
    this.#byWire.set(key, d);
    return d;
  }

  /** The decision for a dotted, lower-case name (a CNAME or DNAME target). */
  decideName(name: string, view: ListView): Decision {
    this.sync(view);
    if (!this.#hasLists) return PASS_DECISION;
    const cached = this.#byName.get(name);
    if (cached !== undefined) return cached;
    const bytes = Buffer.from(name, 'latin1');
    const d = this.#decideBytes(bytes, bytes.length);
    if (!this.#seen.seenBefore(name)) return d;
    if (this.#byName.size >= this.#max) this.#byName.clear();
    this.#byName.set(name, d);
    return d;
  }

  /** Whether `name` (dotted, lower case) is at or below an allowlisted name. */
  allowed(name: string): boolean {
    if (this.#allow.size === 0) return false;
    for (let i = 0; ;) {
      if (this.#allow.has(i === 0 ? name : name.slice(i))) return true;
      const dot = name.indexOf('.', i);
      if (dot < 0) return false;
      i = dot + 1;
    }
  }

  #decideBytes(bytes: Buffer, n: number): Decision {
    const allowed = this.#allow.size > 0 && this.allowed(bytes.toString('latin1', 0, n));
    if (!this.#hasLists) return PASS_DECISION;
    const v = this.#set.verdictBytes(bytes, 0, n);
    if (v === null) return PASS_DECISION;
    if (v.kind === 'P' && !this.#steer) return PASS_DECISION;
    const action = allowed ? PASS : v.kind === 'P' ? STEER : BLOCK;
    // SPEC.md 1.3: the entry is the matched suffix bytes[v.matchStart..n), without the root dot.
    const end = n > v.matchStart && bytes[n - 1] === 0x2e ? n - 1 : n;
    let key: EntryHasher | null = null;
    // An index loop: for-of made an iterator object per decision.
    const matchers = this.#set.matchers;
    for (let i = 0; i < matchers.length; i++) {
      const m = matchers[i]!;
      if (m.listId === v.listId) {
        key = m.key;
        break;
      }
    }
    const suffix = bytes.toString('latin1', v.matchStart, end);
    const found = this.#interned.get(suffix);
    if (
      found !== undefined &&
      found.listId === v.listId &&
      found.kind === v.kind &&
      found.action === action &&
      found.allowlisted === allowed
    ) {
      return found;
    }
    const d = new ListDecision(action, v.listId, v.kind, allowed, key, suffix);
    if (found === undefined && !this.#seen.seenBefore(suffix)) return d;
    if (this.#interned.size >= this.#max) this.#interned.clear();
    this.#interned.set(suffix, d);
    return d;
  }
}

/** What hashes an entry: the deciding list's key. */
interface EntryHasher {
  hashHex(name: string): string;
}

/** A decision a list made; `entry` is hashed the first time it is read. */
class ListDecision implements Decision {
  readonly action: typeof PASS | typeof BLOCK | typeof STEER;
  readonly listId: string;
  readonly kind: 'D' | 'H' | 'P';
  readonly allowlisted: boolean;
  readonly #key: EntryHasher | null;
  readonly #suffix: string;
  #entry: string | null = null;

  constructor(
    action: typeof PASS | typeof BLOCK | typeof STEER,
    listId: string,
    kind: 'D' | 'H' | 'P',
    allowlisted: boolean,
    key: EntryHasher | null,
    suffix: string,
  ) {
    this.action = action;
    this.listId = listId;
    this.kind = kind;
    this.allowlisted = allowlisted;
    this.#key = key;
    this.#suffix = suffix;
  }

  get entry(): string {
    // The matcher folds A-Z as it hashes; callers pass lower case already, but the hash must not depend on it.
    this.#entry ??= this.#key === null ? '' : this.#key.hashHex(this.#suffix.toLowerCase());
    return this.#entry;
  }
}
