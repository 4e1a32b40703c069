/**
 * URL expressions (SPEC.md 1.2): Google Safe Browsing v4 canonicalization
 * (developers.google.com/safe-browsing/v4/urls-hashing), written without scheme, userinfo and port as
 * `host/path[?query]`, and the Safe Browsing host-suffix x path-prefix expressions.
 *
 * The work is done on bytes (a "binary string": one char per byte, 0-255) so that percent-unescaping can
 * produce any byte, as Safe Browsing requires. The URL is split at its raw delimiters first (fragment `#`,
 * `//` authority, `/` path, `?` query), then each part is unescaped until stable; a `?` that unescaping
 * produces in the path starts the query (as in Chromium's Safe Browsing client, and it keeps the output
 * stable when canonicalized again). Unlike Safe Browsing, the host must be a name that passes SPEC.md 1.1
 * (UTS #46 applied) or an IPv4 address, because an expression is hashed and listed like a name.
 */
import { domainToASCII } from 'node:url';
import { FormatError } from './errors.js';
import { canonicalHost, isNumericLabel, mapToAscii } from './names.js';
import { isPublicSuffix } from './psl.js';

/** URLs longer than this (UTF-16 code units, before any processing) are refused. */
export const MAX_URL_LENGTH = 4096;

// Safe Browsing v4 "Suffix/Prefix Expressions": the exact host plus up to 4 suffixes of the last 5 labels,
// the exact path (with and without query) plus up to 4 prefixes starting with '/'.
const MAX_HOST_SUFFIX_LABELS = 5;
const MAX_PATH_PREFIXES = 4;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A canonical URL in parts: `host` is a canonical name or a dotted-quad IPv4 address. */
interface CanonicalParts {
  host: string;
  hostIsIp: boolean;
  /** Escaped, starts with '/'. */
  path: string;
  /** Escaped, without the '?'; null when the URL has no '?'. */
  query: string | null;
}

function reject(reason: string): never {
  throw new FormatError('INVALID_NAME', reason);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Percent-unescapes a byte string repeatedly until no `%XX` is left (Safe Browsing v4: "repeatedly
 * percent-unescape the URL until it has no more percent-escapes"), in one pass: escapes cannot overlap, so
 * decoding eagerly and re-checking the tail of the output reaches the same fixed point as repeated passes.
 */
export function unescapeRepeatedly(bytes: string): string {
  if (!bytes.includes('%')) return bytes;
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    out.push(bytes.charCodeAt(i));
    // A decoded byte may complete a new escape with the bytes before it, so re-check.
    for (;;) {
      const n = out.length;
      if (n < 3 || out[n - 3] !== 0x25) break;
      const hi = hexValue(out[n - 2] ?? -1);
      const lo = hexValue(out[n - 1] ?? -1);
      if (hi < 0 || lo < 0) break;
      out.length = n - 3;
      out.push(hi * 16 + lo);
    }
  }
  let s = '';
  for (let i = 0; i < out.length; i += 8192) s += String.fromCharCode(...out.slice(i, i + 8192));
  return s;
}

const HEX = '0123456789ABCDEF';

/** Safe Browsing v4: escape bytes <= 0x20, >= 0x7f, '#' and '%' as `%XX` with upper-case hex. */
function escapeBytes(bytes: string): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x23 || c === 0x25) s += '%' + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    else s += bytes.charAt(i);
  }
  return s;
}

/** Safe Browsing v4 host steps 1-2: strip leading and trailing dots, collapse runs of dots. */
function cleanDots(host: string): string {
  return host.replace(/\.{2,}/g, '.').replace(/^\.|\.$/g, '');
}

/**
 * WHATWG IPv4 parser (decimal, octal `0…`, hex `0x…`, 1 to 4 parts, the last filling the remaining bytes),
 * the "any legal IP-address encoding" of Safe Browsing v4. Returns the dotted quad, or null when `host`
 * ends in a number but is not a valid IPv4 address.
 */
