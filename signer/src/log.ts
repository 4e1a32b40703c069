/**
 * The release log on the publisher's side (SPEC.md 6): every index `publish` and `heartbeat` sign is appended as
 * a leaf to the C2SP tiled log under the release directory's `log/`, its `log-index` set first, and the new
 * checkpoint is signed by the log key and cosigned by the configured witnesses before the index becomes visible.
 *
 * Order of writes (each file atomic: temp file, fsync, rename), so that the index that names a leaf is never
 * visible before the log that holds it, and a crash anywhere leaves a state the next run repairs:
 * 1. the new tiles and entry bundles, and the index's signatures under `log/index-signatures/<N>` (new paths,
 *    or paths past the published size: no reader relies on them yet);
 * 2. `.hashwall-signer.log-pending`: the new checkpoint, signed by the log key. From here on the leaf is fixed:
 *    a witness may have seen it, so the next run finishes this append instead of writing another leaf there
 *    (which the witnesses would refuse as a fork);
 * 3. the witnesses' cosignatures (tlog-witness add-checkpoint, with a consistency proof from the size each holds);
 * 4. `log/checkpoint`, with the cosignatures; then the pending file is removed;
 * 5. the release files and, last, `index.hwl` (release-dir.ts).
 * A run that finds a pending checkpoint (a crash, or witnesses that did not answer) sends it to the witnesses
 * again and publishes it before appending its own leaf; that earlier leaf is an index no client ever saw, and the
 * new one must come after it (seq above it; the same serial only with the same FULL).
 *
 * The index's signatures are kept next to the log (`log/index-signatures/<N>`, the signature files concatenated)
 * because a leaf is the index alone (SPEC.md 6), and an auditor checks every leaf's signatures (`verify`).
 */
import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  FormatError,
  INDEX_PATH,
  indexTrustedComment,
  parseIndex,
  parseSignatureFileName,
  serializeIndex,
  signatures,
  type IndexList,
  type MinisignSecretKey,
} from '@hashwall/format';
import {
  LogAppender,
  NoteSecretKey,
  TileHashReader,
  TlogError,
  bundleHolding,
  collectCosignatures,
  encodeTileIndex,
  openCheckpoint,
  parseCosignerKey,
  parseLogKey,
  readBundle,
  sameHash,
  signCheckpoint,
  tileReaderFromSource,
  type Hash,
  type OpenedCheckpoint,
  type TileReader,
  type WitnessEndpoint,
} from '@hashwall/tlog';
import { parseDocument } from 'yaml';

import type { Io } from './cli-support.js';
import { SignerError, usage } from './errors.js';
import {
  ensureDir,
  exists,
  fsPath,
  fsyncDir,
  listDir,
  readCapped,
  readOptional,
  removeFile,
  TEMP_PREFIX,
  writeFileAtomic,
  writeNewFile,
} from './files.js';
import { checkPrivate } from './keys.js';

/** The release log's folder in a release directory (SPEC.md 6). */
export const LOG_DIR = 'log';
/** The checkpoint signed and staged, not yet published (step 2 above). */
export const PENDING_FILE = '.hashwall-signer.log-pending';
/** Where each leaf's index signatures are kept: `log/index-signatures/<N>` (N encoded as tile indexes are). */
export const INDEX_SIGNATURES_DIR = 'index-signatures';
const MAX_CONFIG_BYTES = 64 * 1024;
const MAX_KEY_FILE_BYTES = 4096;
const MAX_NOTE_BYTES = 16 * 1024;
/** Index signatures of one leaf: at most 8 files of 2 KiB (SPEC.md 4). */
const MAX_INDEX_SIGNATURES_BYTES = 8 * 2048;

