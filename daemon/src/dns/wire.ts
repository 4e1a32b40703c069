/**
 * DNS wire format by hand: the query's header and question, its OPT record, and the structural walk of an upstream
 * answer. No full decode, no allocation on the query path but the strings the caches are keyed by.
 *
 * Hand-written because measurement said so (dns2 3.1.1 against direct byte access, Node 20, this project's 2-core VM):
 * dns2's bit-at-a-time codec decodes a 56-octet query in ~5.5 µs and decodes plus re-encodes a 189-octet answer in
 * ~79 µs, against ~0.36 µs and ~1.4 µs for direct byte access; and re-encoding loses EDNS options. dns2 is used
 * only to author the synthesized answers once at start (synth.ts) and to decode in tests.
 *
 * Strictness (RFC 1035 4.1, RFC 6891): a name is labels of 1..63 octets ending in the root label, at most 255
 * octets on the wire; label types 01 and 10 (RFC 6891 5, extended labels) are refused; a compression pointer must
 * point strictly before the start of the name segment that holds it, which rules out loops by construction; every
 * record must fit in the message. A query's question may not use compression at all (nothing precedes it).
 */
import { Buffer } from 'node:buffer';

import type { Client } from './client.js';

export const HEADER_BYTES = 12;
/** Largest DNS message (the TCP length prefix is 16 bits). */
export const MAX_MESSAGE_BYTES = 65535;
/** RFC 1035 4.2.1: a UDP answer without EDNS is at most 512 octets. */
export const CLASSIC_UDP_BYTES = 512;
/** DNS Flag Day 2020: the EDNS buffer advertised upstream. */
export const UPSTREAM_EDNS_BYTES = 1232;
export const MAX_NAME_BYTES = 255;

export const TYPE_A = 1;
export const TYPE_NS = 2;
export const TYPE_CNAME = 5;
export const TYPE_SOA = 6;
export const TYPE_AAAA = 28;
export const TYPE_DNAME = 39;
export const TYPE_OPT = 41;
export const TYPE_SVCB = 64;
export const TYPE_HTTPS = 65;
export const TYPE_TKEY = 249;
export const TYPE_TSIG = 250;
export const TYPE_IXFR = 251;
export const TYPE_AXFR = 252;
export const TYPE_MAILB = 253;
export const TYPE_MAILA = 254;
export const TYPE_ANY = 255;
export const CLASS_IN = 1;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;
/** RFC 6891 6.1.3: an extended RCODE, carried as 1 in the OPT's high byte. */
export const RCODE_BADVERS = 16;

/** EDNS option codes (IANA). */
export const OPTION_ECS = 8;
export const OPTION_COOKIE = 10;
export const OPTION_EDE = 15;

// Header flag bits, first flags octet (offset 2) and second (offset 3).
export const F1_QR = 0x80;
export const F1_AA = 0x04;
export const F1_TC = 0x02;
export const F1_RD = 0x01;
export const F2_RA = 0x80;
export const F2_AD = 0x20;
export const F2_CD = 0x10;
/** RFC 3225: the DO bit, in the OPT TTL's third octet. */
export const OPT_DO_BYTE = 0x80;

/** What the listener does with a query after parseQuery. */
export const Q_OK = 0;
/** Not worth an answer: shorter than a header, or a response (QR=1). */
export const Q_DROP = 1;
/** FORMERR without the question (it could not be read, or there was none or several). */
export const Q_FORMERR_HEADER = 2;
/** FORMERR echoing the question. */
export const Q_FORMERR = 3;
/** NOTIMP: an opcode other than QUERY (the question echoed when there is one that can be read). */
export const Q_NOTIMP = 4;
/** BADVERS: an EDNS version above 0 (RFC 6891 6.1.3). */
export const Q_BADVERS = 5;
/** REFUSED: a class other than IN, or a zone transfer. */
export const Q_REFUSED = 6;
/** NOTIMP echoing the question: an obsolete or meta query type the daemon does not serve. */
export const Q_NOTIMP_TYPE = 7;

/**
 * One client query after parseQuery, and (once cloned) the state kept for it while it waits on an upstream.
 * Plain fields so every instance has the same shape.
 */
