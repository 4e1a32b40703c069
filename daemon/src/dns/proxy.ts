/**
 * The PROXY protocol, version 2 (the binary header: haproxy's proxy-protocol.txt, section 2.2), as a front end such
 * as dnsdist (`newServer{..., useProxyProtocol=true}`) sends it: at the start of every UDP datagram, and once at the
 * start of a TCP connection (for DoT, the first bytes inside the TLS session, as dnsdist sends it to a DoT backend).
 * With it the query path sees the front end's client: the access list, the rate limit, the logs and the metrics.
 *
 * Only configured front ends (`proxyProtocol.trusted`) are believed. A header from any other address is dropped: a
 * client must never choose the address it is judged by. From a trusted front end, a query without a header is
 * dropped (`requireHeader: true`, as dnsdist does for clients in its setProxyProtocolACL) or taken as the front
 * end's own. A header is untrusted input even from a front end: parsed strictly, capped, never repaired.
 */
import { Buffer } from 'node:buffer';

import { NetworkSet } from './access.js';
import { readU32 } from './wire.js';

/** proxy-protocol.txt 2.2: the twelve octets every v2 header starts with. */
export const PROXY_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Signature, version and command, family and transport, length. */
export const PROXY_FIXED_BYTES = 16;
/** Below this cap a header cannot hold its IPv6 addresses; dnsdist's default cap is 512. */
export const PROXY_MIN_CAP_BYTES = PROXY_FIXED_BYTES + 36;

/** What parseProxyHeader found. */
export const P_PROXY = 0;
/** A LOCAL command (the front end's own traffic, such as dnsdist's health checks): the real endpoints apply. */
export const P_LOCAL = 1;
/** Not enough octets yet (a stream: read more; a datagram: malformed). */
export const P_INCOMPLETE = 2;
/** Not a v2 header at all (no signature). */
export const P_ABSENT = 3;
/** A header that breaks the rules, or announces more than the cap. */
export const P_MALFORMED = 4;

/** How a PROXY header of one query or connection came out, for the metrics. */
export type ProxyOutcome =
  /** From a trusted front end, with the client's address. */
  | 'proxied'
  /** From a trusted front end, LOCAL: its own query (health checks). */
  | 'local'
  /** From a trusted front end, without a header (dropped when requireHeader, else served as the front end's). */
  | 'missing'
  /** A header from an address that is not a trusted front end: dropped. */
  | 'untrusted'
  /** From a trusted front end, a header that fails the rules or the cap: dropped. */
  | 'malformed';

/** The result of one parse; one instance is reused (read it before the next parse). */
export class ProxyHeader {
  /** P_PROXY, P_LOCAL, P_INCOMPLETE, P_ABSENT or P_MALFORMED. */
  status = P_ABSENT;
  /** The header's whole length (fixed part, addresses, TLVs), for P_PROXY and P_LOCAL. */
  length = 0;
  /** The client (source) address and port, for P_PROXY. */
  address = '';
  port = 0;
  /** Why it is malformed (for tests and debug lines). */
  reason = '';
}

const CMD_LOCAL = 0x0;
const CMD_PROXY = 0x1;
const AF_UNSPEC = 0x0;
const AF_INET = 0x1;
const AF_INET6 = 0x2;
const AF_UNIX = 0x3;
const TRANSPORT_UNSPEC = 0x0;
const TRANSPORT_DGRAM = 0x2;
/** proxy-protocol.txt 2.2.5: a CRC-32c of the whole header, checked when present. */
const PP2_TYPE_CRC32C = 0x03;

function malformed(h: ProxyHeader, reason: string): number {
  h.status = P_MALFORMED;
  h.reason = reason;
  return P_MALFORMED;
}

/**
 * Parses the v2 header at the start of `buf` (at most `capBytes` long, the signature included). Fills `h` and
 * returns its status. Never throws.
 */
export function parseProxyHeader(buf: Uint8Array, capBytes: number, h: ProxyHeader): number {
  h.length = 0;
  h.address = '';
  h.port = 0;
  h.reason = '';
  const n = Math.min(buf.length, PROXY_SIGNATURE.length);
  for (let i = 0; i < n; i++) {
    if (buf[i] !== PROXY_SIGNATURE[i]) {
      h.status = P_ABSENT;
      return P_ABSENT;
    }
  }
  if (buf.length < PROXY_FIXED_BYTES) {
    h.status = P_INCOMPLETE;
    return P_INCOMPLETE;
  }
  const verCmd = buf[12]!;
  // 2.2: the high nibble is the version (2), the low one the command.
  if (verCmd >> 4 !== 2) return malformed(h, 'version is not 2');
  const cmd = verCmd & 0x0f;
  if (cmd !== CMD_LOCAL && cmd !== CMD_PROXY) return malformed(h, 'unknown command');
  const famProto = buf[13]!;
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (family > AF_UNIX) return malformed(h, 'unknown address family');
  if (transport > TRANSPORT_DGRAM) return malformed(h, 'unknown transport protocol');
  const rest = (buf[14]! << 8) | buf[15]!;
  const total = PROXY_FIXED_BYTES + rest;
  if (total > capBytes) return malformed(h, `longer than ${capBytes} octets`);
  const addrBytes = family === AF_INET ? 12 : family === AF_INET6 ? 36 : family === AF_UNIX ? 216 : 0;
  if (rest < addrBytes) return malformed(h, 'shorter than its addresses');
  if (buf.length < total) {
    h.status = P_INCOMPLETE;
    return P_INCOMPLETE;
  }
  // 2.2.7: TLVs fill what follows the addresses exactly; a CRC-32c, if present, must match.
  let p = PROXY_FIXED_BYTES + addrBytes;
  let crcAt = -1;
  while (p < total) {
    if (p + 3 > total) return malformed(h, 'a TLV header runs past the end');
    const type = buf[p]!;
    const len = (buf[p + 1]! << 8) | buf[p + 2]!;
    if (p + 3 + len > total) return malformed(h, 'a TLV runs past the end');
    if (type === PP2_TYPE_CRC32C) {
      if (len !== 4 || crcAt >= 0) return malformed(h, 'a bad CRC-32c TLV');
      crcAt = p + 3;
    }
    p += 3 + len;
  }
  if (crcAt >= 0 && !crcMatches(buf, total, crcAt)) return malformed(h, 'CRC-32c mismatch');
  h.length = total;
  if (cmd === CMD_LOCAL) {
    // 2.2: LOCAL carries no client; the receiver uses the real connection endpoints.
    h.status = P_LOCAL;
    return P_LOCAL;
  }
  // A PROXY command must name an IP client: an unspecified or UNIX source would have us judge a client by the
  // front end's own address.
  if (family === AF_UNSPEC || family === AF_UNIX) return malformed(h, 'PROXY without an IP source address');
  if (transport === TRANSPORT_UNSPEC) return malformed(h, 'PROXY without a transport protocol');
  if (family === AF_INET) {
    h.address = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
    h.port = (buf[24]! << 8) | buf[25]!;
  } else {
    h.address = formatIpv6(buf, 16);
    h.port = (buf[48]! << 8) | buf[49]!;
  }
  h.status = P_PROXY;
  return P_PROXY;
}

