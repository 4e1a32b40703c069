/**
 * The sync loop of one configured list, on the main thread: when to poll (cron, jitter, min-poll, backoff), which
 * mirror, what to do with each outcome (events, logs, the swap), and the time rules on what is in force (stale
 * index, expired FULL). The work itself (fetch, verify, commit) runs in the list's worker (core.ts); the SPEC.md 4
 * rules all come from @hashwall/format through it.
 */
import { ListMatcher, type HashKey } from '@hashwall/format';
import { maskUrl } from '@hashwall/release-client/mask';
import cron from 'node-cron';

import type { GuardSet, ResolvedList } from '../config/load.js';
import type { Clock, Timer } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { WorkerClient, type CoreClient } from './client.js';
import type { CoreConfig } from './core.js';
import { InlineClient } from './inline.js';
import type {
  EntryArrays,
  ListEventMap,
  ListMeta,
  ListStats,
  OpenReply,
  PollOutcome,
  PollReply,
  SyncErrorCode,
  TrustFacts,
} from './types.js';
import { hashKeyFor, listFingerprint, listTrust, pastExpiry, refusing } from './view.js';

/** A running schedule: stop() ends it. */
export interface Schedule {
  stop(): unknown;
}

/** Calls `tick` at every time `expression` (five cron fields) names, until stopped. */
export type Scheduler = (expression: string, name: string, tick: () => void, log: Logger) => Schedule;

/** The daemon's scheduler: node-cron, without overlapping runs, its own messages at debug. */
export const cronScheduler: Scheduler = (expression, name, tick, log) => {
  const task = cron.schedule(expression, tick, {
    name,
    noOverlap: true,
    // node-cron's own messages (missed runs after a suspend) go to our log at debug.
    logger: {
      info: (m) => log.debug({ cron: m }, 'cron'),
      warn: (m) => log.debug({ cron: m }, 'cron'),
      error: (m) => log.debug({ cron: String(m) }, 'cron'),
      debug: () => undefined,
    },
  });
  return { stop: () => task.destroy() };
};

/** Knobs for time; the defaults are what the daemon runs with, tests shorten them or move them by hand. */
export interface SyncTiming {
  /** Wall clock, seconds since the epoch: the `now` of each poll and of the expiry rules. */
  readonly clock: () => number;
  /**
   * Monotonic time and its timers: the worker's request deadlines, startWaitMs, the jitter and retry delays and
   * the min-poll interval since the last attempt.
   */
  readonly timers: Clock;
  /** What calls a list's cron schedule. */
  readonly schedule: Scheduler;
  /** Uniform in [0, 1): jitter and backoff spread. */
  readonly random: () => number;
  /** How often the stale / expired rules are re-checked between polls. */
  readonly checkIntervalMs: number;
  /** SPEC.md 2.3: never poll more often than every 60 s. Lowered only by tests. */
  readonly minPollFloorSeconds: number;
  /** Backstop deadlines for the worker (each request also has its own network deadlines). */
  readonly openDeadlineMs: number;
  readonly pollDeadlineMs?: number;
}

export interface SyncDeps {
  readonly logger: Logger;
  /** The guard set every new list is checked against (lists/hold.ts). */
  readonly guard: GuardSet;
  readonly timing: SyncTiming;
  readonly userAgent: string;
  readonly emit: <K extends keyof ListEventMap>(event: K, ...args: ListEventMap[K]) => void;
  /** Called whenever what this list contributes to the view changed. */
  readonly changed: () => void;
  /** The core on this thread instead of a worker (inline.ts): for tests only. */
  readonly inlineCore?: boolean;
}

/**
 * SPEC.md 4, 5 and 6 codes that mean a mirror served something forged, older, contradictory or withheld: an alarm,
 * not a hiccup. Only a log fetch that failed (LOG_FETCH_FAILED) is a network matter.
 */