function parseIPv4(host: string): string | null {
  const parts = host.split('.');
  if (parts.length > 4) return null;
  const nums: number[] = [];
  for (const part of parts) {
    let radix = 10;
    let digits = part;
    if (digits.length >= 2 && (digits.startsWith('0x') || digits.startsWith('0X'))) {
      radix = 16;
      digits = digits.slice(2);
    } else if (digits.length >= 2 && digits.startsWith('0')) {
      radix = 8;
      digits = digits.slice(1);
    }
    if (part === '') return null;
    let v = 0;
    for (let i = 0; i < digits.length; i++) {
      const d = hexValue(digits.charCodeAt(i));
      if (d < 0 || d >= radix) return null;
      v = v * radix + d;
      // Past 2^32 nothing is valid; stop before the number loses precision.
      if (v > 0xffffffff) return null;
    }
    nums.push(v);
  }
  const last = nums.pop() ?? 0;
  if (nums.some((n) => n > 255)) return null;
  if (last >= 256 ** (5 - parts.length)) return null;
  let value = last;
  nums.forEach((n, i) => (value += n * 256 ** (3 - i)));
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/**
 * A bracketed IPv6 literal: only the IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 well-known-prefix
 * (`64:ff9b::a.b.c.d`) forms are accepted, as the IPv4 address they carry (as Safe Browsing's current URL
 * rules do); any other IPv6 address is refused, since a listed host must be a name or an IPv4 address.
 */
function ipv6ToIPv4(literal: string): string {
  // Node's WHATWG parser validates and compresses the address: "[::ffff:102:304]".
  const norm = domainToASCII(literal);
  if (norm === '' || !norm.startsWith('[') || !norm.endsWith(']')) reject('URL host is not a valid IPv6 literal');
  const body = norm.slice(1, -1);
  const halves = body.split('::');
  const left = halves[0] ? halves[0].split(':') : [];
  const right = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right].map((g) =>
    parseInt(g, 16),
  );
  const prefix = groups.slice(0, 6).join(':');
  if (groups.length === 8 && (prefix === '0:0:0:0:0:65535' || prefix === '100:65435:0:0:0:0')) {
    const hi = groups[6] ?? 0;
    const lo = groups[7] ?? 0;
    return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
  }
  reject('URL host is an IPv6 address; only IPv4-mapped and NAT64 (64:ff9b::/96) literals are accepted');
}

/** Canonical host of a URL from its raw (still escaped) host bytes. */
function canonicalUrlHost(rawHost: string): { host: string; hostIsIp: boolean } {
  const bytes = unescapeRepeatedly(rawHost);
  let host: string;
  try {
    host = UTF8.decode(Buffer.from(bytes, 'latin1'));
  } catch {
    reject('URL host is not valid UTF-8 after percent-unescaping');
  }
  try {
    host = cleanDots(host);
    // UTS #46 first when the host is not ASCII (fullwidth digits and dots, U-labels), then the dot steps again.
    if (/[^\0-\x7f]/.test(host)) host = cleanDots(mapToAscii(host));
    host = host.replace(/[A-Z]+/g, (m) => m.toLowerCase());
    if (host === '') reject('URL has an empty host');
    if (isNumericLabel(host, host.lastIndexOf('.') + 1)) {
      const ip = parseIPv4(host);
      if (ip === null) reject('URL host ends in a numeric label but is not a valid IPv4 address');
      return { host: ip, hostIsIp: true };
    }
    return { host: canonicalHost(host), hostIsIp: false };
  } catch (err) {
    if (err instanceof FormatError && err.message.startsWith('host name')) reject(`URL ${err.message}`);
    throw err;
  }
}

/**
 * Safe Browsing v4 path steps on unescaped bytes: resolve `/./` and `/../` (RFC 3986 5.2.4, so a trailing
 * `/.` or `/..` resolves too and `..` never climbs above the root), then collapse runs of `/`.
 */
function normalizePath(path: string): string {
  const segments = path.split('/').slice(1);
  const out: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] ?? '';
    const last = i === segments.length - 1;
    if (seg === '.' || seg === '..') {
      if (seg === '..') out.pop();
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  }
  return ('/' + out.join('/')).replace(/\/{2,}/g, '/');
}

