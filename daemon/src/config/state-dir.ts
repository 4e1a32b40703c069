/**
 * Whether `stateDir` can hold the lists: a directory (created if missing, as the list sync would), on a filesystem
 * that keeps files (not procfs, sysfs or another kernel filesystem), where this user can create, write, fsync and
 * remove a file. Checked by `--check` and at start, so that a state directory the daemon could not use is a
 * configuration error with its key and its reason, not a list that silently never comes into force.
 */
import { closeSync, fsyncSync, openSync, rmdirSync, statSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative, resolve } from 'node:path';

import { makeDirs } from '../util/fs.js';
import { ConfigError, type Settings } from './load.js';

/** statfs(2) f_type of the kernel's own filesystems (linux/magic.h): nothing written there is a file. */
const KERNEL_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x1cd1, 'devpts'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0x62656570, 'configfs'],
  [0xde5e81e4, 'efivarfs'],
  [0x65735543, 'fusectl'],
  [0x19800202, 'mqueue'],
  [0x42494e4d, 'binfmt_misc'],
  [0xf97cff8c, 'selinuxfs'],
  [0x6e736673, 'nsfs'],
]);

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function kernelFilesystem(path: string): string | undefined {
  try {
    return KERNEL_FILESYSTEMS.get(Number(statfsSync(path).type) >>> 0);
  } catch {
    return undefined;
  }
}

function why(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied for this user (uid ${process.getuid?.() ?? '?'})`;
    case 'EROFS':
      return 'the filesystem is read-only';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a directory';
    case 'ENOENT':
      return 'a folder above it does not exist and cannot be created there';
    default:
      return e.message;
  }
}

/**
 * The reason `dir` cannot be the state directory, or null when it can. A missing directory is created (mode 0700);
 * with `keep: false` (`--check`) what was created is removed again.
 */
export function stateDirProblem(dir: string, options: { keep: boolean }): string | null {
  const path = resolve(dir);
  // The filesystem it is or would be on, from the nearest folder that exists: nothing is created on procfs.
  let existing = path;
  while (!exists(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const kernel = kernelFilesystem(existing);
  if (kernel !== undefined) return `${path} is on ${kernel}, a kernel filesystem that keeps no files`;
  if (exists(path) && !statSync(path).isDirectory()) return `${path} is a file, not a directory`;
  let created: string | undefined;
  try {
    created = makeDirs(path, 0o700);
  } catch (err) {
    return `${path} cannot be created: ${why(err)}`;
  }
  try {
    if (!statSync(path).isDirectory()) return `${path} is not a directory`;
    const probe = join(path, `.hashwall-check-${randomBytes(6).toString('hex')}`);
    let fd: number;
    try {
      fd = openSync(probe, 'wx', 0o600);
    } catch (err) {
      return `${path} is not writable: ${why(err)}`;
    }
    try {
      writeSync(fd, Buffer.from('x'));
      fsyncSync(fd);
    } catch (err) {
      return `${path} is not writable: ${why(err)}`;
    } finally {
      closeSync(fd);
      unlinkSync(probe);
    }
    return null;
  } catch (err) {
    return `${path} cannot be used: ${why(err)}`;
  } finally {
    if (created !== undefined && !options.keep) removeCreated(path, created);
  }
}

/** Removes the empty folders from `path` up to `top` (those makeDirs created). */
function removeCreated(path: string, top: string): void {
  let p = path;
  for (;;) {
    try {
      rmdirSync(p);
    } catch {
      return;
    }
    if (p === top || relative(top, p).startsWith('..')) return;
    p = dirname(p);
  }
}

/** Throws a ConfigError naming `stateDir` when the settings' state directory cannot be used (see above). */
export function checkStateDir(settings: Settings, options: { keep: boolean }): void {
  const problem = stateDirProblem(settings.config.stateDir, options);
  if (problem !== null) throw new ConfigError(settings.source, [`stateDir: ${problem}`]);
}