export const ALARM_CODES: ReadonlySet<SyncErrorCode> = new Set<SyncErrorCode>([
  'ROLLBACK',
  'EQUIVOCATION',
  'SIGNATURE_INVALID',
  'LEGACY_SIGNATURE',
  'UNTRUSTED_KEY',
  'THRESHOLD_NOT_MET',
  'COMMENT_MISMATCH',
  'LIST_MISMATCH',
  'DIGEST_MISMATCH',
  'MALFORMED',
  // SPEC.md 5: keyrings.
  'KEYRING_SIGNATURE',
  'KEYRING_VERSION',
  'KEYRING_EXPIRED',
  'KEYRING_WITHHELD',
  'KEYRING_REQUIRED',
  // SPEC.md 6: the release log.
  'LOG_INDEX_REQUIRED',
  'LOG_MALFORMED',
  'LOG_TOO_LARGE',
  'LOG_SIGNATURE_INVALID',
  'LOG_UNTRUSTED_KEY',
  'LOG_ORIGIN_MISMATCH',
  'LOG_WITNESS_THRESHOLD',
  'LOG_NOT_INCLUDED',
  'LOG_ROLLBACK',
  'LOG_TILE_MISMATCH',
  'LOG_SPLIT_VIEW',
  'LOG_PROOF_INVALID',
]);

const OUTCOMES: readonly PollOutcome[] = ['updated', 'heartbeat', 'unchanged', 'not-modified', 'held', 'rejected'];

/** The delay before the next scheduled poll: jitter, but never sooner than the min-poll interval allows. */
export function nextPollDelayMs(input: {
  readonly sinceLastAttemptMs: number | undefined;
  readonly minIntervalMs: number;
  readonly jitterMs: number;
}): number {
  const wait = input.sinceLastAttemptMs === undefined ? 0 : input.minIntervalMs - input.sinceLastAttemptMs;
  return Math.max(0, Math.ceil(Math.max(input.jitterMs, wait)));
}

/** Exponential backoff after `failures` failed rounds in a row (1, 2, ...), spread by up to a quarter. */
export function backoffMs(failures: number, minMs: number, maxMs: number, random: number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.min(maxMs, Math.round(base * (1 + random / 4)));
}

interface Enforced {
  readonly matcher: ListMatcher;
  meta: ListMeta;
}

export class ListSync {
  readonly id: string;
  readonly resolved: ResolvedList;
  readonly fingerprint: string;
  private readonly deps: SyncDeps;
  private readonly log: Logger;
  private readonly client: CoreClient;
  private readonly mirrors: readonly string[];
  private hashKeyCache: { ref: string; key: HashKey } | undefined;

  private enforced: Enforced | undefined;
  private origin: 'none' | 'store' | 'network' = 'none';
  /** on-expired: drop took the list out of the view. */
  private dropped = false;
  private isStale = false;
  private isExpired = false;
  /** A valid list was in force at some point since this sync started (ends onStartWithoutList=refuse). */
  private hadList = false;

  private task: Schedule | undefined;
  private timer: Timer | undefined;
  private checker: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<PollOutcome> | undefined;
  private opened = false;
  private waiters: (() => void)[] = [];

  private lastAttemptMono: number | undefined;
  private lastAttemptAt: number | null = null;
  private lastSuccessAt: number | null = null;
  private lastUpdateAt: number | null = null;
  private failures = 0;
  private readonly outcomes: Record<PollOutcome, number> = {
    updated: 0,
    heartbeat: 0,
    unchanged: 0,
    'not-modified': 0,
    held: 0,
    rejected: 0,
  };
  private readonly rejections: Partial<Record<SyncErrorCode, number>> = {};
  private deltaFallbacks = 0;
  private storeUnusable = 0;
  /** The serial the guard holds, and since when (its held.json). */
  private held: { serial: number; fullSha256: string } | undefined;
  /** The keyring and the release log as the worker last reported them. */
  private trust: TrustFacts = {};
  private splitViews = 0;

