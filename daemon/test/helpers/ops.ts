/**
 * Helpers for the operations tests: an HTTP GET with a deadline, a Prometheus text parser, promtool, and an
 * in-process daemon wired to the real Metrics (as main.ts wires it) against a TestUpstream.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';

import { settingsFrom, type Settings } from '../../dist/config/load.js';
import { createLogger } from '../../dist/ops/log.js';
import { Metrics } from '../../dist/ops/metrics.js';
import { StaticListProvider, type Matcher } from '../../dist/policy/lists.js';
import { startDaemon, type Daemon } from '../../dist/server.js';
import { captureLogs } from './daemon.ts';
import { demoMatcher } from './lists.ts';
import { TestUpstream } from './upstream.ts';

export const PROMTOOL = '/usr/bin/promtool';
export const hasPromtool = existsSync(PROMTOOL);

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
  o: { config?: Record<string, unknown>; matchers?: readonly Matcher[]; metrics?: Metrics } = {},
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
          probeIntervalMs: 1000,
          ...(c.upstream as object),
        },
        shutdown: { drainTimeoutMs: 500 },
      },
      tmpdir(),
    );
    const logs = captureLogs();
    const logger = createLogger({ level: 'info' }, logs.stream);
    const metrics = o.metrics ?? new Metrics({ processMetrics: false });
    const lists = new StaticListProvider(o.matchers ?? [demoMatcher()]);
    const daemon = await startDaemon(settings, { logger, lists, events: metrics, policyEvents: metrics });
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
