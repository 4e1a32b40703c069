/**
 * The state directory of one list (SPEC.md 4.3): the verified index with its signatures, the FULL it names, and
 * state.json, the commit record; for a list anchored on root keys its keyrings (SPEC.md 5.4), and for a list with
 * a release log the checkpoint last accepted (SPEC.md 6), committed with the list state.
 *
 *   <stateDir>/<list-id>/state.json                 {"listId","serial","seq","bodySha256","fullSha256","indexSignatures",
 *                                                    "keyring"?, "indexKeyring"?, "checkpointSha256"?}
 *   <stateDir>/<list-id>/index-<seq>.hwl            the verified index, byte for byte as published
 *   <stateDir>/<list-id>/index-<seq>.hwl.<n>.minisig its signature files, n = 0 .. indexSignatures - 1
 *   <stateDir>/<list-id>/full-<serial>.hwl          the FULL that index names
 *   <stateDir>/<list-id>/keyring-<v>.hwk            the current keyring, and the one the index was verified under
 *   <stateDir>/<list-id>/keyring-<v>.hwk.<n>.minisig   when older ({"version","sha256","signatures"} each)
 *   <stateDir>/<list-id>/checkpoint-<sha256>        the release log's checkpoint last accepted (a signed note)
 *   <stateDir>/<list-id>/held.json, release.json    a list held by the guard, and its operator's release (hold.ts)
 *   <stateDir>/<list-id>/evidence/                  split views of the release log: both notes (saveSplitView)
 *
 * File names carry the seq, serial, version or digest, so a commit never overwrites a file the current state.json
 * points to: the new files are written beside the old ones (each to a temp file, fsync, rename; a keyring or
 * checkpoint already there with the same bytes is kept), the directory is fsynced, then state.json is replaced the
 * same way, then the directory again. state.json is the commit point: a crash at any step leaves either the old
 * state with its files or the new state with its files, never a mix. Files no state points to are removed after
 * the commit (and at the next open, if a crash came first).
 *
 * A downloaded FULL is never held whole: it is streamed into a spool, `.tmp-full-<random>` in the same directory
 * (created exclusively, mode 0600), and the commit fsyncs and renames that file into place as it does any other
 * temp file. A poll that fails removes its spool; a crash leaves a temp file, which the next commit or open sweeps.
 * At start the stored FULL is read in pieces through an open file (`openRead`), never whole.
 *
 * Every read is capped. The functions are synchronous: they run in the list's worker thread, never on the thread
 * that answers queries. Nothing here verifies anything: the caller re-opens what it reads with
 * `openStoredMatcherFrom` and `openStoredKeyring` of @hashwall/format before trusting a byte of it.
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';

import {
  MAX_INDEX_BYTES,
  MAX_KEYRING_BYTES,
  MAX_SIGNATURES_PER_FILE,
  MAX_SIGNATURE_FILE_BYTES,
  type FullFile,
  type FullSpool,
  type ListState,
  type StoredReleaseFile,
} from '@hashwall/format';
import { MAX_CHECKPOINT_BYTES } from '@hashwall/tlog';

import { makeDirs } from '../util/fs.js';

export const STATE_FILE = 'state.json';
/** state.json is a few hundred bytes; refuse anything much larger before reading it. */
const MAX_STATE_BYTES = 4096;
const HEX64 = /^[0-9a-f]{64}$/;
const TEMP_PREFIX = '.tmp-';
/** The folder of a list's split-view evidence (never swept). */
export const EVIDENCE_DIR = 'evidence';

/** A keyring kept in the state directory (SPEC.md 5.4): its version, its file's SHA-256, its signature files. */
export interface KeyringRef {
  readonly version: number;
  readonly sha256: string;
  readonly signatures: number;
}