  constructor(resolved: ResolvedList, stateDir: string, deps: SyncDeps) {
    const c = resolved.config;
    this.id = c.id;
    this.resolved = resolved;
    this.fingerprint = listFingerprint(resolved, stateDir, deps.guard);
    this.deps = deps;
    this.log = deps.logger.child({ list: c.id });
    this.mirrors = c.mirrors;
    const core: CoreConfig = {
      ...listTrust(resolved, stateDir, deps.guard),
      mirrors: c.mirrors,
      connectTimeoutMs: c.connectTimeoutMs,
      totalTimeoutMs: c.totalTimeoutMs,
      userAgent: deps.userAgent,
    };
    this.client = deps.inlineCore ? new InlineClient(core) : new WorkerClient(core, { clock: deps.timing.timers });
  }

  /** The matcher this list puts in the view, if any. */
  get active(): ListMatcher | undefined {
    return this.dropped ? undefined : this.enforced?.matcher;
  }

  /** onStartWithoutList=refuse and no valid list yet. */
  get refusing(): boolean {
    return refusing(this.resolved.config, this.hadList);
  }

  get hasList(): boolean {
    return this.hadList;
  }

  private now(): number {
    return this.deps.timing.clock();
  }

  private emit<K extends keyof ListEventMap>(event: K, ...args: ListEventMap[K]): void {
    try {
      this.deps.emit(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'a list event listener threw; the list sync goes on');
    }
  }

  // ----------------------------------------------------------------------------------------------------------
  // Loading and swapping
  // ----------------------------------------------------------------------------------------------------------

  /**
   * Reads and re-verifies the state directory (in the worker) and puts the stored list in force (SPEC.md 4.3 and
   * 7), before the network answers. A store that cannot be used is logged, counted and ignored.
   */
  async open(): Promise<void> {
    let reply: OpenReply;
    try {
      reply = await this.client.open(this.deps.timing.openDeadlineMs);
    } catch (err) {
      reply = { status: 'unusable', code: 'WORKER_FAILED', message: (err as Error).message };
    }
    this.opened = true;
    if (this.stopped) return;
    this.noteTrust(reply.trust);
    if (reply.status === 'absent') {
      if (!this.enforced) this.log.info('no stored list yet: it will be downloaded from the mirrors');
    } else if (reply.status === 'unusable') {
      this.storeUnusable++;
      this.log.warn(
        { code: reply.code, reason: reply.message, highWater: reply.floor },
        'the stored list cannot be used and was ignored: it will be downloaded again' +
          (reply.floor ? ' (its seq and serial still bound what is accepted)' : ''),
      );
      this.emit('store-unusable', { listId: this.id, code: reply.code, message: reply.message });
    } else {
      const same =
        this.enforced?.meta.serial === reply.meta.serial && this.enforced.meta.bodySha256 === reply.meta.bodySha256;
      if (same) {
        this.enforced!.meta = reply.meta;
      } else {
        this.install(reply.meta, reply.entries, 'store');
        this.log.info(
          { serial: reply.meta.serial, seq: reply.meta.seq, entries: reply.meta.entries },
          'list loaded from the state directory and re-verified',
        );
        this.emit('loaded', {
          listId: this.id,
          serial: reply.meta.serial,
          seq: reply.meta.seq,
          entries: reply.meta.entries,
        });
      }
      this.evaluate();
    }
  }

  private hashKey(meta: ListMeta): HashKey {
    const ref = meta.hashKey.mode === 'public' ? `public:${meta.hashKey.key}` : `licensed:${meta.hashKey.id}`;
    if (this.hashKeyCache?.ref !== ref)
      this.hashKeyCache = { ref, key: hashKeyFor(meta.hashKey, this.resolved.listKey) };
    return this.hashKeyCache.key;
  }

