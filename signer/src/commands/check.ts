/**
 * `hashwall-signer check NAME|URL... --full FILE --list-key KEY`: whether and how each name or URL is listed in a
 * FULL (for auditors holding the list key). A name gets the daemon's suffix walk; a URL (anything with a `/`)
 * gets its Safe Browsing expressions tested against U entries, plus the walk for its host.
 */
import {
  FormatError,
  HARD_MAX_LIST_BYTES,
  ListKey,
  ListMatcher,
  formatTime,
  parseFull,
  type FullList,
  type HashKey,
} from '@hashwall/format';

import { EXIT_CODES_HELP, parseCommand, required, type Io } from '../cli-support.js';
import { EXIT_OK, EXIT_REFUSED, EXIT_USAGE } from '../errors.js';
import { readCapped } from '../files.js';
import { loadListKey } from '../keys.js';
import { lookupName, lookupUrl, type NameMatch, type NameResult } from '../lookup.js';

const MEANING: Record<string, string> = {
  D: 'blocked: D entry (the name and every name below it)',
  H: 'blocked: H entry (this exact name)',
  P: 'steered to a filtering proxy: P entry (a host with listed URLs)',
};

function describeMatch(m: NameMatch): string {
  return m.effective
    ? `${m.kind} entry for ${m.name}`
    : `${m.kind} entry for ${m.name}, without effect: ${m.note ?? ''}`;
}

function nameLines(r: NameResult, indent: string): string[] {
  const lines: string[] = [];
  if (r.verdict) {
    const how = MEANING[r.verdict.kind] ?? r.verdict.kind;
    lines.push(`${indent}${r.name}: ${how}${r.verdict.name === r.name ? '' : ` for ${r.verdict.name}`}`);
  } else {
    lines.push(`${indent}${r.name}: not listed for DNS`);
  }
  for (const m of r.matches) if (m !== r.verdict) lines.push(`${indent}  also: ${describeMatch(m)}`);
  return lines;
}

/** The key to hash with: the FULL's own key in public mode, else the licensed key, whose id must match. */
export function keyForList(full: FullList, listKey: ListKey | undefined): HashKey {
  const ref = full.header.hashKey;
  if (ref.mode === 'public') return new ListKey('public', Buffer.from(ref.key, 'hex')).hashKey();
  if (listKey === undefined) {
    throw new FormatError(
      'UNKNOWN_HASH_KEY',
      `the list is hashed with the licensed key "${ref.id}": give it with --list-key`,
    );
  }
  if (listKey.id !== ref.id) {
    throw new FormatError('UNKNOWN_HASH_KEY', `the list is hashed with key "${ref.id}", not "${listKey.id}"`);
  }
  return listKey.hashKey();
}

/** Checks each target; returns the lines to print and the exit code (0 all listed, 1 some not, 2 some invalid). */
export function checkTargets(
  full: FullList,
  key: HashKey,
  targets: readonly string[],
): { lines: string[]; code: number } {
  // The daemon's own matcher decides the verdicts; lookup.ts adds the details.
  const matcher = new ListMatcher(full.header.listId, key, full.entries.hashes, full.entries.kinds);
  const lines: string[] = [];
  let code = EXIT_OK;
  for (const target of targets) {
    try {
      if (target.includes('/')) {
        const r = lookupUrl(full.entries, key, target, matcher);
        if (r.listed.length > 0) {
          lines.push(`${r.url}: URL listed (U) as ${r.listed.join(', ')}`);
        } else {
          lines.push(`${r.url}: URL not listed (none of its ${r.expressions.length} expressions is a U entry)`);
        }
        if (r.host) lines.push(...nameLines(r.host, '  host '));
        if (r.listed.length === 0 && !r.host?.verdict) code = Math.max(code, EXIT_REFUSED);
      } else {
        const r = lookupName(full.entries, key, target, matcher);
        lines.push(...nameLines(r, ''));
        if (!r.verdict) code = Math.max(code, EXIT_REFUSED);
      }
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      lines.push(`${target}: cannot be listed: ${err.code}: ${err.message}`);
      code = EXIT_USAGE;
    }
  }
  return { lines, code };
}

const HELP = `Usage: hashwall-signer check NAME|URL ... --full FILE [--list-key KEY]

Says whether and how each NAME or URL is listed in the FULL (for auditors holding the list key). A name goes
through the daemon's walk (SPEC.md 1.4): the name itself against D, H and P, then each parent against D;
the first match decides (D, H: blocked; P: steered to a filtering proxy). An argument with a "/" is a URL: its
Safe Browsing expressions are tested against U entries, and its host goes through the walk. The FULL's
signatures are not checked here: run "verify" on the release it came from.

Options:
  --full FILE       the FULL to look in
  --list-key FILE   the list key (not needed for a public-mode list)
  -h, --help        this help

Exit 0 when every argument is listed (any kind), 1 when one is not, 2 when one is not a valid name or URL.
${EXIT_CODES_HELP}
`;

const SPEC = {
  name: 'check',
  help: HELP,
  positionals: [1, Infinity] as const,
  options: { full: { type: 'string' }, 'list-key': { type: 'string' } },
} as const;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommand(SPEC, argv, io);
  if (!args) return EXIT_OK;
  const path = required(args.values.full, 'full', 'check');
  const full = parseFull(await readCapped(path, HARD_MAX_LIST_BYTES, 'FULL'), { maxBytes: HARD_MAX_LIST_BYTES });
  const listKey = args.values['list-key'] !== undefined ? await loadListKey(args.values['list-key'], io) : undefined;
  const key = keyForList(full, listKey);
  const h = full.header;
  io.out(`${h.listId} serial ${h.serial} (expires ${formatTime(h.expires)}), ${full.entries.count} entries`);
  const { lines, code } = checkTargets(full, key, args.positionals);
  for (const line of lines) io.out(line);
  return code;
}
