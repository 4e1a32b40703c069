/**
 * The hit report, for list maintainers: how often each listed entry blocked (or steered) a query over a window, so
 * that they can retire entries that no longer match anything. Off by default (`hitReport.enabled`).
 *
 * What it holds: per list, the entry's hash (the 64 hex digits of the list's own body line, SPEC.md 2.1: the
 * maintainer can match it, nobody else learns a name from it) and a count. Nothing about clients: no address, no
 * time of a query, no query name (a query below a D entry counts for the entry). Entries hit fewer than
 * `minCount` times in a window are left out, so a report does not show that one person looked up one name.
 *
 * Windows are aligned to multiples of `intervalSeconds` since the epoch (daily windows start at 00:00 UTC), so
 * that reports from many ISPs cover the same periods. At the end of each window the report is written to
 * `hitReport.file` (atomically: temporary file, fsync, rename) and/or kept for /hit-report on the metrics listener;
 * on shutdown the partial window is written too (`complete: false`).
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import type { Logger } from '../util/log.js';
import type { HitSink } from './metrics.js';

export const HIT_REPORT_FORMAT = 'hashwall-hit-report/1';

/** Counts of one window: list id -> entry hash -> hits. */
export interface HitCounts {
  readonly lists: Map<string, Map<string, number>>;
  /** Hits not counted because `maxEntries` distinct entries were already counted in the window. */
  readonly uncounted: number;
}

export interface HitReport {
  readonly format: typeof HIT_REPORT_FORMAT;
  /** ISO 8601, UTC. */
  readonly windowStart: string;
  readonly windowEnd: string;
  /** False for the partial window written at shutdown. */
  readonly complete: boolean;
  readonly minCount: number;
  readonly lists: readonly {
    readonly id: string;
    /** The serial in force when the window ended (null if none was). */
    readonly serial: number | null;
    /** Entries hit at least minCount times, most hits first. */
    readonly entries: readonly { readonly hash: string; readonly hits: number }[];
  }[];
  /** Hits not counted because the window reached hitReport.maxEntries distinct entries. */
  readonly uncountedHits: number;
}

/** Counts hits per entry in memory, at most `maxEntries` distinct entries a window. */
export class HitCounter implements HitSink {
  #lists = new Map<string, Map<string, number>>();
  #entries = 0;
  #uncounted = 0;
  readonly #max: number;

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  record(listId: string, entry: string): void {
    if (entry === '') return;
    let per = this.#lists.get(listId);
    if (per === undefined) this.#lists.set(listId, (per = new Map<string, number>()));
    const n = per.get(entry);
    if (n !== undefined) {
      per.set(entry, n + 1);
    } else if (this.#entries < this.#max) {
      per.set(entry, 1);
      this.#entries++;
    } else {
      this.#uncounted++;
    }
  }

  /** The counts so far, and a fresh window. */
  take(): HitCounts {
    const out = { lists: this.#lists, uncounted: this.#uncounted };
    this.#lists = new Map();
    this.#entries = 0;
    this.#uncounted = 0;
    return out;
  }
}

/** Adds `b` into `a` (merging the counts of several worker processes). */
export function mergeHitCounts(a: HitCounts, b: HitCounts): HitCounts {
  const lists = new Map(a.lists);
  for (const [id, per] of b.lists) {
    const into = new Map(lists.get(id) ?? []);
    for (const [h, n] of per) into.set(h, (into.get(h) ?? 0) + n);
    lists.set(id, into);
  }
  return { lists, uncounted: a.uncounted + b.uncounted };
}

/** HitCounts as plain JSON (to cross a process boundary) and back. */
export function hitCountsToJson(c: HitCounts): { lists: [string, [string, number][]][]; uncounted: number } {
  return { lists: [...c.lists].map(([id, per]) => [id, [...per]]), uncounted: c.uncounted };
}

export function hitCountsFromJson(v: unknown): HitCounts {
  const o = v as { lists?: unknown; uncounted?: unknown };
  const lists = new Map<string, Map<string, number>>();
  if (Array.isArray(o.lists)) {
    for (const item of o.lists as unknown[]) {
      if (!Array.isArray(item) || typeof item[0] !== 'string' || !Array.isArray(item[1])) continue;
      const per = new Map<string, number>();
      for (const pair of item[1] as unknown[]) {
        if (Array.isArray(pair) && typeof pair[0] === 'string' && typeof pair[1] === 'number')
          per.set(pair[0], pair[1]);
      }
      lists.set(item[0], per);
    }
  }
  return { lists, uncounted: typeof o.uncounted === 'number' ? o.uncounted : 0 };
}

/** The report for one window: entries at or above `minCount`, most hits first (then by hash, for stable files). */
export function buildHitReport(input: {
  readonly counts: HitCounts;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly complete: boolean;
  readonly minCount: number;
  /** Every configured list, in order, with its serial in force. */
  readonly lists: readonly { readonly id: string; readonly serial: number | null }[];
}): HitReport {
  const iso = (s: number): string => new Date(s * 1000).toISOString().replace(/\.000Z$/, 'Z');
  return {
    format: HIT_REPORT_FORMAT,
    windowStart: iso(input.windowStart),
    windowEnd: iso(input.windowEnd),
    complete: input.complete,
    minCount: input.minCount,
    lists: input.lists.map((l) => ({
      id: l.id,
      serial: l.serial,
      entries: [...(input.counts.lists.get(l.id) ?? [])]
        .filter(([, n]) => n >= input.minCount)
        .sort(([ha, a], [hb, b]) => b - a || (ha < hb ? -1 : ha > hb ? 1 : 0))
        .map(([hash, hits]) => ({ hash, hits })),
    })),
    uncountedHits: input.counts.uncounted,
  };
}

/** Writes `text` to `file` atomically: a temporary file beside it, fsync, rename, fsync of the folder. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o640);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export interface HitReporterOptions {
  readonly intervalSeconds: number;
  readonly minCount: number;
  /** Where each window's report is written ('' for nowhere). */
  readonly file: string;
  /** The counts of the window that ends (and a fresh one): one process's counter, or every worker's merged. */
  readonly take: () => HitCounts | Promise<HitCounts>;
  /** Every configured list with its serial in force. */
  readonly lists: () => readonly { readonly id: string; readonly serial: number | null }[];
  readonly logger: Logger;
  /** Seconds since the epoch (tests move it). */
  readonly clock?: () => number;
}

