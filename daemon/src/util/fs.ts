/**
 * Creating directories. Node's own `mkdir(path, { recursive: true })` is not used anywhere in the daemon: when
 * mkdir(2) answers ENOENT for a name whose parent exists (procfs does, for any new name under /proc), it steps back
 * to the parent, finds it there, and tries the child again, forever, at 100% of a core, inside native code that
 * neither a worker thread's terminate() nor process.exit() interrupts. `makeDirs` walks the path itself and lets
 * that ENOENT through.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/**
 * `mkdir -p`: creates `path` and the missing folders above it with `mode`. Returns the outermost folder it created,
 * or undefined when `path` was already a directory. Throws the system's error (ENOENT, EACCES, ENOTDIR, EROFS, ...)
 * when a folder cannot be created, and ENOTDIR when `path` or a folder above it is a file.
 */
export function makeDirs(path: string, mode = 0o700): string | undefined {
  const missing: string[] = [];
  let p = resolve(path);
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      const parent = dirname(p);
      if (errnoOf(err) !== 'ENOENT' || parent === p) throw err;
      missing.push(p);
      p = parent;
      continue;
    }
    if (!isDir) {
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${p}'`), { code: 'ENOTDIR', path: p });
    }
    break;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    const dir = missing[i]!;
    try {
      mkdirSync(dir, { mode });
    } catch (err) {
      // Created meanwhile by another process: fine if it is a directory.
      if (errnoOf(err) !== 'EEXIST' || !statSync(dir).isDirectory()) throw err;
    }
  }
  return missing.at(-1);
}