export class ParsedQuery {
  /** Who asked (set by the query path). */
  client: Client | null = null;
  /** The client's message (not copied: a datagram or TCP frame buffer the listener does not reuse). */
  msg: Buffer = EMPTY;
  id = 0;
  opcode = 0;
  rd = false;
  ad = false;
  cd = false;
  /** Offset after the question name. */
  nameEnd = 0;
  /** Offset after QTYPE and QCLASS. */
  qEnd = 0;
  qtype = 0;
  qclass = 0;
  /** The client sent an OPT record. */
  edns = false;
  /** The client's UDP payload size (RFC 6891 6.2.3: values below 512 count as 512). */
  ednsSize = 0;
  ednsVersion = 0;
  /** The client's DO bit (RFC 3225). */
  dnssecOk = false;
  /** When the query path took the query (its clock, ms): set on a copy that waits for an upstream, not by parseQuery. */
  receivedMs = 0;

  copyFrom(q: ParsedQuery): this {
    this.client = q.client;
    this.msg = q.msg;
    this.id = q.id;
    this.opcode = q.opcode;
    this.rd = q.rd;
    this.ad = q.ad;
    this.cd = q.cd;
    this.nameEnd = q.nameEnd;
    this.qEnd = q.qEnd;
    this.qtype = q.qtype;
    this.qclass = q.qclass;
    this.edns = q.edns;
    this.ednsSize = q.ednsSize;
    this.ednsVersion = q.ednsVersion;
    this.dnssecOk = q.dnssecOk;
    return this;
  }
}

const EMPTY = Buffer.alloc(0);

/*
 * Big-endian fields read and written octet by octet. On the query path Buffer's readUInt32BE and writeUInt16BE were
 * each a property load through V8's generic inline cache and a call (the buffers they were called on are of more
 * than one kind), tens of ns a saturated query in renderEntry alone (bench/README.md, "Buffer's methods off the
 * query path"); these are inlined where they are used.
 */

/** The unsigned 32-bit field at b[at..at+4). */
export function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** Writes `v` (0..2^32-1) at b[at..at+4). */
export function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** Writes `v` (0..65535) at b[at..at+2). */
export function writeU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}

/**
 * Copies src[from..to) to dst at `at`; returns the offset after it. Short runs octet by octet: set(subarray) and
 * Buffer.copy (when it copies part of its source) both make a view object, ~100 heap bytes each, and `subarray` and
 * `set` were loaded through the generic inline cache where src is a received datagram (made in C++, a Buffer of
 * another map than one made in JavaScript).
 */
export function copyOctets(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number): number {
  if (to - from <= 256) for (let i = from; i < to; i++) dst[at++] = src[i]!;
  else {
    dst.set(src.subarray(from, to), at);
    at += to - from;
  }
  return at;
}

/**
 * The offset after the uncompressed name at `off`, or -1 when it is malformed: a pointer, an extended label type,
 * more than 255 octets, or past `end`.
 */
function skipPlainName(msg: Uint8Array, off: number, end: number): number {
  let p = off;
  for (;;) {
    if (p >= end) return -1;
    const len = msg[p]!;
    if (len === 0) {
      p++;
      return p - off > MAX_NAME_BYTES ? -1 : p;
    }
    if (len > 63) return -1; // 0xc0 pointer, 0x40/0x80 label types
    p += len + 1;
    if (p - off >= MAX_NAME_BYTES) return -1;
  }
}

/**
 * The offset just after the (possibly compressed) name at `off` in `msg[0..end)`, or -1 when the name is malformed.
 * The whole name is validated, pointers followed: each pointer must point before the start of the segment it ends
 * (strictly decreasing targets, so no loop), labels are 1..63 octets, the expanded name is at most 255 octets.
 */
export function skipName(msg: Uint8Array, off: number, end: number): number {
  let p = off;
  let segment = off;
  let after = -1;
  let total = 0;
  for (;;) {
    if (p >= end) return -1;
    const len = msg[p]!;
    if (len === 0) {
      if (total + 1 > MAX_NAME_BYTES) return -1;
      return after < 0 ? p + 1 : after;
    }
    if (len < 64) {
      total += len + 1;
      if (total >= MAX_NAME_BYTES) return -1;
      p += len + 1;
      continue;
    }
    if (len < 0xc0) return -1; // RFC 6891 5: extended label types are not in use
    if (p + 1 >= end) return -1;
    const target = ((len & 0x3f) << 8) | msg[p + 1]!;
    if (target >= segment) return -1;
    if (after < 0) after = p + 2;
    segment = target;
    p = target;
  }
}

/**
 * Parses a client query: the header, the one question, and every further record only far enough to find a
 * well-formed OPT. Fills `q` and returns Q_OK or what to do instead. Never throws.
 *
 * RFC 6891 7: every answer to a query that carried an OPT carries one too, so the OPT is looked for whatever else
 * is wrong with the query (another opcode, no question or several, a bad query type): `q.edns` is set only for a
 * sound OPT (one, in the additional section, owned by the root, its options filling its RDATA exactly); a query
 * whose OPT is the broken part gets its FORMERR without one. `q.qEnd` stays at the header when the question is not
 * echoed (then the answer has QDCOUNT 0).
 */
