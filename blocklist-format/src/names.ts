/**
 * Canonical host names (SPEC.md 1.1), shared by the signer (which canonicalizes listed names) and the
 * daemon (which only asks whether a query name could be listed at all).
 *
 * The pipeline is SPEC.md 1.1 in order: UTS #46 mapping via Node's `url.domainToASCII`, ASCII
 * lower-casing, removal of one trailing dot, then the rule 3 checks, which reject and never repair.
 * `domainToASCII` is a WHATWG URL host parser rather than a bare UTS #46 mapper, so the input is
 * screened before it (it would percent-decode, strip tabs, cut at `/` or `?`, and rewrite IPv4 forms) and
 * its output is checked after it (it returns '' on failure, and Node releases differ on whether they
 * validate `xn--` labels, so every A-label is checked here by a punycode round trip).
 */
import { domainToASCII } from 'node:url';
import { FormatError } from './errors.js';
import { isPublicSuffix } from './psl.js';

/**
 * Inputs longer than this (UTF-16 code units) are refused before any mapping. A valid name is at most 253
 * octets; the slack leaves room for Unicode input and characters that UTS #46 maps to nothing.
 */
export const MAX_HOST_INPUT_LENGTH = 1024;

const MAX_NAME_OCTETS = 253;
const MAX_LABEL_OCTETS = 63;

// Rule 3 violations, in the order they are checked. 0 means the name passes.
const OK = 0;
const V_EMPTY = 1;
const V_TOO_LONG = 2;
const V_BAD_CHAR = 3;
const V_EMPTY_LABEL = 4;
const V_LONG_LABEL = 5;
const V_HYPHEN = 6;
const V_SINGLE_LABEL = 7;
const V_NUMERIC = 8;

const CH_DOT = 0x2e;
const CH_HYPHEN = 0x2d;
const CH_UNDERSCORE = 0x5f;

function isNameChar(c: number): boolean {
  // [a-z0-9_-]
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === CH_HYPHEN || c === CH_UNDERSCORE;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/**
 * WHATWG URL "ends in a number" test on one label `s[start, end)`: all ASCII digits, or `0x`/`0X`
 * followed by hex digits (possibly none). Such a host is parsed as IPv4 by URL parsers (or refused).
 */
export function isNumericLabel(s: string, start = 0, end = s.length): boolean {
  if (end <= start) return false;
  let allDigits = true;
  for (let i = start; i < end; i++) {
    if (!isDigit(s.charCodeAt(i))) {
      allDigits = false;
      break;
    }
  }
  if (allDigits) return true;
  if (end - start < 2 || s.charCodeAt(start) !== 0x30) return false;
  const x = s.charCodeAt(start + 1);
  if (x !== 0x78 && x !== 0x58) return false;
  for (let i = start + 2; i < end; i++) if (!isHexDigit(s.charCodeAt(i))) return false;
  return true;
}

/**
 * SPEC.md 1.1 rule 3 on an ASCII name without a trailing dot. Pure byte checks, no allocation.
 * Returns OK or the first violation found.
 */
function ruleThree(name: string): number {
  const len = name.length;
  if (len === 0) return V_EMPTY;
  if (len > MAX_NAME_OCTETS) return V_TOO_LONG;
  let labelStart = 0;
  let labels = 0;
  let lastLabelStart = 0;
  for (let i = 0; i <= len; i++) {
    const c = i < len ? name.charCodeAt(i) : CH_DOT;
    if (c === CH_DOT) {
      const labelLen = i - labelStart;
      if (labelLen === 0) return V_EMPTY_LABEL;
      if (labelLen > MAX_LABEL_OCTETS) return V_LONG_LABEL;
      if (name.charCodeAt(labelStart) === CH_HYPHEN || name.charCodeAt(i - 1) === CH_HYPHEN) return V_HYPHEN;
      labels++;
      lastLabelStart = labelStart;
      labelStart = i + 1;
    } else if (!isNameChar(c)) {
      return V_BAD_CHAR;
    }
  }
  if (labels < 2) return V_SINGLE_LABEL;
  if (isNumericLabel(name, lastLabelStart, len)) return V_NUMERIC;
  return OK;
}

function describeChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  if (cp < 0x21 || (cp >= 0x7f && cp <= 0xa0)) return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return JSON.stringify(ch);
}

function firstBadChar(name: string): string {
  for (const ch of name) {
    const c = ch.charCodeAt(0);
    if (c !== CH_DOT && !isNameChar(c)) return ch;
  }
  return '?';
}

