/**
 * File helpers with the care a release directory needs: size caps before reading, atomic replacement (a temp
 * file in the same directory, fsync, rename, fsync of the directory), exclusive creation of key files, and the
 * lock that keeps a heartbeat timer and a manual publish from writing one directory at once.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

import { FormatError } from '@hashwall/format';

import { SignerError, ioError, isSystemError } from './errors.js';

/** Temp files start with this; they are never part of a release, and a publish holding the lock removes them. */
export const TEMP_PREFIX = '.hwtmp-';
/** The lock file of a release directory. */
export const LOCK_FILE = '.hashwall-signer.lock';

const workingDir = new AsyncLocalStorage<string>();

/**
 * Runs `fn` (a command) with `cwd` as the directory its relative paths resolve against, without changing the
 * process's own: so a script or a test can run commands in one process, each in its own directory (Io.cwd).
 */
export function inWorkingDir<T>(cwd: string, fn: () => T): T {
  return workingDir.run(cwd, fn);
}

/**
 * `path` as the file system should see it: resolved against the running command's working directory. Commands keep
 * paths as the user spelt them, for their messages; every call into the file system goes through this.
 */
export function fsPath(path: string): string {
  const cwd = workingDir.getStore();
  return cwd === undefined ? path : resolve(cwd, path);
}

/**
 * Reads a whole file, refusing (TOO_LARGE) one larger than `maxBytes`: a regular file by its size before reading,
 * anything else (a pipe such as `<(pass show ...)`, a character device) once more than `maxBytes` arrive.
 */
export async function readCapped(path: string, maxBytes: number, what: string): Promise<Buffer> {
  let handle: FileHandle;
  try {
    handle = await open(fsPath(path), 'r');
  } catch (err) {
    throw ioError(err, `cannot open ${what}`, path);
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new SignerError('IO', `${what} ${path} is a directory`);
    const regular = st.isFile();
    if (regular && st.size > maxBytes) throw new FormatError('TOO_LARGE', `${what} ${path} is over ${maxBytes} bytes`);
    // Read one byte past the cap, so a file that grows while we read cannot slip past it.
    let buf = Buffer.alloc(regular ? st.size + 1 : Math.min(maxBytes + 1, 64 * 1024));
    let total = 0;
    for (;;) {
      if (total === buf.length) {
        if (regular || buf.length > maxBytes) break;
        const bigger = Buffer.alloc(Math.min(buf.length * 2, maxBytes + 1));
        buf.copy(bigger);
        buf.fill(0);
        buf = bigger;
      }
      const { bytesRead } = await handle.read(buf, total, buf.length - total, regular ? total : null);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    if (total > maxBytes) throw new FormatError('TOO_LARGE', `${what} ${path} is over ${maxBytes} bytes`);
    return buf.subarray(0, total);
  } catch (err) {
    if (err instanceof FormatError || err instanceof SignerError) throw err;
    throw ioError(err, `cannot read ${what}`, path);
  } finally {
    await handle.close();
  }
}

/** Reads a file that may be absent: undefined when it does not exist. */
export async function readOptional(path: string, maxBytes: number, what: string): Promise<Buffer | undefined> {
  try {
    return await readCapped(path, maxBytes, what);
  } catch (err) {
    if (err instanceof SignerError && isSystemError(err.cause) && err.cause.code === 'ENOENT') return undefined;
    throw err;
  }
}

/** fsync on a directory, so that renames and unlinks in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(fsPath(dir), constants.O_RDONLY | constants.O_DIRECTORY);
    await handle.sync();
  } catch (err) {
    throw ioError(err, 'cannot sync directory', dir);
  } finally {
    await handle?.close();
  }
}

function tempName(path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${basename(path)}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** Writes `data` to a new temp file next to `path` and fsyncs it; returns the temp path (the caller renames it). */
async function writeTemp(path: string, data: Uint8Array | string, mode: number): Promise<string> {
  const tmp = tempName(path);
  let handle: FileHandle | undefined;
  try {
    handle = await open(fsPath(tmp), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    await handle.chmod(mode); // the umask may have taken bits away; set exactly what was asked
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    return tmp;
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(fsPath(tmp), { force: true }).catch(() => undefined);
    throw ioError(err, 'cannot write', tmp);
  }
}

export interface AtomicOptions {
  /** File mode (default 0o644: release files are public). */
  readonly mode?: number;
  /** fsync the directory after the rename (default true). Callers renaming many files sync once at the end. */
  readonly syncDir?: boolean;
}

/**
 * Replaces `path` with `data` atomically: a reader sees the old file or the new one, never a part. The data is on
 * disk before the rename, and (unless syncDir is false) the rename before this returns.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: AtomicOptions = {},
): Promise<void> {
  const tmp = await writeTemp(path, data, options.mode ?? 0o644);
  try {
    await rename(fsPath(tmp), fsPath(path));
  } catch (err) {
    await rm(fsPath(tmp), { force: true }).catch(() => undefined);
    throw ioError(err, 'cannot rename into place', path);
  }
  if (options.syncDir ?? true) await fsyncDir(dirname(path));
}

/**
 * Replaces several files, each atomically, with the window between them as short as it can be: every temp file is
 * written and fsynced first, then the renames run back to back in the given order (no I/O wait between them),
 * then the directories are fsynced. For a pair that must change together, such as `index.hwl` and its signature.
 */
export async function writeFilesAtomic(
  entries: readonly (readonly [path: string, data: Uint8Array | string])[],
  options: { readonly mode?: number } = {},
): Promise<void> {
  const temps: [tmp: string, path: string][] = [];
  try {
    for (const [path, data] of entries) temps.push([await writeTemp(path, data, options.mode ?? 0o644), path]);
  } catch (err) {
    await Promise.all(temps.map(([tmp]) => rm(fsPath(tmp), { force: true }).catch(() => undefined)));
    throw err;
  }
  for (let i = 0; i < temps.length; i++) {
    const [tmp, path] = temps[i]!;
    try {
      await rename(fsPath(tmp), fsPath(path));
    } catch (err) {
      await Promise.all(temps.slice(i).map(([t]) => rm(fsPath(t), { force: true }).catch(() => undefined)));
      throw ioError(err, 'cannot rename into place', path);
    }
  }
  for (const d of new Set(entries.map(([path]) => dirname(path)))) await fsyncDir(d);
}

/**
 * Creates `path` holding `data` with `mode`, refusing (EXISTS) when it exists unless `force`; with `force` the
 * file is replaced atomically. For key files: no moment where a secret sits in a file with a wider mode.
 */
export async function writeNewFile(path: string, data: string, mode: number, force: boolean): Promise<void> {
  if (force) {
    await writeFileAtomic(path, data, { mode });
    return;
  }
  const tmp = await writeTemp(path, data, mode);
  try {
    // link() fails with EEXIST when the name is taken: an exclusive create of a complete, synced file.
    await link(fsPath(tmp), fsPath(path));
  } catch (err) {
    if (isSystemError(err) && err.code === 'EEXIST') {
      throw new SignerError('EXISTS', `${path} exists; refusing to overwrite it (use --force to replace it)`);
    }
    throw ioError(err, 'cannot create', path);
  } finally {
    await unlink(fsPath(tmp)).catch(() => undefined);
  }
  await fsyncDir(dirname(path));
}

/** Whether a path exists (any type). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(fsPath(path));
    return true;
  } catch (err) {
    if (isSystemError(err) && err.code === 'ENOENT') return false;
    throw ioError(err, 'cannot look at', path);
  }
}

/** Names in a directory, or [] when it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(fsPath(dir));
  } catch (err) {
    if (isSystemError(err) && err.code === 'ENOENT') return [];
    throw ioError(err, 'cannot list', dir);
  }
}

/** Creates a directory and any missing parents; an existing one is fine. */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(fsPath(dir), { recursive: true });
  } catch (err) {
    throw ioError(err, 'cannot create', dir);
  }
}

