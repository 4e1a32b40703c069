/**
 * Gates against over-blocking, run by `build` and `publish`: a list that would block a popular name, or that
 * grows or shrinks by more than a set share and count since the last release, is refused unless the maintainer
 * overrides it with a reason, which is then recorded in the release (`x-override: <reason>`, SPEC.md 2).
 *
 * Popular names are tested the way a daemon tests a query (SPEC.md 1.4), by the daemon's own matcher over the
 * hashed FULL: a D entry on the name or on any parent that is not a public suffix, or an H entry on the name,
 * blocks it; a U entry on the bare host (`name/`) or a parent's blocks the whole site at a filtering proxy. P
 * entries only steer and never count. Names come canonical (SPEC.md 1.1) from the bundled top-sites list of
 * @hashwall/format (`data/top-sites.txt`, which hashwalld guards too) and from the maintainer's own files; errors
 * name a list and a line, never a listed name. The change counts are the format's, as a daemon counts them.
 */
import {
  FormatError,
  ListMatcher,
  TOP_SITES_URL,
  changeAllowance,
  changeCounts,
  parseGuardNames,
  testedSuffixes,
  type Extension,
  type FullList,
  type GuardName,
  type HashKey,
} from '@hashwall/format';

import { intValue } from './cli-support.js';
import { SignerError } from './errors.js';
import { findHash } from './lookup.js';
import { readCapped } from './files.js';

/** Default cap on additions, and on removals, since the last release: this percentage of its entries ... */
export const DEFAULT_MAX_CHANGE_PERCENT = 25;
/** ... or this many entries, whichever is larger. */
export const DEFAULT_MAX_CHANGE_COUNT = 100;
/** The longest override reason (it is a header value: printable ASCII, at most this long). */
export const MAX_OVERRIDE_REASON = 200;

export type { GuardName };

/** Reads a file of names: one a line, `#` comments and blank lines ignored, each canonicalized (SPEC.md 1.1). */
export async function loadGuardNames(path: string | URL, label?: string): Promise<GuardName[]> {
  const text = (await readCapped(path instanceof URL ? path.pathname : path, 4 * 1024 * 1024, 'guard names')).toString(
    'utf8',
  );
  try {
    return parseGuardNames(text, label ?? String(path));
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    throw new SignerError('USAGE', err.message);
  }
}

/** The bundled popular names (@hashwall/format's `data/top-sites.txt`) and the maintainer's own files. */
export async function guardNames(files: readonly string[], bundled = true): Promise<GuardName[]> {
  const out = bundled ? await loadGuardNames(TOP_SITES_URL, 'top-sites.txt') : [];
  for (const f of files) out.push(...(await loadGuardNames(f)));
  return out;
}

/** The guard names a FULL would block (see the file header), each with how. */
export function popularHits(
  full: FullList,
  key: HashKey,
  names: readonly GuardName[],
): { from: string; how: string }[] {
  const { entries } = full;
  const matcher = new ListMatcher(full.header.listId, key, entries.hashes, entries.kinds);
  const hits: { from: string; how: string }[] = [];
  for (const g of names) {
    const v = matcher.verdict(g.name);
    if (v != null && v.kind !== 'P') {
      hits.push({ from: g.from, how: v.matchStart === 0 ? `${v.kind} entry on the name` : 'D entry on a parent' });
      continue;
    }
    if (testedSuffixes(g.name).some((s) => findHash(entries, key.hash(`${s}/`)) === 'U')) {
      hits.push({ from: g.from, how: 'U entry on the whole site' });
    }
  }
  return hits;
}

export interface GuardOptions {
  /** Names not to block. */
  readonly names: readonly GuardName[];
  /** The list key the FULL is hashed with; without it the popular-name gate is skipped, with a warning. */
  readonly key?: HashKey;
  /** The FULL of the last release, for the change gate (none: a first release, no change gate). */
  readonly previous?: FullList;
  readonly maxChangePercent?: number;
  readonly maxChangeCount?: number;
  /** Why the maintainer publishes a list the gates refuse; recorded as `x-override`. */
  readonly override?: string;
}

/**
 * Runs the gates on `full`. Returns the header extensions to record (`x-override: <reason>` when a gate was
 * overridden, else none). Throws SignerError GUARD_POPULAR or GUARD_CHANGE, naming every
 * failed gate, when one fails and there is no override; `warn` tells what an override let through.
 */
