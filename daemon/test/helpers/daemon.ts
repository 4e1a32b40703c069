/** Starts the daemon in-process on 127.0.0.1 port 0 against a TestUpstream, for DNS tests. */
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';

import type { Settings } from '../../dist/config/load.js';
import { settingsFrom } from '../../dist/config/load.js';
import type { CountingEvents } from '../../dist/dns/events.js';
import { createLogger } from '../../dist/util/log.js';
import { StaticListProvider } from '../../dist/lists/static.js';
import type { Clock } from '../../dist/util/clock.js';
import type { Matcher } from '../../dist/types/lists.js';
import { startDaemon, type Daemon } from '../../dist/daemon.js';
import { demoMatcher } from './lists.ts';
import { TestUpstream } from './upstream.ts';
import { HANG_MS } from '../../../test/helpers/within.ts';

/**
 * The access settings of the daemons tests start: as the defaults, but tracking 1,000 client prefixes for the
 * REFUSED rate limit instead of 100,000. Their clients are on loopback (one prefix), and the default's table is
 * allocated at start, ~18 ms of CPU for every daemon a test starts (hundreds in the suite).
 */
export const TEST_ACCESS = { rateLimitMaxPrefixes: 1000 } as const;

export interface TestDaemon {
  readonly daemon: Daemon;
  readonly port: number;
  readonly events: CountingEvents;
  readonly upstreams: TestUpstream[];
  readonly lists: StaticListProvider;
  readonly logs: Record<string, unknown>[];
  readonly settings: Settings;
  close(): Promise<void>;
}

/** Log lines collected as objects. */
export function captureLogs(): { stream: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { stream, lines };
}

export interface TestDaemonOptions {
  /** Config on top of the test defaults (listen, upstreams, short timeouts). */
  config?: Record<string, unknown>;
  /** Number of upstreams to start (default 1). */
  upstreams?: number;
  matchers?: readonly Matcher[];
  refuseAll?: boolean;
  level?: 'debug' | 'info' | 'warn' | 'error';
  /** The query path's clock (a ManualClock, for tests that move time instead of sleeping). */
  clock?: Clock;
}

export async function startTestDaemon(o: TestDaemonOptions = {}): Promise<TestDaemon> {
  const ups: TestUpstream[] = [];
  try {
    for (let i = 0; i < (o.upstreams ?? 1); i++) ups.push(await TestUpstream.start());
    return await startWith(ups, o);
  } catch (err) {
    // Nothing may stay open when a start fails: a leaked socket keeps the test process alive.
    for (const u of ups) u.close();
    throw err;
  }
}

async function startWith(ups: TestUpstream[], o: TestDaemonOptions): Promise<TestDaemon> {
  const c = o.config ?? {};
  const raw = {
    listen: ['127.0.0.1:0'],
    upstreams: ups.map((u) => u.address),
    ...c,
    upstream: {
      timeoutMs: 200,
      tcpTimeoutMs: 400,
      maxTries: 2,
      failureThreshold: 3,
      // Probes only when a test moves its clock an hour (or asks for them).
      probe: { intervalMs: 3_600_000 },
      ...(c.upstream as object),
    },
    shutdown: { drainTimeoutMs: 1000, ...(c.shutdown as object) },
    access: { ...TEST_ACCESS, ...(c.access as object) },
  };
  const settings = settingsFrom(raw, tmpdir());
  const logs = captureLogs();
  const logger = createLogger({ ...settings.config.logging, level: o.level ?? 'info' }, logs.stream);
  const lists = new StaticListProvider(o.matchers ?? [demoMatcher()], o.refuseAll ?? false);
  const daemon = await startDaemon(settings, { logger, lists, clock: o.clock });
  return {
    daemon,
    port: daemon.addresses.udp[0]!.port,
    events: daemon.events as CountingEvents,
    upstreams: ups,
    lists,
    logs: logs.lines,
    settings,
    async close() {
      await daemon.close();
      for (const u of ups) u.close();
    },
  };
}

/**
 * Resolves once `cond()` holds (checked every few ms): for waiting on something the daemon does in answer to a
 * socket event. Rejects after `timeoutMs`, naming `what`.
 */
export async function until(cond: () => boolean, what: string, timeoutMs = HANG_MS): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