/** RFC 5952 text of the 16 octets at buf[at..]: lower case, the longest run of two or more zero groups as "::". */
export function formatIpv6(buf: Uint8Array, at: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((buf[at + 2 * i]! << 8) | buf[at + 2 * i + 1]!);
  // RFC 4291 2.5.5.2: an IPv4-mapped address keeps its dotted quad (the access list reads it as IPv4).
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${buf[at + 12]}.${buf[at + 13]}.${buf[at + 14]}.${buf[at + 15]}`;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** CRC-32c (Castagnoli, reflected 0x82f63b78): the table once. */
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** proxy-protocol.txt 2.2.5: the CRC-32c of the whole header with the checksum field taken as zero. */
function crcMatches(buf: Uint8Array, total: number, crcAt: number): boolean {
  let c = 0xffffffff;
  for (let i = 0; i < total; i++) {
    const b = i >= crcAt && i < crcAt + 4 ? 0 : buf[i]!;
    c = CRC32C_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  }
  c = (c ^ 0xffffffff) >>> 0;
  return c === readU32(buf, crcAt);
}

/** A CRC-32c of `buf` (for tests that build headers with a checksum). */
export function crc32c(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC32C_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface ProxySettings {
  /** Front-end networks whose PROXY v2 headers are believed; empty: the protocol is off. */
  readonly trusted: readonly string[];
  /** From a trusted front end, drop a query (or connection) without a header; false: serve it as the front end's. */
  readonly requireHeader: boolean;
  /** A header longer than this (all of it) is malformed. */
  readonly maxHeaderBytes: number;
}

/** The client a datagram or connection is served as, once its header is read. */
export interface ProxiedPeer {
  readonly address: string;
  readonly port: number;
}

/** Receives each PROXY outcome (QueryEvents.proxyHeader). */
export type ProxyReport = (transport: 'udp' | 'tcp' | 'dot', outcome: ProxyOutcome) => void;

/**
 * Which peers must send a header and which must not, and the parse: one per configuration, shared by the UDP and
 * TCP listeners and DoT. `report` receives each outcome.
 */
export class ProxyGate {
  readonly #trusted: NetworkSet;
  readonly requireHeader: boolean;
  readonly cap: number;
  readonly report: ProxyReport;
  readonly #h = new ProxyHeader();

  constructor(s: ProxySettings, report: ProxyReport) {
    this.#trusted = new NetworkSet(s.trusted);
    this.requireHeader = s.requireHeader;
    this.cap = s.maxHeaderBytes;
    this.report = report;
  }

  /** Whether `address` is a trusted front end (it sends a header; nobody else may). */
  trusts(address: string): boolean {
    return this.#trusted.has(address);
  }

  /**
   * One datagram from `from`:`port`: the payload to serve (the datagram itself, or what follows the header), the
   * client it is served as written to `peer`; null when the datagram is dropped.
   */
  datagram(msg: Buffer, from: string, port: number, peer: { address: string; port: number }): Buffer | null {
    const h = this.#h;
    const st = parseProxyHeader(msg, this.cap, h);
    if (!this.trusts(from)) {
      if (st === P_ABSENT) {
        peer.address = from;
        peer.port = port;
        return msg;
      }
      this.report('udp', 'untrusted');
      return null;
    }
    switch (st) {
      case P_PROXY:
        this.report('udp', 'proxied');
        peer.address = h.address;
        peer.port = h.port;
        return msg.subarray(h.length);
      case P_LOCAL:
        this.report('udp', 'local');
        peer.address = from;
        peer.port = port;
        return msg.subarray(h.length);
      case P_ABSENT:
        this.report('udp', 'missing');
        if (this.requireHeader) return null;
        peer.address = from;
        peer.port = port;
        return msg;
      default:
        // P_INCOMPLETE: a datagram is whole, so a header cut short is malformed.
        this.report('udp', 'malformed');
        return null;
    }
  }

  /**
   * The start of a stream, `buf` being what arrived so far: the parse, P_INCOMPLETE while more is needed (read
   * `h` before the next call).
   */
  stream(buf: Uint8Array): ProxyHeader {
    parseProxyHeader(buf, this.cap, this.#h);
    return this.#h;
  }
}
