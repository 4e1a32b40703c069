/**
 * Upstream health: whether an upstream is marked down, decided from what its tries come to (client queries and the
 * probes this module sends on a timer), with hysteresis, and told to the operator at a bounded rate.
 *
 * - Probes: every `probe.intervalMs`, each upstream with no probe in flight is asked the probe question
 *   (`probe.name`/`probe.type`, by default `. NS`, which every recursive resolver answers from its root priming),
 *   with up to `maxTries` tries, like a client query but always to that upstream. So a node with no client traffic
 *   still finds a dead upstream, and finds it back, by itself.
 * - Down: tries of `failureThreshold` distinct questions (client names, case-folded, or probes) failed, each sent
 *   after the upstream's last good answer: it has answered nothing since they went out, a whole try timeout ago.
 *   The tries of one question count once, so one name its upstream never answers cannot mark it down; a try sent
 *   before the last good answer says nothing about the upstream now, so an upstream that answers anything while
 *   tries wait is alive, however lossy (its failures show in the error counters). This time condition is what keeps
 *   a lossy upstream up: a failure is known only a timeout after its try was sent, while answers come at once, so
 *   under random loss at a high rate runs of failures with no answer between them are common (a run of 3 at 30%
 *   loss is 1 in 40 tries), whereas three tries in a row that all went out after the last answer are not.
 * - Up: `recoveryThreshold` good answers in a row (probes, or client tries when every upstream is down and the
 *   least recently failed one is still tried). Any well-formed answer counts as good, SERVFAIL included: it came
 *   from a resolver that is running (the query path fails over on SERVFAIL all the same).
 * - Logs: a change of state is logged at once, at warn when it marks an upstream down; further changes of the same
 *   upstream within LOG_INTERVAL_MS are only counted, and one line at the end of that minute says how many there
 *   were and what the state is now. Every change is counted in the metrics (QueryEvents.upstreamHealth).
 */
import { Buffer } from 'node:buffer';

import type { Clock, Timer } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { QueryEvents } from './events.js';

/** At most one state-change line per upstream in this long (the changes in between are counted, then summed up). */
export const LOG_INTERVAL_MS = 60_000;

/** Query types a probe may ask, by name (config `upstream.probe.type`). */
export const PROBE_TYPES: Readonly<Record<string, number>> = Object.freeze({
  A: 1,
  NS: 2,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
});

export interface HealthSettings {
  /** Distinct questions failed, with no good answer in between, that mark an upstream down. */
  readonly failureThreshold: number;
  /** Good answers in a row that bring a down upstream back. */
  readonly recoveryThreshold: number;
}

/** One upstream's state. Pure: the time comes in with each report. */
export class UpstreamHealth {
  up = true;
  /** When a try to it last failed (the pool's clock), for "the least recently failed" when all are down. */
  lastFailureMs = Number.NEGATIVE_INFINITY;
  readonly #s: HealthSettings;
  /** The distinct questions whose tries failed, sent after the last good answer (at most failureThreshold kept). */
  readonly #failed = new Set<string>();
  /** Never, until the first good answer: an upstream that has answered nothing since the start may be down. */
  #lastGoodMs = Number.NEGATIVE_INFINITY;
  /** Good answers in a row while down. */
  #good = 0;

  constructor(settings: HealthSettings) {
    this.#s = settings;
  }