/** What `--log FILE` configures. */
export interface LogConfig {
  /** The log's secret note key; its name is the log's origin. */
  readonly key: NoteSecretKey;
  readonly witnesses: readonly WitnessEndpoint[];
  /** Cosignatures needed before the new index is published (0 to the number of witnesses). */
  readonly threshold: number;
  /** Deadline for one witness request. */
  readonly timeoutMs: number;
  /** How long to keep asking witnesses that do not answer before the publish fails (0: one round). */
  readonly waitSeconds: number;
  readonly retryDelayMs: number;
}

export const LOG_CONFIG_DEFAULTS = { timeoutMs: 10_000, waitSeconds: 0, retryDelayMs: 5000 } as const;

function logConfigError(path: string, problems: string[]): SignerError {
  return new SignerError('USAGE', `log config ${path}:\n  ${problems.join('\n  ')}`);
}

/** A whole number within [min, max], or a problem naming `key`. */
function int(value: unknown, key: string, min: number, max: number, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    problems.push(`${key}: a whole number from ${min} to ${max}`);
    return undefined;
  }
  return value;
}

/**
 * Writes a new log key: `NAME.skey` (mode 0600) and `NAME.vkey`, both refused when either exists unless `force`.
 * The key's name is the log's origin (SPEC.md 6, tlog-checkpoint).
 */
export async function writeLogKey(
  out: string,
  origin: string,
  force: boolean,
): Promise<{ secretPath: string; publicPath: string; vkey: string }> {
  const secretPath = `${out}.skey`;
  const publicPath = `${out}.vkey`;
  if (!force) {
    for (const p of [secretPath, publicPath]) {
      if (await exists(p)) throw new SignerError('EXISTS', `${p} exists; refusing to overwrite it (use --force)`);
    }
  }
  let key: NoteSecretKey;
  try {
    key = NoteSecretKey.generate(origin);
  } catch {
    throw usage('--origin: a log origin is non-empty, without spaces or "+" (for example lists.example/demo)');
  }
  await writeNewFile(secretPath, `${key.serialize()}\n`, 0o600, force);
  await writeNewFile(publicPath, `${key.vkey}\n`, 0o644, force);
  return { secretPath, publicPath, vkey: key.vkey };
}

/** Reads a secret note key file (one skey line; `hashwall-signer keygen --log-key` writes it). */
export async function loadLogKey(path: string, io: Io): Promise<NoteSecretKey> {
  await checkPrivate(path, 'log key', io);
  const bytes = await readCapped(path, MAX_KEY_FILE_BYTES, 'log key');
  const text = bytes.toString('utf8');
  bytes.fill(0);
  try {
    return NoteSecretKey.parse(text.endsWith('\n') ? text.slice(0, -1) : text);
  } catch (err) {
    if (err instanceof TlogError) throw new TlogError(err.code, `${path}: ${err.message}`);
    throw err;
  }
}

/**
 * Reads `--log FILE` (YAML; documented in signer/README.md, "The release log"): every problem named by its key,
 * all at once. Relative paths are taken from the file's folder.
 */
