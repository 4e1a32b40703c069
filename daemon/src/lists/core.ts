/**
 * The work of one list that must stay off the query thread: reading and re-verifying the state directory, one
 * poll of one mirror with every rule of SPEC.md 4, 5 and 6 (all from @hashwall/format and @hashwall/tlog), the
 * guard (hold.ts), and the commit. It runs inside the list's worker thread (worker.ts) and keeps what a poll needs
 * between polls: the state, a few header fields of the enforced FULL, the keyrings and checkpoint in force, and one
 * release source per mirror (which remembers the index's validators for conditional GETs). It does not keep the
 * FULL itself: once the matcher's arrays are handed over, nothing of a million entries stays here. Nor does it
 * hold a FULL's bytes while it loads one: a downloaded FULL is streamed into a spool file in the state directory
 * (pollMatcher's `spool`), verified on the way, parsed back from it in pieces and committed by renaming it; the
 * stored FULL is re-opened at start in pieces too (stored.ts). When a delta arrives, its base is the stored FULL,
 * open for reading in pieces: the delta is merged with it into a spool (hashed as it is read, against the enforced
 * state's digest), which is parsed back and committed as a downloaded FULL is.
 *
 * One poll, in order (TUF's client workflow, as SPEC.md 5 and 6 put it for hashwall):
 * 1. a list anchored on root keys walks its keyrings from the stored one (followKeyrings); the versions accepted are
 *    committed with the list state even when the walk then fails (SPEC.md 5.1, 5.4); its current keyring gives
 *    the keys the index, FULL and DELTA are checked under (no index when the walk failed or it expired);
 * 2. the index and the list, every SPEC.md 4 rule (pollMatcher; the index's `keyring:` check inside);
 * 3. a list with a release log: the new index must be the leaf its `log-index` names in a checkpoint the log
 *    signed and enough witnesses cosigned, consistent with the one stored (checkLeafInLog); a split view is kept
 *    as evidence (SPEC.md 6);
 * 4. the guard: a list that blocks a guard name or changes more than the cap is held unless the operator released
 *    exactly it (hold.ts);
 * 5. the commit: list, index, keyrings and checkpoint in one state (store.ts).
 */
import {
  FormatError,
  bytesFile,
  changeAllowance,
  changeCountsFrom,
  currentKeyringTrust,
  followKeyrings,
  openStoredKeyring,
  pollMatcher,
  type FullFile,
  type FullSpool,
  type StoredFull,
  type FullMatcher,
  type IndexList,
  type KeyringAnchor,
  type ListState,
  type ReleaseSource,
  type SignedKeyring,
  type TrustStore,
} from '@hashwall/format';
import { HttpSource, httpPool, sourceFor, type HttpPool, type Validators } from '@hashwall/release-client';
import {
  TlogError,
  checkLeafInLog,
  openCheckpoint,
  parseCosignerKey,
  parseLogKey,
  tileReaderFromSource,
  type LogTrust,
} from '@hashwall/tlog';

import {
  MAX_GUARD_PLACES,
  clearHold,
  guardFacts,
  guardParts,
  newlyBlocked,
  readHeld,
  readRelease,
  releases,
  writeHeld,
  type GuardFacts,
  type Guarded,
  type HeldRecord,
  type HoldReasons,
  type ReleaseRecord,
} from './hold.js';
import {
  ListStore,
  type FileSpool,
  type KeyringFile,
  type OpenFile,
  type StoredState,
  type TrustFiles,
} from './store.js';
import { listStateOf, openStoredList, plainTrustStore } from './stored.js';
import type { ListTrust } from './view.js';
import type {
  CoreResume,
  Floor,
  FullFacts,
  ListMeta,
  OpenReply,
  PollReply,
  SyncErrorCode,
  TrustFacts,
} from './types.js';

/** What a list's worker is started with: its trust (view.ts) and how to fetch. */
export interface CoreConfig extends ListTrust {
  readonly mirrors: readonly string[];
  readonly connectTimeoutMs: number;
  readonly totalTimeoutMs: number;
  readonly userAgent: string;
}