export function parseQuery(msg: Buffer, q: ParsedQuery): number {
  const len = msg.length;
  if (len < HEADER_BYTES) return Q_DROP;
  const f1 = msg[2]!;
  if ((f1 & F1_QR) !== 0) return Q_DROP; // a response sent to us: never answer it (no reflection loops)
  const f2 = msg[3]!;
  q.msg = msg;
  q.id = (msg[0]! << 8) | msg[1]!;
  q.opcode = (f1 >> 3) & 0x0f;
  q.rd = (f1 & F1_RD) !== 0;
  q.ad = (f2 & F2_AD) !== 0;
  q.cd = (f2 & F2_CD) !== 0;
  q.edns = false;
  q.ednsSize = CLASSIC_UDP_BYTES;
  q.ednsVersion = 0;
  q.dnssecOk = false;
  q.nameEnd = HEADER_BYTES;
  q.qEnd = HEADER_BYTES;
  q.qtype = 0;
  q.qclass = 0;
  const qdcount = (msg[4]! << 8) | msg[5]!;
  let p = HEADER_BYTES;
  if (qdcount === 1) {
    const nameEnd = skipPlainName(msg, HEADER_BYTES, len);
    if (nameEnd < 0 || nameEnd + 4 > len) return q.opcode !== 0 ? Q_NOTIMP : Q_FORMERR_HEADER;
    q.nameEnd = nameEnd;
    p = nameEnd + 4;
  } else {
    // No question to echo; the questions are skipped only to find the OPT behind them.
    for (let i = 0; i < qdcount && p >= 0; i++) {
      p = skipName(msg, p, len);
      if (p >= 0) p = p + 4 <= len ? p + 4 : -1;
    }
    if (p >= 0) findOpt(msg, p, q);
    return q.opcode !== 0 ? Q_NOTIMP : Q_FORMERR_HEADER;
  }
  const recordsOk = findOpt(msg, p, q);
  // RFC 1035 4.1.1: only QUERY. The question is echoed (with the opcode) where it could be read.
  if (q.opcode !== 0) {
    q.qEnd = p;
    return Q_NOTIMP;
  }
  q.qEnd = p;
  q.qtype = (msg[q.nameEnd]! << 8) | msg[q.nameEnd + 1]!;
  q.qclass = (msg[q.nameEnd + 2]! << 8) | msg[q.nameEnd + 3]!;
  if (!recordsOk) return Q_FORMERR;
  if (q.ednsVersion > 0) return Q_BADVERS;
  const qt = q.qtype;
  if (qt === 0 || qt === TYPE_OPT || qt === TYPE_TSIG) return Q_FORMERR;
  if (q.qclass !== CLASS_IN) return Q_REFUSED;
  if (qt === TYPE_AXFR || qt === TYPE_IXFR) return Q_REFUSED;
  if (qt === TYPE_TKEY || qt === TYPE_MAILA || qt === TYPE_MAILB) return Q_NOTIMP_TYPE;
  return Q_OK;
}

/**
 * Walks the answer, authority and additional records of a query from `p` and reads its OPT into `q`. False when a
 * record is malformed or the OPT breaks RFC 6891 6.1.1 (then `q.edns` is false: the OPT is not sound).
 */
function findOpt(msg: Buffer, from: number, q: ParsedQuery): boolean {
  const len = msg.length;
  const an = (msg[6]! << 8) | msg[7]!;
  const ns = (msg[8]! << 8) | msg[9]!;
  const ar = (msg[10]! << 8) | msg[11]!;
  let p = from;
  let opts = 0;
  for (let i = 0, n = an + ns + ar; i < n; i++) {
    const owner = p;
    p = skipName(msg, p, len);
    if (p < 0 || p + 10 > len) return false;
    const type = (msg[p]! << 8) | msg[p + 1]!;
    const rdlen = (msg[p + 8]! << 8) | msg[p + 9]!;
    const rdata = p + 10;
    if (rdata + rdlen > len) return false;
    if (type === TYPE_OPT) {
      // RFC 6891 6.1.1: one OPT, in the additional section, owned by the root.
      if (i < an + ns || opts > 0 || msg[owner] !== 0 || !optionsWellFormed(msg, rdata, rdata + rdlen)) {
        q.edns = false;
        q.ednsVersion = 0;
        q.dnssecOk = false;
        q.ednsSize = CLASSIC_UDP_BYTES;
        return false;
      }
      opts++;
      const size = (msg[p + 2]! << 8) | msg[p + 3]!;
      q.edns = true;
      q.ednsSize = size < CLASSIC_UDP_BYTES ? CLASSIC_UDP_BYTES : size;
      q.ednsVersion = msg[p + 5]!;
      q.dnssecOk = (msg[p + 6]! & OPT_DO_BYTE) !== 0;
    }
    p = rdata + rdlen;
  }
  // Bytes after the last record are ignored, as most servers do.
  return true;
}

