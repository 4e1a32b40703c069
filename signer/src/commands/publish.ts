/**
 * `hashwall-signer publish FULL --dir DIR --key KEY...`: adds a new serial to a release directory (SPEC.md 4):
 * `full/<serial>.hwl`, deltas from the last N FULLs still present, and a new `index.hwl` with seq + 1, every file
 * signed by every key (the first key writes `X.minisig`, the others `X.<KEYID>.minisig`, SPEC.md 3). The write
 * order keeps the previous release readable at every moment (release-dir.ts).
 */
import { join } from 'node:path';

import {
  CLOCK_SKEW_SECONDS,
  FormatError,
  HARD_MAX_LIST_BYTES,
  INDEX_PATH,
  MAX_INDEX_VALIDITY_DAYS,
  applyDelta,
  buildRelease,
  checkWindow,
  formatTime,
  fullPath,
  parseDelta,
  parseFull,
  parseSignatureFileName,
  serializeFull,
  sha256Hex,
  verifySignature,
  type FullList,
  type MinisignSecretKey,
} from '@hashwall/format';

import {
  EXIT_CODES_HELP,
  PASSWORD_HELP,
  intValue,
  parseCommand,
  required,
  timeValue,
  warn,
  type Io,
} from '../cli-support.js';
import { EXIT_OK, SignerError, usage } from '../errors.js';
import { acquireLock, ensureDir, listDir, readCapped, removeFile, removeStaleTemps } from '../files.js';
import { GUARD_CLI_OPTIONS, GUARD_HELP, guardFromCli, runGuards, type GuardOptions } from '../guard.js';
import { signingKeyring } from '../keyring-dir.js';
import { loadListKey, loadSecretKeys } from '../keys.js';
import { ReleaseLog, loadLogConfig, type LogConfig } from '../log.js';
import { keyForList } from './check.js';
import { presentFullSerials, readCurrentIndex, readFull, signatureFilesOf, writeReleaseFiles } from '../release-dir.js';

export const DEFAULT_DELTAS = 7;
export const DEFAULT_INDEX_VALIDITY_HOURS = 48;
export const DEFAULT_MIN_POLL_SECONDS = 900;

export interface PublishOptions {
  readonly dir: string;
  /** The new FULL, as `build` wrote it. */
  readonly fullBytes: Uint8Array;
  readonly signers: readonly MinisignSecretKey[];
  /**
   * Deltas from this many of the latest published FULLs still present (the current index's serial and its delta
   * bases; default 7, 0 for none).
   */
  readonly deltas?: number;
  /** Index validity, seconds (at most 7 days, SPEC.md 2.3); clamped to the FULL's expiry. */
  readonly indexValiditySeconds?: number;
  readonly minPollSeconds?: number;
  /** The index seq; default the current seq + 1 (1 for a new directory). Must rise. */
  readonly seq?: number;
  /** Seconds since the epoch: the index's `created`, and the time the FULL is checked against. */
  readonly now: number;
  /** After the new index is in place, delete FULLs and deltas (and their signatures) it does not need. */
  readonly prune?: boolean;
  /** Gates against over-blocking (guard.ts); the command line always sets them. */
  readonly guard?: Omit<GuardOptions, 'previous'>;
  /** The release log (SPEC.md 6): the index is logged and cosigned before it is published (log.ts). */
  readonly log?: LogConfig;
  readonly warn: (message: string) => void;
}

export interface PublishReport {
  readonly listId: string;
  readonly serial: number;
  readonly seq: number;
  readonly indexExpires: number;
  /** Base serials of the deltas written. */
  readonly deltaBases: readonly number[];
  /** Release paths written (data files and signatures). */
  readonly written: readonly string[];
  readonly pruned: readonly string[];
  /** The leaf the index occupies in the release log, and the witnesses that cosigned; absent without a log. */
  readonly log?: { readonly logIndex: number; readonly size: number; readonly cosigners: readonly string[] };
}

