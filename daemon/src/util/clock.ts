/**
 * Time as a parameter. What reads the time or waits for it on the query path (the rate limit, the packet cache's
 * lifetimes, the upstream tries' deadlines, health and latency) takes a Clock, so that a test moves time instead of
 * sleeping and nothing it checks depends on how busy the machine is. The daemon runs on `systemClock`; tests pass a
 * `ManualClock`. (The list sync's wall clock, in seconds, is its own SyncTiming.clock; `wallClock` is the calendar's.)
 */
import { performance } from 'node:perf_hooks';

/** What setTimeout returned, to cancel it with. */
export type Timer = object;

export interface Clock {
  /** Monotonic milliseconds (performance.now() on the system clock). */
  now(): number;
  /** Calls `fn` once `ms` milliseconds of this clock have passed. */
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
}

/**
 * The process's own clock: performance.now() and Node's timers. `performance` is imported, not the global: Node's
 * global is a getter, which V8 called through its generic inline cache at every read of the time, ~40 ns a saturated
 * query (bench/README.md, "Buffer's methods off the query path").
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/**
 * The calendar's clock: now() is milliseconds since the epoch (Date.now()), for what aligns to UTC boundaries (the
 * hit report's windows). Tests pass a ManualClock started at an epoch time.
 */
export const wallClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

interface ManualTimer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/**
 * A clock that moves only when told (tests): `advance(ms)` moves it and runs, in order of their time, the timers
 * that come due on the way, each with the clock at its own time.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: ManualTimer[] = [];

  constructor(startMs = 1_000_000) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const timer: ManualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return timer;
  }

  clearTimeout(timer: Timer): void {
    this.#timers = this.#timers.filter((t) => t !== timer);
  }

  /** Timers set and not yet run or cleared. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves the clock `ms` forward, running each timer that comes due (timers they set included) at its time. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers)
        if (t.at <= end && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (next === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      if (next.at > this.#now) this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }
}