/** RFC 6891 6.1.2: OPT RDATA is a sequence of {code, length, data} that exactly fills it. */
function optionsWellFormed(msg: Uint8Array, from: number, to: number): boolean {
  let p = from;
  while (p < to) {
    if (p + 4 > to) return false;
    const olen = (msg[p + 2]! << 8) | msg[p + 3]!;
    p += 4 + olen;
  }
  return p === to;
}

/**
 * Writes the query's name, folded to lower case (RFC 4343: A-Z only), into `out` from 0, followed by `extra`
 * bytes of the question copied as they are (0 for the name only, 4 for QTYPE and QCLASS). Returns the length.
 */
export function foldQuestion(q: ParsedQuery, out: Uint8Array, extra: number): number {
  const msg = q.msg;
  let n = 0;
  for (let p = HEADER_BYTES; p < q.nameEnd; p++) {
    const c = msg[p]!;
    out[n++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
  }
  for (let p = q.nameEnd; p < q.nameEnd + extra; p++) out[n++] = msg[p]!;
  return n;
}

/**
 * The dotted, lower-cased form of the possibly compressed name at `off` (validated by skipName before), for CNAME
 * and DNAME targets. Bytes outside printable ASCII and '.' inside a label become 0xff, as in dottedFromWire.
 */
export function readDottedName(msg: Uint8Array, off: number): string {
  const parts: string[] = [];
  let p = off;
  for (let guard = 0; guard < 256; guard++) {
    const len = msg[p]!;
    if (len === 0) break;
    if (len >= 0xc0) {
      p = ((len & 0x3f) << 8) | msg[p + 1]!;
      continue;
    }
    let label = '';
    for (let i = 1; i <= len; i++) {
      const c = msg[p + i]!;
      label += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c === 0x2e || c > 0x7e ? 0xff : c);
    }
    parts.push(label);
    p += len + 1;
  }
  return parts.join('.');
}

/** Case-insensitive (A-Z only) comparison of `a[aFrom..aTo)` with `b[bFrom..)` of the same length. */
export function equalFolded(a: Uint8Array, aFrom: number, aTo: number, b: Uint8Array, bFrom: number): boolean {
  for (let i = aFrom, j = bFrom; i < aTo; i++, j++) {
    let x = a[i]!;
    let y = b[j]!;
    if (x === y) continue;
    if (x >= 0x41 && x <= 0x5a) x |= 0x20;
    if (y >= 0x41 && y <= 0x5a) y |= 0x20;
    if (x !== y) return false;
  }
  return true;
}

/** Most TTL fields one answer may carry (a 65535-octet message holds at most ~5,900 records). */
const MAX_RECORDS = 6000;

/** What scanResponse learnt about an upstream answer. One instance is reused; read it before the next scan. */
export class ResponseInfo {
  rcode = 0;
  flags1 = 0;
  flags2 = 0;
  ancount = 0;
  nscount = 0;
  arcount = 0;
  /** Offset after the question. */
  qEnd = 0;
  /** Offsets of every TTL field but the OPT's, in message order. */
  readonly ttlOffsets = new Int32Array(MAX_RECORDS);
  ttlCount = 0;
  /** Smallest TTL among those records, or -1 when there is none. */
  minTtl = -1;
  /** Answer-section records of the asked type (not CNAME/DNAME; of any type for ANY). */
  answersOfType = 0;
  /** RFC 2308 5: min(SOA TTL, SOA MINIMUM) of the first SOA in the authority section, or -1. */
  negativeTtl = -1;
  /** The OPT record's extent, or -1. */
  optStart = -1;
  optEnd = -1;
  /** The upstream's DO bit (in its OPT). */
  dnssecOk = false;
  /** Offsets of the RDATA of CNAME and DNAME records in the answer section. */
  readonly aliasOffsets = new Int32Array(64);
  aliasCount = 0;
  /** More CNAME/DNAME records than aliasOffsets holds: treat the chain as suspicious. */
  aliasOverflow = false;
}