export async function loadLogConfig(path: string, io: Io): Promise<LogConfig> {
  const text = (await readCapped(path, MAX_CONFIG_BYTES, 'log config')).toString('utf8');
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0)
    throw logConfigError(
      path,
      doc.errors.map((e) => `(yaml): ${e.message}`),
    );
  const raw = doc.toJS() as unknown;
  const problems: string[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw logConfigError(path, ['(top level): a mapping']);
  const c = raw as Record<string, unknown>;
  const known = ['key', 'witnesses', 'threshold', 'timeoutMs', 'waitSeconds', 'retryDelayMs'];
  for (const k of Object.keys(c)) if (!known.includes(k)) problems.push(`${k}: unknown key`);
  let key: NoteSecretKey | undefined;
  if (typeof c.key !== 'string' || c.key === '')
    problems.push('key: the log key file (hashwall-signer keygen --log-key)');
  else {
    try {
      key = await loadLogKey(resolve(fsPath(dirname(path)), c.key), io);
    } catch (err) {
      problems.push(`key: ${(err as Error).message}`);
    }
  }
  const witnesses: WitnessEndpoint[] = [];
  const list = c.witnesses ?? [];
  if (!Array.isArray(list)) problems.push('witnesses: a list of { url, key }');
  else {
    list.forEach((w: unknown, i) => {
      const at = `witnesses.${i}`;
      if (w === null || typeof w !== 'object') return problems.push(`${at}: { url, key }`);
      const { url, key: vkey, ...rest } = w as Record<string, unknown>;
      for (const k of Object.keys(rest)) problems.push(`${at}.${k}: unknown key`);
      let ok = true;
      if (typeof url !== 'string' || !/^https?:\/\/[^\s]+$/.test(url)) {
        problems.push(`${at}.url: the witness's http(s) submission URL`);
        ok = false;
      }
      try {
        if (typeof vkey !== 'string') throw new Error('missing');
        const key = parseCosignerKey(vkey);
        if (ok) witnesses.push({ url: url as string, key });
      } catch (err) {
        problems.push(`${at}.key: not a witness cosigner key (${(err as Error).message})`);
      }
      return undefined;
    });
    const names = witnesses.map((w) => `${w.key.name}+${w.key.keyId}`);
    if (new Set(names).size !== names.length) problems.push('witnesses: a witness key is listed twice');
  }
  const threshold = int(c.threshold, 'threshold', 0, witnesses.length, problems) ?? witnesses.length;
  const timeoutMs = int(c.timeoutMs, 'timeoutMs', 100, 600_000, problems) ?? LOG_CONFIG_DEFAULTS.timeoutMs;
  const waitSeconds = int(c.waitSeconds, 'waitSeconds', 0, 86_400, problems) ?? LOG_CONFIG_DEFAULTS.waitSeconds;
  const retryDelayMs = int(c.retryDelayMs, 'retryDelayMs', 100, 600_000, problems) ?? LOG_CONFIG_DEFAULTS.retryDelayMs;
  if (problems.length > 0 || key === undefined) throw logConfigError(path, problems);
  return { key, witnesses, threshold, timeoutMs, waitSeconds, retryDelayMs };
}

/** What the log's last leaf says, for the rules a new index must follow. */
export interface LeafIndex {
  readonly logIndex: number;
  readonly index: IndexList;
}

/** What appending an index gave. */
export interface Appended {
  /** The release files, with the index as logged (its `log-index` set) and its new signatures. */
  readonly files: Map<string, Uint8Array>;
  readonly logIndex: number;
  /** The log's size now. */
  readonly size: number;
  /** The witnesses that cosigned the new checkpoint. */
  readonly cosigners: readonly string[];
}

/**
 * A tile reader over `DIR/log/`, through the same file source `verify` uses. The release client is loaded here, when
 * a log is opened: it brings the HTTP client (undici), which no other part of publish or heartbeat needs.
 */
export async function logReader(dir: string): Promise<TileReader> {
  const { FileSource } = await import('@hashwall/release-client');
  return tileReaderFromSource(new FileSource(pathToFileURL(`${resolve(fsPath(dir))}/`)), `${LOG_DIR}/`);
}

/** `log/index-signatures/<N>` (under the log's prefix). */
export function indexSignaturesPath(logIndex: number): string {
  return `${INDEX_SIGNATURES_DIR}/${encodeTileIndex(logIndex)}`;
}

/** Splits concatenated minisign signature files (4 lines each) back into texts. */
export function splitSignatureFiles(bytes: Uint8Array): string[] {
  const lines = Buffer.from(bytes).toString('utf8').split('\n');
  if (lines.pop() !== '' || lines.length === 0 || lines.length % 4 !== 0) {
    throw new FormatError('MALFORMED', 'index signatures: not whole minisign signature files');
  }
  const out: string[] = [];
  for (let i = 0; i < lines.length; i += 4) out.push(`${lines.slice(i, i + 4).join('\n')}\n`);
  return out;
}

