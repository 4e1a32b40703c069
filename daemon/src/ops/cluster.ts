/**
 * Operations with several worker processes (workers > 1): each DNS worker keeps its own Metrics (its query path's
 * counts), hit counter and canary check (on its own list view, through its own query path); the primary keeps the
 * list sync, serves HTTP (/metrics, /readyz, /hit-report, the stop page) and asks the workers over the IPC channel:
 *
 *   worker:   const agent = new WorkerOpsAgent(settings, { logger, lists: follower });
 *             const daemon = await startDaemon(settings, { ..., events: agent.metrics, policyEvents: agent.metrics });
 *             agent.attach(daemon);                          // answers the primary; checks canaries on each swap
 *             SIGHUP: agent.reload(next)   stop: agent.close()
 *   primary:  const cluster = new ClusterOps(() => liveWorkers(), { lists: registry, settings });
 *             const ops = await Operations.start(settings, {
 *               logger, lists: registry, metrics: new Metrics({ ... }),
 *               metricsText: () => cluster.metricsText(ops.metrics), takeHits: () => cluster.takeHits(), canary: false,
 *             });
 *             ... await ops.attach(cluster.opsDaemon());     SIGHUP: cluster.reload(next)   stop: cluster.close()
 *
 * Metrics are merged with prom-client's aggregation (AggregatorRegistry.aggregate over every registry's JSON, the
 * primary's included): counters and most gauges summed, per-list gauges by maximum (or minimum for "in force" and
 * "canary ok": one failing worker shows), `hashwall_upstream_up` and `hashwall_ready` by minimum. A worker that
 * does not answer within the deadline is left out of that scrape (and logged at warn, once per scrape).
 *
 * Requests and replies are namespaced (`hashwall: 'ops-request' | 'ops-reply'`) so that other messages on the
 * channel pass by.
 */
import { AggregatorRegistry } from 'prom-client';

import type { Settings } from '../config/load.js';
import type { ListProvider } from '../types/lists.js';
import { Policy } from '../policy/verdict.js';
import { BLOCK, STEER } from '../types/decision.js';
import type { Daemon } from '../daemon.js';
import type { ProbeResult, UpstreamState } from '../types/ops.js';
import { CanaryMonitor } from './canary.js';
import { HitCounter, hitCountsFromJson, hitCountsToJson, mergeHitCounts, type HitCounts } from './hits.js';
import type { Logger } from '../util/log.js';
import { Metrics } from './metrics.js';
import type { OpsDaemon } from './runtime.js';

type What = 'metrics' | 'hits' | 'status';

interface OpsRequest {
  readonly hashwall: 'ops-request';
  readonly id: number;
  readonly what: What;
}

export interface WorkerStatus {
  readonly listening: boolean;
  readonly upstreams: readonly UpstreamState[];
  readonly cacheEntries?: number;
}

interface OpsReply {
  readonly hashwall: 'ops-reply';
  readonly id: number;
  readonly metrics?: unknown[];
  readonly hits?: unknown;
  readonly status?: WorkerStatus;
  readonly error?: string;
}

/** One end of an IPC channel: a cluster Worker or a ChildProcess in the primary, `process` in a worker. */
export interface OpsChannel {
  send(message: unknown): boolean;
  on(event: 'message', fn: (message: unknown) => void): unknown;
  off(event: 'message', fn: (message: unknown) => void): unknown;
}

function isRequest(m: unknown): m is OpsRequest {
  return typeof m === 'object' && m !== null && (m as { hashwall?: unknown }).hashwall === 'ops-request';
}

function isReply(m: unknown): m is OpsReply {
  return typeof m === 'object' && m !== null && (m as { hashwall?: unknown }).hashwall === 'ops-reply';
}

export interface WorkerOpsOptions {
  readonly logger: Logger;
  /** The worker's lists (a follower of the primary's list sync). */
  readonly lists: ListProvider;
  /** The channel to the primary (default: `process`). */
  readonly channel?: OpsChannel;
}

/** The operations side of one DNS worker. */
export class WorkerOpsAgent {
  /** Where the worker's query path reports (no build info: the primary exports it once). */
  readonly metrics: Metrics;
  #settings: Settings;
  #hits: HitCounter | null = null;
  #daemon: Daemon | null = null;
  readonly #canary: CanaryMonitor;
  readonly #channel: OpsChannel;
  readonly #onMessage = (m: unknown): void => this.#answer(m);

  constructor(settings: Settings, options: WorkerOpsOptions) {
    this.#settings = settings;
    this.metrics = new Metrics({ processMetrics: settings.config.metrics.processMetrics, buildInfo: false });
    this.#setHits(settings);
    this.#canary = new CanaryMonitor({
      lists: () => this.#settings.config.lists,
      view: () => options.lists.view(),
      probe: (name) => this.#daemon?.probe(name) ?? { rcode: -1, decision: null },
      report: (id, ok) => this.metrics.setCanary(id, ok),
      logger: options.logger,
    });
    options.lists.on('swap', () => {
      if (this.#daemon !== null) this.#canary.check();
    });
    const channel = options.channel ?? (process as unknown as OpsChannel);
    this.#channel = channel;
    channel.on('message', this.#onMessage);
  }

  #setHits(settings: Settings): void {
    const h = settings.config.hitReport;
    this.#hits = h.enabled ? new HitCounter(h.maxEntries) : null;
    this.metrics.hits = this.#hits;
  }

  attach(daemon: Daemon): void {
    this.#daemon = daemon;
    this.metrics.attachDaemon(daemon);
    this.#canary.check();
  }

  reload(settings: Settings): void {
    const changed = JSON.stringify(settings.config.hitReport) !== JSON.stringify(this.#settings.config.hitReport);
    this.#settings = settings;
    if (changed) this.#setHits(settings);
    if (this.#daemon !== null) this.#canary.check();
  }

  #answer(m: unknown): void {
    if (!isRequest(m)) return;
    const reply = (r: Omit<OpsReply, 'hashwall' | 'id'>): void => {
      try {
        this.#channel.send({ hashwall: 'ops-reply', id: m.id, ...r });
      } catch {
        // the primary is gone; it will not ask again
      }
    };
    switch (m.what) {
      case 'metrics':
        this.metrics.registry.getMetricsAsJSON().then(
          (metrics) => reply({ metrics }),
          (err: unknown) => reply({ error: (err as Error).message }),
        );
        return;
      case 'hits': {
        const counts = this.#hits?.take() ?? { lists: new Map(), uncounted: 0 };
        return reply({ hits: hitCountsToJson(counts) });
      }
      case 'status': {
        const d = this.#daemon;
        return reply({
          status: {
            listening: d !== null && d.addresses.udp.length > 0,
            upstreams: d?.upstreamHealth() ?? [],
            cacheEntries: d?.cacheSize() ?? 0,
          },
        });
      }
    }
  }

  close(): void {
    this.#channel.off('message', this.#onMessage);
  }
}

