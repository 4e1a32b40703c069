/**
 * The maintainer's plaintext source list and how it becomes a FULL's entries.
 *
 * Format (README.md "The source file"): UTF-8, one entry a line, LF line ends:
 *
 *   # a comment line
 *   domain example.test          D: the name and every name below it
 *   host www.example.test        H: that exact name
 *   url http://example.test/a/   U: a URL expression (and P for its host, see below)
 *
 * Blank lines and lines starting with `#` (after optional spaces) are ignored. The keyword is lower case and
 * separated from the value by spaces or tabs; spaces and tabs around the entry are ignored; anything else on the
 * line (a second word, an inline comment) is an error. A byte order mark, a CR, a control character or invalid
 * UTF-8 is an error. Every error is reported with its line, all in one run; messages never repeat the entry.
 *
 * Names are canonicalized with `listableHost` and URLs with `listableUrl` (SPEC.md 1.1, 1.2), which refuse
 * what cannot be listed (public suffixes, IP addresses as names, bad labels) rather than repair it.
 *
 * Entries, when several lines give the same hash (SPEC.md 2.1 allows each hash once):
 * - the same name as `domain` and `host`: D wins (it covers the host too); a warning names both lines;
 * - the same entry twice: one entry, and a warning.
 * P entries (SPEC.md 1.4) are derived: one per host that has URL entries, except for an IP-address host (DNS
 * never sees it), a host listed as `domain` or `host` itself (D and H beat P), and a host below a `domain` entry:
 * the daemon's walk tests the longest name first, so a P there would turn the domain's block into a steer.
 */
import {
  FormatError,
  MAX_LIST_VALIDITY_DAYS,
  entriesFromPairs,
  isListId,
  listableHost,
  listableUrl,
  makeFull,
  serializeFull,
  type Entries,
  type ErrorCode,
  type FullList,
  type Kind,
  type ListKey,
} from '@hashwall/format';

export type SourceKeyword = 'domain' | 'host' | 'url';

/** One valid line of a source, canonicalized. Holds plaintext: never log it. */
export interface SourceEntry {
  readonly line: number;
  readonly keyword: SourceKeyword;
  /** The canonical name (domain, host) or URL expression (`host/path[?query]`). */
  readonly value: string;
}

/** An error or a warning about one line. The message never repeats the line's content. */
export interface SourceProblem {
  readonly line: number;
  readonly code: ErrorCode;
  readonly message: string;
}

/** A warning about one line: the list is still built. The message never repeats the line's content. */
export interface SourceWarning {
  readonly line: number;
  readonly message: string;
}

export interface ParsedSource {
  readonly entries: SourceEntry[];
  readonly errors: SourceProblem[];
}

/** A source larger than this is refused: it could never fit a FULL (at most 256 MiB, SPEC.md 4). */
export const MAX_SOURCE_BYTES = 256 * 1024 * 1024;

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const KEYWORDS: readonly string[] = ['domain', 'host', 'url'];

function lineProblem(line: number, code: ErrorCode, message: string): SourceProblem {
  return { line, code, message };
}

/** Parses a source strictly, collecting every error instead of stopping at the first. */
export function parseSource(bytes: Uint8Array): ParsedSource {
  if (bytes.length > MAX_SOURCE_BYTES) {
    throw new FormatError('TOO_LARGE', `the source is over ${MAX_SOURCE_BYTES} bytes`);
  }
  const entries: SourceEntry[] = [];
  const errors: SourceProblem[] = [];
  let start = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    errors.push(lineProblem(1, 'MALFORMED', 'the file starts with a byte order mark; save it as UTF-8 without one'));
    start = 3;
  }
  let lineNo = 0;
  while (start < bytes.length) {
    lineNo++;
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    const problem = parseLine(raw, lineNo, entries);
    if (problem) errors.push(problem);
  }
  return { entries, errors };
}

function parseLine(raw: Uint8Array, line: number, out: SourceEntry[]): SourceProblem | undefined {
  if (raw.includes(0x0d)) {
    return lineProblem(line, 'MALFORMED', 'CR in the line (a Windows line end?): use LF line ends');
  }
  let text: string;
  try {
    text = UTF8.decode(raw);
  } catch {
    return lineProblem(line, 'MALFORMED', 'not valid UTF-8');
  }
  // Tab is a separator; every other C0 control, DEL and C1 control is refused.
  if (hasControl(text)) {
    return lineProblem(line, 'MALFORMED', 'a control character in the line');
  }
  const trimmed = text.replace(/^[ \t]+|[ \t]+$/g, '');
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  const m = /^([^ \t]+)(?:[ \t]+(.*))?$/.exec(trimmed);
  const keyword = m?.[1] ?? '';
  const value = m?.[2];
  if (!KEYWORDS.includes(keyword)) {
    return lineProblem(line, 'MALFORMED', 'the line does not start with "domain", "host" or "url" (lower case)');
  }
  if (value === undefined) return lineProblem(line, 'MALFORMED', `"${keyword}" without a value`);
  if (/[ \t]/.test(value)) {
    return lineProblem(
      line,
      'MALFORMED',
      'more than one value on the line (comments go on a line of their own, starting with #)',
    );
  }
  try {
    const canonical = keyword === 'url' ? listableUrl(value) : listableHost(value);
    out.push({ line, keyword: keyword as SourceKeyword, value: canonical });
    return undefined;
  } catch (err) {
    if (err instanceof FormatError) return lineProblem(line, err.code, err.message);
    throw err;
  }
}

