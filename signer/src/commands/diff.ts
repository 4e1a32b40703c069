/**
 * `hashwall-signer diff A B`: how FULL B differs from FULL A, as counts of removals and additions by kind (a
 * changed kind counts as one of each, as in a delta, SPEC.md 2.2). There is no plaintext to show: only hashes.
 */
import {
  FormatError,
  HARD_MAX_LIST_BYTES,
  KINDS,
  computeDelta,
  makeFull,
  parseFull,
  type FullList,
  type Kind,
} from '@hashwall/format';

import { EXIT_CODES_HELP, parseCommand, type Io } from '../cli-support.js';
import { EXIT_OK } from '../errors.js';
import { readCapped } from '../files.js';
import { countKinds } from './inspect.js';

export interface DiffResult {
  readonly removed: Record<Kind, number>;
  readonly added: Record<Kind, number>;
  /** Hashes present in both with another kind (each also counted in removed and added). */
  readonly changedKind: number;
  readonly warnings: readonly string[];
}

/** Counts of what B removes from and adds to A. LIST_MISMATCH for two different lists. */
export function diffLists(a: FullList, b: FullList): DiffResult {
  if (a.header.listId !== b.header.listId) {
    throw new FormatError('LIST_MISMATCH', `A is list ${a.header.listId}, B is list ${b.header.listId}`);
  }
  const warnings: string[] = [];
  const ka = a.header.hashKey;
  const kb = b.header.hashKey;
  if (JSON.stringify(ka) !== JSON.stringify(kb)) {
    warnings.push('A and B are hashed with different keys: no hash can match, so every entry differs');
  }
  if (a.header.serial === b.header.serial && a.bodySha256 !== b.bodySha256) {
    warnings.push(`both are serial ${a.header.serial} with different bodies: clients treat that as equivocation`);
  }
  if (a.header.serial > b.header.serial) warnings.push('B has a lower serial than A');
  // computeDelta wants base < target by serial; only the entries matter here, so give the target a higher one.
  const target = makeFull({ ...b.header, serial: a.header.serial + 1 }, b.entries);
  const delta = computeDelta(a, target);
  const removed = countKinds(delta.removals);
  const added = countKinds(delta.additions);
  let changedKind = 0;
  {
    const r = new Set<string>();
    for (let n = 0; n < delta.removals.count; n++) {
      r.add(Buffer.from(delta.removals.hashes.subarray(n * 32, n * 32 + 32)).toString('hex'));
    }
    for (let n = 0; n < delta.additions.count; n++) {
      if (r.has(Buffer.from(delta.additions.hashes.subarray(n * 32, n * 32 + 32)).toString('hex'))) changedKind++;
    }
  }
  return { removed, added, changedKind, warnings };
}

const HELP = `Usage: hashwall-signer diff A B

Compares two FULLs of the same list: how many entries of each kind (D H U P) B removes from A and adds to it.
A hash whose kind changed counts as one removal and one addition. No names are shown: a FULL holds only hashes.

Options:
  -h, --help    this help

${EXIT_CODES_HELP}
`;

const SPEC = { name: 'diff', help: HELP, positionals: [2, 2] as const, options: {} } as const;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommand(SPEC, argv, io);
  if (!args) return EXIT_OK;
  const [pa, pb] = args.positionals as [string, string];
  const a = parseFull(await readCapped(pa, HARD_MAX_LIST_BYTES, 'FULL'), { maxBytes: HARD_MAX_LIST_BYTES });
  const b = parseFull(await readCapped(pb, HARD_MAX_LIST_BYTES, 'FULL'), { maxBytes: HARD_MAX_LIST_BYTES });
  const d = diffLists(a, b);
  for (const w of d.warnings) io.err(`warning: ${w}`);
  io.out(`A: ${a.header.listId} serial ${a.header.serial}, ${a.entries.count} entries`);
  io.out(`B: ${b.header.listId} serial ${b.header.serial}, ${b.entries.count} entries`);
  io.out('kind  removed  added');
  for (const k of KINDS) io.out(`${k}     ${String(d.removed[k]).padStart(7)}  ${String(d.added[k]).padStart(5)}`);
  const totalR = KINDS.reduce((s, k) => s + d.removed[k], 0);
  const totalA = KINDS.reduce((s, k) => s + d.added[k], 0);
  io.out(`all   ${String(totalR).padStart(7)}  ${String(totalA).padStart(5)}`);
  if (d.changedKind > 0) io.out(`${d.changedKind} hash(es) changed kind (counted as a removal and an addition)`);
  return EXIT_OK;
}
