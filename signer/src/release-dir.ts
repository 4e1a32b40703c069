/**
 * A release directory on the publisher's disk (SPEC.md 4): `index.hwl`, `full/<serial>.hwl`,
 * `delta/<base>-<serial>.hwld`, each with `.minisig` and `.<KEYID>.minisig` signatures.
 *
 * Writing follows one rule, so that a reader (a web server, a CDN pull, a daemon) never sees a half-written state:
 * every file is written to a temp file in its own directory, fsynced and renamed into place; the files a new index
 * names are all in place (and their directories fsynced) before the index's signatures and then the index itself
 * are renamed, and existing files the current index names are never touched. A crash at any point leaves the
 * previous release complete. The one window that remains is between the rename of `index.hwl.minisig` and of
 * `index.hwl` (two files cannot be replaced at once), cut to two back-to-back rename calls with both files already
 * on disk: a reader in it sees a signature that does not match the index and refuses the pair; a daemon then
 * keeps its list and polls again (fail static, SPEC.md 4).
 */
import { join } from 'node:path';

import {
  FormatError,
  HARD_MAX_LIST_BYTES,
  INDEX_PATH,
  MAX_INDEX_BYTES,
  MAX_SIGNATURE_FILE_BYTES,
  parseFull,
  parseIndex,
  parseSignatureFileName,
  type FullList,
  type IndexList,
} from '@hashwall/format';

import { fsyncDir, listDir, readCapped, readOptional, removeFile, writeFileAtomic, writeFilesAtomic } from './files.js';

export interface CurrentIndex {
  readonly index: IndexList;
  readonly bytes: Buffer;
}

/** The parsed `index.hwl` of a directory, or undefined when there is none. Signatures are not checked here. */
export async function readCurrentIndex(dir: string): Promise<CurrentIndex | undefined> {
  const bytes = await readOptional(join(dir, INDEX_PATH), MAX_INDEX_BYTES, 'index');
  if (bytes === undefined) return undefined;
  return { index: named(INDEX_PATH, () => parseIndex(bytes)), bytes };
}

/** Serials of the FULLs present in `full/`, ascending (names that are not `<serial>.hwl` are ignored). */
export async function presentFullSerials(dir: string): Promise<number[]> {
  const serials: number[] = [];
  for (const name of await listDir(join(dir, 'full'))) {
    const m = /^(0|[1-9][0-9]{0,15})\.hwl$/.exec(name);
    if (m === null) continue;
    const n = Number(m[1]);
    if (Number.isSafeInteger(n)) serials.push(n);
  }
  return serials.sort((a, b) => a - b);
}

/** Reads and parses `full/<serial>.hwl`, checking that its header says that serial. */
export async function readFull(dir: string, path: string): Promise<{ full: FullList; bytes: Buffer }> {
  const bytes = await readCapped(join(dir, path), HARD_MAX_LIST_BYTES, 'FULL');
  return { full: named(path, () => parseFull(bytes, { maxBytes: HARD_MAX_LIST_BYTES })), bytes };
}

/** Runs a parser, putting the release path in front of a FormatError's message (the code stays). */
function named<T>(path: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof FormatError) throw new FormatError(err.code, `${path}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Every signature file of `path` present on disk: name (relative to the release) to bytes. */
export async function readSignatures(dir: string, path: string): Promise<Map<string, Buffer>> {
  const folder = folderOf(path);
  const base = path.slice(folder.length);
  const out = new Map<string, Buffer>();
  for (const name of (await listDir(join(dir, folder))).sort()) {
    if (parseSignatureFileName(name)?.fileName !== base) continue;
    out.set(folder + name, await readCapped(join(dir, folder + name), MAX_SIGNATURE_FILE_BYTES, 'signature'));
  }
  return out;
}

/** Names (relative to the release) of the signature files of `path` on disk. */
export async function signatureFilesOf(dir: string, path: string): Promise<string[]> {
  const folder = folderOf(path);
  const base = path.slice(folder.length);
  const names = await listDir(join(dir, folder));
  return names.filter((name) => parseSignatureFileName(name)?.fileName === base).map((name) => folder + name);
}

/** Whether `name` (relative to the release) is the index or one of its signatures. */
export function isIndexFile(name: string): boolean {
  return name === INDEX_PATH || parseSignatureFileName(name)?.fileName === INDEX_PATH;
}

/** The folder part of a release path (`full/`, `delta/` or `` for the root). */
function folderOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/') + 1);
}

/**
 * Writes a set of release files in the order described at the top of this file: everything but the index first,
 * then the index's signatures, then the index. With `replaceSignatures`, a signature file on disk of a data file
 * in the set that the set does not hold is removed (no stale signature stays next to new bytes; for the index,
 * after the new one is in place).
 */
export async function writeReleaseFiles(
  dir: string,
  files: ReadonlyMap<string, Uint8Array>,
  options: { readonly replaceSignatures: boolean },
): Promise<void> {
  const dataFiles = [...files.keys()].filter((n) => parseSignatureFileName(n) === undefined);
  const dirs = new Set<string>();
  // 1. Everything but the index. None of these paths is named by the current index.
  for (const [name, bytes] of files) {
    if (isIndexFile(name)) continue;
    await writeFileAtomic(join(dir, name), bytes, { syncDir: false });
    dirs.add(folderOf(name));
  }
  if (options.replaceSignatures) {
    for (const path of dataFiles) {
      if (path === INDEX_PATH) continue;
      for (const old of await signatureFilesOf(dir, path)) if (!files.has(old)) await removeFile(join(dir, old));
    }
  }
  for (const d of dirs) await fsyncDir(join(dir, d));
  // 2. The index's signatures, then the index: the rename of index.hwl is the moment the release changes. All of
  // them are written and fsynced first, then renamed back to back, so the window in which a reader (or a crash)
  // finds a signature that does not match the index is as short as two rename calls.
  const indexGroup: [string, Uint8Array][] = [];
  for (const [name, bytes] of files) {
    if (isIndexFile(name) && name !== INDEX_PATH) indexGroup.push([join(dir, name), bytes]);
  }
  const index = files.get(INDEX_PATH);
  if (index !== undefined) indexGroup.push([join(dir, INDEX_PATH), index]);
  await writeFilesAtomic(indexGroup);
  if (index !== undefined) {
    // 3. Signatures of the previous index (a second maintainer's, say) no longer match it: remove them.
    if (options.replaceSignatures) {
      for (const old of await signatureFilesOf(dir, INDEX_PATH)) if (!files.has(old)) await removeFile(join(dir, old));
    }
  }
  await fsyncDir(dir);
}