  /** A good answer at `nowMs`. True when it brings the upstream back up. */
  success(nowMs: number): boolean {
    this.#lastGoodMs = nowMs;
    // Set.clear() makes a new table even for an empty set: once per upstream answer, young garbage that survives
    // a scavenge when it is the one in use.
    if (this.#failed.size > 0) this.#failed.clear();
    if (this.up) return false;
    if (++this.#good < this.#s.recoveryThreshold) return false;
    this.up = true;
    this.#good = 0;
    return true;
  }

  /**
   * A failed try (timeout, network error, broken TCP answer) of question `key`, sent at `sentMs`, known at `nowMs`.
   * True when it marks the upstream down.
   */
  failure(key: string, sentMs: number, nowMs: number): boolean {
    this.lastFailureMs = nowMs;
    if (!this.up) {
      this.#good = 0;
      return false;
    }
    if (sentMs <= this.#lastGoodMs) return false;
    if (this.#failed.size < this.#s.failureThreshold) this.#failed.add(key);
    if (this.#failed.size < this.#s.failureThreshold) return false;
    this.up = false;
    this.#good = 0;
    this.#failed.clear();
    return true;
  }
}

/** The probe question on the wire: RD set, class IN, an OPT of 1232 octets (RFC 6891), ID 0 (set per try). */
export function probeQuery(name: string, type: number): Buffer {
  const labels = name === '.' ? [] : name.replace(/\.$/, '').split('.');
  const parts: Buffer[] = [Buffer.from([0, 0, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 1])];
  let length = 1;
  for (const l of labels) {
    const b = Buffer.from(l.toLowerCase(), 'latin1');
    if (b.length === 0 || b.length > 63) throw new RangeError(`probe name ${name}: a label is empty or over 63 octets`);
    length += b.length + 1;
    parts.push(Buffer.from([b.length]), b);
  }
  if (length > 255) throw new RangeError(`probe name ${name}: over 255 octets`);
  const tail = Buffer.alloc(5 + 11);
  tail.writeUInt16BE(type, 1);
  tail.writeUInt16BE(1, 3);
  tail.writeUInt16BE(41, 6); // OPT, owner the root (tail[5] = 0)
  tail.writeUInt16BE(1232, 8);
  parts.push(tail);
  return Buffer.concat(parts);
}

/**
 * The lower-cased wire name of a query (from offset 12) as a string: the key under which a question's failures
 * count once, whatever the case its client sent (0x20) or the type it asked.
 */
export function nameKey(query: Uint8Array, end: number): string {
  let key = '';
  for (let p = 12; p < end;) {
    const len = query[p]!;
    if (len === 0 || len > 63) break;
    for (let i = p + 1; i <= p + len && i < end; i++) {
      const c = query[i]!;
      key += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
    }
    key += '.';
    p += len + 1;
  }
  return key;
}

interface Watched {
  readonly name: string;
  readonly health: UpstreamHealth;
}

interface LogState {
  quietUntilMs: number;
  /** Changes since the last line. */
  unlogged: number;
  timer: Timer | null;
}

export interface HealthMonitorOptions {
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  readonly events: QueryEvents;
  /** Sends one probe to upstream `index`; `done` is called when it has ended (answered or failed). */
  readonly probe: (index: number, done: () => void) => void;
}

/** The probe timer and the state-change reports (events and rate-bounded log lines) of one upstream pool. */
export class HealthMonitor {
  readonly #upstreams: readonly Watched[];
  readonly #o: HealthMonitorOptions;
  readonly #logs: LogState[];
  readonly #probing: boolean[];
  #timer: Timer | null = null;
  #stopped = false;

  constructor(upstreams: readonly Watched[], options: HealthMonitorOptions) {
    this.#upstreams = upstreams;
    this.#o = options;
    this.#logs = upstreams.map(() => ({ quietUntilMs: Number.NEGATIVE_INFINITY, unlogged: 0, timer: null }));
    this.#probing = upstreams.map(() => false);
  }

  /** Starts the probe timer (the first round after one interval). */
  start(): void {
    if (this.#stopped || this.#timer !== null) return;
    this.#timer = this.#o.clock.setTimeout(() => this.#round(), this.#o.intervalMs);
  }

  #round(): void {
    this.#timer = null;
    if (this.#stopped) return;
    this.#upstreams.forEach((_, i) => {
      if (this.#probing[i]) return; // the last one is still trying: one probe in flight per upstream
      this.#probing[i] = true;
      this.#o.probe(i, () => (this.#probing[i] = false));
    });
    this.start();
  }

  /** Upstream `index` changed state (UpstreamHealth said so): counted always, logged at a bounded rate. */
  changed(index: number, up: boolean): void {
    const u = this.#upstreams[index]!;
    this.#o.events.upstreamHealth(u.name, up);
    const s = this.#logs[index]!;
    const now = this.#o.clock.now();
    if (now >= s.quietUntilMs) {
      this.#line(index, up);
      s.quietUntilMs = now + LOG_INTERVAL_MS;
      return;
    }
    s.unlogged++;
    if (s.timer === null && !this.#stopped) {
      s.timer = this.#o.clock.setTimeout(() => this.#summary(index), s.quietUntilMs - now);
    }
  }

  #line(index: number, up: boolean): void {
    const name = this.#upstreams[index]!.name;
    if (up) {
      this.#o.log.info({ upstream: name }, 'upstream answers again');
    } else {
      this.#o.log.warn(
        { upstream: name },
        'upstream marked down: none of its last questions were answered. Check that it is reachable and answering; ' +
          'it is probed until it answers again',
      );
    }
  }

  /** The end of a quiet minute with changes in it: one line with how many and the state now. */
  #summary(index: number): void {
    const s = this.#logs[index]!;
    s.timer = null;
    const changes = s.unlogged;
    s.unlogged = 0;
    const up = this.#upstreams[index]!.health.up;
    s.quietUntilMs = this.#o.clock.now() + LOG_INTERVAL_MS;
    this.#o.log.warn(
      { upstream: this.#upstreams[index]!.name, up, changes, withinMs: LOG_INTERVAL_MS },
      `upstream changed state ${changes} more times within a minute (not logged one by one); it is ` +
        `${up ? 'up' : 'down'} now. Check its load and the network path to it`,
    );
  }

  /** Stops the probes and the pending summary lines. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
    for (const s of this.#logs) {
      if (s.timer !== null) this.#o.clock.clearTimeout(s.timer);
      s.timer = null;
    }
  }
}
