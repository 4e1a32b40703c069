/**
 * Who may query, and how much: the allowed client networks (access.allow; the default is loopback and private
 * ranges, so a fresh install is not an open resolver) and token buckets per client prefix (IPv4 /24 and IPv6 /56 by
 * default), with the least recently seen prefixes forgotten beyond rateLimitMaxPrefixes.
 *
 * Two limits, both about reflection: a UDP source address is not checked, so whatever the daemon sends to it may be
 * aimed at a victim by a spoofer.
 * - Clients inside access.allow: `rateLimitQps` per prefix over UDP (0: off). Over it, every `rateLimitSlip`-th
 *   query gets an empty answer with TC set and the rest are dropped (BIND's RRL "slip": a real client behind a
 *   spoofed flood retries over TCP and is served; a victim gets at most an answer no larger than the query). TCP is
 *   not limited by it: a TCP client has shown it owns its address (the handshake), so it cannot be spoofed, and
 *   what it may hold is bounded by the connection caps (tcp.*). BIND's RRL leaves TCP alone for the same reason.
 * - Clients outside it: REFUSED (EDE 18) at most `refusedRateLimitQps` per prefix, the rest dropped; or all
 *   dropped (`outside: drop`). Unbound's access-control has the same two actions (refuse, deny); BIND's RRL limits
 *   its REFUSED answers as "errors-per-second".
 *
 * IPv4 addresses (also IPv4-mapped IPv6 ones from a dual-stack socket) are parsed by hand into a 32-bit number:
 * that is the common case and costs a few dozen nanoseconds; IPv6 goes through util/net.ts.
 */
import { LRUCache } from 'lru-cache';

import { addressBytes, parseCidr } from '../util/net.js';

export interface AccessSettings {
  readonly allow: readonly string[];
  /** What clients outside `allow` get: REFUSED (under `refusedRateLimitQps`), or nothing. */
  readonly outside: 'refuse' | 'drop';
  readonly refusedRateLimitQps: number;
  readonly refusedRateLimitBurst: number;
  readonly rateLimitQps: number;
  readonly rateLimitBurst: number;
  /** Every n-th query over the rate gets TC (0: none). */
  readonly rateLimitSlip: number;
  readonly rateLimitIpv4Prefix: number;
  readonly rateLimitIpv6Prefix: number;
  readonly rateLimitMaxPrefixes: number;
}

/** What the rate limit says about one UDP query. */
export const LIMIT_PASS = 0;
/** Over the rate: drop it. */
export const LIMIT_DROP = 1;
/** Over the rate: answer it with TC set and nothing else (the slip). */
export const LIMIT_SLIP = 2;

/** An IPv4 dotted quad at s[from..) as an unsigned 32-bit number, or -1. */
function parseV4(s: string, from: number): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39) {
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + part;
}

/** The IPv4 number of `address` (plain or IPv4-mapped IPv6), or -1 when it is IPv6. */
function v4Of(address: string): number {
  if (address.charCodeAt(0) === 0x3a && address.startsWith('::ffff:')) return parseV4(address, 7);
  return parseV4(address, 0);
}

