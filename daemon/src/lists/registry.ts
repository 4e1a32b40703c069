/**
 * Every configured list of one daemon, and the view the query path reads. Each list has its own sync loop
 * (sync.ts) and worker; the registry puts their matchers together in configuration order and swaps a new, frozen
 * view (generation + 1) whenever one changes, so a query sees the old lists or the new ones, never a mix.
 *
 * Wiring (main.ts):
 *   const lists = createListRegistry(settings, { logger });
 *   await lists.start();                 // stored lists in force; `wait` lists waited for (bounded)
 *   const daemon = await startDaemon(settings, { logger, lists });
 *   SIGHUP:  await lists.reload(newSettings)   // unchanged lists are untouched
 *   SIGTERM: await daemon.close(); await lists.close();
 */
import { EventEmitter } from 'node:events';

import { MIN_POLL_FLOOR_SECONDS } from '@hashwall/format';

import type { Settings } from '../config/load.js';
import type { ListProvider, ListView } from '../types/lists.js';
import type { Logger } from '../util/log.js';
import { systemClock } from '../util/clock.js';
import { ListSync, cronScheduler, type SyncTiming } from './sync.js';
import type { ListEventMap, ListStats, PollOutcome } from './types.js';
import { ViewPublisher, listFingerprint } from './view.js';

export interface ListRegistryOptions {
  readonly logger: Logger;
  /** Sent as User-Agent to the mirrors. */
  readonly userAgent?: string;
  /** Overrides for time (tests inject a clock; the daemon uses the defaults). */
  readonly timing?: Partial<SyncTiming>;
  /** Bound on close(): workers still running after it are left to exit with the process. */
  readonly closeTimeoutMs?: number;
  /**
   * Each list's core on this thread instead of a worker (lists/inline.ts), for tests of the sync rules: a worker
   * costs ~0.3 s of CPU to start. The daemon never sets it: its query thread must not wait for a list load.
   */
  readonly inlineCore?: boolean;
}

const DEFAULT_TIMING: SyncTiming = {
  clock: () => Date.now() / 1000,
  timers: systemClock,
  schedule: cronScheduler,
  random: Math.random,
  checkIntervalMs: 5000,
  minPollFloorSeconds: MIN_POLL_FLOOR_SECONDS,
  openDeadlineMs: 300_000,
};

export class ListRegistry extends EventEmitter<ListEventMap> implements ListProvider {
  private settings: Settings;
  private readonly logger: Logger;
  private readonly timing: SyncTiming;
  private readonly userAgent: string;
  private readonly closeTimeoutMs: number;
  private readonly inlineCore: boolean;
  private syncs: ListSync[] = [];
  private readonly publisher: ViewPublisher;
  private started = false;
  private closed = false;
  /** reload() and close() run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(settings: Settings, options: ListRegistryOptions) {
    super();
    this.settings = settings;
    this.logger = options.logger;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.userAgent = options.userAgent ?? 'hashwalld';
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.inlineCore = options.inlineCore ?? false;
    this.syncs = settings.lists.map((r) => this.makeSync(r));
    this.publisher = new ViewPublisher(this.refuseAll(this.syncs), (view) => this.emit('swap', view));
  }

  private makeSync(resolved: Settings['lists'][number]): ListSync {
    return new ListSync(resolved, this.settings.config.stateDir, {
      logger: this.logger,
      guard: this.settings.guard,
      timing: this.timing,
      userAgent: this.userAgent,
      // EventEmitter's generic signature cannot be called with a generic key; the map types each call site.
      emit: (event, ...args) => (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args),
      changed: () => this.recompute(),
      inlineCore: this.inlineCore,
    });
  }

  private refuseAll(syncs: readonly ListSync[]): boolean {
    return syncs.some((s) => s.refusing);
  }

  /** The lists in force for queries. Read it once per query: it is replaced, never changed. */
  view(): ListView {
    return this.publisher.view;
  }

  /** Swaps in a new view when what the lists contribute changed. */
  private recompute(): void {
    if (this.closed) return;
    this.publisher.publish(
      this.syncs.flatMap((s) => (s.active ? [s.active] : [])),
      this.refuseAll(this.syncs),
    );
  }

