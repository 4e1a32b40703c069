/**
 * `verify`'s audit of a release log (SPEC.md 6), over any release source (a directory, an HTTP mirror): the
 * checkpoint's signature and cosignatures; every leaf an INDEX of this list, with valid signatures (kept under
 * `log/index-signatures/<N>`, each checked under the keyring it names for a list anchored on root keys),
 * `log-index` equal to its position, seq strictly increasing, serial and keyring never falling and one FULL per
 * serial; the tree and every tile rebuilt from the entries; and the current index checked exactly
 * as a daemon does (`checkLeafInLog`: inclusion read from tiles). Every finding is an item; nothing throws a
 * format or log error.
 */
import {
  FormatError,
  INDEX_PATH,
  MAX_INDEX_BYTES,
  formatTime,
  indexTrustedComment,
  keyringTrustStore,
  parseIndex,
  verifyThreshold,
  type CheckItem,
  type IndexList,
  type ReleaseSource,
  type SignedKeyring,
  type TrustStore,
} from '@hashwall/format';
import {
  LogAppender,
  TlogError,
  bundlesForSize,
  checkLeafInLog,
  fetchCheckpoint,
  parseCosignerKey,
  parseLogKey,
  readBundle,
  sameHash,
  tileReaderFromSource,
  type LogTrust,
  type NoteVerifier,
  type OpenedCheckpoint,
  type TileReader,
} from '@hashwall/tlog';

import type { Io } from './cli-support.js';
import { usage } from './errors.js';
import { readCapped } from './files.js';
import { LOG_DIR, loadLogConfig, readIndexSignatures } from './log.js';

/** The keys an auditor checks a log with. */
export interface LogAuditKeys {
  readonly logKey: NoteVerifier;
  /** The checkpoint origin; default the log key's name. */
  readonly origin?: string;
  readonly witnesses: readonly NoteVerifier[];
  readonly witnessThreshold: number;
}

/** At most this many failing leaves are itemized; the rest are counted. */
const MAX_LEAF_ITEMS = 20;

function fail(what: string, err: unknown): CheckItem {
  if (err instanceof FormatError || err instanceof TlogError)
    return { what, ok: false, code: err.code, detail: err.message };
  throw err;
}

function describeCheckpoint(o: OpenedCheckpoint): string {
  const w = o.cosignatures.map((c) => `${c.witness.name} (${formatTime(c.timestamp)})`);
  return `size ${o.checkpoint.size}, signed by the log key${w.length > 0 ? `, cosigned by ${w.join(', ')}` : ''}`;
}

/** The checks a leaf must pass against the one before it; returns the problems. */
function leafProblems(i: number, index: IndexList, listId: string, prev: IndexList | undefined): string[] {
  const h = index.header;
  const out: string[] = [];
  if (h.listId !== listId) out.push(`LIST_MISMATCH: for list ${h.listId}`);
  if (h.logIndex !== i) out.push(`MALFORMED: log-index ${h.logIndex ?? '(none)'} at position ${i}`);
  if (prev !== undefined) {
    const p = prev.header;
    if (h.seq <= p.seq) out.push(`ROLLBACK: seq ${h.seq} after seq ${p.seq}`);
    if (h.serial < p.serial) out.push(`ROLLBACK: serial ${h.serial} after serial ${p.serial}`);
    // SPEC.md 5.3: an index under an older keyring than one already shown is a rollback to a daemon.
    if (h.keyring !== undefined && p.keyring !== undefined && h.keyring < p.keyring) {
      out.push(`ROLLBACK: keyring ${h.keyring} after keyring ${p.keyring}`);
    }
    if (h.serial === p.serial && (index.full.size !== prev.full.size || index.full.sha256 !== prev.full.sha256)) {
      out.push(`EQUIVOCATION: serial ${h.serial} names two different FULLs`);
    }
  }
  return out;
}

/**
 * The keys a leaf's signatures are checked under: `trust` for a list trusted by plain signing keys; for a list
 * anchored on root keys, those of the keyring the leaf names (SPEC.md 5.3), as the walk accepted it (an index
 * logged before a rotation was signed by the keys of its own keyring, not the current one's). A problem otherwise.
 */
function leafTrust(
  index: IndexList,
  trust: TrustStore,
  keyrings: readonly SignedKeyring[] | undefined,
): TrustStore | string {
  if (keyrings === undefined) return trust;
  const v = index.header.keyring;
  if (v === undefined) return 'KEYRING_REQUIRED: the leaf names no keyring';
  const k = keyrings.find((x) => x.keyring.header.version === v);
  if (k === undefined) return `KEYRING_WITHHELD: the leaf names keyring ${v}, which the walk did not reach`;
  return keyringTrustStore(k.keyring);
}