/** The log's last leaf, parsed (undefined for an empty log). */
async function lastLeaf(reader: TileReader, size: number): Promise<LeafIndex | undefined> {
  if (size === 0) return undefined;
  const bundle = await readBundle(reader, bundleHolding(size - 1, size));
  const bytes = bundle.at(-1)!;
  return { logIndex: size - 1, index: parseIndex(bytes) };
}

/** Removes temp files a crashed write left anywhere under `dir` (while holding the release lock). */
async function removeTempsUnder(dir: string): Promise<void> {
  for (const entry of await readdir(fsPath(dir), { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await removeTempsUnder(path);
    else if (entry.name.startsWith(TEMP_PREFIX)) await removeFile(path);
  }
}

/** Writes files under `DIR/log/` (each atomic), then fsyncs every folder on their paths. */
async function writeLogFiles(dir: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  const root = join(dir, LOG_DIR);
  const folders = new Set<string>();
  for (const [path, bytes] of files) {
    const full = join(root, path);
    await ensureDir(dirname(full));
    await writeFileAtomic(full, bytes, { syncDir: false });
    for (let d = dirname(full); d.length >= dir.length; d = dirname(d)) {
      folders.add(d);
      if (d === dir) break;
    }
  }
  for (const d of [...folders].sort((a, b) => b.length - a.length)) await fsyncDir(d);
}

/**
 * The release directory's log, opened for one publish or heartbeat (under the directory's lock). `open` checks the
 * published checkpoint against the log key and finishes an append an earlier run left pending.
 */
export class ReleaseLog {
  readonly #dir: string;
  readonly #config: LogConfig;
  readonly #reader: TileReader;
  #size = 0;
  #root: Hash;
  #last: LeafIndex | undefined;

  private constructor(dir: string, config: LogConfig, reader: TileReader, size: number, root: Hash) {
    this.#dir = dir;
    this.#config = config;
    this.#reader = reader;
    this.#size = size;
    this.#root = root;
  }

  /** The origin line of the log's checkpoints: the log key's name. */
  get origin(): string {
    return this.#config.key.name;
  }

  /** Leaves in the published log. */
  get size(): number {
    return this.#size;
  }

  /** The last leaf (the last index signed, published as index.hwl or left by an interrupted run). */
  get last(): LeafIndex | undefined {
    return this.#last;
  }

  /**
   * Opens `DIR/log/` for appending. Without a log config, a directory that has a log is refused (an index without
   * its leaf would be refused by every daemon that checks the log); with one, a directory without a log starts
   * one. A pending append (step 2 of the file header) is finished first, which needs the witnesses.
   */
  static async open(
    dir: string,
    config: LogConfig | undefined,
    warn: (message: string) => void,
  ): Promise<ReleaseLog | undefined> {
    const published = await readOptional(join(dir, LOG_DIR, 'checkpoint'), MAX_NOTE_BYTES, 'log checkpoint');
    const pending = await readOptional(join(dir, PENDING_FILE), MAX_NOTE_BYTES, 'pending log checkpoint');
    if (config === undefined) {
      if (published !== undefined || pending !== undefined) {
        throw usage(
          `${dir} has a release log (${LOG_DIR}/checkpoint): give --log FILE (its key and witnesses); an index that is ` +
            'not in the log is refused by every daemon that checks it',
        );
      }
      return undefined;
    }
    await removeTempsUnder(join(dir, LOG_DIR));
    const logKey = parseLogKey(config.key.vkey);
    const open = (bytes: Uint8Array, what: string): OpenedCheckpoint => {
      try {
        return openCheckpoint(bytes, { origin: config.key.name, logKeys: [logKey] });
      } catch (err) {
        if (err instanceof TlogError) {
          throw new TlogError(err.code, `${what}: ${err.message} (is --log's key the key of this log?)`);
        }
        throw err;
      }
    };
    const current = published === undefined ? undefined : open(published, `${LOG_DIR}/checkpoint`).checkpoint;
    const log = new ReleaseLog(
      dir,
      config,
      await logReader(dir),
      current?.size ?? 0,
      current?.root ?? LogAppender.empty().root(),
    );
    if (pending !== undefined) {
      const staged = open(pending, PENDING_FILE);
      await log.#finishPending(staged, warn);
    }
    log.#last = await lastLeaf(log.#reader, log.#size);
    return log;
  }

  async #finishPending(staged: OpenedCheckpoint, warn: (message: string) => void): Promise<void> {
    const cp = staged.checkpoint;
    if (cp.size <= this.#size) {
      if (cp.size === this.#size && sameHash(cp.root, this.#root)) {
        await removeFile(join(this.#dir, PENDING_FILE)); // published already; only the removal was left
        return;
      }
      throw new TlogError(
        'LOG_SPLIT_VIEW',
        `${PENDING_FILE} holds a checkpoint of size ${cp.size} that is not the published one of size ${this.#size}: ` +
          'keep both files, and find out which run wrote it before publishing again',
      );
    }
    // The staged tiles must give the staged root, and the published tree must be their prefix.
    await LogAppender.resume(this.#reader, cp.size, cp.root);
    const tiles = new TileHashReader(this.#reader, cp.size);
    if (!sameHash(await tiles.root(this.#size), this.#root)) {
      throw new TlogError('LOG_TILE_MISMATCH', `the pending log checkpoint does not extend ${LOG_DIR}/checkpoint`);
    }
    warn(
      `finishing an interrupted append: the log's pending checkpoint of size ${cp.size} goes to the witnesses again ` +
        `(its last leaf is an index no client saw; the new index comes after it)`,
    );
    await this.#publish(staged.bytes, cp.size, cp.root);
  }

  /** Steps 3 and 4: cosignatures, then `log/checkpoint`, then the pending file is removed. Returns who cosigned. */
  async #publish(note: Uint8Array, size: number, root: Hash): Promise<string[]> {
    const tiles = new TileHashReader(this.#reader, size);
    let cosigned;
    try {
      cosigned = await collectCosignatures({
        checkpoint: note,
        size,
        witnesses: this.#config.witnesses,
        threshold: this.#config.threshold,
        oldSize: this.#size,
        proof: (from) => tiles.consistencyProof(from),
        timeoutMs: this.#config.timeoutMs,
        waitMs: this.#config.waitSeconds * 1000,
        retryDelayMs: this.#config.retryDelayMs,
        userAgent: 'hashwall-signer',
      });
    } catch (err) {
      if (err instanceof TlogError && err.code === 'LOG_WITNESS_FAILED') {
        throw new TlogError(
          err.code,
          `${err.message}. Nothing new is published; the next publish or heartbeat sends this checkpoint again`,
        );
      }
      throw err;
    }
    await writeLogFiles(this.#dir, new Map([['checkpoint', cosigned.checkpoint]]));
    await removeFile(join(this.#dir, PENDING_FILE));
    await fsyncDir(this.#dir);
    this.#size = size;
    this.#root = root;
    return cosigned.witnesses.filter((w) => w.ok).map((w) => w.name);
  }

  /**
   * The rules a new index must follow against the log's last leaf (which may be an index no client saw): a higher
   * seq; a serial not below it; the same serial only with the same FULL (else the log would show one serial with
   * two lists: equivocation in the eyes of every monitor).
   */
  checkSuccessor(next: { seq: number; serial: number; full: { size: number; sha256: string } }): void {
    const last = this.#last?.index;
    if (last === undefined) return;
    const h = last.header;
    if (next.seq <= h.seq) {
      throw new FormatError('ROLLBACK', `seq ${next.seq} does not increase over seq ${h.seq} in the release log`);
    }
    if (next.serial < h.serial) {
      throw new FormatError(
        'ROLLBACK',
        `serial ${next.serial} is below serial ${h.serial}, which the release log already holds (an interrupted ` +
          'publish logged it): publish that serial again, or a higher one',
      );
    }
    if (next.serial === h.serial && (next.full.size !== last.full.size || next.full.sha256 !== last.full.sha256)) {
      throw new FormatError(
        'EQUIVOCATION',
        `the release log already holds serial ${h.serial} with another FULL (an interrupted publish): publish a higher serial`,
      );
    }
  }

  /**
   * Appends the index in `files` (the release about to be written) to the log: sets its `log-index`, signs it again
   * with `signers`, writes the leaf, stages, cosigns and publishes the checkpoint (steps 1 to 4). Returns the
   * release files with the logged index and its signatures, for the caller to write (step 5).
   */
  async append(files: ReadonlyMap<string, Uint8Array>, signers: readonly MinisignSecretKey[]): Promise<Appended> {
    const built = files.get(INDEX_PATH);
    if (built === undefined) throw new Error('internal: no index to log');
    const parsed = parseIndex(built);
    const logIndex = this.#size;
    const index: IndexList = { ...parsed, header: { ...parsed.header, logIndex } };
    const bytes = serializeIndex(index);
    const out = new Map([...files].filter(([name]) => parseSignatureFileName(name)?.fileName !== INDEX_PATH));
    out.delete(INDEX_PATH);
    const sigs = signatures(INDEX_PATH, bytes, indexTrustedComment(index.header), signers);
    for (const [name, text] of sigs) out.set(name, Buffer.from(text));
    out.set(INDEX_PATH, bytes);

    // 1. The leaf: tiles, entry bundle and the index's signatures.
    const appender =
      this.#size === 0 ? LogAppender.empty() : await LogAppender.resume(this.#reader, this.#size, this.#root);
    appender.add(bytes);
    const size = appender.size;
    const root = appender.root();
    const logFiles = appender.finish();
    logFiles.set(indexSignaturesPath(logIndex), Buffer.from([...sigs.values()].join('')));
    await writeLogFiles(this.#dir, logFiles);
    // 2. The checkpoint, signed and staged.
    const note = signCheckpoint({ origin: this.origin, size, root, extensions: [] }, [this.#config.key.noteSigner()]);
    await writeFileAtomic(join(this.#dir, PENDING_FILE), note);
    // 3 and 4.
    const cosigners = await this.#publish(note, size, root);
    this.#last = { logIndex, index };
    return { files: out, logIndex, size, cosigners };
  }
}

/**
 * Rewrites `log/index-signatures/<N>` of the leaf the current index occupies with the index's signature files on
 * disk, after `sign --add` added one (so an auditor counts the same signatures as a daemon). No-op without a log
 * or when the index carries no log-index.
 */
export async function refreshIndexSignatures(dir: string, index: IndexList): Promise<void> {
  const logIndex = index.header.logIndex;
  if (
    logIndex === undefined ||
    (await readOptional(join(dir, LOG_DIR, 'checkpoint'), MAX_NOTE_BYTES, 'log')) === undefined
  ) {
    return;
  }
  const names = (await listDir(dir)).filter((n) => parseSignatureFileName(n)?.fileName === INDEX_PATH).sort();
  const main = names.filter((n) => parseSignatureFileName(n)?.keyId === undefined);
  const texts: string[] = [];
  for (const name of [...main, ...names.filter((n) => !main.includes(n))]) {
    texts.push((await readCapped(join(dir, name), 2048, 'signature')).toString('utf8'));
  }
  await writeLogFiles(dir, new Map([[indexSignaturesPath(logIndex), Buffer.from(texts.join(''))]]));
}

/** Reads one leaf's index signatures (absent: none were kept). */
export async function readIndexSignatures(reader: TileReader, logIndex: number): Promise<string[] | undefined> {
  const bytes = await reader.read(indexSignaturesPath(logIndex), MAX_INDEX_SIGNATURES_BYTES);
  return bytes === undefined ? undefined : splitSignatureFiles(bytes);
}