function parseUrl(input: string): CanonicalParts {
  if (typeof input !== 'string') reject('URL is not a string');
  if (input.length > MAX_URL_LENGTH) reject(`URL is longer than ${MAX_URL_LENGTH} characters`);
  if (LONE_SURROGATE.test(input)) reject('URL contains an unpaired UTF-16 surrogate (not valid Unicode)');
  // Bytes from here on; every delimiter below is ASCII.
  let s = Buffer.from(input, 'utf8').toString('latin1');
  // Safe Browsing v4: remove tab, CR and LF (not their escapes); strip surrounding spaces and controls.
  s = s.replace(/[\t\r\n]/g, '').replace(/^[\0-\x20]+|[\0-\x20]+$/g, '');
  // Remove the fragment: everything from the first raw '#'.
  const hash = s.indexOf('#');
  if (hash >= 0) s = s.slice(0, hash);

  // Scheme: http or https, or none (then http). "host:port/..." is a host with a port, not a scheme.
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s);
  if (scheme !== null) {
    const rest = s.slice(scheme[0].length);
    if (rest.startsWith('//')) {
      const name = (scheme[1] ?? '').toLowerCase();
      if (name !== 'http' && name !== 'https') reject(`URL scheme "${name}" is not http or https`);
      s = rest.slice(2);
    } else if (!/^[0-9]*(?:[/?]|$)/.test(rest)) {
      const name = (scheme[1] ?? '').toLowerCase();
      if (name === 'http' || name === 'https') reject(`URL has "${name}:" without "//"`);
      if (name.includes('.')) reject('URL port is not a number from 0 to 65535');
      reject(`URL scheme "${name}" is not http or https`);
    }
  } else if (s.startsWith('//')) {
    s = s.slice(2);
  }

  // Authority up to the first raw '/' or '?'.
  let end = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2f || c === 0x3f) {
      end = i;
      break;
    }
  }
  let authority = s.slice(0, end);
  const rest = s.slice(end);
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);

  let rawHost: string;
  let port: string | null = null;
  let ipv6: string | null = null;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) reject('URL host has "[" without "]"');
    ipv6 = authority.slice(0, close + 1);
    const after = authority.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) reject('URL has characters after an IPv6 literal');
      port = after.slice(1);
    }
    rawHost = ipv6;
  } else {
    const colon = authority.lastIndexOf(':');
    rawHost = colon >= 0 ? authority.slice(0, colon) : authority;
    if (colon >= 0) port = authority.slice(colon + 1);
  }
  // An empty port ("host:/") is allowed, as in WHATWG URLs.
  if (port !== null && port !== '' && !(/^[0-9]{1,5}$/.test(port) && Number(port) <= 65535)) {
    reject('URL port is not a number from 0 to 65535');
  }
  if (rawHost === '') reject('URL has no host');
  const { host, hostIsIp } = ipv6 !== null ? { host: ipv6ToIPv4(ipv6), hostIsIp: true } : canonicalUrlHost(rawHost);

  // Path and query, split at the first raw '?', each unescaped until stable.
  const q = rest.indexOf('?');
  let path = unescapeRepeatedly(q >= 0 ? rest.slice(0, q) : rest);
  let query = q >= 0 ? unescapeRepeatedly(rest.slice(q + 1)) : null;
  const qInPath = path.indexOf('?');
  if (qInPath >= 0) {
    query = path.slice(qInPath + 1) + (query === null ? '' : '?' + query);
    path = path.slice(0, qInPath);
  }
  // The raw rest starts with '/' or '?', so a non-empty path starts with '/'.
  if (path === '') path = '/';
  return {
    host,
    hostIsIp,
    path: escapeBytes(normalizePath(path)),
    query: query === null ? null : escapeBytes(query),
  };
}

/**
 * The canonical form of a URL (SPEC.md 1.2): Safe Browsing v4 canonicalization written as
 * `host/path[?query]` (no scheme, userinfo, port or fragment). Input without a scheme is taken as http;
 * only http and https are accepted. The host must be a canonical host name (SPEC.md 1.1, UTS #46 applied)
 * or an IPv4 address (numeric forms normalized to a dotted quad).
 *
 * `http://Bücher.example/x` → `xn--bcher-kva.example/x`, `http://3221226219/a/../b` → `192.0.2.235/b`.
 *
 * @throws FormatError `INVALID_NAME` with a short reason (never the input) in the message.
 */
export function canonicalUrl(input: string): string {
  const u = parseUrl(input);
  return u.host + u.path + (u.query === null ? '' : '?' + u.query);
}

/**
 * `canonicalUrl`, then refuses a URL whose host is a public suffix (SPEC.md 1.4): an entry for
 * `github.io/x` would be checked only by proxies that choose to, and would cover unrelated sites.
 *
 * @throws FormatError `INVALID_NAME`
 */
export function listableUrl(input: string): string {
  const u = parseUrl(input);
  if (!u.hostIsIp && isPublicSuffix(u.host)) {
    reject('URL host is a public suffix (Public Suffix List); list a URL on a registrable name');
  }
  return u.host + u.path + (u.query === null ? '' : '?' + u.query);
}

/**
 * The Safe Browsing v4 suffix/prefix expressions to look up for a URL (SPEC.md 1.2), most specific host
 * first, each host with its paths in Safe Browsing order: the exact path with the query (when the URL has
 * a `?`), the exact path, then `/` and the prefixes of up to 3 leading path components, each ending in `/`.
 * Hosts: the exact host, then the suffixes made from its last 5 labels by removing leading labels, never the
 * bare top-level label; an IPv4 host only as itself. At most 5 x 6 expressions, no duplicates, each with a `/`.
 * The first expression is always `canonicalUrl(input)`.
 *
 * @throws FormatError `INVALID_NAME` when the URL cannot be canonicalized.
 */
export function urlExpressions(input: string): string[] {
  const u = parseUrl(input);
  const hosts = [u.host];
  if (!u.hostIsIp) {
    const labels = u.host.split('.');
    for (let i = Math.max(1, labels.length - MAX_HOST_SUFFIX_LABELS); i <= labels.length - 2; i++) {
      hosts.push(labels.slice(i).join('.'));
    }
  }
  const paths: string[] = [];
  if (u.query !== null) paths.push(u.path + '?' + u.query);
  paths.push(u.path);
  paths.push('/');
  const components = u.path.split('/').filter((c) => c !== '');
  const prefixCount = Math.min(components.length, MAX_PATH_PREFIXES);
  for (let i = 1; i < prefixCount; i++) paths.push('/' + components.slice(0, i).join('/') + '/');
  const uniquePaths = [...new Set(paths)];
  const out: string[] = [];
  for (const h of hosts) for (const p of uniquePaths) out.push(h + p);
  return out;
}