/** What state.json records: the SPEC.md 4.3 state, plus how many index signature files were kept. */
export interface StoredState extends ListState {
  readonly indexSignatures: number;
  /** SPEC.md 5.4: the current keyring of a list anchored on root keys. */
  readonly keyring?: KeyringRef;
  /** The keyring the stored index was verified under, when it is older than `keyring`. */
  readonly indexKeyring?: KeyringRef;
  /** SPEC.md 6: the SHA-256 of the release log's checkpoint last accepted. */
  readonly checkpointSha256?: string;
}

/** A signed file as kept: its bytes and its signature files. */
export interface SignedFile {
  readonly bytes: Uint8Array;
  readonly signatures: readonly Uint8Array[];
}

/** A keyring as committed: its file, signatures and version (verified by the caller). */
export interface KeyringFile extends SignedFile {
  readonly version: number;
}

/** What is committed with the list state besides the list itself: keyrings and the log's checkpoint. */
export interface TrustFiles {
  readonly keyring?: KeyringFile;
  /** Only when older than `keyring`. */
  readonly indexKeyring?: KeyringFile;
  readonly checkpoint?: Uint8Array;
}

/** The committed files with the FULL left on disk, open for reading in pieces; `close()` when done. */
export type StoredOpen =
  | { readonly status: 'absent' }
  | { readonly status: 'corrupt'; readonly message: string }
  | { readonly status: 'incomplete'; readonly state: StoredState; readonly message: string }
  | {
      readonly status: 'ok';
      readonly state: StoredState;
      readonly files: StoredReleaseFile & { readonly full: OpenFile } & TrustFiles;
    };

/** A file of the state directory open for reading by position (a FullFile); `close()` once read. */
export class OpenFile implements FullFile {
  readonly size: number;
  #fd: number | undefined;

  constructor(fd: number, size: number) {
    this.#fd = fd;
    this.size = size;
  }

