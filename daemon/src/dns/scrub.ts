/**
 * Scrubbing an upstream answer before it is cached or sent: what a careful forwarder keeps of what its upstream
 * says. Run once per upstream answer (never on a cache hit), after wire.ts scanResponse has checked its structure.
 *
 * The rule (daemon/README.md "Answers from upstream"):
 * - Answer section: a record stays only if its owner is on the question's alias chain: the question's name and the
 *   targets of CNAME records owned by a name on the chain (RFC 1034 3.6.2; a DNAME comes with the CNAME it
 *   synthesizes, RFC 6672 3.1), or if it is a DNAME (or its RRSIG) owned by an ancestor of a chain name. Unbound's
 *   scrubber (iter_scrub.c, scrub_normalize and scrub_sanitize) keeps the same.
 * - Authority and additional sections: a record stays only if its owner is in the question's bailiwick: at or
 *   below a name on the chain, or at or below a zone the answer itself shows to hold a chain name: the owner of a
 *   SOA or NS record in the authority section, or the signer of an RRSIG, that is an ancestor of a chain name. A
 *   resolver scrubs against the zone of the server it asked; a forwarder asks one server for every zone, so the
 *   daemon takes the zones from the answer, where a recursive resolver put them (Unbound, forwarding to ".", and
 *   BIND's forwarders check against the root and keep everything; dnsmasq caches the answer section only).
 * - Decisions are by owner name, never by type: an RRSIG stays exactly when the RRset it covers (same owner)
 *   does (RFC 4035 3.1.1), so DNSSEC validation downstream is intact. The OPT record always stays.
 *
 * A scrubbed answer is rebuilt record by record; names are written again so that no compression pointer points
 * into a record that was left out (a pointer to a label kept is re-pointed, to one left out is written in full).
 */
import { Buffer } from 'node:buffer';

import {
  HEADER_BYTES,
  MAX_MESSAGE_BYTES,
  TYPE_CNAME,
  TYPE_DNAME,
  TYPE_NS,
  TYPE_OPT,
  TYPE_SOA,
  skipName,
  type ResponseInfo,
} from './wire.js';

const TYPE_RRSIG = 46;

/**
 * Record types whose RDATA holds names that a server may have compressed (RFC 1035 3.3, RFC 3597 4) or that other
 * names may point into: the octets before the first name, and how many names follow (then the rest is copied).
 * RFC 4034 forbids compression in RRSIG and NSEC; they are listed so that a label of theirs can be pointed to.
 */
const NAMES_IN_RDATA: ReadonlyMap<number, readonly [number, number]> = new Map([
  [2, [0, 1]], // NS
  [5, [0, 1]], // CNAME
  [6, [0, 2]], // SOA
  [7, [0, 1]], // MB
  [8, [0, 1]], // MG
  [9, [0, 1]], // MR
  [12, [0, 1]], // PTR
  [14, [0, 2]], // MINFO
  [15, [2, 1]], // MX
  [17, [0, 2]], // RP
  [18, [2, 1]], // AFSDB
  [21, [2, 1]], // RT
  [26, [2, 2]], // PX
  [33, [6, 1]], // SRV
  [36, [2, 1]], // KX
  [39, [0, 1]], // DNAME
  [46, [18, 1]], // RRSIG: the signer
  [47, [0, 1]], // NSEC: the next owner
]);

/** The offset of the labels of the name at `off`, past any pointer there. */
function deref(msg: Uint8Array, off: number): number {
  let p = off;
  while (msg[p]! >= 0xc0) p = ((msg[p]! & 0x3f) << 8) | msg[p + 1]!;
  return p;
}

/** Labels in the (validated) name at `off`, the root not counted. */
function labelCount(msg: Uint8Array, off: number): number {
  let n = 0;
  for (let p = deref(msg, off); msg[p] !== 0; p = deref(msg, p + msg[p]! + 1)) n++;
  return n;
}

/** The offset of the name at `off` less its first `skip` labels. */
function suffixAt(msg: Uint8Array, off: number, skip: number): number {
  let p = deref(msg, off);
  for (let i = 0; i < skip; i++) p = deref(msg, p + msg[p]! + 1);
  return p;
}