/** Checks what `buildRelease` made before anything is written: each delta rebuilds the FULL; each signature holds. */
function selfCheck(
  files: ReadonlyMap<string, Uint8Array>,
  full: Uint8Array,
  bases: readonly FullList[],
  signers: readonly MinisignSecretKey[],
): void {
  for (const [name, bytes] of files) {
    const sig = parseSignatureFileName(name);
    if (sig !== undefined) {
      const data = files.get(sig.fileName);
      const key = sig.keyId === undefined ? signers[0] : signers.find((k) => k.keyId === sig.keyId);
      if (data === undefined || key === undefined) throw new Error(`internal: stray signature ${name}`);
      verifySignature(data, bytes, key.publicKey);
      continue;
    }
    if (!name.endsWith('.hwld')) continue;
    const delta = parseDelta(bytes, { maxBytes: HARD_MAX_LIST_BYTES });
    const base = bases.find((b) => b.header.serial === delta.header.baseSerial);
    if (base === undefined || !serializeFull(applyDelta(base, delta)).equals(full)) {
      throw new Error(`internal: ${name} does not rebuild the FULL`);
    }
  }
}

/** Publishes a new serial into `options.dir` (see the file header). Takes the directory's lock. */
export async function publish(options: PublishOptions): Promise<PublishReport> {
  const { dir, now } = options;
  if (options.signers.length === 0) throw usage('publish: at least one --key is needed');
  const fullBytes = Buffer.from(options.fullBytes);
  const full = parseFull(fullBytes, { maxBytes: HARD_MAX_LIST_BYTES });
  if (!serializeFull(full).equals(fullBytes))
    throw new FormatError('MALFORMED', 'the FULL is not in its one byte form');
  const h = full.header;
  // SPEC.md 4.1: a daemon refuses a FULL outside `created <= now + 300s < expires`; so does the publisher.
  checkWindow('the FULL', h.created, h.expires, now);
  const validity = options.indexValiditySeconds ?? DEFAULT_INDEX_VALIDITY_HOURS * 3600;
  if (!(validity > 0 && validity <= MAX_INDEX_VALIDITY_DAYS * 86400)) throw new RangeError('bad index validity');

  for (const sub of ['full', 'delta']) await ensureDir(join(dir, sub));
  const release = await acquireLock(dir, options.warn);
  try {
    for (const sub of ['', 'full', 'delta']) await removeStaleTemps(join(dir, sub));
    const current = await readCurrentIndex(dir);
    const log = await ReleaseLog.open(dir, options.log, options.warn);
    const present = await presentFullSerials(dir);
    let seq: number;
    if (current) {
      const x = current.index.header;
      if (x.listId !== h.listId) {
        throw new FormatError('LIST_MISMATCH', `${dir} holds list ${x.listId}; the FULL is for ${h.listId}`);
      }
      if (h.serial <= x.serial) {
        throw new FormatError('ROLLBACK', `serial ${h.serial} does not increase over the published serial ${x.serial}`);
      }
      seq = options.seq ?? x.seq + 1;
      if (seq <= x.seq)
        throw new FormatError('ROLLBACK', `seq ${seq} does not increase over the published seq ${x.seq}`);
    } else {
      const others = present.filter((s) => s !== h.serial);
      if (options.seq === undefined && others.length > 0) {
        // FULLs without an index: the index was lost, or this is the wrong directory. Clients of a lost release
        // hold its seq and would refuse seq 1 as a rollback, so the maintainer must say which seq comes next.
        throw new SignerError(
          'USAGE',
          `${dir} has FULLs but no ${INDEX_PATH}; if it was published before, pass --seq above the last published seq`,
        );
      }
      seq = options.seq ?? 1;
    }
    if (!Number.isSafeInteger(seq) || seq < 1) throw usage('--seq must be a positive integer');
    if (log?.last && options.seq === undefined) seq = Math.max(seq, log.last.index.header.seq + 1);
    log?.checkSuccessor({ seq, serial: h.serial, full: { size: fullBytes.length, sha256: sha256Hex(fullBytes) } });

    if (present.includes(h.serial)) {
      // Left by an interrupted publish: never named by an index (the serial is above the published one).
      const old = await readCapped(join(dir, fullPath(h.serial)), HARD_MAX_LIST_BYTES, 'FULL');
      if (!old.equals(fullBytes)) options.warn(`replacing ${fullPath(h.serial)}, left by an interrupted publish`);
    }
    // Delta bases: the latest published serials still present, i.e. the current index's serial and the bases of
    // its deltas. A FULL that no index ever named (left by an interrupted publish of a serial that was then
    // skipped) is no base: no client holds it, and it may lack its signature.
    const published = current ? [current.index.header.serial, ...current.index.deltas.map((d) => d.baseSerial)] : [];
    const bases: FullList[] = [];
    const wanted = options.deltas ?? DEFAULT_DELTAS;
    for (const serial of present
      .filter((s) => s < h.serial && published.includes(s))
      .reverse()
      .slice(0, wanted)) {
      const { full: base } = await readFull(dir, fullPath(serial));
      if (base.header.serial !== serial) {
        throw new FormatError('MALFORMED', `${fullPath(serial)} holds serial ${base.header.serial}`);
      }
      if (base.header.listId !== h.listId) {
        throw new FormatError('LIST_MISMATCH', `${fullPath(serial)} is for list ${base.header.listId}`);
      }
      bases.push(base);
    }

    let expires = now + validity;
    if (expires > h.expires) {
      expires = h.expires;
      options.warn(`the index expires with the FULL at ${formatTime(h.expires)}: publish a new serial before then`);
    }
    const keyring = await signingKeyring(dir, h.listId, options.signers, now, options.warn); // SPEC.md 5.3
    const indexExtensions = options.guard
      ? runGuards(
          full,
          { ...options.guard, ...(current ? { previous: await publishedFull(dir, current) } : {}) },
          options.warn,
        )
      : [];
    const built = buildRelease({
      full,
      bases,
      seq,
      created: now,
      expires,
      minPoll: options.minPollSeconds ?? DEFAULT_MIN_POLL_SECONDS,
      signers: options.signers,
      ...(keyring === undefined ? {} : { keyring }),
      indexExtensions,
    });
    const logged = log ? await log.append(built.files, options.signers) : undefined;
    const { files, index } = logged ? { files: logged.files, index: built.index } : built;
    selfCheck(files, fullBytes, bases, options.signers);
    await writeReleaseFiles(dir, files, { replaceSignatures: true });

    const pruned: string[] = [];
    if (options.prune) {
      const keep = new Set<string>([index.full.path, ...index.deltas.map((d) => d.path)]);
      for (const d of index.deltas) keep.add(fullPath(d.baseSerial)); // verify checks each delta against its base
      for (const sub of ['full', 'delta']) {
        for (const name of await listData(dir, sub)) {
          const path = `${sub}/${name}`;
          if (keep.has(path)) continue;
          for (const sig of await signatureFilesOf(dir, path)) await removeFile(join(dir, sig));
          await removeFile(join(dir, path));
          pruned.push(path);
        }
      }
    }
    return {
      listId: h.listId,
      serial: h.serial,
      seq,
      indexExpires: expires,
      deltaBases: index.deltas.map((d) => d.baseSerial),
      written: [...files.keys()],
      pruned,
      ...(logged ? { log: { logIndex: logged.logIndex, size: logged.size, cosigners: logged.cosigners } } : {}),
    };
  } finally {
    await release();
  }
}

