/**
 * The packet cache's answers on the wire: an upstream answer made into an entry (makeEntry), and an entry made into
 * the answer a client gets (renderEntry), cut to the client's UDP size when it does not fit (truncate). The store
 * that keeps entries is cache.ts.
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
 */
import { Buffer } from 'node:buffer';

import type { Decision } from '../types/decision.js';
import { CacheEntry, type CacheSettings } from './cache.js';
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
  copyOctets,
  readU32,
  skipName,
  writeU16,
  writeU32,
  type ParsedQuery,
  type ResponseInfo,
} from './wire.js';

/**
 * Normalizes an upstream answer (scanned into `info`) into an entry of its own: the OPT replaced by ours at the
 * end, TTLs clamped per `settings`, lifetimes computed. `aliases` and `decision` come from the caller's policy
 * check.
 */
export function makeEntry(
  settings: CacheSettings,
  msg: Uint8Array,
  len: number,
  info: ResponseInfo,
  ednsSize: number,
  nowMs: number,
  aliases: readonly string[] | null,
  generation: number,
  decision: Decision,
): CacheEntry {
  const s = settings;
  // Our OPT: root owner, type 41, our UDP size, extended rcode 0, version 0, DO as the upstream had it, and the
  // upstream's EDE options.
  let edeBytes = 0;
  if (info.optStart >= 0) edeBytes = eachEde(msg, info.optStart, info.optEnd, null, 0);
  const optLength = 11 + edeBytes;
  const cut = info.optStart >= 0 ? info.optEnd - info.optStart : 0;
  const total = len - cut + optLength;
  // The answer, then its TTL list (a count and an offset per TTL field, 16 bits each).
  const out = Buffer.allocUnsafe(total + 2 + 2 * info.ttlCount);
  let ttlShiftFrom = len;
  if (info.optStart >= 0) {
    copyOctets(msg, info.optEnd, len, out, copyOctets(msg, 0, info.optStart, out, 0));
    ttlShiftFrom = info.optStart;
  } else {
    copyOctets(msg, 0, len, out, 0);
    const ar = ((out[10]! << 8) | out[11]!) + 1;
    out[10] = ar >> 8;
    out[11] = ar & 0xff;
  }
  const opt = len - cut;
  out[opt] = 0;
  writeU16(out, opt + 1, TYPE_OPT);
  writeU16(out, opt + 3, ednsSize);
  out[opt + 5] = 0;
  out[opt + 6] = 0;
  out[opt + 7] = info.dnssecOk ? OPT_DO_BYTE : 0;
  out[opt + 8] = 0;
  writeU16(out, opt + 9, edeBytes);
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
  writeU16(out, total, info.ttlCount);
  let lifetime = info.ttlCount === 0 ? 0 : 0x7fffffff;
  for (let i = 0; i < info.ttlCount; i++) {
    let at = info.ttlOffsets[i]!;
    if (at > ttlShiftFrom) at -= cut;
    writeU16(out, total + 2 + 2 * i, at);
    let ttl = readU32(out, at);
    if (ttl > 0x7fffffff) ttl = 0; // RFC 2181 8
    if (ttl > cap) ttl = cap;
    if (ttl < floor) ttl = floor;
    writeU32(out, at, ttl);
    if (ttl < lifetime) lifetime = ttl;
  }
  if (lifetime <= 0) cacheable = false;
  const stored = Math.floor(nowMs);
  const fresh = stored + lifetime * 1000;
  const stale = s.serveStale ? fresh + s.staleMaxAgeSeconds * 1000 : fresh;
  return CacheEntry.own(out, info.qEnd, total, opt, stored, fresh, stale, cacheable, aliases, generation, decision);
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
  const head = e.head;
  const edns = q.edns;
  const len = edns ? e.length : e.optOffset;
  const extra = edns && staleTtl > 0 ? STALE_EDE.length : 0;
  const out = buffers.take(len + extra);
  // The header, the client's question, then the octets after the question (an answer offset p >= qEnd is at
  // src[p + shift]). A short answer is copied byte by byte: a subarray for set() would be a new view (heap bytes)
  // per query, and Buffer.copy's argument checks cost more than copying ~60 octets.
  const qEnd = e.qEnd;
  const shift = e.rest - qEnd;
  if (len - qEnd <= 512) for (let i = qEnd; i < len; i++) out[i] = src[i + shift]!;
  else src.copy(out, qEnd, e.rest, e.rest + len - qEnd);
  out[0] = q.id >> 8;
  out[1] = q.id & 0xff;
  out[2] = (src[head + 2]! & (F1_QR | F1_AA)) | (q.rd ? F1_RD : 0);
  // RFC 6840 5.7: AD only for a client that asked with AD or DO.
  const f2 = src[head + 3]!;
  out[3] = (f2 & (F2_RA | 0x0f)) | (q.ad || q.dnssecOk ? f2 & F2_AD : 0) | (q.cd ? F2_CD : 0);
  for (let i = 4; i < 10; i++) out[i] = src[head + i]!;
  if (!edns) {
    const ar = ((src[head + 10]! << 8) | src[head + 11]!) - 1;
    out[10] = ar >> 8;
    out[11] = ar & 0xff;
  } else {
    out[10] = src[head + 10]!;
    out[11] = src[head + 11]!;
    const opt = e.optOffset;
    out[opt + 7] = q.dnssecOk ? OPT_DO_BYTE : 0;
    if (extra > 0) {
      STALE_EDE.copy(out, len);
      writeU16(out, opt + 9, ((src[opt + 9 + shift]! << 8) | src[opt + 10 + shift]!) + extra);
    }
  }
  // The client's own question bytes: same length, equal but for case (RFC 4343: echo what was asked).
  const qmsg = q.msg;
  for (let i = HEADER_BYTES; i < qEnd; i++) out[i] = qmsg[i]!;
  const list = e.ttls;
  const n = (src[list]! << 8) | src[list + 1]!;
  if (staleTtl > 0) {
    for (let i = 0, p = list + 2; i < n; i++, p += 2) writeU32(out, (src[p]! << 8) | src[p + 1]!, staleTtl);
  } else {
    const age = Math.floor((nowMs - e.storedAtMs) / 1000);
    if (age > 0) {
      for (let i = 0, p = list + 2; i < n; i++, p += 2) {
        const at = (src[p]! << 8) | src[p + 1]!;
        const ttl = readU32(src, at + shift) - age;
        writeU32(out, at, ttl > 0 ? ttl : 0);
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
 * Fits an answer too large for `limit` octets. RFC 2181 9: TC is set only when the answer or authority section
 * does not fit; the additional section is optional data, so it goes first (RRsets and their RRSIGs together: the
 * whole section but the OPT), and an answer that then fits goes out without TC. Otherwise, RFC 6891 7: header +
 * question (+ OPT for an EDNS client) with TC set, so the client retries over TCP; the rcode and flags of the full
 * answer are kept.
 */
export function truncate(full: Buffer, q: ParsedQuery, limit: number, ednsSize: number): Buffer {
  const cut = withoutAdditional(full, q.qEnd);
  if (cut !== null && cut.length <= limit) return cut;
  const qEnd = q.qEnd;
  const out = Buffer.alloc(qEnd + (q.edns ? 11 : 0));
  full.copy(out, 0, 0, HEADER_BYTES);
  out[2]! |= F1_TC;
  out[4] = 0;
  out[5] = qEnd > HEADER_BYTES ? 1 : 0;
  out.fill(0, 6, 12);
  q.msg.copy(out, HEADER_BYTES, HEADER_BYTES, qEnd);
  if (q.edns) {
    out[11] = 1;
    writeU16(out, qEnd + 1, TYPE_OPT);
    writeU16(out, qEnd + 3, ednsSize);
    out[qEnd + 7] = q.dnssecOk ? OPT_DO_BYTE : 0;
  }
  return out;
}

/**
 * `msg` with its additional section left out but for the OPT record, or null when it has no additional record
 * to leave out (or cannot be walked). The answer and authority records are copied as they are: a compression
 * pointer only ever points backwards, so none of theirs points into what is left out.
 */
function withoutAdditional(msg: Buffer, qEnd: number): Buffer | null {
  const an = (msg[6]! << 8) | msg[7]!;
  const ns = (msg[8]! << 8) | msg[9]!;
  const ar = (msg[10]! << 8) | msg[11]!;
  const len = msg.length;
  let p = qEnd;
  for (let i = 0; i < an + ns; i++) {
    p = skipName(msg, p, len);
    if (p < 0 || p + 10 > len) return null;
    p += 10 + ((msg[p + 8]! << 8) | msg[p + 9]!);
  }
  const sectionEnd = p;
  let optStart = -1;
  let optEnd = -1;
  for (let i = 0; i < ar; i++) {
    const owner = p;
    p = skipName(msg, p, len);
    if (p < 0 || p + 10 > len) return null;
    const end = p + 10 + ((msg[p + 8]! << 8) | msg[p + 9]!);
    if (((msg[p]! << 8) | msg[p + 1]!) === TYPE_OPT) {
      optStart = owner;
      optEnd = end;
    }
    p = end;
  }
  if (ar === (optStart >= 0 ? 1 : 0) || p > len) return null;
  const optLength = optStart >= 0 ? optEnd - optStart : 0;
  const out = Buffer.allocUnsafe(sectionEnd + optLength);
  msg.copy(out, 0, 0, sectionEnd);
  if (optStart >= 0) msg.copy(out, sectionEnd, optStart, optEnd);
  out[10] = 0;
  out[11] = optStart >= 0 ? 1 : 0;
  return out;
}
