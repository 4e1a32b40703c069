/**
 * The work of one list that must stay off the query thread: reading and re-verifying the state directory, one
 * poll of one mirror with every SPEC.md 4 rule (all from `poll` / `openStored` of @hashwall/format), and the
 * commit. It runs inside the list's worker thread (worker.ts) and keeps what a poll needs between polls: the state,
 * a few header fields of the enforced FULL, and one release source per mirror (which remembers the index's
 * validators for conditional GETs). It does not keep the FULL itself: once the matcher's arrays are handed over,
 * nothing of a million entries stays here. Nor does it hold a FULL's bytes while it loads one: a downloaded FULL is
 * streamed into a spool file in the state directory (pollMatcher's `spool`), verified on the way, parsed back from
 * it in pieces and committed by renaming it; the stored FULL is re-opened at start in pieces too
 * (openStoredMatcherFrom). When a delta arrives, its base is the stored FULL, open for reading in pieces: the
 * delta is merged with it into a spool (hashed as it is read, against the enforced state's digest), which is parsed
 * back and committed as a downloaded FULL is.
 */
import {
  FormatError,
  TrustStore,
  openStoredMatcherFrom,
  pollMatcher,
  type FullSpool,
  type StoredFull,
  type FullMatcher,
  type IndexList,
  type ListState,
  type ReleaseSource,
} from '@hashwall/format';
import { HttpSource, sourceFor, type Validators } from '@hashwall/release-client';
import { Agent } from 'undici';

import { ListStore, type FileSpool, type OpenFile } from './store.js';
import type { ListTrust } from './view.js';
import type {
  CoreResume,
  EntryArrays,
  Floor,
  FullFacts,
  ListMeta,
  OpenReply,
  PollReply,
  SyncErrorCode,
} from './types.js';

/** What a worker is started with: plain data (it crosses the thread boundary by structured clone). */
/** What a list's worker is started with: its trust (view.ts) and how to fetch. */
export interface CoreConfig extends ListTrust {
  readonly mirrors: readonly string[];
  readonly connectTimeoutMs: number;
  readonly totalTimeoutMs: number;
  readonly userAgent: string;
}

interface Mirror {
  readonly source: ReleaseSource;
  readonly agent?: Agent;
}

function codeOf(err: unknown): { code: SyncErrorCode; message: string } {
  if (err instanceof FormatError) return { code: err.code, message: err.message };
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

function metaOf(index: IndexList, full: FullFacts): ListMeta {
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
  };
}

/**
 * The matcher's arrays, built here so that the main thread only wraps them: a FULL is parsed straight into them
 * (pollMatcher, openStoredMatcher of @hashwall/format), a FULL rebuilt from a delta goes through prepareMatcher.
 * They are transferred: this side keeps nothing of them.
 */
function entriesOf(full: FullMatcher): EntryArrays {
  return full.parts;
}

export class SyncCore {
  readonly config: CoreConfig;
  readonly store: ListStore;
  private readonly trust: TrustStore;
  private readonly mirrors = new Map<number, Mirror>();
  private state: ListState | undefined;
  /** Header fields of the enforced FULL (set with `state`). */
  private current: FullFacts | undefined;
  /** High-water marks of a store that could not be used: a fresh poll must not go below them. */
  private floor: Floor | undefined;

  /** Validators handed over by the previous worker, per mirror, used when that mirror's source is made. */
  private readonly carried: Map<number, readonly (readonly [string, Validators])[]>;

  constructor(config: CoreConfig, resume?: CoreResume) {
    this.config = config;
    this.store = new ListStore(config.stateDir, config.listId);
    this.trust = new TrustStore([[config.listId, { keys: config.keys, threshold: config.threshold }]]);
    this.state = resume?.state;
    this.current = resume?.current;
    this.floor = resume?.floor;
    this.carried = new Map(resume?.validators ?? []);
  }

  /** What the next worker needs to go on where this one stops (see CoreResume). */
  resume(): CoreResume {
    const validators: [number, (readonly [string, Validators])[]][] = [];
    for (const [n, m] of this.mirrors) {
      if (m.source instanceof HttpSource) validators.push([n, m.source.validatorsSnapshot()]);
    }
    for (const [n, v] of this.carried) if (!this.mirrors.has(n)) validators.push([n, [...v]]);
    return {
      ...(this.state ? { state: this.state } : {}),
      ...(this.current ? { current: this.current } : {}),
      ...(this.floor ? { floor: this.floor } : {}),
      validators,
    };
  }