/** The FULL the current index names (the last release), for the change gate. */
async function publishedFull(dir: string, current: { index: { full: { path: string } } }): Promise<FullList> {
  return (await readFull(dir, current.index.full.path)).full;
}

/** The line that reports what the release log did. */
export function logLine(log: NonNullable<PublishReport['log']>): string {
  const who = log.cosigners.length > 0 ? `cosigned by ${log.cosigners.join(', ')}` : 'not cosigned (no witness needed)';
  return `logged as leaf ${log.logIndex} of the release log (size ${log.size}), ${who}`;
}

/** Data files (not signatures, not temp files) in `dir/sub`. */
async function listData(dir: string, sub: string): Promise<string[]> {
  return (await listDir(join(dir, sub))).filter(
    (n) => !n.startsWith('.') && parseSignatureFileName(n) === undefined && /\.(hwl|hwld)$/.test(n),
  );
}

const HELP = `Usage: hashwall-signer publish FULL --dir DIR --key KEY [--key KEY2 ...] [options]

Adds the FULL (from "hashwall-signer build") to the release directory DIR as full/<serial>.hwl, writes deltas
from the latest FULLs still in DIR, and a new index.hwl with seq = the current seq + 1, every file signed by
every --key. Refuses a serial that does not increase over the current index. Files are written to temp files,
fsynced and renamed, the index last, so a reader never sees a half-written release; a crash leaves the
previous release as it was. A lock file (.hashwall-signer.lock) keeps two publishes apart.

Options:
  --dir DIR                    the release directory (created if absent)
  --key FILE                   minisign secret key; repeat for more signatures (threshold, key rotation)
  --password-file FILE         password of the matching --key (repeatable, in --key order)
  --deltas N                   deltas from the N latest published FULLs still in DIR (default ${DEFAULT_DELTAS}; 0: none)
  --index-validity-hours H     index validity (default ${DEFAULT_INDEX_VALIDITY_HOURS}, at most ${MAX_INDEX_VALIDITY_DAYS * 24}); never past the FULL's expiry
  --min-poll SECONDS           the index's min-poll (default ${DEFAULT_MIN_POLL_SECONDS}, at least 60)
  --seq N                      the index seq (default current + 1); only to recover a lost directory
  --now TIME                   the time to publish at (YYYY-MM-DDTHH:MM:SSZ; default now)
  --prune                      afterwards, delete FULLs and deltas (and signatures) the new index does not need
  --list-key FILE              the list key the FULL is hashed with (a licensed list: without it the popular-name gate
                               is left to build, with a warning)
  --log FILE                   the release log's config (key, witnesses, threshold; README.md "The release log"):
                               the index is logged in DIR/log/ and cosigned before it is published. Required once
                               DIR has a log
  -h, --help                   this help

${GUARD_HELP}
  At publish the last release is the FULL the current index names; an override is recorded in the index.

${PASSWORD_HELP}

${EXIT_CODES_HELP}
`;

