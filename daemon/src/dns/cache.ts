/**
 * The packet cache's store: upstream answers kept as wire bytes, bounded by entries and by bytes, least recently used
 * first out, each with its lifetimes. What the bytes of an answer are, and how a stored one becomes the answer a
 * client gets, is answer.ts's.
 *
 * Laid out like Unbound's caches rather than as JavaScript objects: each entry is a record in an arena of
 * 32 KiB slabs (arena.ts: its key, the answer's header, the answer after its question, its TTL offsets) and a slot,
 * one 64-octet row of a typed array (times, lengths, hash chain, recency links), found through a hash table over
 * the key's octets. A full cache is then a few large buffers: per entry no object, no key string and no Map entry
 * for the collector to keep and walk. `node bench/lib/cache-memory.mjs` (Node 20, 100,000 answers with one A
 * record, as the bench's unique names get): per entry ~35 bytes of V8 heap and ~149 external (the arena and the
 * rows) instead of ~378 and ~88 with an object per entry, RSS grown by ~243 instead of ~417; a hit (key, get,
 * render) ~1.35-1.40 us instead of ~1.6 us with a typed array per field and ~1.9-2.2 us with objects.
 *
 * Key: the question with the name folded to lower case (RFC 4343), QTYPE, QCLASS, and the DO and CD bits (they
 * change what an upstream returns). Not in the key: RD (always set upstream) and AD (always asked for upstream,
 * cleared on the way out for a client that set neither AD nor DO, RFC 6840 5.7).
 *
 * Times: an entry is fresh until its lifetime (answer.ts) has passed, then kept staleMaxAgeSeconds more with
 * serve-stale (RFC 8767); get() deletes it past that. Times are milliseconds of the clock the caller passes (the
 * query path's), never read here.
 *
 * The list generation (see server.ts): each entry records the generation it was checked under and the CNAME/DNAME
 * targets of its answer, so a hit under a newer generation re-checks the targets instead of trusting the old
 * verdict. The policy stage checks the query name itself on every query before the cache is consulted.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';

import { PASS_DECISION, type Decision } from '../types/decision.js';
import { Arena, slabIndex, slabOffset } from './arena.js';
import { HEADER_BYTES, copyOctets } from './wire.js';

export interface CacheSettings {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly minTtlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly maxNegativeTtlSeconds: number;
  readonly serveStale: boolean;
  readonly staleMaxAgeSeconds: number;
  readonly staleAnswerTtlSeconds: number;
}

/**
 * One normalized answer: one made by makeEntry (its own bytes), or the cache's view of a stored one (get() returns
 * the same view object each time, pointed at the entry found: it is good until the next call on the cache).
 *
 * The answer's bytes are in three places, so that a stored one need not keep its question (every answer is
 * rendered with the client's own question bytes): the 12 header octets at `head`, the question (only in an entry
 * of its own) and the octets after the question at `rest`. An answer offset p >= qEnd is at bytes[p + rest - qEnd].
 * After the answer comes its TTL list at `ttls`: a count, then the offset of every TTL field but the OPT's (answer
 * offsets), 16 bits each.
 */
export class CacheEntry {
  /** The bytes holding the answer: its own, or a slab of the cache's arena. */
  bytes: Buffer = EMPTY;
  /** Where the header is in `bytes`. */
  head = 0;
  /** Where the answer's octets after the question are in `bytes`. */
  rest = 0;
  /** The answer's offset after the question. */
  qEnd = 0;
  /** The answer's length, OPT included. */
  length = 0;
  /** Where the OPT record starts (an answer offset: the octets before it are the answer without EDNS). */
  optOffset = 0;
  /** Where the TTL list is in `bytes`. */
  ttls = 0;
  /** When it was stored (performance.now() milliseconds, whole). */
  storedAtMs = 0;
  /** Fresh until then (performance.now() milliseconds, whole). */
  freshUntilMs = 0;
  /** Servable as stale until then. */
  staleUntilMs = 0;
  /** Whether the entry may be cached at all. */
  cacheable = false;
  /** CNAME/DNAME targets in the answer section (dotted, lower case), or null. */
  aliases: readonly string[] | null = null;
  /** The cache's slot arrays and the slot this view shows, or null and -1 for an entry of its own. */
  #slots: Slots | null = null;
  #slot = -1;
  #generation = 0;
  #decision: Decision = PASS_DECISION;
  #nameGeneration = -1;
  #nameDecision: Decision = PASS_DECISION;

