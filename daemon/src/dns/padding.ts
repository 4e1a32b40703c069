/**
 * What an answer looks like on an encrypted transport (DoT, DoH): padded (RFC 7830, RFC 8467), and how long an
 * HTTP cache may keep it (RFC 8484 5.1). Never used for plain UDP or TCP: RFC 7830 6, padding in the clear only
 * costs bytes.
 *
 * The padding policy. RFC 8467 4.1 (Block-Length Padding, its recommended strategy): a responder pads to a
 * multiple of 468 octets. RFC 7830 4: a response to a query that carried the Padding option MUST be padded, and
 * one to any other EDNS query MAY be. Here every answer to an EDNS client is padded on DoT and DoH, whether or not
 * its query was (kdig, dnsperf and many stub resolvers send none, and an unpadded answer's length tells an observer
 * much about the name): the answer already carries the daemon's OPT for such clients (placed last, dns/answer.ts),
 * so the option is appended to it. An answer without an OPT (the client sent none, or a FORMERR that echoes none)
 * is sent as it is; so is one the padding would take past 65,535 octets.
 */
import { Buffer } from 'node:buffer';

import { MAX_MESSAGE_BYTES, ResponseInfo, scanResponse } from './wire.js';

/** RFC 8467 4.1: responses are padded to a multiple of this. */
export const RESPONSE_BLOCK_BYTES = 468;
/** RFC 7830 3: the Padding option's code. */
export const OPTION_PADDING = 12;

const info = new ResponseInfo();
/** What padAnswer() scanned last, for lastMaxAge(). */
let lastAnswer: Buffer | null = null;
let lastScanOk = false;

/**
 * A new buffer of `prefix` spare octets (a DoT length prefix: 2; DoH: 0) followed by `answer`, padded when it
 * carries an OPT record as its last record. The answer itself is not changed (it may be a buffer the query path
 * reuses).
 */
export function padAnswer(answer: Buffer, prefix: number): Buffer {
  const len = answer.length;
  lastAnswer = answer;
  lastScanOk = scanResponse(answer, len, info);
  const opt = lastScanOk && info.optEnd === len ? info.optStart : -1;
  // RFC 7830 3: option code, option length, then the padding octets (zeros).
  const total = opt < 0 ? len : Math.ceil((len + 4) / RESPONSE_BLOCK_BYTES) * RESPONSE_BLOCK_BYTES;
  if (opt < 0 || total > MAX_MESSAGE_BYTES) {
    const out = Buffer.allocUnsafe(prefix + len);
    answer.copy(out, prefix);
    return out;
  }
  const out = Buffer.alloc(prefix + total);
  answer.copy(out, prefix);
  const padBytes = total - len - 4;
  // The OPT's owner is the root (1 octet), then TYPE, CLASS, TTL: its RDLENGTH is 9 octets in.
  const rdlenAt = prefix + opt + 9;
  out.writeUInt16BE(out.readUInt16BE(rdlenAt) + 4 + padBytes, rdlenAt);
  out.writeUInt16BE(OPTION_PADDING, prefix + len);
  out.writeUInt16BE(padBytes, prefix + len + 2);
  return out;
}

/**
 * RFC 8484 5.1: the freshness lifetime an HTTP cache may give an answer: the smallest TTL of its answer section,
 * or for an answer with none (NXDOMAIN, NODATA) min(SOA TTL, SOA MINIMUM) of the authority section's SOA (RFC 2308
 * 5); 0 when it has neither (an error such as SERVFAIL, or a malformed message).
 */
export function maxAgeSeconds(answer: Buffer): number {
  return scanResponse(answer, answer.length, info) ? maxAgeOf(answer) : 0;
}

/** maxAgeSeconds of the answer padAnswer() was last given, from the same scan (no second walk of the records). */
export function lastMaxAge(): number {
  return lastAnswer === null || !lastScanOk ? 0 : maxAgeOf(lastAnswer);
}

function maxAgeOf(answer: Buffer): number {
  if (info.ancount > 0) {
    // The TTL fields are in message order: the answer section's come first.
    let min = -1;
    for (let i = 0; i < info.ancount && i < info.ttlCount; i++) {
      const ttl = answer.readUInt32BE(info.ttlOffsets[i]);
      const t = ttl > 0x7fffffff ? 0 : ttl;
      if (min < 0 || t < min) min = t;
    }
    return Math.max(0, min);
  }
  return info.negativeTtl < 0 ? 0 : info.negativeTtl;
}