export interface ClusterOpsOptions {
  readonly logger: Logger;
  /** The primary's list sync (for the stop page's list lookup). */
  readonly lists: ListProvider;
  readonly settings: Settings;
  /** Deadline for the workers' replies (default 3000 ms: below Prometheus' default scrape timeout of 10 s). */
  readonly timeoutMs?: number;
  /** How often the workers' status is refreshed for /readyz (default 1000 ms). */
  readonly statusIntervalMs?: number;
}

/** The primary's view of its workers, for the Operations of main.ts. */
export class ClusterOps {
  readonly #workers: () => Iterable<OpsChannel>;
  readonly #o: ClusterOpsOptions;
  #policy: Policy;
  #nextId = 1;
  #status: WorkerStatus[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(workers: () => Iterable<OpsChannel>, options: ClusterOpsOptions) {
    this.#workers = workers;
    this.#o = options;
    this.#policy = policyFor(options.settings);
    this.#timer = setInterval(() => void this.refreshStatus(), options.statusIntervalMs ?? 1000);
    this.#timer.unref();
  }

  /** Asks every worker; resolves with the replies that came within the deadline. */
  async ask(what: What): Promise<OpsReply[]> {
    const channels = [...this.#workers()];
    const timeoutMs = this.#o.timeoutMs ?? 3000;
    const replies = await Promise.all(
      channels.map(
        (ch) =>
          new Promise<OpsReply | null>((resolve) => {
            const id = this.#nextId++;
            const done = (r: OpsReply | null): void => {
              clearTimeout(timer);
              ch.off('message', onMessage);
              resolve(r);
            };
            const onMessage = (m: unknown): void => {
              if (isReply(m) && m.id === id) done(m);
            };
            const timer = setTimeout(() => done(null), timeoutMs);
            ch.on('message', onMessage);
            try {
              if (!ch.send({ hashwall: 'ops-request', id, what } satisfies OpsRequest)) done(null);
            } catch {
              done(null);
            }
          }),
      ),
    );
    const missing = replies.filter((r) => r === null).length;
    if (missing > 0) {
      this.#o.logger.warn({ what, missing, workers: channels.length }, 'workers did not answer the primary in time');
    }
    return replies.filter((r): r is OpsReply => r !== null && r.error === undefined);
  }

  /** The merged exposition text: every worker's registry and the primary's. */
  async metricsText(primary: Metrics): Promise<string> {
    const replies = await this.ask('metrics');
    const all = [...replies.map((r) => r.metrics ?? []), await primary.registry.getMetricsAsJSON()];
    return AggregatorRegistry.aggregate(all).metrics();
  }

  /** Every worker's hits of the window that ends, merged. */
  async takeHits(): Promise<HitCounts> {
    let counts: HitCounts = { lists: new Map(), uncounted: 0 };
    for (const r of await this.ask('hits')) counts = mergeHitCounts(counts, hitCountsFromJson(r.hits));
    return counts;
  }

  async refreshStatus(): Promise<void> {
    this.#status = (await this.ask('status')).flatMap((r) => (r.status ? [r.status] : []));
  }

  /** The workers as one daemon: listening when every worker that answered is, an upstream up when any worker's is. */
  opsDaemon(): OpsDaemon {
    return {
      listening: () => this.#status.length > 0 && this.#status.every((s) => s.listening),
      upstreamHealth: () => {
        const by = new Map<string, boolean>();
        for (const s of this.#status) for (const u of s.upstreams) by.set(u.name, (by.get(u.name) ?? false) || u.up);
        return [...by].map(([name, up]) => ({ name, up }));
      },
      cacheEntries: () => (this.#status.length === 0 ? 0 : Math.min(...this.#status.map((s) => s.cacheEntries ?? 0))),
      probe: (name) => this.probe(name),
    };
  }

  /**
   * The stop page's question (which list blocks this host?) answered in the primary with the query path's policy
   * stage over the primary's lists (the workers follow the same lists).
   */
  probe(name: string): ProbeResult {
    const d = this.#policy.decideName(name.toLowerCase().replace(/\.$/, ''), this.#o.lists.view());
    return { rcode: -1, decision: d.action === BLOCK || d.action === STEER ? d : null };
  }

  reload(settings: Settings): void {
    this.#policy = policyFor(settings);
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

function policyFor(settings: Settings): Policy {
  const b = settings.config.blocking;
  return new Policy({ allowlist: b.allowlist, steer: b.partial === 'steer' });
}