/** Whether `text` holds a C0 control other than tab, DEL, or a C1 control. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

export type KindCounts = Record<Kind, number>;

export interface HashedSource {
  readonly entries: Entries;
  readonly counts: KindCounts;
  readonly warnings: SourceWarning[];
}

const DOTTED_QUAD = /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/;

/** The host of a canonical URL expression, and whether it is an IPv4 address (SPEC.md 1.2). */
export function urlHost(expression: string): { host: string; isIp: boolean } {
  const host = expression.slice(0, expression.indexOf('/'));
  // A canonical host name never ends in a numeric label (SPEC.md 1.1 rule 3), so a dotted quad is an address.
  return { host, isIp: DOTTED_QUAD.test(host) };
}

/** The proper parent names of a canonical name that have two labels or more, nearest first. */
function parents(name: string): string[] {
  const out: string[] = [];
  for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) {
    const rest = name.slice(i + 1);
    if (rest.includes('.')) out.push(rest);
  }
  return out;
}

/** Turns canonical source entries into the FULL's entries (rules in this file's header), hashing with `key`. */
export function hashSource(source: readonly SourceEntry[], key: ListKey): HashedSource {
  const warnings: SourceWarning[] = [];
  const warn = (line: number, message: string): void => {
    warnings.push({ line, message });
  };
  const names = new Map<string, { kind: 'D' | 'H'; line: number }>();
  const urls = new Map<string, number>();
  for (const e of source) {
    if (e.keyword === 'url') {
      const first = urls.get(e.value);
      if (first !== undefined) {
        warn(e.line, `the same URL as line ${first} (after canonicalization)`);
      } else urls.set(e.value, e.line);
      continue;
    }
    const kind = e.keyword === 'domain' ? 'D' : 'H';
    const prev = names.get(e.value);
    if (prev === undefined) {
      names.set(e.value, { kind, line: e.line });
    } else if (prev.kind === kind) {
      warn(e.line, `the same ${e.keyword} as line ${prev.line}`);
    } else {
      const [d, h] = kind === 'D' ? [e.line, prev.line] : [prev.line, e.line];
      warn(e.line, `listed as domain (line ${d}) and host (line ${h}): the domain entry wins`);
      if (kind === 'D') names.set(e.value, { kind, line: e.line });
    }
  }
  const coveringDomain = (name: string): { line: number } | undefined => {
    for (const p of parents(name)) {
      const got = names.get(p);
      if (got?.kind === 'D') return got;
    }
    return undefined;
  };
  for (const [name, { line }] of names) {
    const cover = coveringDomain(name);
    if (cover) warn(line, `already covered by the domain at line ${cover.line}`);
  }
  const hk = key.hashKey();
  const pairs: [string, Kind][] = [];
  const counts: KindCounts = { D: 0, H: 0, U: 0, P: 0 };
  const add = (s: string, kind: Kind): void => {
    pairs.push([hk.hashHex(s), kind]);
    counts[kind]++;
  };
  for (const [name, { kind }] of names) add(name, kind);
  const steered = new Set<string>();
  for (const expression of urls.keys()) {
    add(expression, 'U');
    const { host, isIp } = urlHost(expression);
    if (isIp || steered.has(host) || names.has(host) || coveringDomain(host)) continue;
    steered.add(host);
    add(host, 'P');
  }
  warnings.sort((a, b) => a.line - b.line);
  // An expression holds '/', a name never does, and P hosts are not D or H names: every string is distinct, so
  // two equal hashes would be an HMAC-SHA-256 collision. entriesFromPairs refuses duplicates regardless.
  return { entries: entriesFromPairs(pairs), counts, warnings };
}

export interface BuildOptions {
  readonly listId: string;
  readonly serial: number;
  /** Seconds since the epoch. */
  readonly created: number;
  readonly expires: number;
  readonly key: ListKey;
}

export interface BuildResult {
  /** Undefined when the source has errors. */
  readonly full?: FullList;
  readonly bytes?: Buffer;
  readonly counts?: KindCounts;
  readonly errors: SourceProblem[];
  readonly warnings: SourceWarning[];
}

/**
 * Builds a FULL from source bytes. Deterministic: the same source, key and options give the same bytes. Returns
 * the source's errors instead of a FULL when there are any. RangeError for options a FULL cannot carry.
 */
export function buildFromSource(bytes: Uint8Array, options: BuildOptions): BuildResult {
  if (!isListId(options.listId)) throw new RangeError('list-id is not [a-z0-9][a-z0-9-]{0,62}');
  if (!Number.isSafeInteger(options.serial) || options.serial < 0) throw new RangeError('bad serial');
  if (!(options.expires > options.created && options.expires - options.created <= MAX_LIST_VALIDITY_DAYS * 86400)) {
    throw new RangeError(`expires must be after created, by at most ${MAX_LIST_VALIDITY_DAYS} days`);
  }
  const parsed = parseSource(bytes);
  if (parsed.errors.length > 0) return { errors: parsed.errors, warnings: [] };
  const hashed = hashSource(parsed.entries, options.key);
  const key = options.key;
  const full = makeFull(
    {
      listId: options.listId,
      serial: options.serial,
      created: options.created,
      expires: options.expires,
      // SPEC.md 1.3: a public-mode list carries its key in the header.
      hashKey: key.isPublic ? { mode: 'public', key: key.keyHex() } : { mode: 'licensed', id: key.id },
      extensions: [],
    },
    hashed.entries,
  );
  return { full, bytes: serializeFull(full), counts: hashed.counts, errors: [], warnings: hashed.warnings };
}
