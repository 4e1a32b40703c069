/**
 * Guards against over-blocking, the daemon's side: before a new list is put in force it is checked against the
 * guard set the operator controls (the bundled popular names, the operator's own critical names, the allowlist),
 * hashed with the list's own key, and against the change cap. A list that would block a guard name the list in
 * force does not block, or that adds or removes more entries at once than the cap allows, is **held**: not committed, not applied; the list in force
 * stays, `held.json` in the list's state directory says what was held and why, and an alarm and a metric say so.
 *
 * The operator releases it explicitly (`hashwalld release-held --list ID --serial N --reason TEXT`, ops/release.ts),
 * which writes `release.json` naming that exact list (serial and the SHA-256 of its FULL file, from held.json), who
 * and when; the next poll (at once on SIGUSR1) applies it and logs the release. A released list still never blocks
 * a guard name: every list put in force, from a mirror or from the state directory, in the list sync and in each
 * DNS worker, has the entries that block a guard name left out of its matcher (`exemptNames` of @hashwall/format).
 *
 * Both files are small JSON records, written atomically (temp file, fsync, rename) and read with a cap.
 */
import { closeSync, fstatSync, openSync, readSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

import { HashKey, exemptNames, type HashKeyRef, type MatcherParts } from '@hashwall/format';

import { fsyncDir, writeFileAtomic } from './store.js';
import type { ListTrust } from './view.js';

export const HELD_FILE = 'held.json';
export const RELEASE_FILE = 'release.json';
/** Both records are well under this. */
const MAX_RECORD_BYTES = 16 * 1024;
/** At most this many guard-file places are recorded and logged per hold. */
export const MAX_GUARD_PLACES = 10;
const HEX64 = /^[0-9a-f]{64}$/;

/** Why a list was held. Places in the guard set (`top-sites.txt:12`), never a name. */
export interface HoldReasons {
  /** Guard names the list blocks that the list in force did not. */
  readonly guardNames: number;
  /** Where the first of them are in the guard set (at most MAX_GUARD_PLACES). */
  readonly guardPlaces: readonly string[];
  /** The change since the list in force, when there is one. */
  readonly change?: {
    readonly fromSerial: number;
    readonly fromEntries: number;
    readonly added: number;
    readonly removed: number;
    /** At most this many additions, and as many removals, at once. */
    readonly allowed: number;
  };
}

/** held.json: the list the guard held. */
export interface HeldRecord {
  readonly listId: string;
  readonly serial: number;
  readonly seq: number;
  /** SHA-256 of its FULL file, as its index names it: what a release names. */
  readonly fullSha256: string;
  readonly entries: number;
  /** When it was first held (ISO 8601). */
  readonly heldAt: string;
  readonly reasons: HoldReasons;
}

/** release.json: an operator's release of one held list. */
export interface ReleaseRecord {
  readonly listId: string;
  readonly serial: number;
  readonly fullSha256: string;
  /** Why the operator releases it. */
  readonly reason: string;
  /** Who: the user that ran the command (and the sudo user behind it). */
  readonly by: string;
  /** When (ISO 8601). */
  readonly at: string;
}

/** Reads a small file whole, refusing one over the cap; undefined when it does not exist. */
function readSmall(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_RECORD_BYTES) throw new Error(`${path} is over ${MAX_RECORD_BYTES} bytes`);
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function record(path: string): Record<string, unknown> | undefined {
  const bytes = readSmall(path);
  if (bytes === undefined) return undefined;
  const raw: unknown = JSON.parse(bytes.toString('utf8'));
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${path} is not an object`);
  return raw as Record<string, unknown>;
}

/** The list the guard holds in `dir` (a list's state directory), if any. Throws on a damaged file. */
export function readHeld(dir: string): HeldRecord | undefined {
  const path = join(dir, HELD_FILE);
  const o = record(path);
  if (o === undefined) return undefined;
  const r = o.reasons as Record<string, unknown> | null;
  const ok =
    typeof o.listId === 'string' &&
    isCount(o.serial) &&
    isCount(o.seq) &&
    typeof o.fullSha256 === 'string' &&
    HEX64.test(o.fullSha256) &&
    isCount(o.entries) &&
    typeof o.heldAt === 'string' &&
    r !== null &&
    typeof r === 'object' &&
    isCount(r.guardNames) &&
    Array.isArray(r.guardPlaces);
  if (!ok) throw new Error(`${path} is not a held-list record`);
  return o as unknown as HeldRecord;
}

/** The operator's release in `dir`, if any. Throws on a damaged file. */
export function readRelease(dir: string): ReleaseRecord | undefined {
  const path = join(dir, RELEASE_FILE);
  const o = record(path);
  if (o === undefined) return undefined;
  const { listId, serial, fullSha256, reason, by, at } = o;
  if (
    typeof listId !== 'string' ||
    !isCount(serial) ||
    typeof fullSha256 !== 'string' ||
    !HEX64.test(fullSha256) ||
    typeof reason !== 'string' ||
    typeof by !== 'string' ||
    typeof at !== 'string'
  ) {
    throw new Error(`${path} is not a release record`);
  }
  return { listId, serial, fullSha256, reason, by, at };
}

function write(dir: string, name: string, value: unknown): void {
  writeFileAtomic(dir, name, Buffer.from(`${JSON.stringify(value, null, 2)}\n`));
  fsyncDir(dir);
}

export function writeHeld(dir: string, held: HeldRecord): void {
  write(dir, HELD_FILE, held);
}

export function writeRelease(dir: string, release: ReleaseRecord): void {
  write(dir, RELEASE_FILE, release);
}

/** Removes held.json and release.json (after the held list was applied, or a newer list passed the guard). */
export function clearHold(dir: string): void {
  let removed = false;
  for (const name of [HELD_FILE, RELEASE_FILE]) {
    try {
      unlinkSync(join(dir, name));
      removed = true;
    } catch {
      // not there
    }
  }
  if (removed) fsyncDir(dir);
}

/** Whether `release` releases exactly the list `held` names (the list-id, the serial and the FULL file's digest). */
export function releases(
  release: ReleaseRecord | undefined,
  list: { readonly listId: string; readonly serial: number; readonly fullSha256: string },
): boolean {
  return (
    release !== undefined &&
    release.listId === list.listId &&
    release.serial === list.serial &&
    release.fullSha256 === list.fullSha256
  );
}

/** The key a list's entries are hashed with: in its header (public mode), else the licensed key configured. */
export function guardKey(trust: ListTrust, ref: HashKeyRef): HashKey {
  if (ref.mode === 'public') return new HashKey(Buffer.from(ref.key, 'hex'));
  if (trust.listKeyHex === undefined) throw new Error(`internal: no hash key "${ref.id}" for the guard`);
  return new HashKey(Buffer.from(trust.listKeyHex, 'hex'));
}

/** A list's matcher parts with the entries that block a guard name left out, and which guard names they were. */
export interface Guarded {
  readonly parts: MatcherParts;
  /** The guard names the list blocks (kept in the worker to compare with the next list; never logged). */
  readonly names: readonly string[];
  /** Where they are in the guard set, in the same order (logged, at most MAX_GUARD_PLACES). */
  readonly places: readonly string[];
  /** Entries left out. */
  readonly exempted: number;
}

/** What is kept of a Guarded once its parts went to the matcher (and from one worker to the next). */
export type GuardFacts = Omit<Guarded, 'parts'>;

/** The facts of `g`, without its parts. */
export function guardFacts(g: Guarded): GuardFacts {
  return { names: g.names, places: g.places, exempted: g.exempted };
}

/** Checks a list's parts against the guard set, leaving out the entries that block a guard name (see top). */
export function guardParts(trust: ListTrust, parts: MatcherParts, ref: HashKeyRef): Guarded {
  const g = trust.guard;
  if (g.names.length === 0) return { parts, names: [], places: [], exempted: 0 };
  const r = exemptNames(parts, guardKey(trust, ref), g.names);
  return {
    parts: r.parts,
    names: r.blocked.map((i) => g.names[i]!),
    places: r.blocked.map((i) => g.from[i]!),
    exempted: r.entries,
  };
}

/**
 * The places of the guard names `next` blocks and `previous` (the list in force) did not: what a hold is for. A
 * name the list in force already blocked was released by the operator (or added to the guard set since), stays
 * left out of every matcher, and does not hold every later update again, withdrawals included.
 */
export function newlyBlocked(next: Guarded, previous: GuardFacts | undefined): string[] {
  const before = new Set(previous?.names ?? []);
  return next.places.filter((_, i) => !before.has(next.names[i]!));
}
