/**
 * Operations, put together for main.ts: the metrics and health listener, the hit report, the canary check and the
 * stop page, with their life cycle around the daemon's:
 *
 *   const ops = await Operations.start(settings, { logger, lists });   // /healthz answers while lists load
 *   await lists.start(); ops.listsStarted();
 *   const daemon = await startDaemon(settings, { logger, lists, events: ops.metrics, policyEvents: ops.metrics });
 *   await ops.attach(daemon);                                          // canary, stop page, readiness
 *   SIGHUP:  await ops.reload(next)          SIGTERM: ops.stopping(); ...; await ops.close()
 *
 * Several worker processes (ops/cluster.ts): the primary, which serves HTTP, passes `metricsText` and `takeHits`
 * that gather from the workers, attaches ClusterOps.opsDaemon() instead of a Daemon, and leaves the canaries to
 * the workers (`canary: false`).
 */
import { join } from 'node:path';

import type { Settings } from '../config/load.js';
import { readTemplate } from '../config/stop-page-template.js';
import type { Config } from '../config/schema.js';
import type { ListStats } from '../lists/types.js';
import type { ListView } from '../types/lists.js';
import type { Daemon } from '../daemon.js';
import { BLOCK } from '../types/decision.js';
import type { ProbeResult, UpstreamState } from '../types/ops.js';
import { CanaryMonitor } from './canary.js';
import { readiness, type Readiness } from './health.js';
import { HitCounter, HitReporter, type HitCounts, type HitReport } from './hits.js';
import { OpsServer, type OpsRoutes } from './http.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { Metrics, processMetricsWanted, type ReloadOutcome } from './metrics.js';
import { DEFAULT_STOP_PAGE_TEMPLATE, StopPage, type StopPageOptions } from './stop-page.js';

/** What the operations read from the list registry (ListRegistry has all of it). */
export interface OpsLists {
  stats(): ListStats[];
  view(): ListView;
  on(event: 'swap', fn: (v: ListView) => void): unknown;
}

/** The query side as the operations see it: one Daemon, or every worker's (ops/cluster.ts). */
export interface OpsDaemon {
  /** DNS listeners open. */
  listening(): boolean;
  upstreamHealth(): readonly UpstreamState[];
  /** Answers in the packet cache (with several workers, the fewest any of them holds). */
  cacheEntries(): number;
  probe(name: string): ProbeResult;
}

export interface OperationsOptions {
  readonly logger: Logger;
  readonly lists: OpsLists;
  /** The metrics the query path reports to (one is made when absent). */
  readonly metrics?: Metrics;
  /** Overrides for several worker processes: the merged exposition text, and every worker's hits. */
  readonly metricsText?: () => Promise<string>;
  readonly takeHits?: () => Promise<HitCounts>;
  /** Check the canaries here (default); false in a primary whose workers check them (ops/cluster.ts). */
  readonly canary?: boolean;
  /** The hit report's calendar clock and window timer (tests pass a ManualClock); the system's by default. */
  readonly wallClock?: Clock;
}

/** In the state directory: the counts of the hit report window in progress, kept at shutdown for the next start. */
export const HIT_CARRY_FILE = 'hit-report-window.json';

/** The Daemon as OpsDaemon. */
export function opsDaemon(daemon: Daemon): OpsDaemon {
  return {
    listening: () => daemon.addresses.udp.length > 0,
    upstreamHealth: () => daemon.upstreamHealth(),
    cacheEntries: () => daemon.cacheSize(),
    probe: (name) => daemon.probe(name),
  };
}

export class Operations {
  readonly metrics: Metrics;
  readonly #o: OperationsOptions;
  readonly #log: Logger;
  #config: Config;
  #server: OpsServer | null = null;
  #stopPage: StopPage | null = null;
  #hits: HitCounter | null = null;
  #reporter: HitReporter | null = null;
  #daemon: OpsDaemon | null = null;
  readonly #canary: CanaryMonitor;
  #starting = true;
  #stopping = false;