async function leafSignatureProblem(
  reader: TileReader,
  i: number,
  leaf: Uint8Array,
  index: IndexList,
  trust: TrustStore | string,
  listId: string,
): Promise<string | undefined> {
  if (typeof trust === 'string') return trust;
  try {
    const sigs = await readIndexSignatures(reader, i);
    if (sigs === undefined) return 'UNTRUSTED_KEY: no signatures kept for this leaf';
    const { trustedComment } = verifyThreshold(leaf, sigs, trust, listId);
    if (trustedComment !== indexTrustedComment(index.header)) return 'COMMENT_MISMATCH: the trusted comment';
    return undefined;
  } catch (err) {
    if (err instanceof FormatError || err instanceof TlogError) return `${err.code}: ${err.message}`;
    throw err;
  }
}

/**
 * Audits the log under `log/` of a release (see the file header). `indexBytes`: the current index.hwl. `keyrings`:
 * for a list anchored on root keys, the keyrings the walk accepted (each leaf is checked under the one it names);
 * absent, every leaf is checked under `trust`.
 */
export async function auditReleaseLog(
  source: ReleaseSource,
  keys: LogAuditKeys,
  trust: TrustStore,
  listId: string,
  indexBytes: Uint8Array | undefined,
  keyrings?: readonly SignedKeyring[],
): Promise<CheckItem[]> {
  const reader = tileReaderFromSource(source, `${LOG_DIR}/`);
  const logTrust: LogTrust = {
    origin: keys.origin ?? keys.logKey.name,
    logKey: keys.logKey,
    witnesses: keys.witnesses,
    witnessThreshold: keys.witnessThreshold,
  };
  const items: CheckItem[] = [];
  let opened: OpenedCheckpoint;
  try {
    opened = await fetchCheckpoint(reader, logTrust);
    items.push({ what: 'log checkpoint', ok: true, detail: describeCheckpoint(opened) });
  } catch (err) {
    items.push(fail('log checkpoint', err));
    return items;
  }
  const size = opened.checkpoint.size;
  const appender = LogAppender.empty();
  const leafItems: CheckItem[] = [];
  let failing = 0;
  let prev: IndexList | undefined;
  let leaves: Uint8Array[] = [];
  try {
    let i = 0;
    for (const bundle of bundlesForSize(size)) {
      leaves = await readBundle(reader, bundle);
      for (const leaf of leaves) {
        appender.add(leaf);
        let problems: string[];
        let index: IndexList | undefined;
        try {
          index = parseIndex(leaf);
          problems = leafProblems(i, index, listId, prev);
          const sig = await leafSignatureProblem(reader, i, leaf, index, leafTrust(index, trust, keyrings), listId);
          if (sig !== undefined) problems.push(sig);
        } catch (err) {
          if (!(err instanceof FormatError)) throw err;
          problems = [`${err.code}: not an INDEX: ${err.message}`];
        }
        if (problems.length > 0) {
          failing++;
          if (leafItems.length < MAX_LEAF_ITEMS) {
            const code = /^([A-Z_]+):/.exec(problems[0]!)?.[1];
            leafItems.push({
              what: `log leaf ${i}`,
              ok: false,
              ...(code ? { code } : {}),
              detail: problems.join('; '),
            });
          }
        }
        if (index !== undefined) prev = index;
        i++;
      }
      await compareTiles(reader, appender.take(), leafItems);
    }
    await compareTiles(reader, appender.finish(), leafItems);
  } catch (err) {
    items.push(...leafItems, fail('log entries', err));
    return items;
  }
  items.push(...leafItems);
  if (failing > leafItems.length) {
    items.push({
      what: 'log leaves',
      ok: false,
      detail: `${failing - leafItems.length} more failing leaves not listed`,
    });
  }
  if (failing === 0) {
    items.push({
      what: 'log leaves',
      ok: true,
      detail: `${size} indexes of list ${listId}, signed, in order (log-index, seq, serial, one FULL per serial)`,
    });
  }
  items.push(
    sameHash(appender.root(), opened.checkpoint.root)
      ? { what: 'log tree', ok: true, detail: `the root rebuilt from the ${size} entries is the checkpoint's` }
      : {
          what: 'log tree',
          ok: false,
          code: 'LOG_TILE_MISMATCH',
          detail: "the entries do not give the checkpoint's root",
        },
  );
  items.push(await currentIndexItem(reader, logTrust, indexBytes));
  return items;
}

/** Compares the tiles rebuilt from the entries with the ones served; a difference is an item. */
async function compareTiles(
  reader: TileReader,
  rebuilt: ReadonlyMap<string, Uint8Array>,
  items: CheckItem[],
): Promise<void> {
  for (const [path, bytes] of rebuilt) {
    if (path.startsWith('tile/entries/')) continue; // read above
    const served = await reader.read(path, bytes.byteLength);
    if (served === undefined || !sameHash(served, bytes)) {
      items.push({
        what: `log ${path}`,
        ok: false,
        code: 'LOG_TILE_MISMATCH',
        detail: served === undefined ? 'missing' : 'differs from the hashes of the entries',
      });
    }
  }
}