/**
 * Walks an upstream answer strictly. Returns false when it is malformed: not a response, a wrong opcode, not
 * exactly one question, a bad name anywhere (also inside the RDATA of types whose RDATA holds names the daemon
 * reads: CNAME, DNAME, SOA), a record past the end, more than one OPT or an OPT outside the additional section,
 * or a nonzero extended RCODE (the daemon sent EDNS version 0 and no cookie, so none is expected).
 * The caller checks the ID and the question against what it sent.
 */
export function scanResponse(msg: Uint8Array, len: number, r: ResponseInfo): boolean {
  if (len < HEADER_BYTES) return false;
  const f1 = msg[2]!;
  const f2 = msg[3]!;
  if ((f1 & F1_QR) === 0 || ((f1 >> 3) & 0x0f) !== 0) return false;
  if (((msg[4]! << 8) | msg[5]!) !== 1) return false;
  r.flags1 = f1;
  r.flags2 = f2;
  r.rcode = f2 & 0x0f;
  const an = (r.ancount = (msg[6]! << 8) | msg[7]!);
  const ns = (r.nscount = (msg[8]! << 8) | msg[9]!);
  const ar = (r.arcount = (msg[10]! << 8) | msg[11]!);
  const nameEnd = skipPlainName(msg, HEADER_BYTES, len);
  if (nameEnd < 0 || nameEnd + 4 > len) return false;
  const qtype = (msg[nameEnd]! << 8) | msg[nameEnd + 1]!;
  r.qEnd = nameEnd + 4;
  r.ttlCount = 0;
  r.minTtl = -1;
  r.answersOfType = 0;
  r.negativeTtl = -1;
  r.optStart = -1;
  r.optEnd = -1;
  r.dnssecOk = false;
  r.aliasCount = 0;
  r.aliasOverflow = false;
  if (an + ns + ar > MAX_RECORDS) return false;
  let p = r.qEnd;
  for (let i = 0, n = an + ns + ar; i < n; i++) {
    const owner = p;
    p = skipName(msg, p, len);
    if (p < 0 || p + 10 > len) return false;
    const type = (msg[p]! << 8) | msg[p + 1]!;
    const ttlAt = p + 4;
    const rdlen = (msg[p + 8]! << 8) | msg[p + 9]!;
    const rdata = p + 10;
    const rdEnd = rdata + rdlen;
    if (rdEnd > len) return false;
    if (type === TYPE_OPT) {
      if (i < an + ns || r.optStart >= 0 || msg[owner] !== 0) return false;
      if (!optionsWellFormed(msg, rdata, rdEnd)) return false;
      if (msg[p + 4] !== 0) return false; // extended RCODE
      r.optStart = owner;
      r.optEnd = rdEnd;
      r.dnssecOk = (msg[p + 6]! & OPT_DO_BYTE) !== 0;
      p = rdEnd;
      continue;
    }
    // RFC 2181 8: a TTL with the top bit set is treated as zero.
    let ttl = readU32(msg, ttlAt);
    if (ttl > 0x7fffffff) ttl = 0;
    r.ttlOffsets[r.ttlCount++] = ttlAt;
    if (r.minTtl < 0 || ttl < r.minTtl) r.minTtl = ttl;
    if (type === TYPE_CNAME || type === TYPE_DNAME) {
      if (skipName(msg, rdata, rdEnd) !== rdEnd) return false;
      if (i < an) {
        if (r.aliasCount < r.aliasOffsets.length) r.aliasOffsets[r.aliasCount++] = rdata;
        else r.aliasOverflow = true;
      }
    } else if (type === TYPE_SOA) {
      const mname = skipName(msg, rdata, rdEnd);
      const rname = mname < 0 ? -1 : skipName(msg, mname, rdEnd);
      if (rname < 0 || rname + 20 !== rdEnd) return false;
      if (i >= an && i < an + ns && r.negativeTtl < 0) {
        const minimum = readU32(msg, rname + 16);
        r.negativeTtl = Math.min(ttl, minimum > 0x7fffffff ? 0 : minimum);
      }
    }
    // ANY is answered by records of every type (RFC 1035 3.2.3, RFC 8482 4.1).
    if (i < an && (type === qtype || (qtype === TYPE_ANY && type !== TYPE_CNAME && type !== TYPE_DNAME)))
      r.answersOfType++;
    p = rdEnd;
  }
  // Trailing bytes after the last record are ignored (they are not part of any record).
  return true;
}
