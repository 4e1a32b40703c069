/**
 * The hit report, for list maintainers: how often each listed entry blocked (or steered) a query over a window, so
 * that they can retire entries that no longer match anything. Off by default (`hitReport.enabled`).
 *
 * What it holds: per list, the entry's hash (the 64 hex digits of the list's own body line, SPEC.md 2.1: the
 * maintainer can match it, nobody else learns a name from it) and a count. Nothing about clients: no address, no
 * time of a query, no query name (a query below a D entry counts for the entry). So that a report cannot tell when
 * one person looked a name up, windows are at least an hour long (`intervalSeconds`, a day by default) and an entry
 * hit fewer than `minCount` times in a window (at least 5, 10 by default) is left out; the schema holds both floors.
 *
 * Windows are aligned to multiples of `intervalSeconds` since the epoch (daily windows start at 00:00 UTC), so that
 * reports from many ISPs cover the same periods, and a report is labelled by its window's scheduled boundaries
 * whenever the timer fires: the next boundary is the last one plus the interval, never the clock's reading floored
 * (a timer that fired a millisecond early would otherwise end a window at its start and make the next one double).
 * Each window's report has a file of its own in `hitReport.directory`, named by its start, written atomically, and
 * the `keepWindows` newest are kept. A window the daemon did not count in whole (it started, stopped or restarted
 * within it) says so: `complete: false` and `observedSeconds`. At shutdown the window so far is written to its
 * file, and its counts (all of them, below minCount too) are kept in the state directory, readable by the daemon's
 * user only, so that a restart within the same window goes on counting from them and the window's file at its end
 * holds the hits before and after the restart.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { wallClock, type Clock, type Timer } from '../util/clock.js';
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
  /** The window's scheduled boundaries, ISO 8601, UTC. */
  readonly windowStart: string;
  readonly windowEnd: string;
  /** True when the daemon counted the whole window; false when it started, stopped or restarted within it. */
  readonly complete: boolean;
  /** Seconds of the window the daemon counted (across restarts). */
  readonly observedSeconds: number;
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

