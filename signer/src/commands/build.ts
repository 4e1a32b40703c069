/**
 * `hashwall-signer build SOURCE --list-key KEY --list-id ID --serial N --out FILE`: the plaintext source (see
 * source.ts for its format and rules) to a FULL (SPEC.md 2.1). Every error in the source is reported, each as
 * `SOURCE:LINE: CODE: reason`, and nothing is written when there is one. Deterministic: the same source, key and
 * times give the same bytes (give --created to fix the time; it defaults to now).
 */
import { HARD_MAX_LIST_BYTES, formatTime, isListId, makeFull, parseFull, serializeFull } from '@hashwall/format';

import {
  EXIT_CODES_HELP,
  intValue,
  listExpiry,
  parseCommand,
  required,
  timeValue,
  warn,
  type Io,
} from '../cli-support.js';
import { EXIT_OK, SignerError, usage } from '../errors.js';
import { readCapped, writeFileAtomic } from '../files.js';
import { GUARD_CLI_OPTIONS, GUARD_HELP, guardFromCli, runGuards } from '../guard.js';
import { loadListKey } from '../keys.js';
import { readCurrentIndex, readFull } from '../release-dir.js';
import { MAX_SOURCE_BYTES, buildFromSource } from '../source.js';
import { formatCounts } from './inspect.js';

const HELP = `Usage: hashwall-signer build SOURCE --list-key KEY --list-id ID --serial N --out FILE [options]

Reads the plaintext SOURCE, one entry a line:
  domain NAME    the name and every name below it (D)
  host NAME      that exact name (H)
  url URL        a URL (U), and a P entry for its host so DNS can steer it to a filtering proxy
Blank lines and lines starting with # are ignored. Names and URLs are canonicalized (SPEC.md 1.1, 1.2);
public suffixes, IP addresses as names and malformed entries are refused. All errors are reported, as
SOURCE:LINE: CODE: reason (never echoing the entry), and then nothing is written. The entries are hashed with
the list key (public mode when its id is "public") and written as a FULL to FILE (atomically).
When one name is listed as domain and host, the domain (D) wins; a host that is D- or H-listed, or lies below a
D-listed domain, gets no P entry (it would turn the block into a steer); duplicates are warned about.

Options:
  --list-key FILE       the list hash key (from "keygen --list-key")
  --list-id ID          the list-id ([a-z0-9][a-z0-9-]{0,62})
  --serial N            the serial; must increase with every publish (e.g. $(date -u +%Y%m%d%H))
  --created TIME        YYYY-MM-DDTHH:MM:SSZ (default now, to the second)
  --expires TIME        the FULL's expiry, at most 31 days after --created
  --validity-days D     instead of --expires: D days after --created (default 7, at most 31)
  --out FILE            the FULL to write
  --release DIR         the release directory this list will be published to: the change gate compares with
                        the FULL its index names (without it, only publish checks the change)
  -h, --help            this help

${GUARD_HELP}
  At build an override is recorded in the FULL (and so in every delta to it).

${EXIT_CODES_HELP}
`;

const SPEC = {
  name: 'build',
  help: HELP,
  positionals: [1, 1] as const,
  options: {
    'list-key': { type: 'string' },
    'list-id': { type: 'string' },
    serial: { type: 'string' },
    created: { type: 'string' },
    expires: { type: 'string' },
    'validity-days': { type: 'string' },
    out: { type: 'string' },
    release: { type: 'string' },
    ...GUARD_CLI_OPTIONS,
  },
} as const;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommand(SPEC, argv, io);
  if (!args) return EXIT_OK;
  const v = args.values;
  const sourcePath = args.positionals[0]!;
  const listId = required(v['list-id'], 'list-id', 'build');
  if (!isListId(listId)) throw usage('--list-id: not [a-z0-9][a-z0-9-]{0,62}');
  const serial = intValue(required(v.serial, 'serial', 'build'), 'serial', 0, Number.MAX_SAFE_INTEGER)!;
  const out = required(v.out, 'out', 'build');
  const created = timeValue(v.created, 'created') ?? io.now();
  const expires = listExpiry(created, v.expires, v['validity-days']);
  const key = await loadListKey(required(v['list-key'], 'list-key', 'build'), io);
  const source = await readCapped(sourcePath, MAX_SOURCE_BYTES, 'source');
  const result = buildFromSource(source, { listId, serial, created, expires, key });
  for (const e of result.errors) io.err(`${sourcePath}:${e.line}: ${e.code}: ${e.message}`);
  if (result.errors.length > 0 || !result.bytes || !result.counts) {
    throw new SignerError('SOURCE_INVALID', `${result.errors.length} error(s) in ${sourcePath}; nothing written`);
  }
  for (const w of result.warnings) io.err(`${sourcePath}:${w.line}: warning: ${w.message}`);
  const guard = await guardFromCli(v, key.hashKey());
  const built = parseFull(result.bytes, { maxBytes: HARD_MAX_LIST_BYTES });
  const current = v.release !== undefined ? await readCurrentIndex(v.release) : undefined;
  const previous = current ? (await readFull(v.release!, current.index.full.path)).full : undefined;
  const extensions = runGuards(built, { ...guard, ...(previous ? { previous } : {}) }, (m) => warn(io, m));
  const bytes =
    extensions.length === 0 ? result.bytes : serializeFull(makeFull({ ...built.header, extensions }, built.entries));
  await writeFileAtomic(out, bytes);
  const total = Object.values(result.counts).reduce((a, b) => a + b, 0);
  io.out(
    `built ${listId} serial ${serial}: ${total} entries (${formatCounts(result.counts)}), ` +
      `hash-key-id ${key.id}, expires ${formatTime(expires)} -> ${out}` +
      (result.warnings.length ? `; ${result.warnings.length} warning(s)` : ''),
  );
  return EXIT_OK;
}