  /** Builds the matcher for a verified list and swaps it in (one assignment; the registry makes the new view). */
  private install(meta: ListMeta, entries: EntryArrays, origin: 'store' | 'network'): void {
    const matcher = new ListMatcher(this.id, this.hashKey(meta), entries);
    if (meta.exempted > 0) {
      this.log.warn(
        { serial: meta.serial, exempted: meta.exempted, guard: meta.guardPlaces },
        'entries of this list that block names of the guard set are not enforced (the guard names listed by their ' +
          'place in the guard set): tell the list maintainer',
      );
    }
    this.enforced = { matcher, meta };
    this.origin = origin;
    this.dropped = false;
    this.isExpired = false;
    // A stored list already past its expiry under onExpired=drop is dropped before any view shows it, and does not
    // count as a list in force for onStartWithoutList.
    this.evaluate();
    this.checkCanary(matcher, meta);
    const first = this.active !== undefined && !this.hadList;
    if (first) this.hadList = true; // before the swap: the same view lifts refuseAll
    this.deps.changed();
    if (first) for (const w of this.waiters.splice(0)) w();
  }

  private checkCanary(matcher: ListMatcher, meta: ListMeta): void {
    const canary = this.resolved.config.canary;
    if (canary === undefined) return;
    const v = matcher.verdict(canary);
    if (v === null || v.kind === 'P') {
      this.log.error(
        { serial: meta.serial },
        'the configured canary name is not blocked by this list: check the list hash key and the canary setting',
      );
      this.emit('canary-missing', { listId: this.id, serial: meta.serial });
    }
  }