function v6Of(address: string): Uint8Array | null {
  const pct = address.indexOf('%');
  try {
    return addressBytes(pct < 0 ? address : address.slice(0, pct));
  } catch {
    return null;
  }
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

interface Bucket {
  tokens: number;
  atMs: number;
  /** Queries over the rate so far (for the slip). */
  over: number;
}

/** The key of `address`'s prefix: a number for IPv4 (masked), a string of the masked octets for IPv6; null if unreadable. */
export function prefixKeyOf(address: string, v4Mask: number, v6Prefix: number): number | string | null {
  const v4 = v4Of(address);
  if (v4 >= 0) return (v4 & v4Mask) >>> 0;
  const b = v6Of(address);
  return b === null ? null : prefixKey(b, v6Prefix);
}

/** The IPv4 mask of a prefix length. */
export function ipv4Mask(prefix: number): number {
  return maskOf(prefix);
}

/**
 * Token buckets per client prefix: `qps` refill, `burst` deep, at most `maxPrefixes` remembered.
 *
 * The LRU is made at the first take(), not with the limiter: lru-cache lays out its arrays for `max` entries at
 * once (28 bytes a prefix: 2.8 MB at the default 100,000, 280 MB at the 10,000,000 allowed), and the REFUSED limiter
 * of a daemon whose clients are all inside access.allow never takes a token.
 */
class PrefixBuckets {
  readonly #qps: number;
  readonly #burst: number;
  readonly #v4Mask: number;
  readonly #v6Prefix: number;
  readonly #max: number;
  #buckets: LRUCache<number | string, Bucket> | null = null;

  constructor(qps: number, burst: number, v4Prefix: number, v6Prefix: number, maxPrefixes: number) {
    this.#qps = qps;
    this.#burst = burst;
    this.#v4Mask = maskOf(v4Prefix);
    this.#v6Prefix = v6Prefix;
    this.#max = maxPrefixes;
  }

  /**
   * Takes a token for `address`'s prefix: -1 when there was one, else how many queries of that prefix have been over
   * the rate so far, this one included (1, 2, ...).
   */
  take(address: string, nowMs: number): number {
    const key = prefixKeyOf(address, this.#v4Mask, this.#v6Prefix);
    if (key === null) return -1;
    const buckets = (this.#buckets ??= new LRUCache({ max: this.#max }));
    let bucket = buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.#burst, atMs: nowMs, over: 0 };
      buckets.set(key, bucket);
    } else {
      const refill = ((nowMs - bucket.atMs) * this.#qps) / 1000;
      bucket.tokens = Math.min(this.#burst, bucket.tokens + refill);
      bucket.atMs = nowMs;
    }
    if (bucket.tokens < 1) return ++bucket.over;
    bucket.tokens -= 1;
    return -1;
  }
}

/** A set of networks (CIDR): the access list, the PROXY protocol's trusted front ends. */
export class NetworkSet {
  readonly #v4Net: number[] = [];
  readonly #v4Mask: number[] = [];
  readonly #v6: { bytes: Uint8Array; prefix: number }[] = [];

  constructor(networks: readonly string[]) {
    for (const n of networks) {
      const c = parseCidr(n);
      if (c.family === 4) {
        const mask = maskOf(c.prefix);
        this.#v4Net.push((parseV4(c.address, 0) & mask) >>> 0);
        this.#v4Mask.push(mask);
      } else {
        this.#v6.push({ bytes: addressBytes(c.address), prefix: c.prefix });
      }
    }
  }

  /** Whether `address` (IPv4, IPv6, or IPv4-mapped IPv6) is inside one of the networks. */
  has(address: string): boolean {
    const v4 = v4Of(address);
    if (v4 >= 0) {
      const nets = this.#v4Net;
      const masks = this.#v4Mask;
      for (let i = 0; i < nets.length; i++) if ((v4 & masks[i]!) >>> 0 === nets[i]) return true;
      return false;
    }
    if (this.#v6.length === 0) return false;
    const b = v6Of(address);
    if (b === null) return false;
    for (const n of this.#v6) if (samePrefix(b, n.bytes, n.prefix)) return true;
    return false;
  }
}

export class Access {
  readonly #allow: NetworkSet;
  readonly #buckets: PrefixBuckets | null;
  readonly #slip: number;
  readonly #refused: PrefixBuckets | null;

  constructor(s: AccessSettings) {
    this.#allow = new NetworkSet(s.allow);
    const v4 = s.rateLimitIpv4Prefix;
    const v6 = s.rateLimitIpv6Prefix;
    this.#buckets =
      s.rateLimitQps > 0 ? new PrefixBuckets(s.rateLimitQps, s.rateLimitBurst, v4, v6, s.rateLimitMaxPrefixes) : null;
    this.#slip = s.rateLimitSlip;
    this.#refused =
      s.outside === 'refuse'
        ? new PrefixBuckets(s.refusedRateLimitQps, s.refusedRateLimitBurst, v4, v6, s.rateLimitMaxPrefixes)
        : null;
  }

  /** Whether a rate limit is in force (when not, take() always passes and need not be called). */
  get limiting(): boolean {
    return this.#buckets !== null;
  }

  /** Whether `address` is inside access.allow. */
  allowed(address: string): boolean {
    return this.#allow.has(address);
  }

  /** The rate limit for a UDP query from `address`: LIMIT_PASS, LIMIT_DROP or LIMIT_SLIP. */
  take(address: string, nowMs: number): number {
    const buckets = this.#buckets;
    if (buckets === null) return LIMIT_PASS;
    const over = buckets.take(address, nowMs);
    if (over < 0) return LIMIT_PASS;
    return this.#slip > 0 && over % this.#slip === 0 ? LIMIT_SLIP : LIMIT_DROP;
  }

  /** Whether a client outside access.allow gets its REFUSED (false: drop the query). */
  refuse(address: string, nowMs: number): boolean {
    return this.#refused !== null && this.#refused.take(address, nowMs) < 0;
  }
}

function samePrefix(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = prefix & 7;
  if (rest === 0) return true;
  const m = (0xff << (8 - rest)) & 0xff;
  return (a[whole]! & m) === (b[whole]! & m);
}

function prefixKey(b: Uint8Array, prefix: number): string {
  let s = '';
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i++) s += String.fromCharCode(b[i]!);
  const rest = prefix & 7;
  if (rest > 0) s += String.fromCharCode(b[whole]! & ((0xff << (8 - rest)) & 0xff));
  return s;
}
