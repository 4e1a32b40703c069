/**
 * The packet cache: upstream answers kept as wire bytes in an LRU map (lru.ts), bounded by entries and by bytes.
 *
 * Key: the question with the name folded to lower case (RFC 4343), QTYPE, QCLASS, and the DO and CD bits (they
 * change what an upstream returns). Not in the key: RD (always set upstream) and AD (always asked for upstream,
 * cleared on the way out for a client that set neither AD nor DO, RFC 6840 5.7).
 *
 * Each answer is stored normalized: the upstream's OPT record is replaced by the daemon's own, placed last (so a
 * client without EDNS gets the bytes before it: RFC 6891 7), advertising udp.maxResponseBytes and carrying only
 * the upstream's Extended DNS Errors (RFC 8914 is end to end information; cookies, NSID, padding and the rest are
 * hop by hop or the upstream's business). TTLs are clamped when stored and counted down when served.
 *
 * Lifetimes: positive answers live min(TTL) clamped to [minTtlSeconds, maxTtlSeconds]. NXDOMAIN and NODATA
 * (RFC 2308 5) live min(SOA TTL, SOA MINIMUM, maxNegativeTtlSeconds) and are cached only with a SOA in the
 * authority section. Never cached: truncated answers, SERVFAIL and every other rcode (a failure is never
 * remembered, so it cannot displace a stale answer; identical queries in flight are coalesced instead, which
 * bounds what a failing name costs the upstream), and answers whose lifetime is 0.
 *
 * Serve-stale (RFC 8767): an entry is kept staleMaxAgeSeconds past its lifetime; within that window it is not
 * served while an upstream answers, but when every try failed it is served with TTL staleAnswerTtlSeconds and, to
 * an EDNS client, EDE 3 "Stale Answer" (RFC 8914 4.4).
 *
 * The list generation (see server.ts): each entry records the generation it was checked under and the CNAME/DNAME
 * targets of its answer, so a hit under a newer generation re-checks the targets instead of trusting the old
 * verdict. The policy stage checks the query name itself on every query before the cache is consulted.
 */
import { PASS_DECISION, type Decision } from '../policy/verdict.js';
import { Lru } from './lru.js';
import { NEW_BUFFERS, type AnswerBuffers } from './scratch.js';
import { EDE_STALE_ANSWER } from './synth.js';
import {
  CLASSIC_UDP_BYTES,
  F1_AA,
  F1_QR,
  F1_RD,
  F1_TC,
  F2_AD,
  F2_CD,
  F2_RA,
  HEADER_BYTES,
  OPTION_EDE,
  OPT_DO_BYTE,
  RCODE_NOERROR,
  RCODE_NXDOMAIN,
  TYPE_OPT,
  type ParsedQuery,
  type ResponseInfo,
} from './wire.js';

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
 * One normalized answer. Only `generation` and `decision` change after it is made.
 *
 * Every entry outlives a scavenge or two (it is what the cache is for), so its size is what each new name costs
 * the collector: the TTL offsets are a small array rather than an Int32Array (~60 heap bytes fewer), and the times
 * are whole milliseconds, which V8 keeps inside the object while they are small integers (a fraction would be a
 * heap number of 16 bytes each; they stay small integers for the first 24 days of the process).
 */
export class CacheEntry {
  constructor(
    /** The answer, OPT last. */
    readonly bytes: Buffer,
    /** Where the OPT record starts (bytes before it are the answer without EDNS). */
    readonly optOffset: number,
    /** Offsets of every TTL field but the OPT's. */
    readonly ttlOffsets: readonly number[],
    /** When it was stored (performance.now() milliseconds, whole). */
    readonly storedAtMs: number,
    /** Fresh until then (performance.now() milliseconds, whole). */
    readonly freshUntilMs: number,
    /** Servable as stale until then. */
    readonly staleUntilMs: number,
    /** Whether the entry may be cached at all. */
    readonly cacheable: boolean,
    /** CNAME/DNAME targets in the answer section (dotted, lower case), or null. */
    readonly aliases: readonly string[] | null,
    /** The list generation `decision` was made under. */
    public generation: number,
    /** The policy decision over `aliases` under `generation` (PASS without aliases). */
    public decision: Decision,
  ) {}

