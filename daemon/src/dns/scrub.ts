/**
 * Scrubbing an upstream answer before it is cached or sent: what a careful forwarder keeps of what its upstream
 * says. Run once per upstream answer (never on a cache hit), after wire.ts scanResponse has checked its structure.
 *
 * The rule (daemon/README.md "Answers from upstream"):
 * - Answer section: a record stays only if its owner is on the question's alias chain: the question's name, the
 *   targets of CNAME records owned by a name on the chain (RFC 1034 3.6.2), and the names a DNAME owned by an
 *   ancestor of a chain name maps them to (RFC 6672 2.2; the DNAME itself stays). Unbound's scrubber
 *   (iter_scrub.c, scrub_normalize and scrub_sanitize) keeps the same.
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

/** A name as a string of its lower-cased labels, each with its length octet, without the root ('' is the root). */
function nameKey(msg: Uint8Array, off: number): string {
  let s = '';
  let p = off;
  for (let guard = 0; guard < 128; guard++) {
    const len = msg[p]!;
    if (len === 0) break;
    if (len >= 0xc0) {
      p = ((len & 0x3f) << 8) | msg[p + 1]!;
      continue;
    }
    s += String.fromCharCode(len);
    for (let i = 1; i <= len; i++) {
      const c = msg[p + i]!;
      s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
    }
    p += len + 1;
  }
  return s;
}

/** Whether `name` is `zone` or below it (keys of nameKey). */
function atOrBelow(name: string, zone: string): boolean {
  if (zone.length === 0) return true;
  if (name.length < zone.length || !name.endsWith(zone)) return false;
  const start = name.length - zone.length;
  let p = 0;
  while (p < start) p += name.charCodeAt(p) + 1;
  return p === start;
}

interface Rec {
  readonly start: number;
  readonly owner: string;
  /** Offset of TYPE (after the owner name). */
  readonly at: number;
  readonly type: number;
  readonly end: number;
  readonly section: 0 | 1 | 2;
}

/**
 * `msg` (scanned into `info`) with what does not belong in it left out; `msg` itself when everything belongs, or
 * null when it cannot be rebuilt (a name in a record kept that does not parse: the answer is not used).
 */
export function scrubAnswer(msg: Buffer, info: ResponseInfo): Buffer | null {
  const len = msg.length;
  const an = info.ancount;
  const ns = info.nscount;
  const n = an + ns + info.arcount;
  if (n === 0) return msg;
  const recs: Rec[] = [];
  let p = info.qEnd;
  for (let i = 0; i < n; i++) {
    const start = p;
    const at = skipName(msg, p, len);
    if (at < 0) return null; // scanResponse walked it; never here
    const rdlen = (msg[at + 8]! << 8) | msg[at + 9]!;
    const type = (msg[at]! << 8) | msg[at + 1]!;
    const section = i < an ? 0 : i < an + ns ? 1 : 2;
    recs.push({ start, owner: type === TYPE_OPT ? '' : nameKey(msg, start), at, type, end: at + 10 + rdlen, section });
    p = at + 10 + rdlen;
  }

  // The chain: the question's name, then CNAME targets and DNAME-mapped names, until nothing is added.
  const chain = new Set<string>([nameKey(msg, HEADER_BYTES)]);
  const dnameOwners = new Set<string>();
  for (let round = 0, grew = true; grew && round < 64; round++) {
    grew = false;
    for (const r of recs) {
      if (r.section !== 0) continue;
      if (r.type === TYPE_CNAME && chain.has(r.owner)) {
        const target = nameKey(msg, r.at + 10);
        if (!chain.has(target)) {
          chain.add(target);
          grew = true;
        }
      } else if (r.type === TYPE_DNAME) {
        for (const c of [...chain]) {
          if (c === r.owner || !atOrBelow(c, r.owner)) continue;
          dnameOwners.add(r.owner);
          const mapped = c.slice(0, c.length - r.owner.length) + nameKey(msg, r.at + 10);
          if (mapped.length <= 254 && !chain.has(mapped)) {
            chain.add(mapped);
            grew = true;
          }
        }
      }
    }
  }
  const aboveChain = (z: string): boolean => {
    for (const c of chain) if (atOrBelow(c, z)) return true;
    return false;
  };

  // Zones the answer shows to hold a chain name (SOA/NS owners in authority, RRSIG signers).
  const zones = new Set<string>(chain);
  for (const r of recs) {
    if (r.section === 1 && (r.type === TYPE_SOA || r.type === TYPE_NS) && aboveChain(r.owner)) zones.add(r.owner);
    if (r.type === TYPE_RRSIG && r.end - r.at - 10 > 18) {
      const signer = nameKey(msg, r.at + 10 + 18);
      if (atOrBelow(r.owner, signer) && aboveChain(signer)) zones.add(signer);
    }
  }
  const inBailiwick = (owner: string): boolean => {
    for (const z of zones) if (atOrBelow(owner, z)) return true;
    return false;
  };

  const keep = recs.map((r) =>
    r.type === TYPE_OPT
      ? true
      : r.section === 0
        ? chain.has(r.owner) || dnameOwners.has(r.owner)
        : inBailiwick(r.owner),
  );
  if (!keep.includes(false)) return msg;
  return rebuild(msg, info.qEnd, recs, keep);
}

/** The header, the question and the records kept, every name written so that its pointers stay valid. */
function rebuild(msg: Buffer, qEnd: number, recs: readonly Rec[], keep: readonly boolean[]): Buffer | null {
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
  for (let i = 0; i < recs.length; i++) {
    if (!keep[i]) continue;
    const r = recs[i]!;
    if (writeName(r.start, len) < 0) return null;
    const fixed = o;
    msg.copy(out, o, r.at, r.at + 10);
    o += 10;
    const rdata = r.at + 10;
    const shape = NAMES_IN_RDATA.get(r.type);
    if (shape === undefined) {
      msg.copy(out, o, rdata, r.end);
      o += r.end - rdata;
    } else {
      const [lead, names] = shape;
      if (rdata + lead > r.end) return null;
      msg.copy(out, o, rdata, rdata + lead);
      o += lead;
      let q = rdata + lead;
      for (let k = 0; k < names; k++) {
        q = writeName(q, r.end);
        if (q < 0 || overflow()) return null;
      }
      msg.copy(out, o, q, r.end);
      o += r.end - q;
    }
    if (overflow()) return null;
    out.writeUInt16BE(o - fixed - 10, fixed + 8);
    counts[r.section]!++;
  }
  out.writeUInt16BE(counts[0]!, 6);
  out.writeUInt16BE(counts[1]!, 8);
  out.writeUInt16BE(counts[2]!, 10);
  return Buffer.from(out.subarray(0, o));
}
