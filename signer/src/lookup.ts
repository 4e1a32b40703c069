/**
 * Whether and how a name or URL is listed in a FULL, for auditors holding the list key (`check`).
 *
 * Names follow the daemon's walk (SPEC.md 1.4): the name itself is tested against D, H and P, then each shorter
 * suffix of two labels or more against D only, longest first; a match on a public suffix is inert; the first
 * match decides. The verdict comes from the daemon's own matcher (`ListMatcher` of @hashwall/format) when one is
 * given; the walk is also spelt out here over the FULL's sorted entries, to report every match an auditor may
 * want to see (tests check that both agree). URLs: their Safe Browsing expressions (SPEC.md 1.2) against U.
 */
import {
  HASH_BYTES,
  canonicalHost,
  canonicalUrl,
  isPublicSuffix,
  urlExpressions,
  type Entries,
  type HashKey,
  type Kind,
  type VerdictSource,
} from '@hashwall/format';

/** The kind listed for a 32-byte hash, by binary search over sorted entries; undefined when absent. */
export function findHash(entries: Entries, hash: Uint8Array): Kind | undefined {
  let lo = 0;
  let hi = entries.count - 1;
  const hashes = Buffer.from(entries.hashes.buffer, entries.hashes.byteOffset, entries.hashes.byteLength);
  const want = Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength);
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = hashes.compare(want, 0, HASH_BYTES, mid * HASH_BYTES, (mid + 1) * HASH_BYTES);
    if (c === 0) return String.fromCharCode(entries.kinds[mid]!) as Kind;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

export interface NameMatch {
  /** The name whose hash matched (the name itself or a parent). */
  readonly name: string;
  readonly kind: Kind;
  /** Whether the daemon acts on it: D anywhere on the walk, H and P only for the name itself, never on a public suffix. */
  readonly effective: boolean;
  /** Why a match has no effect. */
  readonly note?: string;
}

export interface NameResult {
  /** The canonical name (SPEC.md 1.1). */
  readonly name: string;
  /** The names the walk hashes, longest first. */
  readonly tested: readonly string[];
  readonly matches: readonly NameMatch[];
  /** The first effective match: what the daemon does (D, H: block; P: steer to a filtering proxy). */
  readonly verdict?: NameMatch;
}

/**
 * The daemon's walk for one name. With `matcher` (a ListMatcher over the same entries) the verdict is the
 * matcher's. Throws INVALID_NAME when the input is not a host name at all.
 */
export function lookupName(entries: Entries, key: HashKey, input: string, matcher?: VerdictSource): NameResult {
  const name = canonicalHost(input);
  const tested = [name];
  for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) {
    const rest = name.slice(i + 1);
    if (rest.includes('.')) tested.push(rest);
  }
  const matches: NameMatch[] = [];
  for (const s of tested) {
    const kind = findHash(entries, key.hash(s));
    if (kind === undefined) continue;
    const itself = s === name;
    let note: string | undefined;
    if (kind === 'U') note = 'a U entry never matches a name';
    else if (!itself && kind !== 'D') note = `${kind} entries match only the exact name`;
    else if (isPublicSuffix(s)) note = 'a public suffix is never tested, so the entry is inert';
    matches.push(note === undefined ? { name: s, kind, effective: true } : { name: s, kind, effective: false, note });
  }
  let verdict = matches.find((m) => m.effective);
  if (matcher) {
    const v = matcher.verdict(name);
    const at = v ? name.slice(v.matchStart) : undefined;
    verdict = v
      ? (matches.find((m) => m.name === at && m.kind === v.kind) ?? { name: at!, kind: v.kind, effective: true })
      : undefined;
  }
  return { name, tested, matches, ...(verdict ? { verdict } : {}) };
}

export interface UrlResult {
  /** The canonical URL (SPEC.md 1.2). */
  readonly url: string;
  readonly expressions: readonly string[];
  /** Expressions listed as U. */
  readonly listed: readonly string[];
  /** The walk for the URL's host (a DNS daemon acts on the host only), when it is a name. */
  readonly host?: NameResult;
}

/** The U lookups a filtering proxy does for a URL, plus the DNS walk for its host. */
export function lookupUrl(entries: Entries, key: HashKey, input: string, matcher?: VerdictSource): UrlResult {
  const url = canonicalUrl(input);
  const expressions = urlExpressions(input);
  const listed = expressions.filter((e) => findHash(entries, key.hash(e)) === 'U');
  const host = url.slice(0, url.indexOf('/'));
  const isIp = /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(host);
  return { url, expressions, listed, ...(isIp ? {} : { host: lookupName(entries, key, host, matcher) }) };
}
