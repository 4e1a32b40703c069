/**
 * `hashwall-signer verify DIR|URL --pub KEY...`: checks a release exactly as a daemon will, through the same code
 * (`checkRelease` in @hashwall/format, over a release source from @hashwall/release-client): the index and the
 * FULL as a fresh client fetches them (signatures before parsing, threshold, trusted comments, sizes and digests
 * the index gives, validity times), then every listed delta applied to its base FULL.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  DEFAULT_MAX_LIST_BYTES,
  FormatError,
  HARD_MAX_LIST_BYTES,
  INDEX_PATH,
  MAX_INDEX_BYTES,
  TrustStore,
  checkRelease,
  currentKeyringTrust,
  followKeyrings,
  formatTime,
  keyringPath,
  parseIndex,
  type CheckItem,
  type KeyringAnchor,
  type MinisignPublicKey,
  type ReleaseSource,
  type SignedKeyring,
} from '@hashwall/format';
import { sourceFor } from '@hashwall/release-client';

import { EXIT_CODES_HELP, intValue, parseCommand, timeValue, type Io } from '../cli-support.js';
import { EXIT_OK, EXIT_REFUSED, usage } from '../errors.js';
import { fsPath } from '../files.js';
import { loadListKey, loadPublicKeys } from '../keys.js';
import { auditKeysFrom, logItems, type LogAuditKeys } from '../log-audit.js';

export interface VerifyOptions {
  /** A directory, or an `https://`, `http://` or `file://` URL of the folder holding index.hwl. */
  readonly location: string;
  readonly trusted: readonly MinisignPublicKey[];
  readonly threshold?: number;
  /** A list anchored on root keys (SPEC.md 5): the roots and threshold ISPs configure; `trusted` is then unused. */
  readonly anchor?: { readonly roots: readonly MinisignPublicKey[]; readonly rootThreshold: number };
  /** Default: the list-id the index names. */
  readonly listId?: string;
  /** Seconds since the epoch. */
  readonly now: number;
  /** Licensed hash-key ids held: a list hashed with another key fails (UNKNOWN_HASH_KEY). */
  readonly hashKeyIds?: readonly string[];
  readonly maxListBytes?: number;
  readonly timeoutMs?: number;
  /** The release log's keys (SPEC.md 6); without them a release that has a log fails verification. */
  readonly log?: LogAuditKeys;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly location: string;
  readonly listId: string;
  readonly items: readonly CheckItem[];
}

