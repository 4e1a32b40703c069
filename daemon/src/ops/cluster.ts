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
 * "canary ok": one failing worker shows), `hashwall_upstream_up` and `hashwall_ready` by minimum.
 *
 * - Sums never go backwards (Prometheus would read a drop as a counter reset and count everything again): the
 *   primary keeps each worker's last reply; a worker that does not answer within the deadline is counted with that
 *   reply (and logged at warn, once per scrape), and when a worker is gone (it died, another took its slot) the
 *   counters and histograms of its last reply are kept, added to every later scrape.
 * - The process metrics (every name not `hashwall_`: prom-client's `process_*` and `nodejs_*`) are not summed: a sum
 *   of open file descriptors or of start times means nothing. Each process's are exported with a `process` label:
 *   `primary`, `worker-0` .. `worker-<N-1>` (a restarted worker takes its slot, so the label set stays bounded).
 *   A dead worker's process series go with it; its replacement's `process_start_time_seconds` shows the restart.
 *
 * Requests and replies are namespaced (`hashwall: 'ops-request' | 'ops-reply'`) so that other messages on the
 * channel pass by.
 */
import { AggregatorRegistry, type Aggregator, type Registry } from 'prom-client';

import type { Settings } from '../config/load.js';
import type { ListProvider } from '../types/lists.js';
import { Policy } from '../policy/verdict.js';
import { BLOCK, STEER } from '../types/decision.js';
import type { Daemon } from '../daemon.js';
import type { ProbeResult, UpstreamState } from '../types/ops.js';
import { CanaryMonitor } from './canary.js';
import { HitCounter, hitCountsFromJson, hitCountsToJson, mergeHitCounts, type HitCounts } from './hits.js';
import type { Logger } from '../util/log.js';
import { Metrics, processMetricsWanted } from './metrics.js';
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

/** One registry's metrics as getMetricsAsJSON() gives them (what crosses the IPC channel). */
export type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

/**
 * `metrics` with the process metrics (every name not `hashwall_`) labelled `process="<name>"` and aggregated as a
 * sum, which leaves them apart: no two processes share a label set. (prom-client omits `process_start_time_seconds`
 * from an aggregation and averages or sums the rest.)
 */
export function labelProcessMetrics(metrics: readonly MetricJson[], name: string): MetricJson[] {
  return metrics.map((m) =>
    m.name.startsWith('hashwall_')
      ? m
      : {
          ...m,
          aggregator: 'sum' as Aggregator,
          values: m.values.map((v) => ({ ...v, labels: { ...v.labels, process: name } })),
        },
  );
}

/** What of a dead worker's metrics still counts: its hashwall_ counters and histograms. */
function monotonic(metrics: readonly MetricJson[]): MetricJson[] {
  return metrics.filter(
    (m) => m.name.startsWith('hashwall_') && (String(m.type) === 'counter' || String(m.type) === 'histogram'),
  );
}

export interface WorkerOpsOptions {
  readonly logger: Logger;
  /** The worker's lists (a follower of the primary's list sync). */
  readonly lists: ListProvider;
  /** The channel to the primary (default: `process`). */
  readonly channel?: OpsChannel;
  /** The `process` label of this worker's process metrics (`worker-<slot>`). */
  readonly process?: string;
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
  readonly #process: string;
  readonly #onMessage = (m: unknown): void => this.#answer(m);

  constructor(settings: Settings, options: WorkerOpsOptions) {
    this.#settings = settings;
    this.#process = options.process ?? 'worker';
    this.metrics = new Metrics({ processMetrics: processMetricsWanted(settings.config.metrics), buildInfo: false });
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
    this.metrics.followConfig(settings.config.metrics);
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
          (metrics) => reply({ metrics: labelProcessMetrics(metrics, this.#process) }),
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
  /** Each live worker's last metrics reply. */
  readonly #last = new Map<OpsChannel, MetricJson[]>();
  /** The counters and histograms of the workers that are gone, summed. */
  #retired: MetricJson[] = [];

  constructor(workers: () => Iterable<OpsChannel>, options: ClusterOpsOptions) {
    this.#workers = workers;
    this.#o = options;
    this.#policy = policyFor(options.settings);
    this.#timer = setInterval(() => void this.refreshStatus(), options.statusIntervalMs ?? 1000);
    this.#timer.unref();
  }

  /** Asks every worker; resolves with the replies that came within the deadline. */
  async ask(what: What): Promise<OpsReply[]> {
    const replies = await this.#askEach(what);
    return [...replies.values()].filter((r): r is OpsReply => r !== null);
  }

  /** Asks every worker; each channel's reply, or null when it did not answer in time (or answered an error). */
  async #askEach(what: What): Promise<Map<OpsChannel, OpsReply | null>> {
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
    return new Map(
      channels.map((ch, i) => [ch, replies[i] !== null && replies[i]?.error === undefined ? replies[i]! : null]),
    );
  }

  /**
   * The merged exposition text: every worker's registry (its last reply if it did not answer in time), what the
   * workers that are gone counted, and the primary's (its process metrics labelled `process="primary"`).
   */
  async metricsText(primary: Metrics): Promise<string> {
    const replies = await this.#askEach('metrics');
    for (const [ch, r] of replies) if (r?.metrics !== undefined) this.#last.set(ch, r.metrics as MetricJson[]);
    const gone = [...this.#last.keys()].filter((ch) => !replies.has(ch));
    if (gone.length > 0) {
      const dead = gone.map((ch) => monotonic(this.#last.get(ch)!));
      for (const ch of gone) this.#last.delete(ch);
      this.#retired = await AggregatorRegistry.aggregate([this.#retired, ...dead]).getMetricsAsJSON();
    }
    const own = labelProcessMetrics(await primary.registry.getMetricsAsJSON(), 'primary');
    return AggregatorRegistry.aggregate([...this.#last.values(), this.#retired, own]).metrics();
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