  private constructor(settings: Settings, options: OperationsOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.#config = settings.config;
    this.metrics = options.metrics ?? new Metrics({ processMetrics: processMetricsWanted(settings.config.metrics) });
    this.metrics.attachLists(options.lists);
    this.metrics.attachReadiness(() => this.readiness().ready);
    this.#canary = new CanaryMonitor({
      lists: () => this.#config.lists,
      view: () => options.lists.view(),
      probe: (name) => {
        if (this.#daemon === null) return { rcode: -1, decision: null };
        return this.#daemon.probe(name);
      },
      report: (id, ok) => this.metrics.setCanary(id, ok),
      logger: options.logger,
    });
    options.lists.on('swap', () => this.#checkCanaries());
  }

  /** Opens the metrics listener (so /healthz answers while the lists load) and starts the hit report. */
  static async start(settings: Settings, options: OperationsOptions): Promise<Operations> {
    const ops = new Operations(settings, options);
    const c = settings.config;
    if (c.metrics.listen !== '') {
      ops.#server = await OpsServer.start(c.metrics.listen, ops.#routes(c));
      const a = ops.#server.address;
      const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
      options.logger.info({ address }, 'serving /metrics, /healthz and /readyz');
    }
    await ops.#startHits(c);
    return ops;
  }

  /** The bound metrics address (port 0 in tests), or null. */
  get metricsAddress(): { address: string; port: number } | null {
    return this.#server?.address ?? null;
  }

  /** The bound stop page addresses. */
  get stopPageAddresses(): readonly { address: string; port: number }[] {
    return this.#stopPage?.addresses ?? [];
  }

  /** The hit report kept for the endpoint (the last window), if any. */
  get hitReport(): HitReport | null {
    return this.#reporter?.latest ?? null;
  }

  /** Resolves once the hit reports being written are written (tests). */
  async hitReportIdle(): Promise<void> {
    await this.#reporter?.idle();
  }

