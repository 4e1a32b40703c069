#!/usr/bin/env node
/**
 * hashwalld: read the config, build the parts, start, handle signals. No logic lives here.
 *
 *   hashwalld --config /etc/hashwall/hashwalld.yaml      run
 *   hashwalld --config FILE --check                      validate the config and exit (0 valid, 2 invalid)
 *
 * SIGHUP reloads the config and the lists without dropping a query (listeners stay open, new ones open before old
 * ones close); an invalid new config is logged and the running one kept. SIGTERM or SIGINT stop accepting, drain
 * queries in flight (at most shutdown.drainTimeoutMs), stop the list sync, and exit 0.
 */
import { parseArgs } from 'node:util';

import { ConfigError, effectiveConfig, loadSettings, type Settings } from './config/load.js';
import { createListRegistry } from './lists/index.js';
import { createLogger, type Logger } from './ops/log.js';
import { Operations } from './ops/runtime.js';
import { startDaemon } from './server.js';

const DEFAULT_CONFIG = '/etc/hashwall/hashwalld.yaml';

function usage(): never {
  process.stderr.write(`usage: hashwalld [--config FILE] [--check]\n  default config: ${DEFAULT_CONFIG}\n`);
  process.exit(2);
}

function load(path: string): Settings {
  try {
    return loadSettings(path);
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
  const settings = load(configPath);
  if (args.check) {
    process.stdout.write(`${settings.source}: valid\n`);
    return;
  }

  const logger = createLogger(settings.config.logging);
  logger.info({ config: effectiveConfig(settings), source: settings.source, pid: process.pid }, 'hashwalld starting');
  if (settings.config.workers !== 1) {
    logger.warn({ workers: settings.config.workers }, 'several workers are not supported yet: running one process');
  }
  const lists = createListRegistry(settings, { logger });
  // Metrics and health first, so that /healthz answers (and /readyz says why not) while the lists load.
  const ops = await Operations.start(settings, { logger, lists });
  await lists.start();
  ops.listsStarted();
  const daemon = await startDaemon(settings, { logger, lists, events: ops.metrics, policyEvents: ops.metrics });
  await ops.attach(daemon);

  // One signal at a time: a reload never overlaps another reload or the shutdown.
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
        await lists.reload(next);
        await daemon.reload(next);
        await ops.reload(next);
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'reload failed; the running configuration stays in force');
      }
    });
  });

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    queue = queue.then(async () => {
      logger.info({ signal, inFlight: daemon.inFlight() }, 'stopping: draining queries in flight');
      ops.stopping();
      await daemon.close();
      await lists.close();
      await ops.close();
      logger.info('stopped');
      exit(logger, 0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`hashwalld: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