/** Split views kept as evidence per list at most (the earliest matter; later ones are alarmed all the same). */
export const MAX_SPLIT_VIEW_EVIDENCE = 16;

interface Mirror {
  readonly source: ReleaseSource;
  readonly agent?: HttpPool;
}

/** A refusal with one of the daemon's own codes (types.ts, SyncErrorCode). */
class SyncRefusal extends Error {
  readonly code: SyncErrorCode;
  constructor(code: SyncErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

function codeOf(err: unknown): { code: SyncErrorCode; message: string } {
  if (err instanceof FormatError || err instanceof TlogError || err instanceof SyncRefusal) {
    return { code: err.code, message: err.message };
  }
  return { code: 'FETCH_FAILED', message: err instanceof Error ? err.message : String(err) };
}

function factsOf(full: FullMatcher): FullFacts {
  const h = full.header;
  return {
    listId: h.listId,
    created: h.created,
    expires: h.expires,
    entries: full.count,
    bodySha256: full.bodySha256,
    hashKey: h.hashKey,
  };
}

function metaOf(index: IndexList, full: FullFacts, guarded?: GuardFacts): ListMeta {
  return {
    listId: full.listId,
    serial: index.header.serial,
    seq: index.header.seq,
    created: full.created,
    expires: full.expires,
    indexCreated: index.header.created,
    indexExpires: index.header.expires,
    minPoll: index.header.minPoll,
    entries: full.entries,
    bodySha256: full.bodySha256,
    hashKey: full.hashKey,
    exempted: guarded?.exempted ?? 0,
    guardPlaces: guarded?.places.slice(0, MAX_GUARD_PLACES) ?? [],
  };
}

function keyringFile(k: SignedKeyring): KeyringFile {
  return { bytes: k.bytes, signatures: k.signatures, version: k.keyring.header.version };
}

export class SyncCore {
  readonly config: CoreConfig;
  readonly store: ListStore;
  /** A list trusted by plain signing keys; undefined for one anchored on root keys. */
  private readonly plain: TrustStore | undefined;
  private readonly anchor: KeyringAnchor | undefined;
  private readonly logTrust: LogTrust | undefined;
  private readonly mirrors = new Map<number, Mirror>();
  /** The last commit's record; its list state is what a poll compares against. */
  private stored: StoredState | undefined;
  /** Header fields of the enforced FULL (set with `stored`). */
  private current: FullFacts | undefined;
  /** What the guard found in the list in force (the guard names it blocks, left out of its matcher). */
  private guarded: GuardFacts | undefined;
  /** High-water marks of a store that could not be used: a fresh poll must not go below them. */
  private floor: Floor | undefined;
  /** SPEC.md 5.4: the current keyring, and the one the stored index was verified under. */
  private keyring: SignedKeyring | undefined;
  private indexKeyring: SignedKeyring | undefined;
  /** SPEC.md 6: the checkpoint last accepted. */
  private checkpoint: Uint8Array | undefined;
  /** The keyring or checkpoint changed since the last commit: written with the next one. */
  private trustDirty = false;

  /** Validators handed over by the previous worker, per mirror, used when that mirror's source is made. */
  private readonly carried: Map<number, readonly (readonly [string, Validators])[]>;

  constructor(config: CoreConfig, resume?: CoreResume) {
    this.config = config;
    this.store = new ListStore(config.stateDir, config.listId);
    this.plain = plainTrustStore(config);
    this.anchor = config.anchor
      ? { listId: config.listId, roots: config.anchor.roots, rootThreshold: config.anchor.rootThreshold }
      : undefined;
    this.logTrust = config.log
      ? {
          origin: config.log.origin,
          logKey: parseLogKey(config.log.key),
          witnesses: config.log.witnesses.map((w) => parseCosignerKey(w)),
          witnessThreshold: config.log.witnessThreshold,
        }
      : undefined;
    this.stored = resume?.stored;
    this.current = resume?.current;
    this.guarded = resume?.guarded;
    this.floor = resume?.floor;
    // Re-opened as at start (their digest, version and own roots): they crossed a thread boundary as bytes.
    this.keyring = resume?.keyring && this.reopen(resume.keyring);
    this.indexKeyring =
      resume?.indexKeyring && resume.indexKeyring.version !== resume.keyring?.version
        ? this.reopen(resume.indexKeyring)
        : this.keyring;
    this.checkpoint = resume?.checkpoint;
    this.trustDirty = resume?.trustDirty ?? false;
    this.carried = new Map(resume?.validators ?? []);
  }

  private reopen(k: KeyringFile): SignedKeyring {
    return openStoredKeyring({ listId: this.config.listId }, k);
  }

  private get state(): ListState | undefined {
    return this.stored && listStateOf(this.stored);
  }

  /** What the next worker needs to go on where this one stops (see CoreResume). */
  resume(): CoreResume {
    const validators: [number, (readonly [string, Validators])[]][] = [];
    for (const [n, m] of this.mirrors) {
      if (m.source instanceof HttpSource) validators.push([n, m.source.validatorsSnapshot()]);
    }
    for (const [n, v] of this.carried) if (!this.mirrors.has(n)) validators.push([n, [...v]]);
    return {
      ...(this.stored ? { stored: this.stored } : {}),
      ...(this.current ? { current: this.current } : {}),
      ...(this.guarded ? { guarded: this.guarded } : {}),
      ...(this.floor ? { floor: this.floor } : {}),
      ...(this.keyring ? { keyring: keyringFile(this.keyring) } : {}),
      ...(this.indexKeyring && this.indexKeyring !== this.keyring
        ? { indexKeyring: keyringFile(this.indexKeyring) }
        : {}),
      ...(this.checkpoint ? { checkpoint: this.checkpoint } : {}),
      ...(this.trustDirty ? { trustDirty: true } : {}),
      validators,
    };
  }

  /** The keyring and the release log as they stand, for the figures. */
  facts(): TrustFacts {
    const k = this.keyring?.keyring.header;
    let logSize: number | undefined;
    if (this.checkpoint && this.logTrust) {
      try {
        const o = openCheckpoint(this.checkpoint, { origin: this.logTrust.origin, logKeys: [this.logTrust.logKey] });
        logSize = o.checkpoint.size;
      } catch {
        // accepted before; a figure is not worth an error
      }
    }
    return {
      ...(k ? { keyringVersion: k.version, keyringExpires: k.expires } : {}),
      ...(logSize !== undefined ? { logSize } : {}),
    };
  }

  /** Reads the state directory and re-verifies it (SPEC.md 4.3, 5.4 and 7: before serving, before the network). */
  open(): OpenReply {
    const read = this.store.openRead(this.config.maxListBytes);
    if (read.status === 'absent') return { status: 'absent' };
    if (read.status === 'corrupt') return { status: 'unusable', code: 'MALFORMED', message: read.message };
    const floor: Floor = {
      serial: read.state.serial,
      seq: read.state.seq,
      fullSha256: read.state.fullSha256,
      ...(read.state.keyring ? { keyringVersion: read.state.keyring.version } : {}),
    };
    this.floor = floor;
    if (read.status === 'incomplete') return { status: 'unusable', code: 'MALFORMED', message: read.message, floor };
    try {
      const opened = openStoredList(this.config, read);
      this.stored = opened.state;
      this.current = factsOf(opened.full);
      this.guarded = guardFacts(opened.guarded);
      this.keyring = opened.keyring;
      this.indexKeyring = opened.indexKeyring;
      this.checkpoint = opened.checkpoint;
      this.trustDirty = false;
      this.floor = undefined;
      this.store.sweep(read.state);
      return {
        status: 'loaded',
        meta: metaOf(opened.index, this.current, opened.guarded),
        entries: opened.guarded.parts,
        trust: this.facts(),
      };
    } catch (err) {
      return { status: 'unusable', ...codeOf(err), floor };
    } finally {
      read.files.full.close();
    }
  }

  private mirror(n: number): Mirror {
    let m = this.mirrors.get(n);
    if (m) return m;
    const url = this.config.mirrors[n];
    if (url === undefined) throw new RangeError(`no mirror ${n}`);
    if (new URL(url).protocol === 'file:') {
      m = { source: sourceFor(url) };
    } else {
      // Our own pool, so that a failed poll can cut its other requests at once (destroy, not a graceful close).
      const agent = httpPool({ connectTimeoutMs: this.config.connectTimeoutMs });
      m = {
        agent,
        source: sourceFor(url, {
          dispatcher: agent,
          validators: this.carried.get(n) ?? [],
          connectTimeoutMs: this.config.connectTimeoutMs,
          totalTimeoutMs: this.config.totalTimeoutMs,
          userAgent: this.config.userAgent,
        }),
      };
    }
    this.mirrors.set(n, m);
    return m;
  }

  /**
   * Forgets a mirror's source after a failed poll: its requests still in flight are cut, and the validators of an
   * index we did not accept are dropped, so the next poll fetches the index in full instead of hearing 304.
   */
  private resetMirror(n: number): void {
    const m = this.mirrors.get(n);
    this.mirrors.delete(n);
    this.carried.delete(n);
    m?.agent?.destroy().catch(() => undefined);
  }

  /** Cuts every download in flight, as ending a worker does (for a core that runs on the calling thread). */
  close(): void {
    for (const n of [...this.mirrors.keys()]) this.resetMirror(n);
  }

  /**
   * SPEC.md 5.1-5.2: the keys this poll checks the index, FULL and DELTA under. A list anchored on root keys walks
   * its keyrings from the stored one first; the versions accepted are kept (and committed with the list state)
   * even when the walk then fails, in which case, or when the current keyring has expired, no index is accepted.
   */
  private async pollTrust(source: ReleaseSource, now: number): Promise<TrustStore> {
    if (!this.anchor) return this.plain!;
    const walk = await followKeyrings({ source, anchor: this.anchor, now }, this.keyring);
    if (walk.accepted.length > 0) {
      this.keyring = walk.current;
      this.indexKeyring ??= this.keyring;
      this.trustDirty = true;
    }
    const version = this.keyring?.keyring.header.version ?? 0;
    const floor = this.floor?.keyringVersion;
    if (!walk.error && floor !== undefined && version < floor) {
      throw new FormatError('ROLLBACK', `the keyrings served end at version ${version}, below the stored ${floor}`);
    }
    return currentKeyringTrust(walk, now);
  }

  /**
   * SPEC.md 6: the index must be the leaf its `log-index` names, in a checkpoint the log signed and enough
   * witnesses cosigned, consistent with the one stored. Returns the new checkpoint (committed with the state). A
   * split view's two notes are kept as evidence first.
   */
  private async checkLog(
    source: ReleaseSource,
    index: IndexList,
    indexBytes: Uint8Array,
    now: number,
    saved: { evidence?: string },
  ): Promise<Uint8Array | undefined> {
    if (!this.logTrust) return undefined;
    const leafIndex = index.header.logIndex;
    if (leafIndex === undefined) {
      throw new SyncRefusal('LOG_INDEX_REQUIRED', 'the index carries no log-index; this list has a release log');
    }
    try {
      const opened = await checkLeafInLog({
        reader: tileReaderFromSource(source),
        trust: this.logTrust,
        leaf: indexBytes,
        leafIndex,
        ...(this.checkpoint ? { stored: this.checkpoint } : {}),
      });
      return opened.bytes;
    } catch (err) {
      if (err instanceof TlogError && err.code === 'LOG_SPLIT_VIEW' && err.evidence) {
        const at = new Date(now * 1000);
        const path = this.onDisk('keep evidence in', () =>
          this.store.saveSplitView(err.evidence!, at, MAX_SPLIT_VIEW_EVIDENCE),
        );
        if (path !== undefined) saved.evidence = path;
      }
      throw err;
    }
  }

  /** One poll of mirror `n` with one fixed `now` (seconds), committed before it is reported. */
  async poll(n: number, now: number): Promise<PollReply> {
    const reply = await this.pollOnce(n, now);
    // Keyrings a walk accepted, or a checkpoint, not yet written: committed with the list state in force.
    if (this.trustDirty && this.stored) {
      try {
        this.commit({ state: this.state!, indexSignatureCount: this.stored.indexSignatures });
      } catch (err) {
        if (reply.kind !== 'rejected') return { kind: 'rejected', code: 'STORE_FAILED', message: String(err) };
      }
    }
    return { ...reply, trust: this.facts() };
  }

  private async pollOnce(n: number, now: number): Promise<PollReply> {
    // The spools this poll makes (a delta's result, a downloaded FULL), each with the wrapper pollMatcher was
    // given: the one the result names is committed (renamed into place), every one is removed at the end. And the
    // stored FULL, when it is opened as a delta's base.
    const spools = new Map<FullSpool, FileSpool>();
    const opened: { base?: OpenFile } = {};
    const saved: { evidence?: string } = {};
    try {
      const { source } = this.mirror(n);
      const trust = await this.pollTrust(source, now);
      const r = await pollMatcher(
        {
          source,
          trust,
          listId: this.config.listId,
          now,
          maxListBytes: this.config.maxListBytes,
          hashKeyIds: this.config.hashKeyIds,
          spool: () => {
            const spool = this.onDisk('create a spool in', () => this.store.createSpool());
            const wrapper = this.spoolOf(spool);
            spools.set(wrapper, spool);
            return wrapper;
          },
        },
        this.state,
        this.state ? () => this.storedBase(opened) : undefined,
      );
      switch (r.kind) {
        case 'not-modified':
          return r;
        case 'unchanged':
          // Same seq: the stored index is the one in force; its fields are the same.
          return { kind: 'unchanged', meta: metaOf(r.index, this.current!, this.guarded) };
        case 'heartbeat': {
          const checkpoint = await this.checkLog(source, r.index, r.indexBytes, now, saved);
          if (checkpoint) this.checkpoint = checkpoint;
          this.commitIndex(r.index, { indexBytes: r.indexBytes, indexSignatures: r.indexSignatures, state: r.state });
          return { kind: 'heartbeat', meta: metaOf(r.index, this.current!, this.guarded) };
        }
        case 'updated': {
          if (!this.state && this.floor) this.checkFloor(r.index, this.floor);
          const checkpoint = await this.checkLog(source, r.index, r.indexBytes, now, saved);
          if (checkpoint) {
            this.checkpoint = checkpoint;
            this.trustDirty = true;
          }
          const fullSpool = r.spool ? spools.get(r.spool) : undefined;
          if (r.spool && !fullSpool) throw new Error('internal: a spool that is not ours');
          const guarded = guardParts(this.config, r.full.parts, r.full.header.hashKey);
          const next = fullSpool ?? bytesFile(r.fullBytes!);
          const verdict = this.holdOrRelease(r.index, r.full, guarded, next, opened, now);
          if ('held' in verdict) {
            // Its index was not accepted: fetched in full next time (not answered 304), so a release applies.
            this.resetMirror(n);
            return { kind: 'held', held: verdict.held };
          }
          // The base is read: closed before its file is replaced.
          opened.base?.close();
          this.commitIndex(r.index, {
            indexBytes: r.indexBytes,
            indexSignatures: r.indexSignatures,
            ...(fullSpool ? { fullSpool } : { fullBytes: r.fullBytes }),
            state: r.state,
          });
          this.current = factsOf(r.full);
          this.guarded = guardFacts(guarded);
          this.floor = undefined;
          // A held list that was released, or superseded by this one: its records go.
          this.onDisk('clear the hold in', () => clearHold(this.store.dir));
          return {
            kind: 'updated',
            meta: metaOf(r.index, this.current, guarded),
            entries: guarded.parts,
            via: r.via,
            ...(r.deltaError ? { deltaError: codeOf(r.deltaError) } : {}),
            ...(verdict.released ? { released: verdict.released } : {}),
          };
        }
      }
      // Every kind returned above (TypeScript does not see a switch over these intersections as exhaustive).
      const unknown: never = r;
      throw new Error(`internal: a poll result of kind ${(unknown as { kind: string }).kind}`);
    } catch (err) {
      this.resetMirror(n);
      if (err instanceof CommitError) return { kind: 'rejected', code: 'STORE_FAILED', message: err.message };
      return { kind: 'rejected', ...codeOf(err), ...(saved.evidence ? { evidence: saved.evidence } : {}) };
    } finally {
      opened.base?.close();
      // Renamed into place by a commit (then this finds nothing to remove), or left by a failure or a failed delta.
      for (const spool of spools.values()) spool.discard();
    }
  }

  /**
   * The guard (hold.ts) on a verified new list: it passes; or it trips and the operator released exactly this
   * list (`released`); or it trips and is held (held.json written, the first time with when).
   */
  private holdOrRelease(
    index: IndexList,
    full: FullMatcher,
    guarded: Guarded,
    next: FullFile,
    opened: { base?: OpenFile },
    now: number,
  ): { held: HeldRecord } | { released?: ReleaseRecord } {
    const reasons = this.reasons(guarded, next, opened);
    const c = reasons.change;
    const tripped = reasons.guardNames > 0 || (c !== undefined && (c.added > c.allowed || c.removed > c.allowed));
    if (!tripped) return {};
    const dir = this.store.dir;
    const list = { listId: this.config.listId, serial: index.header.serial, fullSha256: index.full.sha256 };
    let release: ReleaseRecord | undefined;
    let previous: HeldRecord | undefined;
    try {
      release = readRelease(dir);
      previous = readHeld(dir);
    } catch {
      // A damaged record releases nothing; it is rewritten below.
    }
    if (releases(release, list)) return { released: release! };
    const same = previous && previous.serial === list.serial && previous.fullSha256 === list.fullSha256;
    const held: HeldRecord = {
      ...list,
      seq: index.header.seq,
      entries: full.count,
      heldAt: same ? previous!.heldAt : new Date(now * 1000).toISOString(),
      reasons,
    };
    this.onDisk('record the held list in', () => writeHeld(dir, held));
    return { held };
  }

  /** What the guard finds: guard names newly blocked, and the change since the list in force (as a delta counts). */
  private reasons(guarded: Guarded, next: FullFile, opened: { base?: OpenFile }): HoldReasons {
    const g = this.config.guard;
    const places = newlyBlocked(guarded, this.guarded);
    const base = { guardNames: places.length, guardPlaces: places.slice(0, MAX_GUARD_PLACES) };
    const s = this.stored;
    const cur = this.current;
    if (!s || !cur) return base;
    // The list in force, read back in pieces (the delta's base when one was used): counted, never held whole.
    let file = opened.base;
    if (!file) {
      const read = this.store.openRead(this.config.maxListBytes);
      if (read.status !== 'ok') {
        const why = read.status === 'absent' ? 'state.json is absent' : read.message;
        throw new CommitError(`cannot read the list in force to count the change: ${why}`);
      }
      opened.base = file = read.files.full;
    }
    const { added, removed } = this.onDisk('read the list in force in', () => changeCountsFrom(file, next));
    return {
      ...base,
      change: {
        fromSerial: s.serial,
        fromEntries: cur.entries,
        added,
        removed,
        allowed: changeAllowance(cur.entries, g.maxChangePercent, g.maxChangeCount),
      },
    };
  }

  /** Runs a step on the state directory, turning an I/O error into a CommitError (STORE_FAILED). */
  private onDisk<T>(what: string, step: () => T): T {
    try {
      return step();
    } catch (err) {
      if (err instanceof FormatError) throw err;
      throw new CommitError(`cannot ${what} ${this.store.dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The spool as pollMatcher sees it: a disk error while it is written or read back is STORE_FAILED. */
  private spoolOf(spool: FileSpool): FullSpool {
    return {
      write: (chunk) => this.onDisk('write the spool in', () => spool.write(chunk)),
      read: (position, into) => this.onDisk('read the spool in', () => spool.read(position, into)),
    };
  }

  /**
   * The enforced FULL for a delta: the stored file, opened for reading in pieces (never read whole), with the
   * digest it must have, the enforced state's. pollMatcher hashes it as it merges the delta with it and refuses it
   * unless it has that digest and its header names the enforced list. A store that no longer holds it is a failed
   * delta (a FormatError): the poll downloads the FULL instead. The file is left in `opened` for the caller to
   * close.
   */
  private storedBase(opened: { base?: OpenFile }): StoredFull {
    const state = this.state;
    if (!state) throw new FormatError('MALFORMED', 'no enforced list to apply a delta to');
    const read = this.store.openRead(this.config.maxListBytes);
    if (read.status !== 'ok') {
      const why = read.status === 'absent' ? 'state.json is absent' : read.message;
      throw new FormatError('MALFORMED', `the stored list cannot be read back for the delta: ${why}`);
    }
    opened.base = read.files.full;
    if (read.state.serial !== state.serial || read.state.fullSha256 !== state.fullSha256) {
      throw new FormatError('MALFORMED', 'the state directory no longer holds the enforced list');
    }
    const file = read.files.full;
    return {
      fileSha256: state.fullSha256,
      file: {
        size: file.size,
        // An I/O error on the base is a failed delta, as an unreadable store is: the poll downloads the FULL.
        read: (position, into) => {
          try {
            return file.read(position, into);
          } catch (err) {
            throw new FormatError('MALFORMED', `the stored list cannot be read back: ${(err as Error).message}`);
          }
        },
      },
    };
  }

  /**
   * SPEC.md 4.4 across a lost store: state.json survived but its files did not, so the poll ran as a fresh
   * client. What it accepts must still not go below the marks state.json recorded.
   */
  private checkFloor(index: IndexList, floor: Floor): void {
    const x = index.header;
    if (x.seq < floor.seq || x.serial < floor.serial) {
      throw new FormatError(
        'ROLLBACK',
        `index seq ${x.seq} serial ${x.serial} is below the stored seq ${floor.seq} serial ${floor.serial}`,
      );
    }
    if (x.serial === floor.serial && index.full.sha256 !== floor.fullSha256) {
      throw new FormatError('EQUIVOCATION', `serial ${x.serial} is now published with another FULL`);
    }
  }

  /** Commits a new index (with its FULL, unless a heartbeat): it was verified under the current keyring. */
  private commitIndex(index: IndexList, update: Omit<Parameters<ListStore['commit']>[0], 'trust'>): void {
    // SPEC.md 5.3: an index accepted under a keyring names the current version.
    if (this.keyring && index.header.keyring === this.keyring.keyring.header.version) this.indexKeyring = this.keyring;
    this.commit(update);
  }

  /** Commits `update` with the keyrings and checkpoint in force; `stored` becomes the new record. */
  private commit(update: Omit<Parameters<ListStore['commit']>[0], 'trust'>): void {
    const trust: { -readonly [K in keyof TrustFiles]: TrustFiles[K] } = {};
    if (this.keyring) trust.keyring = keyringFile(this.keyring);
    if (this.indexKeyring && this.indexKeyring !== this.keyring) trust.indexKeyring = keyringFile(this.indexKeyring);
    if (this.checkpoint) trust.checkpoint = this.checkpoint;
    try {
      this.stored = this.store.commit({ ...update, trust });
      this.trustDirty = false;
    } catch (err) {
      throw new CommitError(`cannot write ${this.store.dir}: ${(err as Error).message}`, { cause: err });
    }
  }
}

class CommitError extends Error {}