function violationReason(v: number, name: string): string {
  switch (v) {
    case V_EMPTY:
      return 'host name is empty';
    case V_TOO_LONG:
      return `host name is longer than ${MAX_NAME_OCTETS} octets`;
    case V_BAD_CHAR:
      return `host name contains ${describeChar(firstBadChar(name))}; only a-z, 0-9, "-", "_" and "." are allowed`;
    case V_EMPTY_LABEL:
      return 'host name has an empty label (a leading, doubled or second trailing ".")';
    case V_LONG_LABEL:
      return `host name has a label longer than ${MAX_LABEL_OCTETS} octets`;
    case V_HYPHEN:
      return 'host name has a label that starts or ends with "-"';
    case V_SINGLE_LABEL:
      return 'host name has a single label (a top-level domain or a bare word)';
    case V_NUMERIC:
      return 'host name ends in a numeric label, so it is or parses as an IPv4 address';
    default:
      return 'host name is invalid';
  }
}

function reject(reason: string): never {
  throw new FormatError('INVALID_NAME', reason);
}

/**
 * SPEC.md 1.1, last paragraph: whether a DNS query name could be a listed name at all. `name` must already
 * be ASCII, lower-cased (RFC 4343: only A-Z are folded) and without the root dot; anything else (an upper-case
 * letter, a byte outside `[a-z0-9_-.]`) makes it unlistable. True exactly when the name passes rule 3.
 *
 * Pure byte checks without `domainToASCII`, cheap enough for the daemon's slow path. It does not decode
 * `xn--` labels: a name with a broken A-label passes here although `canonicalHost` would refuse it, which
 * only costs a lookup that cannot match. The converse holds: every `canonicalHost` result passes.
 */
export function queryNameIsListable(name: string): boolean {
  return ruleThree(name) === OK;
}

// RFC 3492 (punycode) decoding parameters, section 5.
const PC_BASE = 36;
const PC_TMIN = 1;
const PC_TMAX = 26;
const PC_SKEW = 38;
const PC_DAMP = 700;
const PC_INITIAL_BIAS = 72;
const PC_INITIAL_N = 0x80;
const PC_MAXINT = 0x7fffffff;

function punycodeAdapt(delta: number, numPoints: number, firstTime: boolean): number {
  // RFC 3492 6.1
  let d = firstTime ? Math.floor(delta / PC_DAMP) : Math.floor(delta / 2);
  d += Math.floor(d / numPoints);
  let k = 0;
  while (d > ((PC_BASE - PC_TMIN) * PC_TMAX) >> 1) {
    d = Math.floor(d / (PC_BASE - PC_TMIN));
    k += PC_BASE;
  }
  return k + Math.floor(((PC_BASE - PC_TMIN + 1) * d) / (d + PC_SKEW));
}

function punycodeDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 26;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61;
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  return -1;
}

/** RFC 3492 6.2 decoding of the part after `xn--`; null when it is not valid punycode. */
function punycodeDecode(input: string): string | null {
  const out: number[] = [];
  const b = input.lastIndexOf('-');
  for (let j = 0; j < b; j++) {
    const c = input.charCodeAt(j);
    if (c >= 0x80) return null;
    out.push(c);
  }
  let pos = b > 0 ? b + 1 : 0;
  let n = PC_INITIAL_N;
  let bias = PC_INITIAL_BIAS;
  let i = 0;
  while (pos < input.length) {
    const oldi = i;
    let w = 1;
    for (let k = PC_BASE; ; k += PC_BASE) {
      if (pos >= input.length) return null;
      const digit = punycodeDigit(input.charCodeAt(pos++));
      if (digit < 0) return null;
      if (digit > Math.floor((PC_MAXINT - i) / w)) return null;
      i += digit * w;
      const t = k <= bias ? PC_TMIN : k >= bias + PC_TMAX ? PC_TMAX : k - bias;
      if (digit < t) break;
      if (w > Math.floor(PC_MAXINT / (PC_BASE - t))) return null;
      w *= PC_BASE - t;
    }
    const count = out.length + 1;
    bias = punycodeAdapt(i - oldi, count, oldi === 0);
    if (Math.floor(i / count) > PC_MAXINT - n) return null;
    n += Math.floor(i / count);
    i %= count;
    if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return null;
    out.splice(i, 0, n);
    i++;
  }
  return String.fromCodePoint(...out);
}

/**
 * True when the A-label `label` (lower case, starting with `xn--`) decodes to a U-label that UTS #46 maps
 * back to exactly `label`. This is the validity check of UTS #46 section 4.1 step 4 done independently of
 * the Node release (Node 20 checks decoded labels, Node 24 passes `xn--` labels through unchecked); it also
 * refuses A-labels of all-ASCII or unmapped (upper-case, unnormalized) text.
 */
function isValidALabel(label: string): boolean {
  const decoded = punycodeDecode(label.slice(4));
  if (decoded === null || decoded === '') return false;
  return domainToASCII(decoded) === label;
}

