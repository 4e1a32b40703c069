#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=2 --no-parallel-scavenge --no-parallel-marking --no-concurrent-marking --no-parallel-compaction --no-parallel-pointer-update --no-cppheap-concurrent-marking --no-allocation-site-pretenuring
/**
 * hashwalld: read the config, build the parts, start, handle signals. No logic lives here.
 *
 *   hashwalld --config /etc/hashwall/hashwalld.yaml      run
 *   hashwalld --config FILE --check                      validate the config and exit (0 valid, 2 invalid)
 *   hashwalld release-held --list ID --serial N --reason TEXT   release a held list (ops/release.ts)
 *
 * SIGHUP reloads the config and the lists without dropping a query (listeners stay open, new ones open before old
 * ones close); an invalid new config is logged and the running one kept. SIGUSR1 polls every list at once
 * (SPEC.md 4.6; with workers, the primary does). SIGTERM or SIGINT stop accepting, drain queries in flight (at most
 * shutdown.drainTimeoutMs), stop the list sync, and exit 0.
 *
 * Three roles: one process (workers: 1); with workers > 1 the primary (list sync, operations, no DNS) and its DNS
 * workers (cluster/primary.ts says how they share the port and the lists).
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';

import { ConfigError, effectiveConfig, loadSettings, type Settings } from './config/load.js';
import { checkStateDir } from './config/state-dir.js';
import { FollowerLists } from './cluster/follower.js';
import {
  WorkerStartError,
  announceReady,
  startWorkers,
  workerCount,
  workerName,
  type WorkerSet,
} from './cluster/primary.js';
import { createListRegistry } from './lists/registry.js';
import { ClusterOps, WorkerOpsAgent } from './ops/cluster.js';
import { createLogger, type Logger } from './util/log.js';
import { Metrics, processMetricsWanted } from './ops/metrics.js';
import { Operations } from './ops/runtime.js';
import { releaseHeld } from './ops/release.js';
import { startDaemon } from './daemon.js';
import { ServiceNotifier, servingStatus } from './ops/systemd.js';
import { ListenError } from './util/net.js';
import { tuneRuntime } from './util/runtime.js';

const DEFAULT_CONFIG = '/etc/hashwall/hashwalld.yaml';
/**
 * The exit status of a start that the operator must fix (an invalid config, an address that cannot be listened on):
 * the systemd unit's RestartPreventExitStatus, so such a start is not retried in a loop.
 */
const CONFIG_ERROR_STATUS = 2;

/** The logger of this process once the config is read; before that, one at the default level. */
let log: Logger | null = null;

function usage(): never {
  process.stderr.write(
    `usage: hashwalld [--config FILE] [--check]\n       hashwalld release-held [--config FILE] --list ID --serial N --reason TEXT\n  default config: ${DEFAULT_CONFIG}\n`,
  );
  process.exit(CONFIG_ERROR_STATUS);
}

function exit(logger: Logger, code: number): void {
  logger.flush(() => process.exit(code));
  // If flushing hangs, leave anyway.
  setTimeout(() => process.exit(code), 2000).unref();
}

/** SIGUSR1's target: every list polled now (SPEC.md 4.6); nothing until the list sync runs, nothing in a worker. */
let pollNow: (() => void) | undefined;

/**
 * A start that failed: logged as one JSON line that names the key and the reason (never a bare stack trace), and
 * the exit status: 2 when the operator must change the config or the host, 1 for anything else.
 */
function startFailed(err: unknown): void {
  const logger = (log ??= createLogger({ level: 'info' }));
  if (err instanceof ConfigError) {
    logger.error(
      { code: err.code, source: err.source, problems: err.problems },
      'invalid configuration: hashwalld does not start; fix these keys (hashwalld --check validates a file)',
    );
    exit(logger, CONFIG_ERROR_STATUS);
  } else if (err instanceof ListenError) {
    logger.error(
      { code: err.code, key: err.key, address: err.address },
      `cannot listen: ${err.message}; hashwalld does not start`,
    );
    exit(logger, CONFIG_ERROR_STATUS);
  } else if (err instanceof WorkerStartError) {
    logger.error({ code: err.code, status: err.exitCode }, err.message);
    exit(logger, err.exitCode === CONFIG_ERROR_STATUS ? CONFIG_ERROR_STATUS : 1);
  } else {
    logger.fatal({ err }, 'hashwalld failed to start');
    exit(logger, 1);
  }
}