  /** The list generation `decision` was made under. */
  get generation(): number {
    return this.#slots === null ? this.#generation : this.#slots.f64[(this.#slot << 3) | F_GENERATION]!;
  }
  set generation(g: number) {
    if (this.#slots === null) this.#generation = g;
    else this.#slots.f64[(this.#slot << 3) | F_GENERATION] = g;
  }

  /** The policy decision over `aliases` under `generation` (PASS without aliases). */
  get decision(): Decision {
    return this.#slots === null ? this.#decision : (this.#slots.ref(this.#slot, R_DECISION) as Decision);
  }
  set decision(d: Decision) {
    if (this.#slots === null) this.#decision = d;
    else this.#slots.setRef(this.#slot, R_DECISION, d);
  }

  /**
   * The query name's own decision, memoized by the query path under `nameGeneration` (-1: none yet). The entry
   * only carries it: the policy makes it, and a new generation makes the policy decide again.
   */
  get nameGeneration(): number {
    return this.#slots === null ? this.#nameGeneration : this.#slots.f64[(this.#slot << 3) | F_NAME_GENERATION]!;
  }
  set nameGeneration(g: number) {
    if (this.#slots === null) this.#nameGeneration = g;
    else this.#slots.f64[(this.#slot << 3) | F_NAME_GENERATION] = g;
  }

  get nameDecision(): Decision {
    return this.#slots === null ? this.#nameDecision : (this.#slots.ref(this.#slot, R_NAME_DECISION) as Decision);
  }
  set nameDecision(d: Decision) {
    if (this.#slots === null) this.#nameDecision = d;
    else this.#slots.setRef(this.#slot, R_NAME_DECISION, d);
  }

  get rcode(): number {
    return this.bytes[this.head + 3]! & 0x0f;
  }

  /** The number of TTL fields (the OPT's aside). */
  get ttlCount(): number {
    return (this.bytes[this.ttls]! << 8) | this.bytes[this.ttls + 1]!;
  }

  /** An entry of its own (makeEntry). */
  static own(
    bytes: Buffer,
    qEnd: number,
    length: number,
    optOffset: number,
    storedAtMs: number,
    freshUntilMs: number,
    staleUntilMs: number,
    cacheable: boolean,
    aliases: readonly string[] | null,
    generation: number,
    decision: Decision,
  ): CacheEntry {
    const e = new CacheEntry();
    e.bytes = bytes;
    e.rest = qEnd;
    e.qEnd = qEnd;
    e.length = length;
    e.optOffset = optOffset;
    e.ttls = length;
    e.storedAtMs = storedAtMs;
    e.freshUntilMs = freshUntilMs;
    e.staleUntilMs = staleUntilMs;
    e.cacheable = cacheable;
    e.aliases = aliases;
    e.#generation = generation;
    e.#decision = decision;
    return e;
  }

  /** Points this view at `slot` of `slots`. */
  static show(e: CacheEntry, slots: Slots, slot: number, staleWindowMs: number): CacheEntry {
    const handle = slots.i32[(slot << 4) | I_HANDLE]!;
    const at = slabOffset(handle);
    const lengths = slots.i32[(slot << 4) | I_LENGTHS]!;
    const keyLength = lengths >>> 16;
    const qEnd = HEADER_BYTES + keyLength - 1;
    const length = lengths & 0xffff;
    e.bytes = slots.arena.slabs[slabIndex(handle)]!;
    e.head = at + keyLength;
    e.rest = e.head + HEADER_BYTES;
    e.qEnd = qEnd;
    e.length = length;
    e.optOffset = slots.i32[(slot << 4) | I_OPT_REFS]! & 0xffff;
    e.ttls = e.rest + length - qEnd;
    e.storedAtMs = slots.f64[(slot << 3) | F_STORED_AT]!;
    e.freshUntilMs = slots.f64[(slot << 3) | F_FRESH_UNTIL]!;
    e.staleUntilMs = e.freshUntilMs + staleWindowMs;
    e.cacheable = true;
    e.aliases = slots.ref(slot, R_ALIASES) as readonly string[] | null;
    e.#slots = slots;
    e.#slot = slot;
    return e;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Bytes an entry costs beyond its record in the arena (its key, header, the answer after the question and the TTL
 * list), for maxBytes: the slot's 64-octet row, its three references, a hash bucket, and the record's rounding up
 * to its cell. Measured with `node bench/lib/cache-memory.mjs` (Node 20, a full cache of 100,000 one-A answers):
 * heap and external grow by ~185 bytes per entry for a record of 75 (an 80-octet cell).
 */
const ENTRY_OVERHEAD_BYTES = 110;

/** The least an entry counts for maxBytes: a 6-octet key (the root's question and the flag), the header, a TTL list. */
const MIN_COUNTED_BYTES = ENTRY_OVERHEAD_BYTES + 6 + HEADER_BYTES + 2;

/**
 * Slots made with the cache (and again when it is cleared): as many as it can hold (maxEntries, or maxBytes over
 * the least an entry counts), up to this. Made as entries came, by doubling, the rows were copied and every entry
 * hashed into new buckets on the query thread at each doubling: one set() took 2.5 ms at 8,192 entries, 2.2 at
 * 16,384, 4.8 at 32,768 and 6.1 at 65,536 (bench/README.md, "The packet cache's tables made at once"), the longest
 * stop of the bench's latency loads. A cache that can hold more still doubles past this.
 */
const PRESIZED_SLOTS = 1 << 20;

/** Entries one hash chain may hold; a key hashing into a longer one is not cached (a flood of colliding names). */
const MAX_CHAIN = 16;

/** The key (a question, folded, and a flag octet) is at most a 255-octet name, QTYPE, QCLASS and the flag. */
const MAX_KEY_BYTES = 260;

/*
 * Where each field of a slot is. A slot is one 64-octet row of one buffer, seen as 8 float64 and as 16 int32 (the
 * float64 fields first): a hit reads one row and its neighbours' recency links instead of a cache line in each of
 * fourteen arrays. Under the bench's saturated load the parallel arrays this replaced stalled on memory at every
 * field read: getWire (the lookup) was ~540 ns of a query's ~11.6 us, 70% of it waiting on loads (perf annotate of
 * a `perf record` with node --perf-prof). What is left is three dependent loads: the bucket, the row, the record.
 */

/** When it was stored and fresh until (performance.now() ms), the generations its decisions were made under. */
const F_STORED_AT = 0;
const F_FRESH_UNTIL = 1;
const F_GENERATION = 2;
const F_NAME_GENERATION = 3;
/** The record in the arena (key, header, the answer after the question, the TTL list) and its length. */
const I_HANDLE = 8;
const I_RECORD_LENGTH = 9;
/** The answer's length (low 16 bits) and the key's (the high ones). */
const I_LENGTHS = 10;
/**
 * Where the answer's OPT is (the low 16 bits), and which of the slot's references are set (bit REFS_SHIFT + R_*: not
 * null or PASS_DECISION). A slot with none set, most of them, is served without reading its references, a load that
 * waited on memory in every hit (bench/README.md, "The cache lookup's loads").
 */
const I_OPT_REFS = 11;
const REFS_SHIFT = 16;
/** The key's hash; the next slot in its bucket's chain (or in the free list), -1 at the end. */
const I_HASH = 12;
const I_CHAIN = 13;
/** Recency order: toward the least and toward the most recently used, -1 at either end. */
const I_PREV = 14;
const I_NEXT = 15;
const SLOT_BYTES = 64;
/** The references of a slot (Slots.ref): its aliases, their decision, the name's own decision. */
const R_ALIASES = 0;
const R_DECISION = 1;
const R_NAME_DECISION = 2;

/** What a slot refers to: its aliases, their decision, the name's own decision. */
type Ref = readonly string[] | Decision | null;
/** Slots per array of references (a power of two): 12,288 references, ~96 KiB. */
const REF_CHUNK_SHIFT = 12;
const REF_CHUNK = 1 << REF_CHUNK_SHIFT;

/**
 * The cache's entries as rows indexed by slot: no JavaScript object per entry, so a full cache is nothing the
 * collector has to walk. Made for all the cache can hold (up to PRESIZED_SLOTS), grown by doubling past that; a
 * freed slot is reused.
 */
class Slots {
  readonly arena = new Arena();
  capacity = 0;
  /** The rows (SLOT_BYTES each), as int32 (index slot << 4) and float64 (index slot << 3). */
  i32 = new Int32Array(0);
  f64 = new Float64Array(0);
  /**
   * The slots' references, three per slot (R_*), in arrays of REF_CHUNK slots each: one array for them all, grown as
   * slots are handed out, was copied whole at each growth (V8 grows an array by half), 1.4-2.2 ms on the query
   * thread once it held 60,000-90,000 slots' worth.
   */
  refs: Ref[][] = [];

  /** Drops every slot and the arena's slabs. */
  clear(): void {
    this.arena.clear();
    this.capacity = 0;
    this.i32 = new Int32Array(0);
    this.f64 = new Float64Array(0);
    this.refs = [];
  }

  /**
   * Grows the rows to `capacity` slots (at most 2^27: row indexes stay 32-bit). Not zeroed (every field of a slot is
   * written when it is handed out): a large allocation's pages are then resident only once a row is written, so rows
   * made ahead cost address space, not memory.
   */
  grow(capacity: number): void {
    const rows = Buffer.allocUnsafeSlow(capacity * SLOT_BYTES).buffer;
    new Uint8Array(rows).set(new Uint8Array(this.i32.buffer, this.i32.byteOffset, this.i32.byteLength));
    this.i32 = new Int32Array(rows);
    this.f64 = new Float64Array(rows);
    this.capacity = capacity;
  }

  /** Makes slot `s`'s references when it is first handed out (`s` is the next one): a new array every REF_CHUNK. */
  addRefs(s: number): void {
    if (s >> REF_CHUNK_SHIFT < this.refs.length) return;
    const chunk: Ref[] = [];
    for (let i = 0; i < REF_CHUNK; i++) chunk.push(null, PASS_DECISION, PASS_DECISION);
    this.refs.push(chunk);
  }

  /** Slot `s`'s reference `r` (R_*); one not set is known from the row alone. */
  ref(s: number, r: number): Ref {
    if ((this.i32[(s << 4) | I_OPT_REFS]! & (1 << (REFS_SHIFT + r))) === 0) {
      return r === R_ALIASES ? null : PASS_DECISION;
    }
    return this.refs[s >> REF_CHUNK_SHIFT]![(s & (REF_CHUNK - 1)) * 3 + r] as Ref;
  }

  /** Sets slot `s`'s reference `r` (the row's I_OPT_REFS must hold the slot's flags: a new row's, none). */
  setRef(s: number, r: number, v: Ref): void {
    const f = (s << 4) | I_OPT_REFS;
    const bit = 1 << (REFS_SHIFT + r);
    const unset = v === null || v === PASS_DECISION;
    if (unset && (this.i32[f]! & bit) === 0) return;
    this.refs[s >> REF_CHUNK_SHIFT]![(s & (REF_CHUNK - 1)) * 3 + r] = v;
    this.i32[f] = unset ? this.i32[f]! & ~bit : this.i32[f]! | bit;
  }
}

/** Whether the record at `handle` in `arena` starts with k[0..len). */
function keyAt(arena: Arena, handle: number, k: Uint8Array, len: number): boolean {
  const slab = arena.slabs[slabIndex(handle)]!;
  const at = slabOffset(handle);
  let i = 0;
  while (i < len && slab[at + i] === k[i]) i++;
  return i === len;
}

/** A seed per process, so which names share a hash bucket cannot be worked out from outside. */
const SEED = randomBytes(4).readInt32LE(0);

/** A 32-bit hash of k[0..len) (MurmurHash3's mixing, four octets at a time, seeded). */
export function hashKey(k: Uint8Array, len: number): number {
  let h = SEED ^ len;
  let i = 0;
  for (const end = len - 3; i < end; i += 4) {
    let w = k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24);
    w = Math.imul(w, 0xcc9e2d51);
    w = Math.imul((w << 15) | (w >>> 17), 0x1b873593);
    h ^= w;
    h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
  }
  let w = 0;
  for (let sh = 0; i < len; i++, sh += 8) w |= k[i]! << sh;
  w = Math.imul(w, 0xcc9e2d51);
  h ^= Math.imul((w << 15) | (w >>> 17), 0x1b873593);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

export class PacketCache {
  readonly settings: CacheSettings;
  /** How long past its freshness an entry is kept (0 without serve-stale). */
  readonly #staleWindowMs: number;
  /** Null when the cache is off (maxEntries or maxBytes 0). */
  readonly #slots: Slots | null;
  /**
   * Per bucket b, the first slot of its chain at 2b (-1: none) and that slot's record at 2b + 1: a lookup reads the
   * row and the record's key at once instead of the one after the other (bench/README.md, "The cache lookup's
   * loads"). Buckets: a power of two at least the slot capacity; #mask is their count less one.
   */
  #buckets = new Int32Array(0);
  #mask = 0;
  #count = 0;
  /** Slots handed out so far; freed ones are chained from #free through `chain`. */
  #used = 0;
  #free = -1;
  /** Least and most recently used slots, or -1. */
  #head = -1;
  #tail = -1;
  #bytes = 0;
  #evictions = 0;
  readonly #view = new CacheEntry();
  /** Slots made at once (see PRESIZED_SLOTS). */
  readonly #presized: number;
  /** A string key written out as octets. */
  readonly #key = Buffer.alloc(MAX_KEY_BYTES);

  /** `presized`: the most slots made at once (PRESIZED_SLOTS; a test passes fewer to see the cache grow past them). */
  constructor(settings: CacheSettings, presized = PRESIZED_SLOTS) {
    this.settings = settings;
    this.#staleWindowMs = settings.serveStale ? settings.staleMaxAgeSeconds * 1000 : 0;
    this.#slots = settings.maxEntries > 0 && settings.maxBytes > 0 ? new Slots() : null;
    this.#presized = Math.min(
      settings.maxEntries,
      Math.max(1, Math.floor(settings.maxBytes / MIN_COUNTED_BYTES)),
      presized,
    );
    if (this.#slots !== null) this.#grow(this.#slots, this.#presized);
  }

  /** Entries held. */
  get size(): number {
    return this.#count;
  }

  /** Entries evicted so far to stay within maxEntries and maxBytes (not expiries, deletes or replacements). */
  get evictions(): number {
    return this.#evictions;
  }

  /** Bytes held, as counted for maxBytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Slots made so far (rows and references), in use or not. */
  get slotCapacity(): number {
    return this.#slots?.capacity ?? 0;
  }

  /** Octets the arena holds for records (cells in use and free). */
  get arenaBytes(): number {
    return this.#slots?.arena.reservedBytes ?? 0;
  }

  /**
   * The entry for `key` (its latin1 octets), fresh or within its stale window; one past its stale window is
   * deleted. The entry is the cache's view: read it before the next call on the cache.
   */
  get(key: string, nowMs: number): CacheEntry | undefined {
    if (key.length > MAX_KEY_BYTES) return undefined;
    const n = this.#key.write(key, 0, 'latin1');
    return this.getWire(this.#key, n, nowMs);
  }

  /**
   * get() with the key as octets, k[0..len) (the query path has them: no string to make), and their hashKey if the
   * caller has it (the query path keeps it for its table of questions in flight).
   */
  getWire(k: Uint8Array, len: number, nowMs: number, hash = hashKey(k, len)): CacheEntry | undefined {
    const slots = this.#slots;
    if (slots === null) return undefined;
    const s = this.#find(slots, k, len, hash);
    if (s < 0) return undefined;
    const fresh = slots.f64[(s << 3) | F_FRESH_UNTIL]!;
    if (nowMs >= fresh + this.#staleWindowMs) {
      this.#remove(slots, s);
      return undefined;
    }
    if (s !== this.#tail) {
      this.#unlink(slots, s);
      this.#linkTail(slots, s);
    }
    return CacheEntry.show(this.#view, slots, s, this.#staleWindowMs);
  }

  /**
   * Stores `e` (if cacheable) under `key`, the most recently used entry, evicting the least recently used ones as
   * maxEntries and maxBytes require. The key must be the answer's question (folded) and one flag octet, as
   * server.ts makes it: a key whose length does not fit the answer's question is not stored.
   */
  set(key: string, e: CacheEntry): void {
    const slots = this.#slots;
    if (slots === null || !e.cacheable || key.length > MAX_KEY_BYTES) return;
    const kb = this.#key;
    const kl = kb.write(key, 0, 'latin1');
    // The row keeps the answer's length in 16 bits: a DNS message is at most 65535 octets.
    if (kl - 1 !== e.qEnd - HEADER_BYTES || e.length > 0xffff) return;
    const restLength = e.length - e.qEnd;
    const ttlBytes = 2 + 2 * e.ttlCount;
    const recordLength = kl + HEADER_BYTES + restLength + ttlBytes;
    const counted = recordLength + ENTRY_OVERHEAD_BYTES;
    const h = hashKey(kb, kl);
    let s = this.#find(slots, kb, kl, h);
    if (counted > this.settings.maxBytes) {
      if (s >= 0) this.#remove(slots, s);
      return;
    }
    // The record first (a replaced entry's old record is freed only after: `e` may be the view of it).
    const handle = slots.arena.alloc(recordLength);
    if (handle < 0) return;
    const slab = slots.arena.slabs[slabIndex(handle)]!;
    let at = slabOffset(handle);
    at = copyOctets(kb, 0, kl, slab, at);
    const src = e.bytes;
    at = copyOctets(src, e.head, e.head + HEADER_BYTES, slab, at);
    at = copyOctets(src, e.rest, e.rest + restLength, slab, at);
    copyOctets(src, e.ttls, e.ttls + ttlBytes, slab, at);
    const replaced = s >= 0;
    if (replaced) {
      slots.arena.free(slots.i32[(s << 4) | I_HANDLE]!, slots.i32[(s << 4) | I_RECORD_LENGTH]!);
      this.#bytes -= slots.i32[(s << 4) | I_RECORD_LENGTH]! + ENTRY_OVERHEAD_BYTES;
      if (s !== this.#tail) {
        this.#unlink(slots, s);
        this.#linkTail(slots, s);
      }
    } else {
      while (
        this.#head >= 0 &&
        (this.#count >= this.settings.maxEntries || this.#bytes + counted > this.settings.maxBytes)
      )
        this.#evict(slots);
      s = this.#slot(slots);
      if (this.#chainLength(slots, h) >= MAX_CHAIN) {
        slots.i32[(s << 4) | I_CHAIN] = this.#free;
        this.#free = s;
        slots.arena.free(handle, recordLength);
        return;
      }
      const b = (h & this.#mask) << 1;
      slots.i32[(s << 4) | I_HASH] = h;
      slots.i32[(s << 4) | I_CHAIN] = this.#buckets[b]!;
      this.#buckets[b] = s;
      this.#buckets[b + 1] = handle;
      this.#linkTail(slots, s);
      this.#count++;
    }
    slots.i32[(s << 4) | I_HANDLE] = handle;
    if (replaced && this.#buckets[(h & this.#mask) << 1] === s) this.#buckets[((h & this.#mask) << 1) + 1] = handle;
    slots.i32[(s << 4) | I_RECORD_LENGTH] = recordLength;
    slots.i32[(s << 4) | I_LENGTHS] = e.length | (kl << 16);
    // A replaced entry's reference flags stay until its references are set below; a new slot has none.
    slots.i32[(s << 4) | I_OPT_REFS] = (replaced ? slots.i32[(s << 4) | I_OPT_REFS]! & ~0xffff : 0) | e.optOffset;
    slots.f64[(s << 3) | F_STORED_AT] = e.storedAtMs;
    slots.f64[(s << 3) | F_FRESH_UNTIL] = e.freshUntilMs;
    slots.setRef(s, R_ALIASES, e.aliases);
    slots.f64[(s << 3) | F_GENERATION] = e.generation;
    slots.setRef(s, R_DECISION, e.decision);
    slots.f64[(s << 3) | F_NAME_GENERATION] = e.nameGeneration;
    slots.setRef(s, R_NAME_DECISION, e.nameDecision);
    this.#bytes += counted;
    // A replaced entry may have grown past maxBytes: make room, never evicting it.
    while (this.#bytes > this.settings.maxBytes && this.#head !== s) this.#evict(slots);
  }

  delete(key: string): void {
    const slots = this.#slots;
    if (slots === null || key.length > MAX_KEY_BYTES) return;
    const n = this.#key.write(key, 0, 'latin1');
    const s = this.#find(slots, this.#key, n, hashKey(this.#key, n));
    if (s >= 0) this.#remove(slots, s);
  }

  clear(): void {
    const slots = this.#slots;
    if (slots === null) return;
    slots.clear();
    this.#buckets = new Int32Array(0);
    this.#mask = 0;
    this.#count = 0;
    this.#used = 0;
    this.#free = -1;
    this.#head = -1;
    this.#tail = -1;
    this.#bytes = 0;
    this.#grow(slots, this.#presized);
  }

  /** Keys from the least to the most recently used, as latin1 strings (for tests). */
  keys(): string[] {
    const slots = this.#slots;
    const out: string[] = [];
    if (slots === null) return out;
    for (let s = this.#head; s >= 0; s = slots.i32[(s << 4) | I_NEXT]!) {
      const h = slots.i32[(s << 4) | I_HANDLE]!;
      const at = slabOffset(h);
      out.push(slots.arena.slabs[slabIndex(h)]!.toString('latin1', at, at + (slots.i32[(s << 4) | I_LENGTHS]! >>> 16)));
    }
    return out;
  }

  #find(slots: Slots, k: Uint8Array, len: number, h: number): number {
    const buckets = this.#buckets;
    if (buckets.length === 0) return -1;
    const b = (h & this.#mask) << 1;
    let s = buckets[b]!;
    if (s < 0) return -1;
    // The first slot's record is named by the bucket: its slab is found before the row is read, and the key's
    // octets are compared while the row's load may still wait on memory (a branch the CPU predicts), not after it.
    const handle = buckets[b + 1]!;
    const slab = slots.arena.slabs[slabIndex(handle)]!;
    const at = slabOffset(handle);
    if (slots.i32[(s << 4) | I_LENGTHS]! >>> 16 === len) {
      let i = 0;
      while (i < len && slab[at + i] === k[i]) i++;
      if (i === len) return s;
    }
    for (s = slots.i32[(s << 4) | I_CHAIN]!; s >= 0; s = slots.i32[(s << 4) | I_CHAIN]!) {
      if (slots.i32[(s << 4) | I_HASH] !== h || slots.i32[(s << 4) | I_LENGTHS]! >>> 16 !== len) continue;
      if (keyAt(slots.arena, slots.i32[(s << 4) | I_HANDLE]!, k, len)) return s;
    }
    return -1;
  }

  #chainLength(slots: Slots, h: number): number {
    let n = 0;
    for (let s = this.#buckets[(h & this.#mask) << 1]!; s >= 0; s = slots.i32[(s << 4) | I_CHAIN]!) n++;
    return n;
  }

  #evict(slots: Slots): void {
    this.#remove(slots, this.#head);
    this.#evictions++;
  }

  #remove(slots: Slots, s: number): void {
    this.#unlink(slots, s);
    const b = (slots.i32[(s << 4) | I_HASH]! & this.#mask) << 1;
    let p = this.#buckets[b]!;
    if (p === s) {
      const next = slots.i32[(s << 4) | I_CHAIN]!;
      this.#buckets[b] = next;
      this.#buckets[b + 1] = next >= 0 ? slots.i32[(next << 4) | I_HANDLE]! : -1;
    } else {
      while (slots.i32[(p << 4) | I_CHAIN] !== s) p = slots.i32[(p << 4) | I_CHAIN]!;
      slots.i32[(p << 4) | I_CHAIN] = slots.i32[(s << 4) | I_CHAIN]!;
    }
    slots.arena.free(slots.i32[(s << 4) | I_HANDLE]!, slots.i32[(s << 4) | I_RECORD_LENGTH]!);
    this.#bytes -= slots.i32[(s << 4) | I_RECORD_LENGTH]! + ENTRY_OVERHEAD_BYTES;
    slots.setRef(s, R_ALIASES, null);
    slots.setRef(s, R_DECISION, PASS_DECISION);
    slots.setRef(s, R_NAME_DECISION, PASS_DECISION);
    slots.i32[(s << 4) | I_CHAIN] = this.#free;
    this.#free = s;
    this.#count--;
  }

  /** A free slot: a reused one, else a new one (past the presized slots, growing them by doubling, to maxEntries). */
  #slot(slots: Slots): number {
    const f = this.#free;
    if (f >= 0) {
      this.#free = slots.i32[(f << 4) | I_CHAIN]!;
      return f;
    }
    const s = this.#used++;
    if (s >= slots.capacity) this.#grow(slots, Math.min(this.settings.maxEntries, Math.max(64, slots.capacity * 2)));
    slots.addRefs(s);
    return s;
  }

  /** Grows the slots to `capacity`, and the buckets to the power of two at least that (every entry chained again). */
  #grow(slots: Slots, capacity: number): void {
    slots.grow(capacity);
    let nb = 64;
    while (nb < slots.capacity) nb *= 2;
    if (nb !== this.#mask + 1) this.#rehash(slots, nb);
  }

  /** New buckets, every entry chained into them again. */
  #rehash(slots: Slots, n: number): void {
    const buckets = new Int32Array(2 * n).fill(-1);
    for (let s = this.#head; s >= 0; s = slots.i32[(s << 4) | I_NEXT]!) {
      const b = (slots.i32[(s << 4) | I_HASH]! & (n - 1)) << 1;
      slots.i32[(s << 4) | I_CHAIN] = buckets[b]!;
      buckets[b] = s;
      buckets[b + 1] = slots.i32[(s << 4) | I_HANDLE]!;
    }
    this.#buckets = buckets;
    this.#mask = n - 1;
  }

  #unlink(slots: Slots, s: number): void {
    const p = slots.i32[(s << 4) | I_PREV]!;
    const n = slots.i32[(s << 4) | I_NEXT]!;
    if (p >= 0) slots.i32[(p << 4) | I_NEXT] = n;
    else this.#head = n;
    if (n >= 0) slots.i32[(n << 4) | I_PREV] = p;
    else this.#tail = p;
  }

  #linkTail(slots: Slots, s: number): void {
    const t = this.#tail;
    slots.i32[(s << 4) | I_PREV] = t;
    slots.i32[(s << 4) | I_NEXT] = -1;
    if (t >= 0) slots.i32[(t << 4) | I_NEXT] = s;
    else this.#head = s;
    this.#tail = s;
  }
}