  /**
   * The query name's own decision, memoized by the query path under `nameGeneration` (-1: none yet). The entry
   * only carries it: the policy makes it, and a new generation makes the policy decide again.
   */
  nameGeneration = -1;
  nameDecision: Decision = PASS_DECISION;

  get rcode(): number {
    return this.bytes[3]! & 0x0f;
  }
}

/** Bytes an entry costs beyond its answer (object, offsets, key, LRU bookkeeping), for maxBytes. */
const ENTRY_OVERHEAD_BYTES = 200;

export class PacketCache {
  readonly settings: CacheSettings;
  readonly #lru: Lru<CacheEntry> | null;
  #evictions = 0;

  constructor(settings: CacheSettings) {
    this.settings = settings;
    // Expiry is ours (fresh, stale window); the LRU only bounds entries and bytes. Evictions are the entries pushed
    // out to stay within maxEntries/maxBytes (not expiries or replacements).
    this.#lru =
      settings.maxEntries > 0 && settings.maxBytes > 0
        ? new Lru<CacheEntry>(settings.maxEntries, settings.maxBytes, () => void this.#evictions++)
        : null;
  }

  /** Entries held. */
  get size(): number {
    return this.#lru?.size ?? 0;
  }

  /** Entries evicted so far to stay within maxEntries and maxBytes. */
  get evictions(): number {
    return this.#evictions;
  }

  /** Bytes held, as counted for maxBytes. */
  get bytes(): number {
    return this.#lru?.calculatedSize ?? 0;
  }

  /** The entry for `key`, fresh or within its stale window; one past its stale window is deleted. */
  get(key: string, nowMs: number): CacheEntry | undefined {
    const lru = this.#lru;
    if (lru === null) return undefined;
    const e = lru.get(key);
    if (e !== undefined && nowMs >= e.staleUntilMs) {
      lru.delete(key);
      return undefined;
    }
    return e;
  }

  set(key: string, e: CacheEntry): void {
    if (e.cacheable) {
      this.#lru?.set(key, e, e.bytes.length + e.ttlOffsets.length * 4 + key.length + ENTRY_OVERHEAD_BYTES);
    }
  }

  delete(key: string): void {
    this.#lru?.delete(key);
  }

  clear(): void {
    this.#lru?.clear();
  }

  /**
   * Normalizes an upstream answer (scanned into `info`) into an entry: the OPT replaced by ours at the end, TTLs
   * clamped, lifetimes computed. `aliases` and `decision` come from the caller's policy check.
   */
  makeEntry(
    msg: Uint8Array,
    len: number,
    info: ResponseInfo,
    ednsSize: number,
    nowMs: number,
    aliases: readonly string[] | null,
    generation: number,
    decision: Decision,
  ): CacheEntry {
    const s = this.settings;
    // Our OPT: root owner, type 41, our UDP size, extended rcode 0, version 0, DO as the upstream had it, and the
    // upstream's EDE options.
    let edeBytes = 0;
    if (info.optStart >= 0) edeBytes = eachEde(msg, info.optStart, info.optEnd, null, 0);
    const optLength = 11 + edeBytes;
    const cut = info.optStart >= 0 ? info.optEnd - info.optStart : 0;
    const total = len - cut + optLength;
    const out = Buffer.allocUnsafe(total);
    let ttlShiftFrom = len;
    if (info.optStart >= 0) {
      out.set(msg.subarray(0, info.optStart), 0);
      out.set(msg.subarray(info.optEnd, len), info.optStart);
      ttlShiftFrom = info.optStart;
    } else {
      out.set(msg.subarray(0, len), 0);
      const ar = ((out[10]! << 8) | out[11]!) + 1;
      out[10] = ar >> 8;
      out[11] = ar & 0xff;
    }
    const opt = len - cut;
    out[opt] = 0;
    out.writeUInt16BE(TYPE_OPT, opt + 1);
    out.writeUInt16BE(ednsSize, opt + 3);
    out[opt + 5] = 0;
    out[opt + 6] = 0;
    out[opt + 7] = info.dnssecOk ? OPT_DO_BYTE : 0;
    out[opt + 8] = 0;
    out.writeUInt16BE(edeBytes, opt + 9);
    if (edeBytes > 0) eachEde(msg, info.optStart, info.optEnd, out, opt + 11);

    const rcode = info.rcode;
    const negative = rcode === RCODE_NXDOMAIN || (rcode === RCODE_NOERROR && info.answersOfType === 0);
    const truncated = (info.flags1 & F1_TC) !== 0;
    let cacheable = !truncated && (rcode === RCODE_NOERROR || rcode === RCODE_NXDOMAIN) && !info.aliasOverflow;
    let cap = s.maxTtlSeconds;
    if (negative) {
      // RFC 2308 5: negative answers are cached for min(SOA TTL, SOA MINIMUM); without a SOA, not at all.
      if (info.negativeTtl < 0) cacheable = false;
      else cap = Math.min(cap, info.negativeTtl, s.maxNegativeTtlSeconds);
    }
    // The operator's floor raises short TTLs, but never above a negative answer's cap.
    const floor = negative ? Math.min(s.minTtlSeconds, cap) : s.minTtlSeconds;
    const offsets = new Array<number>(info.ttlCount);
    let lifetime = info.ttlCount === 0 ? 0 : 0x7fffffff;
    for (let i = 0; i < info.ttlCount; i++) {
      let at = info.ttlOffsets[i]!;
      if (at > ttlShiftFrom) at -= cut;
      offsets[i] = at;
      let ttl = out.readUInt32BE(at);
      if (ttl > 0x7fffffff) ttl = 0; // RFC 2181 8
      if (ttl > cap) ttl = cap;
      if (ttl < floor) ttl = floor;
      out.writeUInt32BE(ttl, at);
      if (ttl < lifetime) lifetime = ttl;
    }
    if (lifetime <= 0) cacheable = false;
    const stored = Math.floor(nowMs);
    const fresh = stored + lifetime * 1000;
    const stale = s.serveStale ? fresh + s.staleMaxAgeSeconds * 1000 : fresh;
    return new CacheEntry(out, opt, offsets, stored, fresh, stale, cacheable, aliases, generation, decision);
  }
}

/** Walks the EDE options of the OPT at msg[start..end): copies them to `out` (if given); returns their bytes. */
function eachEde(msg: Uint8Array, start: number, end: number, out: Buffer | null, at: number): number {
  // The owner of an OPT is the root (1 octet), then type, class, TTL, RDLENGTH: RDATA starts 11 octets in.
  let p = start + 11;
  let n = 0;
  while (p + 4 <= end) {
    const code = (msg[p]! << 8) | msg[p + 1]!;
    const olen = (msg[p + 2]! << 8) | msg[p + 3]!;
    if (code === OPTION_EDE) {
      if (out !== null) out.set(msg.subarray(p, p + 4 + olen), at + n);
      n += 4 + olen;
    }
    p += 4 + olen;
  }
  return n;
}

/** EDE 3 without EXTRA-TEXT: option code, length 2, INFO-CODE. */
const STALE_EDE = Buffer.from([0, OPTION_EDE, 0, 2, 0, EDE_STALE_ANSWER]);

/**
 * The answer to `q` from `e`: the client's ID, RD, CD and question bytes (its case), TTLs counted down (or set to
 * `staleTtl` when serving stale, > 0), the OPT kept for an EDNS client and cut otherwise. Written whole into a
 * buffer from `buffers` (by default a new one).
 */
export function renderEntry(
  e: CacheEntry,
  q: ParsedQuery,
  nowMs: number,
  staleTtl: number,
  buffers: AnswerBuffers = NEW_BUFFERS,
): Buffer {
  const src = e.bytes;
  const edns = q.edns;
  const len = edns ? src.length : e.optOffset;
  const extra = edns && staleTtl > 0 ? STALE_EDE.length : 0;
  const out = buffers.take(len + extra);
  // TypedArray set and a byte loop for the question: ~58 ns against ~90 ns for two Buffer.copy calls on a
  // 120-octet answer (Node 20, this project's VM): Buffer.copy's argument checks cost more than the copy.
  // Without the OPT (a client without EDNS), a short answer is copied byte by byte: a subarray for set() would be
  // a new view (heap bytes) per query.
  if (len === src.length) out.set(src);
  else if (len <= 512) for (let i = 0; i < len; i++) out[i] = src[i]!;
  else out.set(src.subarray(0, len));
  out[0] = q.id >> 8;
  out[1] = q.id & 0xff;
  out[2] = (src[2]! & (F1_QR | F1_AA)) | (q.rd ? F1_RD : 0);
  // RFC 6840 5.7: AD only for a client that asked with AD or DO.
  out[3] = (src[3]! & (F2_RA | 0x0f)) | (q.ad || q.dnssecOk ? src[3]! & F2_AD : 0) | (q.cd ? F2_CD : 0);
  if (!edns) {
    const ar = ((src[10]! << 8) | src[11]!) - 1;
    out[10] = ar >> 8;
    out[11] = ar & 0xff;
  } else {
    const opt = e.optOffset;
    out[opt + 7] = q.dnssecOk ? OPT_DO_BYTE : 0;
    if (extra > 0) {
      STALE_EDE.copy(out, len);
      out.writeUInt16BE(((src[opt + 9]! << 8) | src[opt + 10]!) + extra, opt + 9);
    }
  }
  // The client's own question bytes: same length, equal but for case (RFC 4343: echo what was asked).
  const qmsg = q.msg;
  for (let i = HEADER_BYTES, end = q.qEnd; i < end; i++) out[i] = qmsg[i]!;
  const offsets = e.ttlOffsets;
  if (staleTtl > 0) {
    for (let i = 0; i < offsets.length; i++) out.writeUInt32BE(staleTtl, offsets[i]);
  } else {
    const age = Math.floor((nowMs - e.storedAtMs) / 1000);
    if (age > 0) {
      for (let i = 0; i < offsets.length; i++) {
        const at = offsets[i]!;
        const ttl = src.readUInt32BE(at) - age;
        out.writeUInt32BE(ttl > 0 ? ttl : 0, at);
      }
    }
  }
  return out;
}

/** The UDP size limit for `q`'s answer: min(client EDNS size, udp.maxResponseBytes), 512 without EDNS. */
export function udpLimit(q: ParsedQuery, maxResponseBytes: number): number {
  if (!q.edns) return CLASSIC_UDP_BYTES;
  return q.ednsSize < maxResponseBytes ? q.ednsSize : maxResponseBytes;
}

/**
 * RFC 6891 7, RFC 2181 9: an answer too large for UDP becomes header + question (+ OPT for an EDNS client) with
 * TC set, so the client retries over TCP. The rcode and flags of the full answer are kept.
 */
export function truncate(full: Buffer, q: ParsedQuery, ednsSize: number): Buffer {
  const qEnd = q.qEnd;
  const out = Buffer.alloc(qEnd + (q.edns ? 11 : 0));
  full.copy(out, 0, 0, HEADER_BYTES);
  out[2]! |= F1_TC;
  out[4] = 0;
  out[5] = 1;
  out.fill(0, 6, 12);
  q.msg.copy(out, HEADER_BYTES, HEADER_BYTES, qEnd);
  if (q.edns) {
    out[11] = 1;
    out.writeUInt16BE(TYPE_OPT, qEnd + 1);
    out.writeUInt16BE(ednsSize, qEnd + 3);
    out[qEnd + 7] = q.dnssecOk ? OPT_DO_BYTE : 0;
  }
  return out;
}