/** Whether the (validated) names at `a` and `b` are equal, A-Z folded (RFC 4343). */
function sameName(msg: Uint8Array, a: number, b: number): boolean {
  let p = deref(msg, a);
  let q = deref(msg, b);
  for (;;) {
    if (p === q) return true;
    const len = msg[p]!;
    if (len !== msg[q]) return false;
    if (len === 0) return true;
    for (let i = 1; i <= len; i++) {
      let x = msg[p + i]!;
      let y = msg[q + i]!;
      if (x === y) continue;
      if (x >= 0x41 && x <= 0x5a) x |= 0x20;
      if (y >= 0x41 && y <= 0x5a) y |= 0x20;
      if (x !== y) return false;
    }
    p = deref(msg, p + len + 1);
    q = deref(msg, q + len + 1);
  }
}

/** Whether the name at `name` is the name at `zone` or below it; `strict`: below it only. */
function below(msg: Uint8Array, name: number, zone: number, strict: boolean): boolean {
  const n = labelCount(msg, name);
  const z = labelCount(msg, zone);
  return (strict ? n > z : n >= z) && sameName(msg, suffixAt(msg, name, n - z), zone);
}

/** Whether record `i` (of the scratch arrays) is a DNAME or the RRSIG of one. */
function coversDname(msg: Uint8Array, i: number): boolean {
  const t = recType[i]!;
  if (t === TYPE_DNAME) return true;
  const rdata = recAt[i]! + 10;
  return t === TYPE_RRSIG && recEnd[i]! >= rdata + 2 && ((msg[rdata]! << 8) | msg[rdata + 1]!) === TYPE_DNAME;
}

/** Most records an answer has (wire.ts refuses more), and most names on a chain (the question + 64 aliases). */
const MAX_RECORDS = 6000;
const MAX_CHAIN = 65;

// Scratch, reused by every call (the scrub is synchronous): the records' offsets and types, the chain's names.
const recStart = new Int32Array(MAX_RECORDS);
const recAt = new Int32Array(MAX_RECORDS);
const recEnd = new Int32Array(MAX_RECORDS);
const recType = new Uint16Array(MAX_RECORDS);
const keep = new Uint8Array(MAX_RECORDS);
const chain = new Int32Array(MAX_CHAIN);
const zones = new Int32Array(MAX_RECORDS + MAX_CHAIN);

/**
 * `msg` (scanned into `info`) with what does not belong in it left out; `msg` itself when everything belongs, or
 * null when it cannot be rebuilt (a name in a record kept that does not parse: the answer is not used). Nothing
 * is allocated when everything belongs (names are compared on the wire).
 */
export function scrubAnswer(msg: Buffer, info: ResponseInfo): Buffer | null {
  const len = msg.length;
  const an = info.ancount;
  const ns = info.nscount;
  const n = an + ns + info.arcount;
  if (n === 0) return msg;
  if (n > MAX_RECORDS) return null;
  let p = info.qEnd;
  for (let i = 0; i < n; i++) {
    recStart[i] = p;
    const at = skipName(msg, p, len);
    if (at < 0) return null; // scanResponse walked it; never here
    recAt[i] = at;
    recType[i] = (msg[at]! << 8) | msg[at + 1]!;
    p = at + 10 + ((msg[at + 8]! << 8) | msg[at + 9]!);
    recEnd[i] = p;
  }

  // The chain: the question's name, then the targets of CNAMEs owned by a chain name (RFC 1034 3.6.2), until
  // nothing is added. A DNAME's synthesized CNAME (RFC 6672 3.1, always sent with it) carries the chain past it.
  chain[0] = HEADER_BYTES;
  let chained = 1;
  const onChain = (off: number): boolean => {
    for (let c = 0; c < chained; c++) if (sameName(msg, off, chain[c]!)) return true;
    return false;
  };
  for (let grew = true; grew && chained < MAX_CHAIN;) {
    grew = false;
    for (let i = 0; i < an && chained < MAX_CHAIN; i++) {
      if (recType[i] !== TYPE_CNAME || !onChain(recStart[i]!)) continue;
      const target = recAt[i]! + 10;
      if (!onChain(target)) {
        chain[chained++] = target;
        grew = true;
      }
    }
  }
  /** Whether the name at `off` is a (strict) ancestor of a chain name, or the name itself when `strict` is false. */
  const aboveChain = (off: number, strict: boolean): boolean => {
    for (let c = 0; c < chained; c++) if (below(msg, chain[c]!, off, strict)) return true;
    return false;
  };

  // Zones the answer shows to hold a chain name: SOA/NS owners in authority, RRSIG signers above their owner.
  let nz = 0;
  for (let c = 0; c < chained; c++) zones[nz++] = chain[c]!;
  for (let i = 0; i < n; i++) {
    const t = recType[i]!;
    if (i >= an && i < an + ns && (t === TYPE_SOA || t === TYPE_NS) && aboveChain(recStart[i]!, false))
      zones[nz++] = recStart[i]!;
    if (t === TYPE_RRSIG && recEnd[i]! - recAt[i]! - 10 > 18) {
      const signer = recAt[i]! + 10 + 18;
      if (skipName(msg, signer, recEnd[i]!) > 0 && below(msg, recStart[i]!, signer, false) && aboveChain(signer, false))
        zones[nz++] = signer;
    }
  }

  let dropped = false;
  for (let i = 0; i < n; i++) {
    const t = recType[i]!;
    const owner = recStart[i]!;
    let ok: boolean;
    if (t === TYPE_OPT) ok = true;
    else if (i < an) ok = onChain(owner) || (coversDname(msg, i) && aboveChain(owner, true));
    else {
      ok = false;
      for (let z = 0; z < nz && !ok; z++) ok = below(msg, owner, zones[z]!, false);
    }
    keep[i] = ok ? 1 : 0;
    if (!ok) dropped = true;
  }
  return dropped ? rebuild(msg, info.qEnd, n, an, ns) : msg;
}