async function main(): Promise<void> {
  // Listened to from the start: without a listener, Node opens its inspector on SIGUSR1.
  process.on('SIGUSR1', () => pollNow?.());
  tuneRuntime();
  if (process.argv[2] === 'release-held') {
    const io = { out: (l: string) => process.stdout.write(l), err: (l: string) => process.stderr.write(l) };
    process.exitCode = releaseHeld(
      process.argv.slice(3),
      { ...io, now: () => Date.now() / 1000, env: process.env },
      DEFAULT_CONFIG,
    );
    return;
  }
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
  if (args.check) return check(configPath);
  const settings = loadSettings(configPath);
  // The primary (or the single process) owns the state directory; a DNS worker only reads it.
  if (!cluster.isWorker) checkStateDir(settings, { keep: true });
  const logger = (log = createLogger(settings.config.logging));
  if (cluster.isWorker) return runWorker(configPath, settings, logger);
  logger.info({ config: effectiveConfig(settings), source: settings.source, pid: process.pid }, 'hashwalld starting');
  if (workerCount(settings.config) > 1) return runPrimary(configPath, settings, logger);
  return runSingle(configPath, settings, logger);
}

/** --check: the config's problems, as text for a terminal (or systemd's ExecStartPre), and the exit status. */
function check(configPath: string): void {
  try {
    const settings = loadSettings(configPath);
    checkStateDir(settings, { keep: false }); // a state directory it had to create is removed
    process.stdout.write(`${settings.source}: valid\n`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`hashwalld: ${err.message}\n`);
    process.exitCode = CONFIG_ERROR_STATUS;
  }
}

/** What a running process does on SIGHUP (with the new, valid settings) and on SIGTERM/SIGINT. */
interface Lifecycle {
  reload(next: Settings): Promise<void>;
  stop(signal: string): Promise<void>;
}

/** How a SIGHUP ended: hashwall_config_reloads_total{outcome}. */
type ReloadOutcome = 'applied' | 'invalid' | 'failed';

/** Where a process reports its reloads and its stop. */
interface Reporting {
  /** systemd (Type=notify); absent in a DNS worker, whose primary speaks for the service. */
  readonly notifier?: ServiceNotifier;
  /** Counts each reload's outcome (Operations.reloadOutcome, where the operations have it); absent in a worker. */
  readonly outcomes?: { reloadOutcome?(outcome: ReloadOutcome): void };
  /** The STATUS= line while serving. */
  status(): string;
}

/** What a process that speaks for the service reports through: systemd, and the operations' reload metric. */
function reportingFor(logger: Logger, ops: Operations, status: () => string): Reporting {
  return { notifier: new ServiceNotifier({ logger }), outcomes: reloadCounter(ops), status };
}

/**
 * The process serves: the signals are handled from now on, and systemd hears READY=1 (with the status line). The
 * handlers come first: systemd-notify takes a while to return, and a SIGTERM in that window (a stop right after
 * the start) would otherwise end the process at once, undrained. A signal that arrives meanwhile waits for READY=1.
 */
async function serving(configPath: string, logger: Logger, life: Lifecycle, report: Reporting): Promise<void> {
  const ready = report.notifier?.ready(report.status()) ?? Promise.resolve();
  handleSignals(configPath, logger, life, report, ready);
  await ready;
}

/**
 * Operations.reloadOutcome (hashwall_config_reloads_total{outcome}), where the operations have it; where they do not,
 * the outcomes are logged only.
 */
function reloadCounter(ops: object): Reporting['outcomes'] {
  const count = (ops as { reloadOutcome?: unknown }).reloadOutcome;
  if (typeof count !== 'function') return undefined;
  return { reloadOutcome: (outcome) => (count as (o: ReloadOutcome) => void).call(ops, outcome) };
}