/** Deletes a file; an absent file is fine. */
export async function removeFile(path: string): Promise<void> {
  try {
    await unlink(fsPath(path));
  } catch (err) {
    if (isSystemError(err) && err.code === 'ENOENT') return;
    throw ioError(err, 'cannot delete', path);
  }
}

/** Removes temp files a crashed run left in `dir` (call only while holding the lock). Returns how many. */
export async function removeStaleTemps(dir: string): Promise<number> {
  let n = 0;
  for (const name of await listDir(dir)) {
    if (name.startsWith(TEMP_PREFIX)) {
      await removeFile(join(dir, name));
      n++;
    }
  }
  return n;
}

interface LockInfo {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !(isSystemError(err) && err.code === 'ESRCH');
  }
}

/**
 * Takes the release directory's lock (an exclusively created file holding pid, host and time). A lock left by a
 * process of this host that no longer runs (a crash, kill -9) is taken over with a warning; any other refuses with
 * LOCKED. Returns the function that releases it.
 */
export async function acquireLock(dir: string, warn: (message: string) => void): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const info: LockInfo = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(fsPath(path), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      try {
        await handle.writeFile(`${JSON.stringify(info)}\n`);
      } finally {
        await handle.close();
      }
      return async () => {
        await removeFile(path);
      };
    } catch (err) {
      if (!(isSystemError(err) && err.code === 'EEXIST')) throw ioError(err, 'cannot create the lock', path);
    }
    let held: Partial<LockInfo> = {};
    try {
      held = JSON.parse(await readFile(fsPath(path), 'utf8')) as Partial<LockInfo>;
    } catch {
      // An empty or torn lock file: its writer died between creating and writing it, or is writing it now.
    }
    const stale = attempt === 0 && held.host === info.host && typeof held.pid === 'number' && !processIsAlive(held.pid);
    if (!stale) {
      const who = typeof held.pid === 'number' ? `process ${held.pid} on ${String(held.host)}` : 'another process';
      throw new SignerError(
        'LOCKED',
        `${who} holds ${path} (another publish, heartbeat or sign is running). If none is, delete that file.`,
      );
    }
    warn(`taking over the lock left by process ${String(held.pid)}, which no longer runs`);
    await removeFile(path);
  }
  throw new SignerError('LOCKED', `cannot take ${path}`);
}