/** Seconds since the epoch as ISO 8601 UTC, to the second. */
function iso(s: number): string {
  return new Date(s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The file of the window starting at `windowStart` (seconds): `hit-report-20261206T000000Z.json`. */
export function hitReportFileName(windowStart: number): string {
  return `hit-report-${iso(windowStart).replace(/[-:]/g, '')}.json`;
}

const REPORT_FILE = /^hit-report-\d{8}T\d{6}Z\.json$/;

/** The report for one window: entries at or above `minCount`, most hits first (then by hash, for stable files). */
export function buildHitReport(input: {
  readonly counts: HitCounts;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly observedSeconds: number;
  readonly minCount: number;
  /** Every configured list, in order, with its serial in force. */
  readonly lists: readonly { readonly id: string; readonly serial: number | null }[];
}): HitReport {
  return {
    format: HIT_REPORT_FORMAT,
    windowStart: iso(input.windowStart),
    windowEnd: iso(input.windowEnd),
    complete: input.observedSeconds >= input.windowEnd - input.windowStart,
    observedSeconds: input.observedSeconds,
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
export async function writeFileAtomic(file: string, text: string, mode = 0o640): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
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
  /** Where each window's report is written ('' for nowhere), and how many window files are kept there. */
  readonly directory: string;
  readonly keepWindows: number;
  /**
   * Where the counts of the window in progress are kept at shutdown for the next start ('' for nowhere): in the state
   * directory, mode 0600, since they include the entries under minCount.
   */
  readonly carryFile: string;
  /** The counts of the window that ends (and a fresh one): one process's counter, or every worker's merged. */
  readonly take: () => HitCounts | Promise<HitCounts>;
  /** Every configured list with its serial in force. */
  readonly lists: () => readonly { readonly id: string; readonly serial: number | null }[];
  readonly logger: Logger;
  /** Milliseconds since the epoch, and the window timer (tests pass a ManualClock). */
  readonly clock?: Clock;
}

/** The counts of a window in progress, as kept across a restart. */
interface Carried {
  readonly format: 'hashwall-hit-counts/1';
  readonly intervalSeconds: number;
  readonly windowStart: number;
  readonly observedSeconds: number;
  readonly counts: ReturnType<typeof hitCountsToJson>;
}

/** Ends a window at each scheduled boundary, builds its report, writes it to the window's file, keeps it for the endpoint. */
export class HitReporter {
  readonly #o: HitReporterOptions;
  readonly #clock: Clock;
  readonly #iv: number;
  /** The window in progress: its scheduled boundaries (seconds), and since when this process counts it. */
  #windowStart = 0;
  #windowEnd = 0;
  #countingFrom = 0;
  /** Counted in the window before a restart (from the carry file), and for how long. */
  #carried: HitCounts | null = null;
  #carriedSeconds = 0;
  #timer: Timer | undefined;
  #latest: HitReport | null = null;
  #started = false;
  #stopped = false;
  /** Writes run one at a time. */
  #rolling: Promise<unknown> = Promise.resolve();

  constructor(options: HitReporterOptions) {
    this.#o = options;
    this.#clock = options.clock ?? wallClock;
    this.#iv = options.intervalSeconds;
  }

  /** The last report built (complete or not), or null. */
  get latest(): HitReport | null {
    return this.#latest;
  }

  #now(): number {
    return this.#clock.now() / 1000;
  }

  /** Opens the window in progress (taking over the counts a stop within it kept) and sets its timer. */
  async start(): Promise<void> {
    const now = this.#now();
    this.#windowStart = Math.floor(now / this.#iv) * this.#iv;
    this.#windowEnd = this.#windowStart + this.#iv;
    this.#countingFrom = now;
    this.#started = true;
    await this.#takeCarried();
    if (this.#o.directory !== '') {
      try {
        await mkdir(this.#o.directory, { recursive: true, mode: 0o750 });
      } catch (err) {
        this.#o.logger.error(
          { directory: this.#o.directory, err: (err as Error).message },
          'cannot create the hit report directory: check hitReport.directory and its permissions',
        );
      }
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    const delayMs = Math.max(0, this.#windowEnd * 1000 - this.#clock.now());
    this.#timer = this.#clock.setTimeout(() => this.#endWindow(), delayMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Resolves once the reports being written are written (tests). */
  idle(): Promise<void> {
    return this.#rolling.then(() => undefined);
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#rolling.then(fn);
    this.#rolling = run.catch(() => undefined);
    return run;
  }

  /**
   * The timer: the window ends at its scheduled boundary, whatever the clock read when the timer fired, and the next
   * timer is set at once (for the boundary after it); the report is built and written in the background, in order.
   */
  #endWindow(): void {
    this.#timer = undefined;
    const start = this.#windowStart;
    const end = this.#windowEnd;
    const from = this.#countingFrom;
    const now = this.#now();
    // The next window follows this one; a timer that fired later than a whole window (a suspended machine) skips to
    // the window of now, which it counts from now: the hits in between went to the window that just ended.
    if (now < end + this.#iv) {
      this.#windowStart = end;
      this.#countingFrom = end;
    } else {
      this.#windowStart = Math.floor(now / this.#iv) * this.#iv;
      this.#countingFrom = now;
    }
    this.#windowEnd = this.#windowStart + this.#iv;
    void this.#enqueue(async () => {
      const { report } = await this.#collect(start, end, from, end);
      await this.#write(report);
    });
    this.#schedule();
  }

  /** A window counted from `from` until `until` (seconds): its counts, the seconds counted, its report. */
  async #collect(
    start: number,
    end: number,
    from: number,
    until: number,
  ): Promise<{ counts: HitCounts; observed: number; report: HitReport }> {
    let counts = await this.#o.take();
    if (this.#carried !== null) counts = mergeHitCounts(this.#carried, counts);
    const observed = Math.round(this.#carriedSeconds + Math.max(0, Math.min(until, end) - Math.max(from, start)));
    this.#carried = null;
    this.#carriedSeconds = 0;
    const report = buildHitReport({
      counts,
      windowStart: start,
      windowEnd: end,
      observedSeconds: observed,
      minCount: this.#o.minCount,
      lists: this.#o.lists(),
    });
    this.#latest = report;
    return { counts, observed, report };
  }

  async #write(report: HitReport): Promise<void> {
    const dir = this.#o.directory;
    if (dir === '') return;
    const file = join(dir, hitReportFileName(Date.parse(report.windowStart) / 1000));
    try {
      await writeFileAtomic(file, `${JSON.stringify(report, null, 2)}\n`);
      this.#o.logger.info(
        { file, windowEnd: report.windowEnd, complete: report.complete },
        'hit report written for the list maintainers',
      );
      await this.#prune();
    } catch (err) {
      this.#o.logger.error(
        { file, err: (err as Error).message },
        'cannot write the hit report: check hitReport.directory and its permissions',
      );
    }
  }

  /** Removes the oldest window files beyond keepWindows. */
  async #prune(): Promise<void> {
    const names = (await readdir(this.#o.directory)).filter((n) => REPORT_FILE.test(n)).sort();
    for (const n of names.slice(0, Math.max(0, names.length - this.#o.keepWindows))) {
      await rm(join(this.#o.directory, n), { force: true });
    }
  }

  /** Takes over the counts a stop in this same window kept; a carry file of another window is dropped. */
  async #takeCarried(): Promise<void> {
    const file = this.#o.carryFile;
    if (file === '') return;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return; // none
    }
    try {
      const c = JSON.parse(text) as Partial<Carried>;
      if (
        c.format === 'hashwall-hit-counts/1' &&
        c.intervalSeconds === this.#iv &&
        c.windowStart === this.#windowStart &&
        typeof c.observedSeconds === 'number'
      ) {
        this.#carried = hitCountsFromJson(c.counts);
        this.#carriedSeconds = Math.max(0, Math.min(this.#iv, c.observedSeconds));
        this.#o.logger.info(
          { windowStart: iso(this.#windowStart) },
          'hit report: the counts of this window before the restart are carried on',
        );
      }
    } catch {
      // unreadable: this window starts from zero
    }
    await rm(file, { force: true });
  }

  /**
   * Stops the timer and writes the window so far (complete: false) to its file; its counts go to the carry file, for
   * a start within the same window.
   */
  async stop(): Promise<void> {
    if (this.#stopped || !this.#started) return;
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    const start = this.#windowStart;
    const end = this.#windowEnd;
    const from = this.#countingFrom;
    const now = this.#now();
    await this.#enqueue(async () => {
      const { counts, observed, report } = await this.#collect(start, end, from, now);
      await this.#write(report);
      if (this.#o.carryFile !== '') {
        const carried: Carried = {
          format: 'hashwall-hit-counts/1',
          intervalSeconds: this.#iv,
          windowStart: start,
          observedSeconds: observed,
          counts: hitCountsToJson(counts),
        };
        try {
          await mkdir(dirname(this.#o.carryFile), { recursive: true, mode: 0o700 });
          await writeFileAtomic(this.#o.carryFile, JSON.stringify(carried), 0o600);
        } catch (err) {
          this.#o.logger.warn(
            { file: this.#o.carryFile, err: (err as Error).message },
            "cannot keep the hit report window's counts for the next start; that window's report will miss them",
          );
        }
      }
    });
  }
}