  read(position: number, into: Uint8Array): number {
    if (this.#fd === undefined) throw new Error('the file is closed');
    return readSync(this.#fd, into, 0, into.length, position);
  }

  close(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    closeSync(fd);
  }
}

/**
 * A FULL being downloaded (a FullSpool): a temp file created exclusively in the list's directory. `commitAs`
 * (through ListStore.commit) fsyncs it and renames it into place; `discard` closes and removes it.
 */
export class FileSpool implements FullSpool {
  readonly path: string;
  #fd: number | undefined;
  #size = 0;

  constructor(path: string) {
    this.#fd = openSync(path, 'wx+', 0o600);
    this.path = path;
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#size;
  }

  write(chunk: Uint8Array): void {
    const fd = this.#open();
    let off = 0;
    while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off, this.#size + off);
    this.#size += chunk.length;
  }

  read(position: number, into: Uint8Array): number {
    return readSync(this.#open(), into, 0, into.length, position);
  }

  /** fsync, close and rename to `dir/name` (the caller fsyncs the directory). */
  commitAs(dir: string, name: string): void {
    const fd = this.#open();
    fsyncSync(fd);
    this.#fd = undefined;
    closeSync(fd);
    renameSync(this.path, join(dir, name));
  }

  /** Closes and removes the spool (best effort: a leftover temp file is swept at the next commit or open). */
  discard(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    try {
      if (fd !== undefined) closeSync(fd);
    } catch {
      // already closed
    }
    try {
      unlinkSync(this.path);
    } catch {
      // gone already, or renamed into place
    }
  }

  #open(): number {
    if (this.#fd === undefined) throw new Error('the spool is closed');
    return this.#fd;
  }
}

/** Opens a file for reading by position, refusing (TooBig) one over `cap`; Absent when it does not exist. */
function openCapped(path: string, cap: number): OpenFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Absent(path);
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    if (size > cap) throw new TooBig(`${path} is ${size} bytes, over ${cap}`);
    return new OpenFile(fd, size);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** A file this module could not read because it is absent. */
class Absent extends Error {}
/** A file over its cap. */
class TooBig extends Error {}

export function indexFileName(seq: number): string {
  return `index-${seq}.hwl`;
}

export function indexSignatureFileName(seq: number, n: number): string {
  return `index-${seq}.hwl.${n}.minisig`;
}

export function fullFileName(serial: number): string {
  return `full-${serial}.hwl`;
}

export function keyringFileName(version: number): string {
  return `keyring-${version}.hwk`;
}

export function keyringSignatureFileName(version: number, n: number): string {
  return `keyring-${version}.hwk.${n}.minisig`;
}

export function checkpointFileName(sha256: string): string {
  return `checkpoint-${sha256}`;
}

function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads a whole file, refusing (TooBig) one over `cap` bytes; Absent when it does not exist. */
function readCapped(path: string, cap: number): Buffer {
  const file = openCapped(path, cap);
  try {
    // One byte of room past the size: a file that grows while we read it is caught, not truncated.
    const buf = Buffer.allocUnsafe(file.size + 1);
    let total = 0;
    for (;;) {
      const n = file.read(total, buf.subarray(total));
      if (n === 0) break;
      total += n;
      if (total === buf.length) break;
    }
    if (total > cap) throw new TooBig(`${path} grew past ${cap} bytes while read`);
    return buf.subarray(0, total);
  } finally {
    file.close();
  }
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseKeyringRef(v: unknown, what: string): KeyringRef {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`state.json: bad ${what}`);
  const o = v as Record<string, unknown>;
  if (Object.keys(o).sort().join() !== 'sha256,signatures,version') throw new Error(`state.json: bad ${what}`);
  const { version, sha256, signatures } = o;
  if (!isCount(version) || version < 1) throw new Error(`state.json: bad ${what}.version`);
  if (typeof sha256 !== 'string' || !HEX64.test(sha256)) throw new Error(`state.json: bad ${what}.sha256`);
  if (!isCount(signatures) || signatures < 1 || signatures > MAX_SIGNATURES_PER_FILE) {
    throw new Error(`state.json: bad ${what}.signatures`);
  }
  return { version, sha256, signatures };
}

const STATE_KEYS = ['listId', 'serial', 'seq', 'bodySha256', 'fullSha256', 'indexSignatures'];
const OPTIONAL_STATE_KEYS = ['keyring', 'indexKeyring', 'checkpointSha256'];

/** Parses state.json strictly: exactly the known keys, each of its type. */
export function parseState(text: string, listId: string): StoredState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error('state.json is not JSON');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('state.json is not an object');
  const o = raw as Record<string, unknown>;
  const present = Object.keys(o);
  if (
    !STATE_KEYS.every((k) => present.includes(k)) ||
    !present.every((k) => STATE_KEYS.includes(k) || OPTIONAL_STATE_KEYS.includes(k))
  ) {
    throw new Error('state.json has other keys');
  }
  if (o.listId !== listId) throw new Error(`state.json is for list ${String(o.listId)}`);
  if (!isCount(o.serial) || !isCount(o.seq)) throw new Error('state.json: serial and seq must be integers');
  if (typeof o.bodySha256 !== 'string' || !HEX64.test(o.bodySha256)) throw new Error('state.json: bad bodySha256');
  if (typeof o.fullSha256 !== 'string' || !HEX64.test(o.fullSha256)) throw new Error('state.json: bad fullSha256');
  const n = o.indexSignatures;
  if (!isCount(n) || n < 1 || n > MAX_SIGNATURES_PER_FILE) throw new Error('state.json: bad indexSignatures');
  const keyring = o.keyring === undefined ? undefined : parseKeyringRef(o.keyring, 'keyring');
  const indexKeyring = o.indexKeyring === undefined ? undefined : parseKeyringRef(o.indexKeyring, 'indexKeyring');
  if (indexKeyring && (!keyring || indexKeyring.version >= keyring.version)) {
    throw new Error('state.json: indexKeyring must be older than keyring');
  }
  const cp = o.checkpointSha256;
  if (cp !== undefined && (typeof cp !== 'string' || !HEX64.test(cp))) throw new Error('state.json: bad checkpoint');
  return {
    listId,
    serial: o.serial,
    seq: o.seq,
    bodySha256: o.bodySha256,
    fullSha256: o.fullSha256,
    indexSignatures: n,
    ...(keyring ? { keyring } : {}),
    ...(indexKeyring ? { indexKeyring } : {}),
    ...(cp !== undefined ? { checkpointSha256: cp } : {}),
  };
}

/** The one text form of a state record. */
export function serializeState(state: StoredState): string {
  const { listId, serial, seq, bodySha256, fullSha256, indexSignatures, keyring, indexKeyring, checkpointSha256 } =
    state;
  const record = {
    listId,
    serial,
    seq,
    bodySha256,
    fullSha256,
    indexSignatures,
    ...(keyring ? { keyring } : {}),
    ...(indexKeyring ? { indexKeyring } : {}),
    ...(checkpointSha256 !== undefined ? { checkpointSha256 } : {}),
  };
  return `${JSON.stringify(record, null, 2)}\n`;
}

/** Writes `bytes` to `dir/name` atomically: a temp file in the same directory, fsync, rename. */
export function writeFileAtomic(dir: string, name: string, bytes: Uint8Array): void {
  const temp = join(dir, `${TEMP_PREFIX}${name}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // best effort: a leftover temp file is removed at the next open
    }
    throw err;
  }
  closeSync(fd);
  renameSync(temp, join(dir, name));
}

/** Writes `bytes` to `dir/name` as writeFileAtomic does, unless that file already holds exactly these bytes. */
function writeUnlessSame(dir: string, name: string, bytes: Uint8Array, cap: number): void {
  try {
    if (Buffer.from(bytes).equals(readCapped(join(dir, name), cap))) return;
  } catch {
    // absent or unreadable: write it
  }
  writeFileAtomic(dir, name, bytes);
}

/** fsync a directory, so that the renames in it are durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The state directory of one list. */
export class ListStore {
  readonly dir: string;
  readonly listId: string;

  constructor(stateDir: string, listId: string) {
    this.listId = listId;
    this.dir = join(stateDir, listId);
  }

  /**
   * Reads state.json and the index files it names, with caps, and opens the FULL (at most `maxListBytes`) for
   * reading in pieces (openStoredMatcherFrom of @hashwall/format), so that re-opening a 64 MiB list never holds it
   * whole. Never throws for content. The caller closes `files.full`.
   */
  openRead(maxListBytes: number): StoredOpen {
    let text: Buffer;
    try {
      text = readCapped(join(this.dir, STATE_FILE), MAX_STATE_BYTES);
    } catch (err) {
      if (err instanceof Absent) return { status: 'absent' };
      return { status: 'corrupt', message: (err as Error).message };
    }
    let state: StoredState;
    try {
      state = parseState(text.toString('utf8'), this.listId);
    } catch (err) {
      return { status: 'corrupt', message: (err as Error).message };
    }
    try {
      const indexBytes = readCapped(join(this.dir, indexFileName(state.seq)), MAX_INDEX_BYTES);
      const indexSignatures: Buffer[] = [];
      for (let n = 0; n < state.indexSignatures; n++) {
        indexSignatures.push(
          readCapped(join(this.dir, indexSignatureFileName(state.seq, n)), MAX_SIGNATURE_FILE_BYTES),
        );
      }
      const trust: { -readonly [K in keyof TrustFiles]: TrustFiles[K] } = {};
      if (state.keyring) trust.keyring = { ...this.readKeyring(state.keyring), version: state.keyring.version };
      if (state.indexKeyring) {
        trust.indexKeyring = { ...this.readKeyring(state.indexKeyring), version: state.indexKeyring.version };
      }
      if (state.checkpointSha256 !== undefined) {
        trust.checkpoint = readCapped(join(this.dir, checkpointFileName(state.checkpointSha256)), MAX_CHECKPOINT_BYTES);
        if (sha256Of(trust.checkpoint) !== state.checkpointSha256) {
          throw new Error('the stored checkpoint is not the one state.json names');
        }
      }
      const full = openCapped(join(this.dir, fullFileName(state.serial)), maxListBytes);
      return { status: 'ok', state, files: { indexBytes, indexSignatures, full, ...trust } };
    } catch (err) {
      const why = err instanceof Absent ? `${err.message} is missing` : (err as Error).message;
      return { status: 'incomplete', state, message: why };
    }
  }

  /** A stored keyring's file and signatures, with caps (its digest is checked by openStoredKeyring). */
  private readKeyring(ref: KeyringRef): SignedFile {
    const bytes = readCapped(join(this.dir, keyringFileName(ref.version)), MAX_KEYRING_BYTES);
    const signatures: Buffer[] = [];
    for (let n = 0; n < ref.signatures; n++) {
      signatures.push(readCapped(join(this.dir, keyringSignatureFileName(ref.version, n)), MAX_SIGNATURE_FILE_BYTES));
    }
    return { bytes, signatures };
  }

  /** Makes the spool a download streams its FULL into (see FileSpool); the directory is created if need be. */
  createSpool(): FileSpool {
    this.ensureDir();
    return new FileSpool(join(this.dir, `${TEMP_PREFIX}full-${randomBytes(6).toString('hex')}`));
  }

  private ensureDir(): void {
    if (makeDirs(this.dir, 0o700) !== undefined) fsyncDir(dirname(this.dir));
  }

  /**
   * Commits a verified poll (SPEC.md 4.3): the index and its signatures, the FULL when it changed (its bytes, or
   * the spool it was streamed into; neither for a heartbeat: the FULL of `state.serial` is already stored), the
   * keyrings and the checkpoint (`trust`: written unless already there), then state.json last. Without `indexBytes`
   * the state's index is already stored (`indexSignatureCount` files): a commit of new trust alone (keyrings a walk
   * accepted, SPEC.md 5.1). Throws on an I/O error; the previous commit then stays the one in force.
   */
  commit(update: {
    readonly indexBytes?: Uint8Array;
    readonly indexSignatures?: readonly Uint8Array[];
    readonly indexSignatureCount?: number;
    readonly fullBytes?: Uint8Array;
    readonly fullSpool?: FileSpool;
    readonly state: ListState;
    readonly trust?: TrustFiles;
  }): StoredState {
    const { state } = update;
    const n = update.indexBytes ? (update.indexSignatures?.length ?? 0) : (update.indexSignatureCount ?? 0);
    if (n < 1 || n > MAX_SIGNATURES_PER_FILE) throw new RangeError('an index has 1 to 8 signature files');
    if (update.fullBytes && update.fullSpool) throw new RangeError('a FULL is committed from bytes or a spool');
    const t = update.trust ?? {};
    this.ensureDir();
    if (update.fullBytes) writeFileAtomic(this.dir, fullFileName(state.serial), update.fullBytes);
    if (update.fullSpool) update.fullSpool.commitAs(this.dir, fullFileName(state.serial));
    if (update.indexBytes) {
      writeFileAtomic(this.dir, indexFileName(state.seq), update.indexBytes);
      update.indexSignatures!.forEach((sig, i) => writeFileAtomic(this.dir, indexSignatureFileName(state.seq, i), sig));
    }
    const keyring = t.keyring ? this.writeKeyring(t.keyring) : undefined;
    const indexKeyring = t.indexKeyring ? this.writeKeyring(t.indexKeyring) : undefined;
    let checkpointSha256: string | undefined;
    if (t.checkpoint) {
      checkpointSha256 = sha256Of(t.checkpoint);
      writeUnlessSame(this.dir, checkpointFileName(checkpointSha256), t.checkpoint, MAX_CHECKPOINT_BYTES);
    }
    fsyncDir(this.dir);
    const stored: StoredState = {
      listId: state.listId,
      serial: state.serial,
      seq: state.seq,
      bodySha256: state.bodySha256,
      fullSha256: state.fullSha256,
      indexSignatures: n,
      ...(keyring ? { keyring } : {}),
      ...(indexKeyring ? { indexKeyring } : {}),
      ...(checkpointSha256 !== undefined ? { checkpointSha256 } : {}),
    };
    writeFileAtomic(this.dir, STATE_FILE, Buffer.from(serializeState(stored)));
    fsyncDir(this.dir);
    this.sweep(stored);
    return stored;
  }

  /** Writes a keyring and its signatures (unless there with the same bytes); its record for state.json. */
  private writeKeyring(k: KeyringFile): KeyringRef {
    const { version } = k;
    const n = k.signatures.length;
    if (n < 1 || n > MAX_SIGNATURES_PER_FILE) throw new RangeError('a keyring has 1 to 8 signature files');
    writeUnlessSame(this.dir, keyringFileName(version), k.bytes, MAX_KEYRING_BYTES);
    k.signatures.forEach((sig, i) =>
      writeUnlessSame(this.dir, keyringSignatureFileName(version, i), sig, MAX_SIGNATURE_FILE_BYTES),
    );
    return { version, sha256: sha256Of(k.bytes), signatures: n };
  }

  /**
   * Keeps the two signed checkpoints of a split view of the release log (SPEC.md 6) as evidence, in
   * `evidence/<time>-<digest>/` (`earlier.note`, `later.note`, `reason.txt`), at most `max` per list (the earliest
   * matter). Returns the folder written, or undefined when the cap was reached or the same pair is kept already.
   */
  saveSplitView(
    evidence: { readonly earlier: Uint8Array; readonly later: Uint8Array; readonly reason: string },
    at: Date,
    max: number,
  ): string | undefined {
    const root = join(this.dir, EVIDENCE_DIR);
    const digest = createHash('sha256').update(evidence.earlier).update(evidence.later).digest('hex').slice(0, 16);
    let kept: string[] = [];
    try {
      kept = readdirSync(root);
    } catch {
      // none yet
    }
    if (kept.some((n) => n.endsWith(`-${digest}`)) || kept.length >= max) return undefined;
    this.ensureDir();
    if (makeDirs(root, 0o700) !== undefined) fsyncDir(this.dir);
    const name = `${at.toISOString().replace(/[:.]/g, '-')}-${digest}`;
    const temp = join(root, `${TEMP_PREFIX}${name}`);
    mkdirSync(temp, { mode: 0o700 });
    writeFileAtomic(temp, 'earlier.note', evidence.earlier);
    writeFileAtomic(temp, 'later.note', evidence.later);
    writeFileAtomic(temp, 'reason.txt', Buffer.from(`${evidence.reason}\n`));
    fsyncDir(temp);
    renameSync(temp, join(root, name));
    fsyncDir(root);
    return join(root, name);
  }

  /** How many split views are kept as evidence. */
  evidenceCount(): number {
    try {
      return readdirSync(join(this.dir, EVIDENCE_DIR)).filter((n) => !n.startsWith(TEMP_PREFIX)).length;
    } catch {
      return 0;
    }
  }

  /** Removes files that `state` does not point to: older commits and temp files left by a crash. Best effort. */
  sweep(state: StoredState | undefined): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    const keep = new Set<string>([STATE_FILE]);
    if (state) {
      keep.add(fullFileName(state.serial));
      keep.add(indexFileName(state.seq));
      for (let i = 0; i < state.indexSignatures; i++) keep.add(indexSignatureFileName(state.seq, i));
      for (const k of [state.keyring, state.indexKeyring]) {
        if (!k) continue;
        keep.add(keyringFileName(k.version));
        for (let i = 0; i < k.signatures; i++) keep.add(keyringSignatureFileName(k.version, i));
      }
      if (state.checkpointSha256 !== undefined) keep.add(checkpointFileName(state.checkpointSha256));
    }
    for (const name of names) {
      const ours =
        name.startsWith(TEMP_PREFIX) || /^((index|full)-\d+\.hwl|keyring-\d+\.hwk|checkpoint-[0-9a-f]{64}$)/.test(name);
      if (ours && !keep.has(name)) {
        try {
          unlinkSync(join(this.dir, name));
        } catch {
          // best effort
        }
      }
    }
  }
}