/**
 * One signal at a time: a reload never overlaps another reload or the shutdown. Every reload is reported: RELOADING=1
 * then READY=1 to systemd (READY=1 whatever the outcome: the daemon serves either way), its outcome counted, and a
 * refusal or a failure logged at error and put in systemd's status line.
 */
function handleSignals(
  configPath: string,
  logger: Logger,
  life: Lifecycle,
  report: Reporting,
  after: Promise<void> = Promise.resolve(),
): (signal: string) => void {
  let queue: Promise<void> = after.catch(() => undefined);
  let stopping = false;

  const reload = async (): Promise<ReloadOutcome> => {
    let next: Settings;
    try {
      next = loadSettings(configPath);
    } catch (err) {
      logger.error(
        { problems: err instanceof ConfigError ? err.problems : [(err as Error).message] },
        'reload refused: the new configuration is invalid; the running one stays in force',
      );
      return 'invalid';
    }
    try {
      logger.level = next.config.logging.level;
      logger.info({ config: effectiveConfig(next), source: next.source }, 'reloading');
      await life.reload(next);
      return 'applied';
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'reload failed; the running configuration stays in force');
      return 'failed';
    }
  };

  process.on('SIGHUP', () => {
    if (stopping) return;
    queue = queue.then(async () => {
      await report.notifier?.reloading();
      const outcome = await reload();
      report.outcomes?.reloadOutcome?.(outcome);
      const note =
        outcome === 'applied'
          ? ''
          : outcome === 'invalid'
            ? '; the last reload was refused (invalid configuration: see the log), the previous one is in force'
            : '; the last reload failed (see the log), the previous configuration is in force';
      await report.notifier?.ready(`${report.status()}${note}`);
    });
  });

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    queue = queue.then(async () => {
      await report.notifier?.stopping();
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
  pollNow = () => void lists.pollAll();
  const daemon = await startDaemon(settings, { logger, lists, events: ops.metrics, policyEvents: ops.metrics });
  await ops.attach(daemon);
  // The listeners answer and the lists are loaded as the config asks (lists.start() has returned).
  await serving(
    configPath,
    logger,
    {
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
    },
    reportingFor(logger, ops, () => {
      const on = daemon.addresses.udp.map((a) =>
        a.family === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
      );
      return servingStatus(`answering DNS on ${on.join(', ')}`, lists.stats());
    }),
  );
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
    metrics: new Metrics({ processMetrics: processMetricsWanted(settings.config.metrics) }),
    metricsText: () => clusterOps.metricsText(ops.metrics),
    takeHits: () => clusterOps.takeHits(),
    // Each worker checks the canaries through its own query path (ops/cluster.ts); the primary has none.
    canary: false,
  });
  ops.metrics.attachWorkers(() => workers?.restarts ?? 0);
  await lists.start();
  ops.listsStarted();
  pollNow = () => void lists.pollAll();
  workers = await startWorkers(settings, { logger, lists });
  await ops.attach(clusterOps.opsDaemon());
  const set = workers;
  // Every worker listens, over lists the primary loaded as the config asks.
  await serving(
    configPath,
    logger,
    {
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
    },
    reportingFor(logger, ops, () => servingStatus(`${set.count} DNS workers answering`, lists.stats())),
  );
}

/** workers > 1, one DNS worker: the query path over lists read from the primary's state directory. */
async function runWorker(configPath: string, settings: Settings, logger: Logger): Promise<void> {
  const lists = new FollowerLists(settings, { logger });
  const agent = new WorkerOpsAgent(settings, { logger, lists, process: workerName() ?? undefined });
  await lists.start();
  const daemon = await startDaemon(settings, { logger, lists, events: agent.metrics, policyEvents: agent.metrics });
  agent.attach(daemon);
  announceReady(daemon.addresses);
  const stop = handleSignals(
    configPath,
    logger,
    {
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
    },
    { status: () => '' },
  );
  // The primary is gone (killed): a worker never outlives it.
  process.on('disconnect', () => stop('disconnect'));
}

main().catch(startFailed);
