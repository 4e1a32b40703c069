/**
 * `hashwall-signer heartbeat --dir DIR --key KEY...`: re-signs the index with seq + 1 and a new validity when the
 * list did not change (SPEC.md 2.3, 4.2: clients record the heartbeat). Run it from a timer more often than the
 * index validity, so the index never goes stale. The FULL and deltas are not touched; the index must name them
 * exactly as they are on disk (size and SHA-256), else the heartbeat refuses: publish a new serial instead.
 */
import { join } from 'node:path';

import {
  FormatError,
  HARD_MAX_LIST_BYTES,
  INDEX_PATH,
  MAX_INDEX_VALIDITY_DAYS,
  buildIndex,
  checkWindow,
  formatTime,
  indexTrustedComment,
  parseFull,
  sha256Hex,
  signatures,
  type IndexFileRef,
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
import { EXIT_OK, usage } from '../errors.js';
import { acquireLock, readCapped, removeStaleTemps } from '../files.js';
import { signingKeyring } from '../keyring-dir.js';
import { loadSecretKeys } from '../keys.js';
import { ReleaseLog, loadLogConfig, type LogConfig } from '../log.js';
import { readCurrentIndex, writeReleaseFiles } from '../release-dir.js';
import { DEFAULT_INDEX_VALIDITY_HOURS, logLine, type PublishReport } from './publish.js';

export interface HeartbeatOptions {
  readonly dir: string;
  readonly signers: readonly MinisignSecretKey[];
  /** Seconds (at most 7 days); clamped to the FULL's expiry. */
  readonly indexValiditySeconds?: number;
  /** Default: the current index's. */
  readonly minPollSeconds?: number;
  /** Default: the current seq + 1. */
  readonly seq?: number;
  readonly now: number;
  /** The release log (SPEC.md 6): the new index is logged and cosigned before it is published (log.ts). */
  readonly log?: LogConfig;
  readonly warn: (message: string) => void;
}

export interface HeartbeatReport {
  readonly listId: string;
  readonly serial: number;
  readonly seq: number;
  readonly indexExpires: number;
  readonly log?: PublishReport['log'];
}

/** Reads a file the index names and checks it is exactly what the index says. */
async function readListed(dir: string, ref: IndexFileRef): Promise<Buffer> {
  const bytes = await readCapped(join(dir, ref.path), HARD_MAX_LIST_BYTES, 'release file');
  if (bytes.length !== ref.size) {
    throw new FormatError('SIZE_MISMATCH', `${ref.path} is ${bytes.length} bytes; the index says ${ref.size}`);
  }
  if (sha256Hex(bytes) !== ref.sha256) {
    throw new FormatError('DIGEST_MISMATCH', `${ref.path} does not match the SHA-256 in the index`);
  }
  return bytes;
}

export async function heartbeat(options: HeartbeatOptions): Promise<HeartbeatReport> {
  const { dir, now } = options;
  if (options.signers.length === 0) throw usage('heartbeat: at least one --key is needed');
  const validity = options.indexValiditySeconds ?? DEFAULT_INDEX_VALIDITY_HOURS * 3600;
  if (!(validity > 0 && validity <= MAX_INDEX_VALIDITY_DAYS * 86400)) throw new RangeError('bad index validity');
  const release = await acquireLock(dir, options.warn);
  try {
    await removeStaleTemps(dir);
    const current = await readCurrentIndex(dir);
    if (!current) throw new FormatError('FETCH_FAILED', `${join(dir, INDEX_PATH)} does not exist: publish first`);
    const { index } = current;
    const x = index.header;
    const log = await ReleaseLog.open(dir, options.log, options.warn);
    const fullBytes = await readListed(dir, index.full);
    const full = parseFull(fullBytes, { maxBytes: HARD_MAX_LIST_BYTES });
    // A FULL past its expiry is refused by every fresh client: a heartbeat cannot help, a new serial must come.
    checkWindow('the FULL', full.header.created, full.header.expires, now);
    const deltas: { baseSerial: number; bytes: Buffer }[] = [];
    for (const ref of index.deltas) deltas.push({ baseSerial: ref.baseSerial, bytes: await readListed(dir, ref) });
    let seq = options.seq ?? x.seq + 1;
    if (!(seq > x.seq))
      throw new FormatError('ROLLBACK', `seq ${seq} does not increase over the published seq ${x.seq}`);
    if (log?.last && options.seq === undefined) seq = Math.max(seq, log.last.index.header.seq + 1);
    log?.checkSuccessor({ seq, serial: x.serial, full: index.full });
    let expires = now + validity;
    if (expires > full.header.expires) {
      expires = full.header.expires;
      options.warn(`the index expires with the FULL at ${formatTime(expires)}: publish a new serial before then`);
    }
    const keyring = await signingKeyring(dir, x.listId, options.signers, now, options.warn); // SPEC.md 5.3
    const next = buildIndex({
      ...(keyring === undefined ? {} : { keyring }),
      listId: x.listId,
      seq,
      serial: x.serial,
      created: now,
      expires,
      minPoll: options.minPollSeconds ?? x.minPoll,
      fullBytes,
      deltas,
      extensions: x.extensions,
    });
    const files = new Map<string, Uint8Array>([[INDEX_PATH, next.bytes]]);
    const sigs = signatures(INDEX_PATH, next.bytes, indexTrustedComment(next.index.header), options.signers);
    for (const [name, text] of sigs) files.set(name, Buffer.from(text));
    const logged = log ? await log.append(files, options.signers) : undefined;
    await writeReleaseFiles(dir, logged?.files ?? files, { replaceSignatures: true });
    return {
      listId: x.listId,
      serial: x.serial,
      seq,
      indexExpires: expires,
      ...(logged ? { log: { logIndex: logged.logIndex, size: logged.size, cosigners: logged.cosigners } } : {}),
    };
  } finally {
    await release();
  }
}

const HELP = `Usage: hashwall-signer heartbeat --dir DIR --key KEY [--key KEY2 ...] [options]

Re-signs DIR's index.hwl with seq + 1 and a new validity, for the same FULL (SPEC.md 2.3). Run it from a timer
well within the index validity (say every 12 hours for the default 48) so clients never see a stale index.
Checks that the FULL and deltas on disk are the ones the index names, and refuses when the FULL has expired
(build and publish a new serial then). Signatures a second maintainer added to the old index are removed: with
a threshold above one, give every needed --key here, or have them run "sign --add" again.

Options:
  --dir DIR                    the release directory
  --key FILE                   minisign secret key; repeat for more signatures
  --password-file FILE         password of the matching --key (repeatable, in --key order)
  --index-validity-hours H     index validity (default ${DEFAULT_INDEX_VALIDITY_HOURS}, at most ${MAX_INDEX_VALIDITY_DAYS * 24}); never past the FULL's expiry
  --min-poll SECONDS           a new min-poll (default: keep the current one)
  --seq N                      the new seq (default current + 1)
  --now TIME                   the time to sign at (YYYY-MM-DDTHH:MM:SSZ; default now)
  --log FILE                   the release log's config, as for publish: the new index is logged and cosigned
                               before it is published. Required once DIR has a log
  -h, --help                   this help

${PASSWORD_HELP}

${EXIT_CODES_HELP}
`;

const SPEC = {
  name: 'heartbeat',
  help: HELP,
  positionals: [0, 0] as const,
  options: {
    dir: { type: 'string' },
    key: { type: 'string', multiple: true },
    'password-file': { type: 'string', multiple: true },
    'index-validity-hours': { type: 'string' },
    'min-poll': { type: 'string' },
    seq: { type: 'string' },
    now: { type: 'string' },
    log: { type: 'string' },
  },
} as const;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommand(SPEC, argv, io);
  if (!args) return EXIT_OK;
  const v = args.values;
  const dir = required(v.dir, 'dir', 'heartbeat');
  const keyPaths = v.key ?? [];
  if (keyPaths.length === 0) throw usage('heartbeat: --key is required');
  const hours = intValue(v['index-validity-hours'], 'index-validity-hours', 1, MAX_INDEX_VALIDITY_DAYS * 24);
  const minPoll = intValue(v['min-poll'], 'min-poll', 60, 86400);
  const seq = intValue(v.seq, 'seq', 1, Number.MAX_SAFE_INTEGER);
  const now = timeValue(v.now, 'now') ?? io.now();
  const signers = await loadSecretKeys(keyPaths, v['password-file'] ?? [], io);
  const log = v.log !== undefined ? await loadLogConfig(v.log, io) : undefined;
  const report = await heartbeat({
    dir,
    signers,
    ...(hours !== undefined ? { indexValiditySeconds: hours * 3600 } : {}),
    ...(minPoll !== undefined ? { minPollSeconds: minPoll } : {}),
    ...(seq !== undefined ? { seq } : {}),
    now,
    ...(log ? { log } : {}),
    warn: (m) => warn(io, m),
  });
  io.out(
    `heartbeat ${report.listId} serial ${report.serial} as seq ${report.seq}; index expires ${formatTime(report.indexExpires)}`,
  );
  if (report.log) io.out(logLine(report.log));
  return EXIT_OK;
}