export function runGuards(full: FullList, options: GuardOptions, warn: (message: string) => void): Extension[] {
  const failures: { code: 'GUARD_POPULAR' | 'GUARD_CHANGE'; message: string }[] = [];
  if (options.key === undefined) {
    // A licensed list published without its key: `build` ran this gate on the plaintext names.
    warn('popular names not checked at publish: give --list-key (build checked them)');
  } else {
    const hits = popularHits(full, options.key, options.names);
    if (hits.length > 0) {
      const shown = hits.slice(0, 10).map((h) => `${h.from} (${h.how})`);
      failures.push({
        code: 'GUARD_POPULAR',
        message: `the list blocks ${hits.length} popular name(s): ${shown.join(', ')}${hits.length > 10 ? ', ...' : ''}`,
      });
    }
  }
  if (options.previous) {
    const prev = options.previous.entries.count;
    const pct = options.maxChangePercent ?? DEFAULT_MAX_CHANGE_PERCENT;
    const allowed = changeAllowance(prev, pct, options.maxChangeCount ?? DEFAULT_MAX_CHANGE_COUNT);
    const { added, removed } = changeCounts(options.previous.entries, full.entries);
    for (const [n, verb] of [
      [added, 'adds'],
      [removed, 'removes'],
    ] as const) {
      if (n > allowed) {
        failures.push({
          code: 'GUARD_CHANGE',
          message: `the list ${verb} ${n} entries since serial ${options.previous.header.serial} (of ${prev}); at most ${allowed} at once`,
        });
      }
    }
  }
  if (failures.length === 0) {
    if (options.override !== undefined) warn('every gate passed: --override is not recorded');
    return [];
  }
  const text = failures.map((f) => `${f.code}: ${f.message}`).join('; ');
  if (options.override === undefined) {
    throw new SignerError(
      failures[0]!.code,
      `${failures.map((f) => f.message).join('; ')} (if this is intended, give --override REASON)`,
    );
  }
  warn(`overridden (${options.override}): ${text}`);
  return [['x-override', options.override]];
}

/** Checks an override reason given on the command line: a header value (SPEC.md 2), at most 200 characters. */
export function overrideReason(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[!-~](?:[ -~]*[!-~])?$/.test(value) || value.length > MAX_OVERRIDE_REASON) {
    throw new SignerError(
      'USAGE',
      `--override: a reason of printable ASCII, at most ${MAX_OVERRIDE_REASON} characters, no edge spaces`,
    );
  }
  return value;
}

/** The gate options `build` and `publish` share (node:util parseArgs form). */
export const GUARD_CLI_OPTIONS = {
  'guard-names': { type: 'string', multiple: true },
  'max-change-percent': { type: 'string' },
  'max-change-count': { type: 'string' },
  override: { type: 'string' },
} as const;

export const GUARD_HELP = `Gates against over-blocking (refused with GUARD_POPULAR or GUARD_CHANGE, exit 1, unless overridden):
  the list must not block a popular name (the bundled top-sites list and every --guard-names file), and must
  not add, nor remove, more than --max-change-percent of the last release's entries or --max-change-count
  entries, whichever is larger (defaults ${DEFAULT_MAX_CHANGE_PERCENT} % and ${DEFAULT_MAX_CHANGE_COUNT}).
  --guard-names FILE         your own names not to block, one a line, # comments (repeatable)
  --max-change-percent P     default ${DEFAULT_MAX_CHANGE_PERCENT}
  --max-change-count N       default ${DEFAULT_MAX_CHANGE_COUNT}
  --override REASON          publish anyway; REASON is recorded in the release as x-override`;

/** The gate options from parsed command-line values. */
export async function guardFromCli(
  v: {
    'guard-names'?: string[] | undefined;
    'max-change-percent'?: string | undefined;
    'max-change-count'?: string | undefined;
    override?: string | undefined;
  },
  key: HashKey | undefined,
): Promise<Omit<GuardOptions, 'previous'>> {
  const pct = intValue(v['max-change-percent'], 'max-change-percent', 0, 100_000);
  const count = intValue(v['max-change-count'], 'max-change-count', 0, Number.MAX_SAFE_INTEGER);
  const override = overrideReason(v.override);
  return {
    names: await guardNames(v['guard-names'] ?? []),
    ...(key === undefined ? {} : { key }),
    ...(pct === undefined ? {} : { maxChangePercent: pct }),
    ...(count === undefined ? {} : { maxChangeCount: count }),
    ...(override === undefined ? {} : { override }),
  };
}