/** The header, the question and the records kept, every name written so that its pointers stay valid. */
function rebuild(msg: Buffer, qEnd: number, n: number, an: number, ns: number): Buffer | null {
  const len = msg.length;
  const out = Buffer.allocUnsafe(MAX_MESSAGE_BYTES + 1024);
  msg.copy(out, 0, 0, qEnd);
  /** Where a label of `msg` was written in `out` (so a pointer to it can be re-pointed), or -1. */
  const moved = new Int32Array(len).fill(-1);
  let o = qEnd;
  const overflow = (): boolean => o > MAX_MESSAGE_BYTES;

  const writeName = (from: number, limit: number): number => {
    const after = skipName(msg, from, limit);
    if (after < 0) return -1;
    let p = from;
    for (;;) {
      const l = msg[p]!;
      if (l === 0) {
        out[o++] = 0;
        return after;
      }
      if (l >= 0xc0) {
        const t = ((l & 0x3f) << 8) | msg[p + 1]!;
        const to = t < qEnd ? t : moved[t]!;
        if (to >= 0 && to < 0x4000) {
          out[o++] = 0xc0 | (to >> 8);
          out[o++] = to & 0xff;
          return after;
        }
        p = t; // the label pointed to was left out: its labels are written here
        continue;
      }
      if (moved[p]! < 0) moved[p] = o;
      msg.copy(out, o, p, p + l + 1);
      o += l + 1;
      p += l + 1;
    }
  };

  const counts = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    if (keep[i] === 0) continue;
    const at = recAt[i]!;
    const end = recEnd[i]!;
    if (writeName(recStart[i]!, len) < 0) return null;
    const fixed = o;
    msg.copy(out, o, at, at + 10);
    o += 10;
    const rdata = at + 10;
    const shape = NAMES_IN_RDATA.get(recType[i]!);
    if (shape === undefined) {
      msg.copy(out, o, rdata, end);
      o += end - rdata;
    } else {
      const [lead, names] = shape;
      if (rdata + lead > end) return null;
      msg.copy(out, o, rdata, rdata + lead);
      o += lead;
      let q = rdata + lead;
      for (let k = 0; k < names; k++) {
        q = writeName(q, end);
        if (q < 0 || overflow()) return null;
      }
      msg.copy(out, o, q, end);
      o += end - q;
    }
    if (overflow()) return null;
    out.writeUInt16BE(o - fixed - 10, fixed + 8);
    counts[i < an ? 0 : i < an + ns ? 1 : 2]!++;
  }
  out.writeUInt16BE(counts[0]!, 6);
  out.writeUInt16BE(counts[1]!, 8);
  out.writeUInt16BE(counts[2]!, 10);
  return Buffer.from(out.subarray(0, o));
}