/** The release source URL for a directory or URL argument. */
export function releaseUrl(location: string): string {
  if (/^(https?|file):\/\//i.test(location)) return location;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) throw usage(`verify: only https, http and file URLs: ${location}`);
  return pathToFileURL(resolve(fsPath(location)) + '/').href;
}

export async function verifyRelease(options: VerifyOptions): Promise<VerifyReport> {
  if (options.trusted.length === 0 && !options.anchor) {
    throw usage('verify: give the trusted public keys with --pub, or the root keys with --root');
  }
  const timeoutMs = options.timeoutMs ?? 30000;
  const source = sourceFor(releaseUrl(options.location), {
    connectTimeoutMs: Math.min(timeoutMs, 10000),
    totalTimeoutMs: timeoutMs,
    userAgent: 'hashwall-signer verify',
  });
  try {
    let listId = options.listId;
    if (listId === undefined) {
      // Only to choose which trust entry applies; checkRelease verifies the index before trusting anything in it.
      const res = await source.get(INDEX_PATH, { maxBytes: MAX_INDEX_BYTES });
      if (res.status !== 'ok') throw new FormatError('FETCH_FAILED', `${source.location}${INDEX_PATH} not found`);
      listId = parseIndex(res.body).header.listId;
    }
    const keyrings: CheckItem[] = [];
    let trust: TrustStore;
    let accepted: readonly SignedKeyring[] | undefined;
    if (options.anchor) {
      // SPEC.md 5.1-5.3: the daemon's own walk, then the index, FULL and DELTAs under the current keyring.
      const walked = await walkKeyrings(source, { listId, ...options.anchor }, options.now);
      keyrings.push(...walked.items);
      if (walked.trust === undefined) return { ok: false, location: source.location, listId, items: keyrings };
      trust = walked.trust;
      accepted = walked.accepted;
    } else {
      trust = new TrustStore([[listId, { keys: options.trusted, threshold: options.threshold ?? 1 }]]);
    }
    const result = await checkRelease({
      source,
      trust,
      listId,
      now: options.now,
      maxListBytes: options.maxListBytes ?? DEFAULT_MAX_LIST_BYTES,
      ...(options.hashKeyIds ? { hashKeyIds: options.hashKeyIds } : {}),
    });
    // The log's leaves are checked each under the keyring it names (those of the walk), not the current one.
    const logged = await logItems(source, options.log, trust, listId, accepted);
    const items = [...keyrings, ...result.items, ...logged];
    return { ok: items.every((i) => i.ok), location: source.location, listId, items };
  } finally {
    await source.close?.();
  }
}

/** The keyring walk as a daemon runs it from the anchor, as check items, and the trust store it ends on. */
async function walkKeyrings(
  source: ReleaseSource,
  anchor: KeyringAnchor,
  now: number,
): Promise<{ items: CheckItem[]; trust?: TrustStore; accepted: readonly SignedKeyring[] }> {
  const walk = await followKeyrings({ source, anchor, now });
  const items: CheckItem[] = walk.accepted.map((k) => ({
    what: keyringPath(k.keyring.header.version),
    ok: true,
    detail: `signed by ${k.keyring.header.rootThreshold} of its ${k.keyring.roots.length} roots and by the roots before it; expires ${formatTime(k.keyring.header.expires)}`,
  }));
  try {
    return { items, trust: currentKeyringTrust(walk, now), accepted: walk.accepted };
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    const v = (walk.current?.keyring.header.version ?? 0) + (walk.error ? 1 : 0);
    items.push({ what: keyringPath(Math.max(v, 1)), ok: false, detail: err.message, code: err.code });
    return { items, accepted: walk.accepted };
  }
}

const HELP = `Usage: hashwall-signer verify DIR|URL --pub KEY.pub [--pub ...] [options]

Checks the release in directory DIR, or at URL (https://, http:// or file://, the folder holding index.hwl),
exactly as a hashwalld daemon will: index signatures and threshold, trusted comments, validity times, the FULL's
size and SHA-256 as the index gives them, its signatures and header, and every listed delta applied to its base
FULL. With the log's keys, it also audits the whole release log (SPEC.md 6): the checkpoint's signature and
cosignatures, every leaf an index of this list with valid signatures, log-index, seq and serial in order, the
tree and tiles rebuilt from the entries, and index.hwl included as a daemon checks it. A release with a log
fails verification when the log key is not given. Prints one line per check; exits 1 when any check fails.

Options:
  --pub FILE             a trusted public key (repeatable)
  --root FILE            instead of --pub, for a list anchored on root keys: a root public key (repeatable);
                         the keyrings are walked from these roots as a daemon does (SPEC.md 5)
  --root-threshold N     how many of the --root keys must sign keyring 1 (default 1)
  --threshold N          how many distinct trusted keys must sign each file (default 1)
  --list-id ID           the list-id to trust the keys for (default: the one the index names)
  --list-key FILE        also require the list to be hashed with this list key's id (licensed mode)
  --now TIME             check as of this time (YYYY-MM-DDTHH:MM:SSZ; default now)
  --max-list-bytes N     cap for a FULL or delta (default ${DEFAULT_MAX_LIST_BYTES}, at most ${HARD_MAX_LIST_BYTES})
  --timeout-ms MS        deadline per HTTP request (default 30000)
  --log-key VKEY|FILE    the release log's key (what keygen --log-key printed, or its .vkey file)
  --witness-key VKEY|FILE  a witness's cosigner key (repeatable)
  --witness-threshold N  how many of them must have cosigned the checkpoint (default: all given)
  --log FILE             the publisher's log config instead (its key, witnesses and threshold)
  -h, --help             this help

${EXIT_CODES_HELP}
`;

const SPEC = {
  name: 'verify',
  help: HELP,
  positionals: [1, 1] as const,
  options: {
    pub: { type: 'string', multiple: true },
    root: { type: 'string', multiple: true },
    'root-threshold': { type: 'string' },
    threshold: { type: 'string' },
    'list-id': { type: 'string' },
    'list-key': { type: 'string' },
    now: { type: 'string' },
    'max-list-bytes': { type: 'string' },
    'timeout-ms': { type: 'string' },
    'log-key': { type: 'string' },
    'witness-key': { type: 'string', multiple: true },
    'witness-threshold': { type: 'string' },
    log: { type: 'string' },
  },
} as const;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommand(SPEC, argv, io);
  if (!args) return EXIT_OK;
  const v = args.values;
  const trusted = await loadPublicKeys(v.pub ?? []);
  const roots = await loadPublicKeys(v.root ?? []);
  if (trusted.length > 0 && roots.length > 0) throw usage('verify: give --pub or --root, not both');
  if (trusted.length === 0 && roots.length === 0) throw usage('verify: --pub or --root is required');
  const rootThreshold = intValue(v['root-threshold'], 'root-threshold', 1, Math.max(1, Math.min(roots.length, 8)));
  const threshold = intValue(v.threshold, 'threshold', 1, Math.max(1, Math.min(trusted.length, 8)));
  const maxListBytes = intValue(v['max-list-bytes'], 'max-list-bytes', 1, HARD_MAX_LIST_BYTES);
  const timeoutMs = intValue(v['timeout-ms'], 'timeout-ms', 1, 3_600_000);
  const now = timeValue(v.now, 'now') ?? io.now();
  const listKey = v['list-key'] !== undefined ? await loadListKey(v['list-key'], io) : undefined;
  if (listKey?.isPublic) throw usage('verify: --list-key is for licensed keys (a public list carries its key)');
  const log = await auditKeysFrom(
    {
      ...(v.log !== undefined ? { logConfig: v.log } : {}),
      ...(v['log-key'] !== undefined ? { logKey: v['log-key'] } : {}),
      witnessKeys: v['witness-key'] ?? [],
      ...(v['witness-threshold'] !== undefined
        ? { witnessThreshold: intValue(v['witness-threshold'], 'witness-threshold', 0, 64)! }
        : {}),
    },
    io,
  );
  const report = await verifyRelease({
    location: args.positionals[0]!,
    trusted,
    ...(roots.length > 0 ? { anchor: { roots, rootThreshold: rootThreshold ?? 1 } } : {}),
    ...(threshold !== undefined ? { threshold } : {}),
    ...(v['list-id'] !== undefined ? { listId: v['list-id'] } : {}),
    now,
    ...(listKey ? { hashKeyIds: [listKey.id] } : {}),
    ...(maxListBytes !== undefined ? { maxListBytes } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(log ? { log } : {}),
  });
  io.out(`release ${report.location} (list ${report.listId}), checked as of ${formatTime(now)}`);
  for (const item of report.items) {
    io.out(`${item.ok ? 'ok  ' : 'FAIL'}  ${item.what}: ${item.code ? `${item.code}: ` : ''}${item.detail}`);
  }
  const failed = report.items.filter((i) => !i.ok).length;
  io.out(
    report.ok
      ? `verified: all ${report.items.length} checks passed`
      : `NOT VERIFIED: ${failed} of ${report.items.length} checks failed`,
  );
  return report.ok ? EXIT_OK : EXIT_REFUSED;
}
