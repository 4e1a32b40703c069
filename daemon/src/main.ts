#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * hashwalld: read the config, build the parts, start, handle signals. No logic lives here.
 *
 *   hashwalld --config /etc/hashwall/hashwalld.yaml      run
 *   hashwalld --config FILE --check                      validate the config and exit (0 valid, 2 invalid)
 *
 * SIGHUP reloads the config and the lists without dropping a query (listeners stay open, new ones open before old
 * ones close); an invalid new config is logged and the running one kept. SIGTERM or SIGINT stop accepting, drain
 * queries in flight (at most shutdown.drainTimeoutMs), stop the list sync, and exit 0.
 *
 * Three roles: one process (workers: 1); with workers > 1 the primary (list sync, operations, no DNS) and its DNS
 * workers (cluster/primary.ts says how they share the port and the lists).
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';

import { ConfigError, effectiveConfig, loadSettings, type Settings } from './config/load.js';
import { checkStateDir } from './config/state-dir.js';
import { FollowerLists } from './cluster/follower.js';
import { announceReady, startWorkers, workerCount, workerName, type WorkerSet } from './cluster/primary.js';
import { createListRegistry } from './lists/registry.js';
import { ClusterOps, WorkerOpsAgent } from './ops/cluster.js';
import { createLogger, type Logger } from './util/log.js';
import { Metrics } from './ops/metrics.js';
import { Operations } from './ops/runtime.js';
import { startDaemon } from './daemon.js';

const DEFAULT_CONFIG = '/etc/hashwall/hashwalld.yaml';

function usage(): never {
  process.stderr.write(`usage: hashwalld [--config FILE] [--check]\n  default config: ${DEFAULT_CONFIG}\n`);
  process.exit(2);
}

/** The settings, or exit 2 with the problems. `check`: --check (a state directory it had to create is removed). */
function load(path: string, check: boolean): Settings {
  try {
    const settings = loadSettings(path);
    // The primary (or the single process) owns the state directory; a DNS worker only reads it.
    if (!cluster.isWorker) checkStateDir(settings, { keep: !check });
    return settings;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hashwalld: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

function exit(logger: Logger, code: number): void {
  logger.flush(() => process.exit(code));
  // If flushing hangs, leave anyway.
  setTimeout(() => process.exit(code), 2000).unref();
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: { config: { type: 'string', short: 'c' }, check: { type: 'boolean' }, help: { type: 'boolean' } },
      strict: true,
    }).values;
  } catch {
    usage();
  }
  if (args.help) usage();
  const configPath = args.config ?? DEFAULT_CONFIG;
  const settings = load(configPath, args.check === true);
  if (args.check) {
    process.stdout.write(`${settings.source}: valid\n`);
    return;
  }

  const logger = createLogger(settings.config.logging);
  if (cluster.isWorker) return runWorker(configPath, settings, logger);
  logger.info({ config: effectiveConfig(settings), source: settings.source, pid: process.pid }, 'hashwalld starting');
  if (workerCount(settings.config) > 1) return runPrimary(configPath, settings, logger);
  return runSingle(configPath, settings, logger);
}

/** What a running process does on SIGHUP (with the new, valid settings) and on SIGTERM/SIGINT. */
interface Lifecycle {
  reload(next: Settings): Promise<void>;
  stop(signal: string): Promise<void>;
}