  /**
   * Puts every stored list in force (re-verified, before any network answer), starts each list's schedule with
   * a first poll at once, then waits for lists with onStartWithoutList=wait that have no list yet, each for at
   * most its startWaitMs; a list still without one is served without, with a loud log and a 'start-timeout' event.
   */
  async start(): Promise<void> {
    if (this.started || this.closed) return;
    this.started = true;
    const syncs = this.syncs;
    await Promise.all(syncs.map((s) => s.open()));
    this.recompute();
    for (const s of syncs) s.start();
    await Promise.all(
      syncs
        .filter((s) => !s.hasList && s.resolved.config.onStartWithoutList === 'wait')
        .map(async (s) => {
          const ms = s.resolved.config.startWaitMs;
          if (await s.waitForList(ms)) return;
          if (this.closed) return;
          this.logger.error(
            { list: s.id, waitedMs: ms },
            'no verified list arrived within startWaitMs: serving WITHOUT this list (names on it are not ' +
              'blocked). Check the mirrors, the network and the keys',
          );
          this.emit('start-timeout', { listId: s.id, waitedMs: ms });
        }),
    );
  }

  /**
   * Applies new settings (SIGHUP): lists whose configuration (keys, hash key, mirrors, timings, state directory)
   * did not change keep running untouched; removed ones stop and leave the view; changed ones are restarted from
   * their state directory, the old matcher staying in force until the new sync has opened its store; new ones
   * start as at start-up (without waiting).
   */
  reload(settings: Settings): Promise<void> {
    const run = this.queue.then(() => this.doReload(settings));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async doReload(settings: Settings): Promise<void> {
    if (this.closed) return;
    const stateDir = settings.config.stateDir;
    const byId = new Map(this.syncs.map((s) => [s.id, s]));
    this.settings = settings;
    const next: ListSync[] = [];
    const fresh: ListSync[] = [];
    const retired: ListSync[] = [];
    for (const r of settings.lists) {
      const old = byId.get(r.config.id);
      byId.delete(r.config.id);
      if (old && old.fingerprint === listFingerprint(r, stateDir, settings.guard)) {
        next.push(old);
        continue;
      }
      // The old sync stops now (one writer per state directory); its matcher stays in the view until the swap.
      if (old) {
        await old.stop();
        retired.push(old);
      }
      const s = this.makeSync(r);
      next.push(s);
      fresh.push(s);
    }
    const removed = [...byId.values()];
    await Promise.all(removed.map((s) => s.stop()));
    await Promise.all(fresh.map((s) => s.open()));
    if (this.closed) {
      await Promise.all(fresh.map((s) => s.stop()));
      return;
    }
    this.syncs = next;
    this.recompute();
    if (this.started) for (const s of fresh) s.start();
    this.logger.info(
      {
        kept: next.filter((s) => !fresh.includes(s)).map((s) => s.id),
        restarted: retired.map((s) => s.id),
        added: fresh.filter((s) => !retired.some((o) => o.id === s.id)).map((s) => s.id),
        removed: removed.map((s) => s.id),
      },
      'lists reloaded',
    );
  }

  /** The figures of every list, in configuration order. */
  stats(): ListStats[] {
    return this.syncs.map((s) => s.stats());
  }

  /** Polls one list now, outside its schedule (an operator's request, or a test). */
  pollNow(listId: string): Promise<PollOutcome> {
    const s = this.syncs.find((x) => x.id === listId);
    if (!s) return Promise.reject(new RangeError(`no list ${listId}`));
    return s.pollNow();
  }

  /**
   * SPEC.md 4.6: polls every list at once (SIGUSR1), outside the schedule and regardless of min-poll, which bounds
   * the schedule, not an operator's request. A list with a round in progress joins it. Resolves with each list's
   * outcome, in configuration order; never rejects.
   */
  pollAll(): Promise<{ readonly list: string; readonly outcome: PollOutcome }[]> {
    if (this.closed) return Promise.resolve([]);
    this.logger.info({ lists: this.syncs.map((s) => s.id) }, 'polling every list now (an operator asked)');
    return Promise.all(this.syncs.map(async (s) => ({ list: s.id, outcome: await s.pollNow() })));
  }

  /** Re-checks the stale and expired rules of every list now (they are also checked every few seconds). */
  evaluate(): void {
    for (const s of this.syncs) s.evaluate();
  }

  /** Stops every schedule and worker (cutting downloads), within closeTimeoutMs. */
  close(): Promise<void> {
    const run = this.queue.then(async () => {
      if (this.closed) return;
      this.closed = true;
      const all = Promise.all(this.syncs.map((s) => s.stop()));
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.closeTimeoutMs);
        timer.unref();
      });
      await Promise.race([all, limit]);
      clearTimeout(timer);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** The registry for `settings`: one call for main.ts (see the wiring at the top of this file). */
export function createListRegistry(settings: Settings, options: ListRegistryOptions): ListRegistry {
  return new ListRegistry(settings, options);
}