/** The current index.hwl as a daemon checks it: log-index present, and the leaf there, read through tiles. */
async function currentIndexItem(
  reader: TileReader,
  trust: LogTrust,
  indexBytes: Uint8Array | undefined,
): Promise<CheckItem> {
  const what = 'log: index.hwl is in the log';
  if (indexBytes === undefined) return { what, ok: false, code: 'FETCH_FAILED', detail: 'no index.hwl' };
  try {
    const leafIndex = parseIndex(indexBytes).header.logIndex;
    if (leafIndex === undefined)
      return { what, ok: false, code: 'MALFORMED', detail: 'index.hwl carries no log-index' };
    const o = await checkLeafInLog({ reader, trust, leaf: indexBytes, leafIndex });
    return {
      what,
      ok: true,
      detail: `leaf ${leafIndex} of ${o.checkpoint.size}, by an inclusion proof read from tiles`,
    };
  } catch (err) {
    return fail(what, err);
  }
}

/** A vkey given on the command line, or a file holding one (its first line). */
export async function readVkey(arg: string): Promise<string> {
  if (/^[^+\s]+\+[0-9a-f]{8}\+/.test(arg)) return arg;
  const text = (await readCapped(arg, 4096, 'verifier key')).toString('utf8');
  return text.split('\n')[0]!.trim();
}

/** The audit keys from `verify`'s options: --log FILE, or --log-key with --witness-key and --witness-threshold. */
export async function auditKeysFrom(
  args: { logConfig?: string; logKey?: string; witnessKeys: readonly string[]; witnessThreshold?: number },
  io: Io,
): Promise<LogAuditKeys | undefined> {
  if (args.logConfig !== undefined) {
    if (args.logKey !== undefined || args.witnessKeys.length > 0) {
      throw usage('verify: --log replaces --log-key and --witness-key');
    }
    const c = await loadLogConfig(args.logConfig, io);
    return {
      logKey: parseLogKey(c.key.vkey),
      witnesses: c.witnesses.map((w) => w.key),
      witnessThreshold: args.witnessThreshold ?? c.threshold,
    };
  }
  if (args.logKey === undefined) {
    if (args.witnessKeys.length > 0 || args.witnessThreshold !== undefined) {
      throw usage('verify: --witness-key and --witness-threshold need --log-key');
    }
    return undefined;
  }
  const witnesses = await Promise.all(args.witnessKeys.map(async (k) => parseCosignerKey(await readVkey(k))));
  const threshold = args.witnessThreshold ?? witnesses.length;
  if (threshold > witnesses.length) throw usage('--witness-threshold: more than the witness keys given');
  return { logKey: parseLogKey(await readVkey(args.logKey)), witnesses, witnessThreshold: threshold };
}

/** What verify reports about the log when it has no log key: a log it did not check is a failure. */
export async function unauditedLogItems(
  source: ReleaseSource,
  indexBytes: Uint8Array | undefined,
): Promise<CheckItem[]> {
  const reader = tileReaderFromSource(source, `${LOG_DIR}/`);
  const hasLog = await reader.read('checkpoint', 16 * 1024).then(
    (b) => b !== undefined,
    () => true,
  );
  const logIndex = indexBytes === undefined ? undefined : tryLogIndex(indexBytes);
  if (!hasLog && logIndex === undefined) return [];
  return [
    {
      what: 'log',
      ok: false,
      code: 'USAGE',
      detail: hasLog
        ? 'the release has a log (log/checkpoint): give --log-key (and --witness-key), or --log, to check it'
        : `index.hwl names log-index ${logIndex} but the release has no log/checkpoint`,
    },
  ];
}

function tryLogIndex(bytes: Uint8Array): number | undefined {
  try {
    return parseIndex(bytes).header.logIndex;
  } catch {
    return undefined;
  }
}

/**
 * `verify`'s one call for the log: the audit when keys are given, else a failure when the release has a log (or
 * its index names a leaf) that was not checked, else nothing.
 */
export async function logItems(
  source: ReleaseSource,
  keys: LogAuditKeys | undefined,
  trust: TrustStore,
  listId: string,
  keyrings?: readonly SignedKeyring[],
): Promise<CheckItem[]> {
  let indexBytes: Uint8Array | undefined;
  try {
    const res = await source.get(INDEX_PATH, { maxBytes: MAX_INDEX_BYTES });
    if (res.status === 'ok') indexBytes = res.body;
  } catch {
    // checkRelease reported it
  }
  return keys
    ? auditReleaseLog(source, keys, trust, listId, indexBytes, keyrings)
    : unauditedLogItems(source, indexBytes);
}