  #routes(c: Config): OpsRoutes {
    const text = this.#o.metricsText ?? (() => this.metrics.text());
    return {
      metrics: text,
      readiness: () => this.readiness(),
      ...(c.hitReport.enabled && c.hitReport.endpoint ? { hitReport: () => this.#reporter?.latest ?? null } : {}),
    };
  }

  async #startHits(c: Config): Promise<void> {
    const h = c.hitReport;
    if (!h.enabled) {
      this.metrics.hits = null;
      return;
    }
    this.#hits = new HitCounter(h.maxEntries);
    this.metrics.hits = this.#hits;
    const counter = this.#hits;
    this.#reporter = new HitReporter({
      intervalSeconds: h.intervalSeconds,
      minCount: h.minCount,
      directory: h.directory,
      keepWindows: h.keepWindows,
      carryFile: join(c.stateDir, HIT_CARRY_FILE),
      ...(this.#o.wallClock !== undefined ? { clock: this.#o.wallClock } : {}),
      take: this.#o.takeHits ?? (() => counter.take()),
      lists: () => this.#o.lists.stats().map((s) => ({ id: s.id, serial: s.enforced ? s.serial : null })),
      logger: this.#log,
    });
    await this.#reporter.start();
  }

  /** lists.start() has returned: the start policy is met from now on. */
  listsStarted(): void {
    this.#starting = false;
  }

  /** The daemon is up: readiness, the canary check and the stop page start using it. */
  async attach(daemon: Daemon | OpsDaemon): Promise<void> {
    this.#daemon = 'reload' in daemon ? opsDaemon(daemon) : daemon;
    if ('reload' in daemon) this.metrics.attachDaemon(daemon);
    this.#checkCanaries();
    await this.#startStopPage(this.#config);
  }

  #stopPageOptions(c: Config): StopPageOptions {
    const sp = c.stopPage;
    return {
      listen: sp.listen,
      template: sp.templateFile === '' ? DEFAULT_STOP_PAGE_TEMPLATE : readTemplate(sp.templateFile),
      language: sp.language,
      operator: sp.operator,
      contact: sp.contact,
      appeal: sp.appeal,
      lists: c.lists.map((l) => ({ id: l.id, name: sp.listNames[l.id] ?? l.id })),
      lookup: (host) => {
        // A block only: a steered host (P entries) is not a blocked one.
        const d = this.#daemon?.probe(host).decision;
        return d?.action === BLOCK ? d.listId : null;
      },
      served: (list) => this.metrics.stopPageServed(list),
    };
  }

  async #startStopPage(c: Config): Promise<void> {
    if (c.stopPage.listen.length === 0) return;
    this.#stopPage = await StopPage.start(this.#stopPageOptions(c));
    this.#log.info({ addresses: c.stopPage.listen }, 'serving the stop page');
  }

  /**
   * What a configuration reload came to, for `hashwall_config_reloads_total`: the signal handler calls it once per
   * SIGHUP, with `invalid` when the new file is refused, `failed` when applying it threw, else `applied`.
   */
  reloadOutcome(outcome: ReloadOutcome): void {
    this.metrics.reloadOutcome(outcome);
  }

  /** The daemon is stopping: /readyz says so from now on. */
  stopping(): void {
    this.#stopping = true;
  }

  readiness(): Readiness {
    const view = this.#o.lists.view();
    const d = this.#daemon;
    return readiness({
      listening: d?.listening() ?? false,
      stopping: this.#stopping,
      starting: this.#starting,
      lists: this.#o.lists.stats(),
      refuseAll: view.refuseAll,
      upstreams: d?.upstreamHealth() ?? [],
      staleServable: this.#config.cache.serveStale && (d?.cacheEntries() ?? 0) > 0,
      requireLists: this.#config.readiness.requireLists,
    });
  }

  /**
   * Applies new settings (SIGHUP), after the lists and the daemon reloaded. What can fail (a template file, a new
   * listener address) is done first, so that a failure (thrown) leaves the running operations as they were; a
   * listener that moves opens at its new address before the old one closes.
   */
  async reload(settings: Settings): Promise<void> {
    const old = this.#config;
    const c = settings.config;
    const pageOptions = this.#stopPageOptions(c);
    let server = this.#server;
    if (c.metrics.listen !== old.metrics.listen) {
      server = c.metrics.listen === '' ? null : await OpsServer.start(c.metrics.listen, this.#routes(c));
    }
    let page = this.#stopPage;
    const pageMoved = JSON.stringify(c.stopPage.listen) !== JSON.stringify(old.stopPage.listen);
    if (pageMoved && this.#daemon !== null) {
      try {
        page = c.stopPage.listen.length === 0 ? null : await StopPage.start(pageOptions);
      } catch (err) {
        if (server !== this.#server) await server?.close();
        throw err;
      }
    }
    this.#config = c;
    this.metrics.followConfig(c.metrics);
    if (server !== this.#server) {
      await this.#server?.close();
      this.#server = server;
    }
    if (page !== this.#stopPage) {
      await this.#stopPage?.close();
      this.#stopPage = page;
      if (page !== null) this.#log.info({ addresses: c.stopPage.listen }, 'serving the stop page');
    } else {
      page?.update(pageOptions);
    }
    if (JSON.stringify(c.hitReport) !== JSON.stringify(old.hitReport)) {
      await this.#reporter?.stop();
      this.#reporter = null;
      this.#hits = null;
      await this.#startHits(c);
    }
    if (this.#server !== null) this.#server.routes = this.#routes(c);
    this.#checkCanaries();
  }

  #checkCanaries(): void {
    if (this.#daemon !== null && this.#o.canary !== false) this.#canary.check();
  }

  /** Checks every canary now (for tests); [] when canaries are not checked in this process. */
  checkCanaries(): ReturnType<CanaryMonitor['check']> {
    return this.#daemon !== null && this.#o.canary !== false ? this.#canary.check() : [];
  }

  /** Writes the partial hit report window and closes the listeners. */
  async close(): Promise<void> {
    await this.#reporter?.stop();
    await Promise.all([this.#server?.close(), this.#stopPage?.close()]);
    this.#server = null;
    this.#stopPage = null;
  }
}
