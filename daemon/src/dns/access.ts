/**
 * Who may query: the allowed client networks (access.allow; the default is loopback and private ranges, so a fresh
 * install is not an open resolver) and a token-bucket rate limit per client prefix (IPv4 /24 and IPv6 /56 by
 * default), with the least recently seen prefixes forgotten beyond rateLimitMaxPrefixes.
 *
 * IPv4 addresses (also IPv4-mapped IPv6 ones from a dual-stack socket) are parsed by hand into a 32-bit number:
 * that is the common case and costs a few dozen nanoseconds; IPv6 goes through util/net.ts.
 */
import { LRUCache } from 'lru-cache';

import { addressBytes, parseCidr } from '../util/net.js';

export interface AccessSettings {
  readonly allow: readonly string[];
  readonly rateLimitQps: number;
  readonly rateLimitBurst: number;
  readonly rateLimitIpv4Prefix: number;
  readonly rateLimitIpv6Prefix: number;
  readonly rateLimitMaxPrefixes: number;
}

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
  readonly #qps: number;
  readonly #burst: number;
  readonly #v4LimitMask: number;
  readonly #v6LimitPrefix: number;
  readonly #buckets: LRUCache<number | string, Bucket> | null;

  constructor(s: AccessSettings) {
    this.#allow = new NetworkSet(s.allow);
    this.#qps = s.rateLimitQps;
    this.#burst = s.rateLimitBurst;
    this.#v4LimitMask = maskOf(s.rateLimitIpv4Prefix);
    this.#v6LimitPrefix = s.rateLimitIpv6Prefix;
    this.#buckets = s.rateLimitQps > 0 ? new LRUCache({ max: s.rateLimitMaxPrefixes }) : null;
  }

  /** Whether a rate limit is in force (when not, take() always returns true and need not be called). */
  get limiting(): boolean {
    return this.#buckets !== null;
  }

  /** Whether `address` is inside access.allow. */
  allowed(address: string): boolean {
    return this.#allow.has(address);
  }

  /** Takes a token for `address`'s prefix; false when the prefix is over its rate (the query is not served). */
  take(address: string, nowMs: number): boolean {
    const buckets = this.#buckets;
    if (buckets === null) return true;
    let key: number | string;
    const v4 = v4Of(address);
    if (v4 >= 0) {
      key = (v4 & this.#v4LimitMask) >>> 0;
    } else {
      const b = v6Of(address);
      if (b === null) return true;
      key = prefixKey(b, this.#v6LimitPrefix);
    }
    let bucket = buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.#burst, atMs: nowMs };
      buckets.set(key, bucket);
    } else {
      const refill = ((nowMs - bucket.atMs) * this.#qps) / 1000;
      bucket.tokens = Math.min(this.#burst, bucket.tokens + refill);
      bucket.atMs = nowMs;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
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