  /** Reads the state directory and re-verifies it (SPEC.md 4.3 and 7: before serving, before the network answers). */
  open(): OpenReply {
    const read = this.store.openRead(this.config.maxListBytes);
    if (read.status === 'absent') return { status: 'absent' };
    if (read.status === 'corrupt') return { status: 'unusable', code: 'MALFORMED', message: read.message };
    const floor: Floor = { serial: read.state.serial, seq: read.state.seq, fullSha256: read.state.fullSha256 };
    this.floor = floor;
    if (read.status === 'incomplete') return { status: 'unusable', code: 'MALFORMED', message: read.message, floor };
    try {
      const { listId, serial, seq, bodySha256, fullSha256 } = read.state;
      // The stored FULL is read in ~1 MiB pieces: hashed against the signed index, then parsed (never held whole).
      const opened = openStoredMatcherFrom(
        { trust: this.trust, listId: this.config.listId, maxListBytes: this.config.maxListBytes },
        read.files,
        { listId, serial, seq, bodySha256, fullSha256 },
      );
      this.checkHashKey(opened.full);
      this.state = opened.state;
      this.current = factsOf(opened.full);
      this.floor = undefined;
      this.store.sweep(read.state);
      return { status: 'loaded', meta: metaOf(opened.index, this.current), entries: entriesOf(opened.full) };
    } catch (err) {
      return { status: 'unusable', ...codeOf(err), floor };
    } finally {
      read.files.full.close();
    }
  }

  /** The stored list is hashed with a key the daemon holds (a licensed key by id, or public mode). */
  private checkHashKey(full: Pick<FullMatcher, 'header'>): void {
    const ref = full.header.hashKey;
    if (ref.mode === 'licensed' && !this.config.hashKeyIds.includes(ref.id)) {
      throw new FormatError('UNKNOWN_HASH_KEY', `the stored list is hashed with key "${ref.id}", not configured`);
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
      const agent = new Agent({ connect: { timeout: this.config.connectTimeoutMs }, connections: 4 });
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

  /** One poll of mirror `n` with one fixed `now` (seconds), committed before it is reported. */
  async poll(n: number, now: number): Promise<PollReply> {
    // The spools this poll makes (a delta's result, a downloaded FULL), each with the wrapper pollMatcher was
    // given: the one the result names is committed (renamed into place), every one is removed at the end. And the
    // stored FULL, when it is opened as a delta's base.
    const spools = new Map<FullSpool, FileSpool>();
    const opened: { base?: OpenFile } = {};
    try {
      const { source } = this.mirror(n);
      const r = await pollMatcher(
        {
          source,
          trust: this.trust,
          listId: this.config.listId,
          now,
          maxListBytes: this.config.maxListBytes,
          hashKeyIds: this.config.hashKeyIds,
          spool: () => {
            const spool = this.guard('create a spool in', () => this.store.createSpool());
            const wrapper = this.guarded(spool);
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
          return { kind: 'unchanged', meta: metaOf(r.index, this.current!) };
        case 'heartbeat': {
          this.commit({ indexBytes: r.indexBytes, indexSignatures: r.indexSignatures, state: r.state });
          this.state = r.state;
          return { kind: 'heartbeat', meta: metaOf(r.index, this.current!) };
        }
        case 'updated': {
          if (!this.state && this.floor) this.checkFloor(r.index, this.floor);
          const fullSpool = r.spool ? spools.get(r.spool) : undefined;
          if (r.spool && !fullSpool) throw new Error('internal: a spool that is not ours');
          // The base is read: closed before its file is replaced.
          opened.base?.close();
          this.commit({
            indexBytes: r.indexBytes,
            indexSignatures: r.indexSignatures,
            ...(fullSpool ? { fullSpool } : { fullBytes: r.fullBytes }),
            state: r.state,
          });
          this.state = r.state;
          this.current = factsOf(r.full);
          this.floor = undefined;
          return {
            kind: 'updated',
            meta: metaOf(r.index, this.current),
            entries: entriesOf(r.full),
            via: r.via,
            ...(r.deltaError ? { deltaError: codeOf(r.deltaError) } : {}),
          };
        }
      }
      // Every kind returned above (TypeScript does not see a switch over these intersections as exhaustive).
      const unknown: never = r;
      throw new Error(`internal: a poll result of kind ${(unknown as { kind: string }).kind}`);
    } catch (err) {
      this.resetMirror(n);
      if (err instanceof CommitError) return { kind: 'rejected', code: 'STORE_FAILED', message: err.message };
      return { kind: 'rejected', ...codeOf(err) };
    } finally {
      opened.base?.close();
      // Renamed into place by a commit (then this finds nothing to remove), or left by a failure or a failed delta.
      for (const spool of spools.values()) spool.discard();
    }
  }

  /** Runs a step on the state directory, turning an I/O error into a CommitError (STORE_FAILED). */
  private guard<T>(what: string, step: () => T): T {
    try {
      return step();
    } catch (err) {
      throw new CommitError(`cannot ${what} ${this.store.dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The spool as pollMatcher sees it: a disk error while it is written or read back is STORE_FAILED. */
  private guarded(spool: FileSpool): FullSpool {
    return {
      write: (chunk) => this.guard('write the spool in', () => spool.write(chunk)),
      read: (position, into) => this.guard('read the spool in', () => spool.read(position, into)),
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

  private commit(update: Parameters<ListStore['commit']>[0]): void {
    try {
      this.store.commit(update);
    } catch (err) {
      throw new CommitError(`cannot write ${this.store.dir}: ${(err as Error).message}`, { cause: err });
    }
  }
}

class CommitError extends Error {}