/** One signal at a time: a reload never overlaps another reload or the shutdown. */
function handleSignals(configPath: string, logger: Logger, life: Lifecycle): (signal: string) => void {
  let queue: Promise<void> = Promise.resolve();
  let stopping = false;

  process.on('SIGHUP', () => {
    if (stopping) return;
    queue = queue.then(async () => {
      let next: Settings;
      try {
        next = loadSettings(configPath);
      } catch (err) {
        logger.error(
          { problems: err instanceof ConfigError ? err.problems : [(err as Error).message] },
          'reload refused: the new configuration is invalid; the running one stays in force',
        );
        return;
      }
      try {
        logger.level = next.config.logging.level;
        logger.info({ config: effectiveConfig(next), source: next.source }, 'reloading');
        await life.reload(next);
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'reload failed; the running configuration stays in force');
      }
    });
  });

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    queue = queue.then(async () => {
      await life.stop(signal);
      logger.info('stopped');
      exit(logger, 0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return stop;
}

/** workers: 1: lists, operations and the query path in this process. */
async function runSingle(configPath: string, settings: Settings, logger: Logger): Promise<void> {
  const lists = createListRegistry(settings, { logger });
  // Metrics and health first, so that /healthz answers (and /readyz says why not) while the lists load.
  const ops = await Operations.start(settings, { logger, lists });
  await lists.start();
  ops.listsStarted();
  const daemon = await startDaemon(settings, { logger, lists, events: ops.metrics, policyEvents: ops.metrics });
  await ops.attach(daemon);
  handleSignals(configPath, logger, {
    async reload(next) {
      await lists.reload(next);
      await daemon.reload(next);
      await ops.reload(next);
    },
    async stop(signal) {
      logger.info({ signal, inFlight: daemon.inFlight() }, 'stopping: draining queries in flight');
      ops.stopping();
      await daemon.close();
      await lists.close();
      await ops.close();
    },
  });
}

/**
 * workers > 1, the primary (cluster/primary.ts): the list sync, the operations (HTTP, metrics gathered from the
 * workers) and the DNS workers; no DNS of its own.
 */
async function runPrimary(configPath: string, settings: Settings, logger: Logger): Promise<void> {
  const lists = createListRegistry(settings, { logger });
  let workers: WorkerSet | null = null;
  const clusterOps = new ClusterOps(() => workers?.channels() ?? [], { logger, lists, settings });
  const ops: Operations = await Operations.start(settings, {
    logger,
    lists,
    metrics: new Metrics({ processMetrics: settings.config.metrics.processMetrics }),
    metricsText: () => clusterOps.metricsText(ops.metrics),
    takeHits: () => clusterOps.takeHits(),
    // Each worker checks the canaries through its own query path (ops/cluster.ts); the primary has none.
    canary: false,
  });
  ops.metrics.attachWorkers(() => workers?.restarts ?? 0);
  await lists.start();
  ops.listsStarted();
  workers = await startWorkers(settings, { logger, lists });
  await ops.attach(clusterOps.opsDaemon());
  const set = workers;
  handleSignals(configPath, logger, {
    async reload(next) {
      await lists.reload(next);
      await set.reload(next);
      clusterOps.reload(next);
      await ops.reload(next);
    },
    async stop(signal) {
      logger.info({ signal, workers: set.pids() }, 'stopping: the workers drain their queries in flight');
      ops.stopping();
      await set.close();
      await lists.close();
      clusterOps.close();
      await ops.close();
    },
  });
}

/** workers > 1, one DNS worker: the query path over lists read from the primary's state directory. */
async function runWorker(configPath: string, settings: Settings, logger: Logger): Promise<void> {
  const lists = new FollowerLists(settings, { logger });
  const agent = new WorkerOpsAgent(settings, { logger, lists, process: workerName() ?? undefined });
  await lists.start();
  const daemon = await startDaemon(settings, { logger, lists, events: agent.metrics, policyEvents: agent.metrics });
  agent.attach(daemon);
  announceReady(daemon.addresses);
  const stop = handleSignals(configPath, logger, {
    async reload(next) {
      await lists.reload(next);
      await daemon.reload(next);
      agent.reload(next);
    },
    async stop(signal) {
      logger.info({ signal, inFlight: daemon.inFlight() }, 'worker stopping: draining queries in flight');
      await daemon.close();
      await lists.close();
      agent.close();
    },
  });
  // The primary is gone (killed): a worker never outlives it.
  process.on('disconnect', () => stop('disconnect'));
}

main().catch((err: unknown) => {
  process.stderr.write(`hashwalld: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
