/**
 * Helpers for the operations tests: an HTTP GET with a deadline, a Prometheus text parser, promtool, and an
 * in-process daemon wired to the real Metrics (as main.ts wires it) against a TestUpstream.
 */
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { generateListKey, type ListKey } from '@hashwall/format';

import { settingsFrom, type Settings } from '../../dist/config/load.js';
import { createLogger } from '../../dist/util/log.js';
import { Metrics } from '../../dist/ops/metrics.js';
import { Operations } from '../../dist/ops/runtime.js';
import { StaticListProvider } from '../../dist/lists/static.js';
import type { Matcher } from '../../dist/types/lists.js';
import type { Clock as QueryClock } from '../../dist/util/clock.js';
import { startDaemon, type Daemon } from '../../dist/daemon.js';
import { TEST_ACCESS, captureLogs } from './daemon.ts';
import { demoMatcher } from './lists.ts';
import {
  Clock,
  LogSink,
  ReleaseDir,
  fullOf,
  harness,
  settingsWith,
  tempDir,
  within,
  type Harness,
} from '../lists/helpers.ts';
import { TestUpstream } from './upstream.ts';

export const PROMTOOL = 'promtool';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** GET (or another method) `url`, failing after `timeoutMs`. */
export function httpGet(
  url: string,
  o: { timeoutMs?: number; headers?: Record<string, string>; method?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers, timeout: o.timeoutMs ?? 3000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} took over ${o.timeoutMs ?? 3000} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** One sample of the exposition: `name{a="1",b="2"}` (labels sorted) -> value. */
export type Samples = Map<string, number>;

/** The sample key for `name` and `labels`, labels sorted by name. */
export function sampleKey(name: string, labels: Record<string, string> = {}): string {
  const l = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`)
    .join(',');
  return l === '' ? name : `${name}{${l}}`;
}

/** Parses the Prometheus text format (the subset prom-client writes). */
export function parseExposition(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!;
    out.set(sampleKey(m[1]!, labels), Number(m[3]));
  }
  return out;
}

/** Every sample of metric `name` (all label sets), as key -> value. */
export function samplesOf(samples: Samples, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of samples) if (k === name || k.startsWith(`${name}{`)) out[k] = v;
  return out;
}

/** Runs promtool with `args`, `stdin` piped in; resolves with its exit code and output. */
export function promtool(args: string[], stdin = ''): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(PROMTOOL, args, { timeout: 30000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
    child.stdin?.end(stdin);
  });
}

/** `promtool check metrics`, keeping only the problems it finds with our own (hashwall_) names. */
export async function promtoolProblemsOfOurs(text: string): Promise<string[]> {
  const { out } = await promtool(['check', 'metrics'], text);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('hashwall_') || /error/i.test(l));
}

export interface OpsDaemon {
  readonly daemon: Daemon;
  readonly port: number;
  readonly metrics: Metrics;
  readonly upstream: TestUpstream;
  readonly lists: StaticListProvider;
  readonly settings: Settings;
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** The daemon on 127.0.0.1 port 0, its QueryEvents and PolicyEvents going to a real Metrics, as main.ts wires it. */
export async function startOpsDaemon(
  o: { config?: Record<string, unknown>; matchers?: readonly Matcher[]; metrics?: Metrics; clock?: QueryClock } = {},
): Promise<OpsDaemon> {
  const upstream = await TestUpstream.start();
  try {
    const c = o.config ?? {};
    const settings = settingsFrom(
      {
        listen: ['127.0.0.1:0'],
        upstreams: [upstream.address],
        ...c,
        upstream: {
          timeoutMs: 200,
          maxTries: 2,
          failureThreshold: 3,
          // Probes only when a test moves its clock an hour (or asks for them).
          probe: { intervalMs: 3_600_000 },
          ...(c.upstream as object),
        },
        shutdown: { drainTimeoutMs: 500 },
        access: { ...TEST_ACCESS, ...(c.access as object) },
      },
      tmpdir(),
    );
    const logs = captureLogs();
    const logger = createLogger({ level: 'info' }, logs.stream);
    const metrics = o.metrics ?? new Metrics({ processMetrics: false });
    const lists = new StaticListProvider(o.matchers ?? [demoMatcher()]);
    const daemon = await startDaemon(settings, {
      logger,
      lists,
      events: metrics,
      policyEvents: metrics,
      clock: o.clock,
    });
    metrics.attachDaemon(daemon);
    return {
      daemon,
      port: daemon.addresses.udp[0]!.port,
      metrics,
      upstream,
      lists,
      settings,
      logs: logs.lines,
      async close() {
        await daemon.close();
        upstream.close();
      },
    };
  } catch (err) {
    upstream.close();
    throw err;
  }
}

export interface Stack {
  readonly ops: Operations;
  readonly daemon: Daemon;
  readonly h: Harness;
  readonly rel: ReleaseDir;
  readonly listKey: ListKey;
  readonly upstream: TestUpstream;
  readonly clock: Clock;
  readonly settings: Settings;
  /** Settings as `settings` but with `top` (for a reload). */
  settingsWith(top: Record<string, unknown>): Settings;
  /** The daemon's UDP/TCP port. */
  readonly port: number;
  /** http://127.0.0.1:PORT of the metrics listener. */
  readonly metricsBase: string;
  readonly log: LogSink;
}

/**
 * Everything main.ts starts, in-process: a list `demo` published to a file:// mirror with `names` (serial 1) and
 * in force, a real list sync, the daemon on 127.0.0.1 port 0 against a TestUpstream, and the Operations (metrics on
 * 127.0.0.1 port 0). `top` and `list` are config on top of the test defaults. Stopped at teardown.
 */
export async function startStack(
  t: { teardown(fn: () => unknown): void },
  o: {
    names: readonly string[];
    top?: Record<string, unknown>;
    list?: Record<string, unknown>;
    publish?: boolean;
    /** The hit report's calendar clock (a ManualClock started at an epoch time). */
    wallClock?: QueryClock;
  },
): Promise<Stack> {
  const root = tempDir(t, 'hw-ops-');
  const listKey = generateListKey('demo-2026a');
  const rel = new ReleaseDir(join(root, 'release'));
  const upstream = await TestUpstream.start();
  t.teardown(() => upstream.close());
  const make = (top: Record<string, unknown>): Settings =>
    settingsWith(join(root, 'state'), [{ mirrors: [rel.url], keys: [rel.key], listKey, ...o.list }], {
      listen: ['127.0.0.1:0'],
      upstreams: [upstream.address],
      upstream: { timeoutMs: 200, maxTries: 1 },
      shutdown: { drainTimeoutMs: 200 },
      access: TEST_ACCESS,
      ...top,
      metrics: { listen: '127.0.0.1:0', processMetrics: false, ...(top.metrics as object) },
    });
  const settings = make(o.top ?? {});
  const clock = new Clock();
  const h = harness(t, settings, clock);
  const log = new LogSink();
  const logger = createLogger({ level: 'debug' }, log);
  const ops = await Operations.start(settings, {
    logger,
    lists: h.registry,
    ...(o.wallClock ? { wallClock: o.wallClock } : {}),
  });
  t.teardown(() => ops.close());
  if (o.publish !== false) rel.publish(fullOf(listKey, 1, o.names));
  await within(h.registry.start());
  if (o.publish !== false && (await within(h.registry.pollNow('demo'))) !== 'updated') {
    throw new Error('setup: serial 1 not in force');
  }
  ops.listsStarted();
  const daemon = await startDaemon(settings, {
    logger,
    lists: h.registry,
    events: ops.metrics,
    policyEvents: ops.metrics,
  });
  t.teardown(() => within(daemon.close(), 'daemon close'));
  await ops.attach(daemon);
  return {
    ops,
    daemon,
    h,
    rel,
    listKey,
    upstream,
    clock,
    settings,
    settingsWith: make,
    port: daemon.addresses.udp[0]!.port,
    metricsBase: `http://127.0.0.1:${ops.metricsAddress!.port}`,
    log,
  };
}
