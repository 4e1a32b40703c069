/**
 * The state directory of one list (SPEC.md 4.3): the verified index with its signatures, the FULL it names, and
 * state.json, the commit record.
 *
 *   <stateDir>/<list-id>/state.json                 {"listId","serial","seq","bodySha256","fullSha256","indexSignatures"}
 *   <stateDir>/<list-id>/index-<seq>.hwl            the verified index, byte for byte as published
 *   <stateDir>/<list-id>/index-<seq>.hwl.<n>.minisig its signature files, n = 0 .. indexSignatures - 1
 *   <stateDir>/<list-id>/full-<serial>.hwl          the FULL that index names
 *
 * File names carry the seq and serial, so a commit never overwrites a file the current state.json points to: the
 * new files are written beside the old ones (each to a temp file, fsync, rename), the directory is fsynced, then
 * state.json is replaced the same way, then the directory again. state.json is the commit point: a crash at any step
 * leaves either the old state with its files or the new state with its files, never a mix. Files no state points
 * to are removed after the commit (and at the next open, if a crash came first).
 *
 * A downloaded FULL is never held whole: it is streamed into a spool, `.tmp-full-<random>` in the same directory
 * (created exclusively, mode 0600), and the commit fsyncs and renames that file into place as it does any other
 * temp file. A poll that fails removes its spool; a crash leaves a temp file, which the next commit or open sweeps.
 * At start the stored FULL is read in pieces through an open file (`openRead`), never whole.
 *
 * Every read is capped. The functions are synchronous: they run in the list's worker thread, never on the thread
 * that answers queries. Nothing here verifies anything: the caller re-opens what it reads with
 * `openStoredMatcherFrom` of @hashwall/format before trusting a byte of it.
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

import {
  MAX_INDEX_BYTES,
  MAX_SIGNATURES_PER_FILE,
  MAX_SIGNATURE_FILE_BYTES,
  type FullFile,
  type FullSpool,
  type ListState,
  type StoredReleaseFile,
} from '@hashwall/format';

import { makeDirs } from '../util/fs.js';

export const STATE_FILE = 'state.json';
/** state.json is a few hundred bytes; refuse anything much larger before reading it. */
const MAX_STATE_BYTES = 4096;
const HEX64 = /^[0-9a-f]{64}$/;
const TEMP_PREFIX = '.tmp-';

/** What state.json records: the SPEC.md 4.3 state, plus how many index signature files were kept. */
export interface StoredState extends ListState {
  readonly indexSignatures: number;
}

/** The committed files with the FULL left on disk, open for reading in pieces; `close()` when done. */
export type StoredOpen =
  | { readonly status: 'absent' }
  | { readonly status: 'corrupt'; readonly message: string }
  | { readonly status: 'incomplete'; readonly state: StoredState; readonly message: string }
  | {
      readonly status: 'ok';
      readonly state: StoredState;
      readonly files: StoredReleaseFile & { readonly full: OpenFile };
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
  const keys = ['listId', 'serial', 'seq', 'bodySha256', 'fullSha256', 'indexSignatures'];
  if (Object.keys(o).sort().join() !== [...keys].sort().join()) throw new Error('state.json has other keys');
  if (o.listId !== listId) throw new Error(`state.json is for list ${String(o.listId)}`);
  if (!isCount(o.serial) || !isCount(o.seq)) throw new Error('state.json: serial and seq must be integers');
  if (typeof o.bodySha256 !== 'string' || !HEX64.test(o.bodySha256)) throw new Error('state.json: bad bodySha256');
  if (typeof o.fullSha256 !== 'string' || !HEX64.test(o.fullSha256)) throw new Error('state.json: bad fullSha256');
  const n = o.indexSignatures;
  if (!isCount(n) || n < 1 || n > MAX_SIGNATURES_PER_FILE) throw new Error('state.json: bad indexSignatures');
  return {
    listId,
    serial: o.serial,
    seq: o.seq,
    bodySha256: o.bodySha256,
    fullSha256: o.fullSha256,
    indexSignatures: n,
  };
}

/** The one text form of a state record. */
export function serializeState(state: StoredState): string {
  const { listId, serial, seq, bodySha256, fullSha256, indexSignatures } = state;
  return `${JSON.stringify({ listId, serial, seq, bodySha256, fullSha256, indexSignatures }, null, 2)}\n`;
}

/** Writes `bytes` to `dir/name` atomically: a temp file in the same directory, fsync, rename. */
function writeFileAtomic(dir: string, name: string, bytes: Uint8Array): void {
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

/** fsync a directory, so that the renames in it are durable. */
function fsyncDir(dir: string): void {
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
      const full = openCapped(join(this.dir, fullFileName(state.serial)), maxListBytes);
      return { status: 'ok', state, files: { indexBytes, indexSignatures, full } };
    } catch (err) {
      const why = err instanceof Absent ? `${err.message} is missing` : (err as Error).message;
      return { status: 'incomplete', state, message: why };
    }
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
   * the spool it was streamed into; neither for a heartbeat: the FULL of `state.serial` is already stored), then
   * state.json last. Throws on an I/O error; the previous commit then stays the one in force.
   */
  commit(update: {
    readonly indexBytes: Uint8Array;
    readonly indexSignatures: readonly Uint8Array[];
    readonly fullBytes?: Uint8Array;
    readonly fullSpool?: FileSpool;
    readonly state: ListState;
  }): StoredState {
    const { state } = update;
    const n = update.indexSignatures.length;
    if (n < 1 || n > MAX_SIGNATURES_PER_FILE) throw new RangeError('an index has 1 to 8 signature files');
    if (update.fullBytes && update.fullSpool) throw new RangeError('a FULL is committed from bytes or a spool');
    this.ensureDir();
    if (update.fullBytes) writeFileAtomic(this.dir, fullFileName(state.serial), update.fullBytes);
    if (update.fullSpool) update.fullSpool.commitAs(this.dir, fullFileName(state.serial));
    writeFileAtomic(this.dir, indexFileName(state.seq), update.indexBytes);
    update.indexSignatures.forEach((sig, i) => writeFileAtomic(this.dir, indexSignatureFileName(state.seq, i), sig));
    fsyncDir(this.dir);
    const stored: StoredState = {
      listId: state.listId,
      serial: state.serial,
      seq: state.seq,
      bodySha256: state.bodySha256,
      fullSha256: state.fullSha256,
      indexSignatures: n,
    };
    writeFileAtomic(this.dir, STATE_FILE, Buffer.from(serializeState(stored)));
    fsyncDir(this.dir);
    this.sweep(stored);
    return stored;
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
    }
    for (const name of names) {
      const ours = name.startsWith(TEMP_PREFIX) || /^(index|full)-\d+\.hwl/.test(name);
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