// Lone surrogates cannot be encoded as UTF-8; Node would replace them silently.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Screens raw input before `domainToASCII`: the ASCII characters allowed through are letters, digits,
 * `-`, `_` and `.`; everything else would either be refused by rule 3 anyway or be silently rewritten by
 * the WHATWG host parser (percent-decoding, tab and newline removal, cutting at `/ ? # \`).
 * Non-ASCII characters are left to UTS #46. Returns a reason, or null when the input may be mapped.
 */
function screenInput(input: string): string | null {
  if (input.length > MAX_HOST_INPUT_LENGTH) return `host name is longer than ${MAX_HOST_INPUT_LENGTH} characters`;
  if (LONE_SURROGATE.test(input)) return 'host name contains an unpaired UTF-16 surrogate (not valid Unicode)';
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c >= 0x80) continue;
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || isDigit(c)) continue;
    if (c === CH_DOT || c === CH_HYPHEN || c === CH_UNDERSCORE) continue;
    if (c === 0x3a || c === 0x5b || c === 0x5d) {
      return 'host name contains ":" or brackets: IPv6 addresses and ports are not host names';
    }
    if (c === 0x25) return 'host name contains "%": percent-escapes are not decoded in host names';
    if (c === 0x20) return 'host name contains a space';
    if (c < 0x20 || c === 0x7f) return `host name contains the control character ${describeChar(input.charAt(i))}`;
    return `host name contains ${JSON.stringify(input.charAt(i))}; only letters, digits, "-", "_" and "." are allowed`;
  }
  return null;
}

/** Why `domainToASCII` refused a screened input: a best guess for the maintainer. */
function mappingFailureReason(input: string): string {
  let s = input.normalize('NFKC').toLowerCase();
  if (s.endsWith('.')) s = s.slice(0, -1);
  const last = s.slice(s.lastIndexOf('.') + 1);
  if (isNumericLabel(last)) return 'host name ends in a numeric label, so it is or parses as an IPv4 address';
  if (/(^|\.)xn--/.test(s)) return 'host name has an invalid punycode (xn--) label';
  return 'host name is not valid under UTS #46 (IDNA): a disallowed character, joiner or bidi mix';
}

/**
 * Steps 1 and 2 of SPEC.md 1.1 for input that passed `screenInput`: UTS #46 non-transitional mapping to
 * A-labels and ASCII lower-casing, nothing else (no trailing-dot removal, no rule 3). Throws INVALID_NAME.
 * @internal shared with url.ts
 */
export function mapToAscii(input: string): string {
  const reason = screenInput(input);
  if (reason !== null) reject(reason);
  if (input === '') reject('host name is empty');
  const mapped = domainToASCII(input);
  if (mapped === '') reject(mappingFailureReason(input));
  // domainToASCII already lower-cases; ASCII-only lower-casing keeps this step exact (SPEC.md 1.1 step 2).
  return mapped.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * Rule 3 plus the A-label round trip, on a mapped name without its trailing dot. Returns the name or throws.
 */
function checkMapped(name: string): string {
  const v = ruleThree(name);
  if (v !== OK) reject(violationReason(v, name));
  if (name.includes('xn--')) {
    let start = 0;
    while (start <= name.length) {
      let end = name.indexOf('.', start);
      if (end < 0) end = name.length;
      if (name.startsWith('xn--', start) && !isValidALabel(name.slice(start, end))) {
        reject('host name has an invalid punycode (xn--) label');
      }
      start = end + 1;
    }
  }
  return name;
}

/**
 * The canonical form of a host name (SPEC.md 1.1): UTS #46 non-transitional mapping to lower-case
 * A-labels, one trailing dot removed, then every rule 3 case refused. `www.` is kept. No Public Suffix List
 * check here (see `listableHost`).
 *
 * `Bücher.example` → `xn--bcher-kva.example`, `faß.de` → `xn--fa-hia.de`, `ＥＸＡＭＰＬＥ.com` → `example.com`,
 * `example.com.` → `example.com`; `example..com`, `com`, `0x7f.1`, `[::1]`, `a%41.com` throw.
 *
 * @throws FormatError `INVALID_NAME` with a short reason (never the input) in the message.
 */
export function canonicalHost(input: string): string {
  if (typeof input !== 'string') reject('host name is not a string');
  let name = mapToAscii(input);
  if (name.endsWith('.')) name = name.slice(0, -1);
  return checkMapped(name);
}

/**
 * `canonicalHost`, then refuses a name that is itself a public suffix (ICANN or private section of the
 * Public Suffix List): SPEC.md 1.4 makes such an entry inert, so the signer refuses it rather than
 * publishing an entry that can never match.
 *
 * @throws FormatError `INVALID_NAME`
 */
export function listableHost(input: string): string {
  const name = canonicalHost(input);
  if (isPublicSuffix(name)) {
    reject('host name is a public suffix (Public Suffix List), so an entry for it would never match');
  }
  return name;
}