const SPEC = {
  name: 'publish',
  help: HELP,
  positionals: [1, 1] as const,
  options: {
    dir: { type: 'string' },
    key: { type: 'string', multiple: true },
    'password-file': { type: 'string', multiple: true },
    deltas: { type: 'string' },
    'index-validity-hours': { type: 'string' },
    'min-poll': { type: 'string' },
    seq: { type: 'string' },
    now: { type: 'string' },
    prune: { type: 'boolean' },
    'list-key': { type: 'string' },
    ...GUARD_CLI_OPTIONS,
    log: { type: 'string' },
  },
} as const;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommand(SPEC, argv, io);
  if (!args) return EXIT_OK;
  const v = args.values;
  const dir = required(v.dir, 'dir', 'publish');
  const keyPaths = v.key ?? [];
  if (keyPaths.length === 0) throw usage('publish: --key is required');
  const deltas = intValue(v.deltas, 'deltas', 0, 1000);
  const hours = intValue(v['index-validity-hours'], 'index-validity-hours', 1, MAX_INDEX_VALIDITY_DAYS * 24);
  const minPoll = intValue(v['min-poll'], 'min-poll', 60, 86400);
  const seq = intValue(v.seq, 'seq', 1, Number.MAX_SAFE_INTEGER);
  const now = timeValue(v.now, 'now') ?? io.now();
  const fullBytes = await readCapped(args.positionals[0]!, HARD_MAX_LIST_BYTES, 'FULL');
  const signers = await loadSecretKeys(keyPaths, v['password-file'] ?? [], io);
  const listKey = v['list-key'] !== undefined ? await loadListKey(v['list-key'], io) : undefined;
  const parsed = parseFull(fullBytes, { maxBytes: HARD_MAX_LIST_BYTES });
  const hashKey = listKey || parsed.header.hashKey.mode === 'public' ? keyForList(parsed, listKey) : undefined;
  const guard = await guardFromCli(v, hashKey);
  const log = v.log !== undefined ? await loadLogConfig(v.log, io) : undefined;
  const report = await publish({
    dir,
    fullBytes,
    signers,
    ...(deltas !== undefined ? { deltas } : {}),
    ...(hours !== undefined ? { indexValiditySeconds: hours * 3600 } : {}),
    ...(minPoll !== undefined ? { minPollSeconds: minPoll } : {}),
    ...(seq !== undefined ? { seq } : {}),
    now,
    prune: v.prune ?? false,
    guard,
    ...(log ? { log } : {}),
    warn: (m) => warn(io, m),
  });
  io.out(
    `published ${report.listId} serial ${report.serial} as seq ${report.seq} in ${dir}: ` +
      `${report.deltaBases.length} delta(s)${report.deltaBases.length ? ` from ${report.deltaBases.join(', ')}` : ''}, ` +
      `signed by ${signers.map((k) => k.keyId).join(', ')}; index expires ${formatTime(report.indexExpires)}`,
  );
  if (report.log) io.out(logLine(report.log));
  if (report.pruned.length > 0) io.out(`pruned ${report.pruned.length} file(s): ${report.pruned.join(', ')}`);
  if (report.indexExpires - now < CLOCK_SKEW_SECONDS * 2) warn(io, 'the index expires within minutes');
  return EXIT_OK;
}