  /** Resolves true as soon as a valid list is in force, false after `ms`. */
  waitForList(ms: number): Promise<boolean> {
    if (this.hadList) return Promise.resolve(true);
    const timers = this.deps.timing.timers;
    return new Promise((resolve) => {
      const done = (): void => {
        timers.clearTimeout(timer);
        resolve(this.hadList);
      };
      const timer = timers.setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(this.hadList);
      }, ms);
      this.waiters.push(done);
    });
  }

  // ----------------------------------------------------------------------------------------------------------
  // Time rules (SPEC.md 4.5)
  // ----------------------------------------------------------------------------------------------------------

  /** Re-checks the stale-index and expired-FULL rules (view.ts) against the clock. */
  evaluate(): void {
    const e = this.enforced;
    if (!e || this.stopped) return;
    const now = this.now();
    const stale = pastExpiry(now, e.meta.indexExpires);
    if (stale !== this.isStale) {
      this.isStale = stale;
      if (stale) {
        this.log.warn(
          { seq: e.meta.seq, indexExpires: new Date(e.meta.indexExpires * 1000).toISOString() },
          'stale index: the publisher has not re-signed it in time (or every mirror is failing); the last ' +
            'verified list stays in force. Check the mirrors and tell the list maintainer',
        );
      } else {
        this.log.info({ seq: e.meta.seq }, 'the index is fresh again');
      }
      this.emit('stale', { listId: this.id, stale, indexExpires: e.meta.indexExpires });
    }
    const expired = pastExpiry(now, e.meta.expires);
    if (expired && !this.isExpired) {
      this.isExpired = true;
      const action = this.resolved.config.onExpired;
      const at = new Date(e.meta.expires * 1000).toISOString();
      if (action === 'drop') {
        this.dropped = true;
        this.log.error(
          { serial: e.meta.serial, expires: at },
          'the enforced list has expired and is dropped (onExpired: drop): names it lists are NOT blocked ' +
            'until a newer list is verified. Check the mirrors and tell the list maintainer',
        );
        this.deps.changed();
      } else {
        this.log.error(
          { serial: e.meta.serial, expires: at },
          'the enforced list has expired; it stays in force (onExpired: keep). Check the mirrors and tell the ' +
            'list maintainer',
        );
      }
      this.emit('expired', { listId: this.id, expires: e.meta.expires, action });
    }
  }

  // ----------------------------------------------------------------------------------------------------------
  // Scheduling
  // ----------------------------------------------------------------------------------------------------------

  private minIntervalMs(): number {
    const minPoll = this.enforced?.meta.minPoll ?? 0;
    return Math.max(minPoll, this.deps.timing.minPollFloorSeconds) * 1000;
  }

  private sinceLastAttemptMs(): number | undefined {
    return this.lastAttemptMono === undefined ? undefined : this.deps.timing.timers.now() - this.lastAttemptMono;
  }

  /** Starts the cron schedule and the first poll (at once: a manual pollNow() right after joins it). */
  start(): void {
    if (this.stopped || this.task) return;
    this.task = this.deps.timing.schedule(
      this.resolved.config.schedule,
      `hashwall-list-${this.id}`,
      () => this.onTick(),
      this.log,
    );
    this.checker = setInterval(() => this.evaluate(), this.deps.timing.checkIntervalMs);
    this.checker.unref();
    void this.pollNow();
  }

  /** A cron tick: poll after a random delay, but never sooner than min-poll after the last attempt. */
  private onTick(): void {
    if (this.stopped || this.timer || this.running) return;
    const jitterMs = this.deps.timing.random() * this.resolved.config.jitterSeconds * 1000;
    this.setTimer(
      nextPollDelayMs({ sinceLastAttemptMs: this.sinceLastAttemptMs(), minIntervalMs: this.minIntervalMs(), jitterMs }),
    );
  }

  private setTimer(ms: number): void {
    if (this.stopped) return;
    const timers = this.deps.timing.timers;
    if (this.timer) timers.clearTimeout(this.timer);
    this.timer = timers.setTimeout(() => {
      this.timer = undefined;
      void this.pollNow();
    }, ms);
  }

  /**
   * One round now (a manual poll; the schedule calls it too): each mirror in order until one answers with
   * something other than a refusal. Resolves with the round's outcome; never rejects.
   */
  pollNow(): Promise<PollOutcome> {
    if (this.stopped) return Promise.resolve('rejected');
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<PollOutcome> {
    this.lastAttemptMono = this.deps.timing.timers.now();
    this.lastAttemptAt = this.now();
    for (let i = 0; i < this.mirrors.length && !this.stopped; i++) {
      // A worker that was replaced (crash, deadline) starts empty: restore it from the state directory first.
      if (this.client.fresh && this.opened) await this.open();
      if (this.stopped) break;
      const kind = await this.attempt(i);
      if (kind !== 'rejected') {
        this.failures = 0;
        this.lastSuccessAt = this.now();
        this.evaluate();
        return kind;
      }
    }
    if (this.stopped) return 'rejected';
    this.failures++;
    const retryInMs = Math.max(
      backoffMs(
        this.failures,
        this.resolved.config.retryMinMs,
        this.resolved.config.retryMaxMs,
        this.deps.timing.random(),
      ),
      this.minIntervalMs() - (this.sinceLastAttemptMs() ?? 0),
    );
    this.log.warn(
      { failures: this.failures, retryInSeconds: Math.round(retryInMs / 1000) },
      this.enforced
        ? 'every mirror failed or was refused; the last verified list stays in force'
        : 'every mirror failed or was refused, and no list is in force yet: check the mirrors and the network',
    );
    this.emit('round-failed', { listId: this.id, failures: this.failures, retryInMs });
    this.evaluate();
    this.setTimer(retryInMs);
    return 'rejected';
  }

  /** One poll of mirror `i` with one fixed `now` (SPEC.md 4). */
  private async attempt(i: number): Promise<PollOutcome> {
    const mirror = maskUrl(this.mirrors[i]!);
    const now = Math.floor(this.now());
    const t0 = this.deps.timing.timers.now();
    let reply: PollReply;
    try {
      reply = await this.client.poll(i, now, this.pollDeadlineMs());
    } catch (err) {
      // The worker crashed or missed its deadline (WorkerFailed); it is replaced before the next attempt.
      reply = { kind: 'rejected', code: 'WORKER_FAILED', message: (err as Error).message };
    }
    if (this.stopped) return 'rejected';
    const durationMs = Math.round(this.deps.timing.timers.now() - t0);
    this.outcomes[reply.kind]++;
    this.noteTrust(reply.trust);
    const base = { listId: this.id, mirror, durationMs };
    switch (reply.kind) {
      case 'held': {
        const h = reply.held;
        const again = this.held?.serial === h.serial && this.held.fullSha256 === h.fullSha256;
        this.held = { serial: h.serial, fullSha256: h.fullSha256 };
        if (again) {
          this.log.debug({ mirror, serial: h.serial }, 'the held list is still held');
          break;
        }
        this.log.error(
          { mirror, serial: h.serial, heldAt: h.heldAt, reasons: h.reasons, alarm: true },
          'ALARM: a verified list was HELD, not applied: it blocks names of the guard set or changes more than the ' +
            'cap at once. The last list stays in force. Check with the list maintainer; to apply it, run ' +
            `hashwalld release-held --list ${this.id} --serial ${h.serial} --reason TEXT`,
        );
        this.emit('held', { listId: this.id, serial: h.serial, reasons: h.reasons });
        break;
      }
      case 'not-modified':
        this.log.debug({ mirror }, 'index not modified');
        this.emit('not-modified', base);
        break;
      case 'unchanged':
        if (this.enforced) this.enforced.meta = reply.meta;
        this.log.debug({ mirror, seq: reply.meta.seq }, 'index unchanged');
        this.emit('unchanged', base);
        break;
      case 'heartbeat':
        if (this.enforced) this.enforced.meta = reply.meta;
        this.log.debug({ mirror, seq: reply.meta.seq, serial: reply.meta.serial }, 'heartbeat: index re-signed');
        this.emit('heartbeat', { ...base, serial: reply.meta.serial, seq: reply.meta.seq });
        break;
      case 'updated': {
        if (reply.deltaError) {
          this.deltaFallbacks++;
          this.log.warn(
            { code: reply.deltaError.code, reason: reply.deltaError.message, mirror },
            'the delta failed; the full list was downloaded instead (tell the list maintainer if this repeats)',
          );
          this.emit('delta-fallback', { listId: this.id, ...reply.deltaError });
        }
        const from = this.enforced?.meta.serial;
        this.held = undefined;
        if (reply.released) {
          const r = reply.released;
          this.log.warn(
            { mirror, serial: r.serial, releasedBy: r.by, releasedAt: r.at, reason: r.reason },
            'a held list was released by its operator and is applied; entries that block guard names stay out',
          );
          this.emit('released', { listId: this.id, serial: r.serial, by: r.by, reason: r.reason });
        }
        this.install(reply.meta, reply.entries, 'network');
        this.lastUpdateAt = this.now();
        this.log.info(
          { mirror, from, serial: reply.meta.serial, seq: reply.meta.seq, entries: reply.meta.entries, via: reply.via },
          'list updated',
        );
        this.emit('updated', {
          ...base,
          serial: reply.meta.serial,
          seq: reply.meta.seq,
          entries: reply.meta.entries,
          via: reply.via,
        });
        break;
      }
      case 'rejected':
        this.rejections[reply.code] = (this.rejections[reply.code] ?? 0) + 1;
        this.logRejection(reply.code, reply.message, mirror);
        if (reply.code === 'LOG_SPLIT_VIEW') {
          this.splitViews++;
          this.log.error(
            { mirror, evidence: reply.evidence ?? '(not kept: the evidence folder is full)', alarm: true },
            'ALARM: the release log showed a split view: two signed checkpoints that cannot both be true. Both are ' +
              "kept in the list's state directory (evidence/): give them to the list maintainer, the witnesses' " +
              'operators and your oversight',
          );
          this.emit('split-view', {
            listId: this.id,
            mirror,
            ...(reply.evidence !== undefined ? { evidence: reply.evidence } : {}),
          });
        }
        this.emit('rejected', { ...base, code: reply.code, message: reply.message });
        break;
    }
    return reply.kind;
  }

  /** What the worker holds of the keyring and the release log; a newer keyring is logged and told. */
  private noteTrust(facts: TrustFacts | undefined): void {
    if (facts === undefined) return;
    const before = this.trust.keyringVersion;
    this.trust = facts;
    const v = facts.keyringVersion;
    if (v !== undefined && before !== undefined && v > before) {
      const expires = facts.keyringExpires ?? 0;
      this.log.info(
        { from: before, version: v, expires: new Date(expires * 1000).toISOString() },
        'keyring rotated: the list is now checked under a newer keyring (SPEC.md 5)',
      );
      this.emit('keyring', { listId: this.id, version: v, expires });
    }
  }

  private pollDeadlineMs(): number {
    // An index, a delta and a FULL, each with its signatures, each within totalTimeoutMs; plus verify and commit.
    return this.deps.timing.pollDeadlineMs ?? 6 * this.resolved.config.totalTimeoutMs + 120_000;
  }

  private logRejection(code: SyncErrorCode, message: string, mirror: string): void {
    const keeping = this.enforced ? 'the last verified list stays in force' : 'no list is in force yet';
    const fields = { code, reason: message, mirror };
    if (ALARM_CODES.has(code) && code !== 'KEYRING_EXPIRED') {
      this.log.error(
        { ...fields, alarm: true },
        `ALARM: a mirror served a list that fails verification (${code}); it was refused and ${keeping}. ` +
          'Tell the list maintainer; if it persists, remove that mirror',
      );
    } else if (code === 'UNKNOWN_HASH_KEY') {
      this.log.error(
        fields,
        `the list is hashed with a key this daemon does not hold; ${keeping}. Configure hashKeyFile`,
      );
    } else if (code === 'STORE_FAILED') {
      this.log.error(fields, `cannot write the state directory; ${keeping}. Check disk space and permissions`);
    } else if (code === 'KEYRING_EXPIRED') {
      this.log.error(
        { ...fields, alarm: true },
        `the list's current keyring has expired: no index is accepted under it; ${keeping}. Tell the list ` +
          "maintainer to publish the next keyring (and check this host's clock)",
      );
    } else if (code === 'EXPIRED' || code === 'NOT_YET_VALID') {
      this.log.warn(
        fields,
        `the mirror's files are outside their validity (${code}); ${keeping}. Check this host's clock`,
      );
    } else {
      this.log.warn(fields, `poll failed (${code}); ${keeping}`);
    }
  }

  // ----------------------------------------------------------------------------------------------------------
  // Figures and shutdown
  // ----------------------------------------------------------------------------------------------------------

  stats(): ListStats {
    const m = this.enforced?.meta;
    return {
      id: this.id,
      enforced: this.active !== undefined,
      origin: this.origin,
      entries: this.active ? (m?.entries ?? 0) : 0,
      serial: m?.serial ?? null,
      seq: m?.seq ?? null,
      fullExpires: m?.expires ?? null,
      indexExpires: m?.indexExpires ?? null,
      minPollSeconds: this.minIntervalMs() / 1000,
      lastAttemptAt: this.lastAttemptAt,
      lastSuccessAt: this.lastSuccessAt,
      lastUpdateAt: this.lastUpdateAt,
      stale: this.isStale,
      expired: this.isExpired,
      consecutiveFailures: this.failures,
      outcomes: Object.fromEntries(OUTCOMES.map((o) => [o, this.outcomes[o]])) as Record<PollOutcome, number>,
      rejections: { ...this.rejections },
      deltaFallbacks: this.deltaFallbacks,
      storeUnusable: this.storeUnusable,
      heldSerial: this.held?.serial ?? null,
      exemptedEntries: this.active ? (m?.exempted ?? 0) : 0,
      keyringVersion: this.trust.keyringVersion ?? null,
      keyringExpires: this.trust.keyringExpires ?? null,
      logSize: this.trust.logSize ?? null,
      splitViews: this.splitViews,
    };
  }

  /** Stops the schedule and the worker at once (cutting any download; a commit is atomic, so this is safe). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) this.deps.timing.timers.clearTimeout(this.timer);
    if (this.checker) clearInterval(this.checker);
    this.timer = undefined;
    this.checker = undefined;
    await this.task?.stop();
    this.task = undefined;
    for (const w of this.waiters.splice(0)) w();
    await this.client.terminate();
  }
}