/** Ends a window every `intervalSeconds` (aligned), builds its report, writes it and keeps it for the endpoint. */
export class HitReporter {
  readonly #o: HitReporterOptions;
  readonly #clock: () => number;
  #windowStart: number;
  #timer: NodeJS.Timeout | undefined;
  #latest: HitReport | null = null;
  #stopped = false;
  /** Rolls run one at a time. */
  #rolling: Promise<unknown> = Promise.resolve();

  constructor(options: HitReporterOptions) {
    this.#o = options;
    this.#clock = options.clock ?? (() => Date.now() / 1000);
    this.#windowStart = Math.floor(this.#clock());
  }

  /** The last report built (complete or not), or null. */
  get latest(): HitReport | null {
    return this.#latest;
  }

  start(): void {
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    const iv = this.#o.intervalSeconds;
    const now = this.#clock();
    const next = (Math.floor(now / iv) + 1) * iv;
    this.#timer = setTimeout(
      () => {
        void this.roll(true, true).finally(() => this.#schedule());
      },
      Math.max(0, (next - now) * 1000),
    );
    this.#timer.unref();
  }

  /**
   * Ends the current window: builds its report, writes the file (if any), keeps it as the latest. The timer ends a
   * window at its aligned boundary (`atBoundary`); an operator's request or the shutdown ends it now.
   */
  roll(complete: boolean, atBoundary = false): Promise<HitReport> {
    const run = this.#rolling.then(() => this.#roll(complete, atBoundary));
    this.#rolling = run.catch(() => undefined);
    return run;
  }

  async #roll(complete: boolean, atBoundary: boolean): Promise<HitReport> {
    const counts = await this.#o.take();
    const end = Math.floor(this.#clock());
    const iv = this.#o.intervalSeconds;
    // The timer may fire a little late: its window still ends at the boundary.
    const windowEnd = Math.max(this.#windowStart, atBoundary ? Math.floor(end / iv) * iv : end);
    const report = buildHitReport({
      counts,
      windowStart: this.#windowStart,
      windowEnd,
      complete,
      minCount: this.#o.minCount,
      lists: this.#o.lists(),
    });
    this.#windowStart = windowEnd;
    this.#latest = report;
    if (this.#o.file !== '') {
      try {
        await writeFileAtomic(this.#o.file, `${JSON.stringify(report, null, 2)}\n`);
        this.#o.logger.info(
          { file: this.#o.file, windowEnd: report.windowEnd, complete },
          'hit report written for the list maintainers',
        );
      } catch (err) {
        this.#o.logger.error(
          { file: this.#o.file, err: (err as Error).message },
          'cannot write the hit report: check hitReport.file, its folder and permissions',
        );
      }
    }
    return report;
  }

  /** Stops the timer and writes the partial window (complete: false). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.roll(false);
  }
}
