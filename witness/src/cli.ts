#!/usr/bin/env node
/**
 * `hashwall-witness`: read the config, build the parts, start, handle signals. No logic lives here.
 *
 *   hashwall-witness serve --config FILE [--key FILE] [--check]   run the witness (or only validate the config)
 *   hashwall-witness keygen --name NAME --out FILE [--force]       make the witness's key; print its cosigner key
 *   hashwall-witness vkey --key FILE                               print the cosigner key of a key file
 *
 * SIGTERM or SIGINT: stop accepting, let requests in flight finish (shutdown.drainTimeoutMs), exit 0. Exit codes:
 * 0 ok, 1 could not start (state, address), 2 bad arguments or configuration.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { NoteSecretKey } from '@hashwall/tlog';

import { ConfigError, effectiveConfig, loadSettings, parseListen, readKeyFile, type Settings } from './config.js';
import { createLogger, type Logger } from './log.js';
import { startServer } from './server.js';
import { WitnessStore } from './store.js';
import { Witness } from './witness.js';

const DEFAULT_CONFIG = '/etc/hashwall-witness/witness.yaml';

const USAGE = `Usage: hashwall-witness serve [--config FILE] [--key FILE] [--check]
       hashwall-witness keygen --name NAME --out FILE [--force]
       hashwall-witness vkey --key FILE

A tlog-witness (c2sp.org/tlog-witness) for hashwall release logs: it cosigns a log's checkpoint only when it
extends the last one it cosigned, and keeps the evidence when the log signs one that does not.

  serve    run the witness; --config defaults to ${DEFAULT_CONFIG}; --key overrides the config's key;
           --check validates the configuration and exits
  keygen   write a new witness key (mode 0600) and print its cosigner key (give that to the logs you
           witness and to their clients). NAME identifies the witness, e.g. witness.example.org/w1
  vkey     print the cosigner key of an existing key file

Exit codes: 0 ok; 1 could not start; 2 bad arguments or configuration.`;

function fail(message: string, code = 2): never {
  process.stderr.write(`hashwall-witness: ${message}\n`);
  process.exit(code);
}

function args(argv: string[], options: NonNullable<ParseArgsConfig['options']>): Record<string, unknown> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    return fail(`${(err as Error).message}\n${USAGE}`);
  }
}

async function keygen(argv: string[]): Promise<void> {
  const v = args(argv, { name: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' } });
  if (typeof v.name !== 'string' || typeof v.out !== 'string') fail(`keygen needs --name and --out\n${USAGE}`);
  let key: NoteSecretKey;
  try {
    key = NoteSecretKey.generate(v.name);
  } catch (err) {
    return fail(`--name: ${(err as Error).message}`);
  }
  try {
    await writeFile(v.out, `${key.serialize()}\n`, { mode: 0o600, flag: v.force === true ? 'w' : 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(code === 'EEXIST' ? `${v.out} exists; refusing to overwrite it (use --force)` : `${v.out}: ${String(err)}`, 1);
  }
  process.stdout.write(`wrote ${v.out} (secret, mode 0600)\ncosigner key: ${key.cosigner().vkey}\n`);
}

function vkey(argv: string[]): void {
  const v = args(argv, { key: { type: 'string' } });
  if (typeof v.key !== 'string') fail(`vkey needs --key\n${USAGE}`);
  try {
    process.stdout.write(`${readKeyFile(v.key).cosigner().vkey}\n`);
  } catch (err) {
    fail(`${v.key}: ${(err as Error).message}`);
  }
}

function exit(logger: Logger, code: number): void {
  logger.flush(() => process.exit(code));
  setTimeout(() => process.exit(code), 2000).unref();
}

async function serve(argv: string[]): Promise<void> {
  const v = args(argv, { config: { type: 'string', short: 'c' }, key: { type: 'string' }, check: { type: 'boolean' } });
  let settings: Settings;
  try {
    settings = loadSettings(typeof v.config === 'string' ? v.config : DEFAULT_CONFIG, v.key as string | undefined);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  if (v.check === true) {
    process.stdout.write(`${settings.source}: valid\n`);
    return;
  }
  const { config } = settings;
  const logger = createLogger(config.logging.level);
  logger.info(
    { config: effectiveConfig(settings), source: settings.source, pid: process.pid },
    'hashwall-witness starting',
  );
  const witness = new Witness({
    key: settings.key,
    logs: settings.logs,
    store: new WitnessStore(config.stateDir, config.limits.maxEvidencePerLog),
    now: () => Math.floor(Date.now() / 1000),
    onEvidence: (evidence, path, err) => {
      if (path !== undefined)
        logger.error(
          { origin: evidence.origin, kind: evidence.kind, reason: evidence.reason, path },
          "evidence of a misbehaving log kept: tell the log's operators and its users",
        );
      else if (err !== undefined)
        logger.error(
          { origin: evidence.origin, kind: evidence.kind, err },
          'could not write evidence (check the state directory)',
        );
      else
        logger.warn(
          { origin: evidence.origin, kind: evidence.kind },
          'more evidence for this log not written: limits.maxEvidencePerLog reached',
        );
    },
  });
  try {
    await witness.init();
  } catch (err) {
    logger.fatal({ err }, 'cannot start: the stored state is unusable');
    exit(logger, 1);
    return;
  }
  let server;
  try {
    server = await startServer(witness, parseListen(config.listen), config.limits, logger);
  } catch (err) {
    logger.fatal({ err, listen: config.listen }, 'cannot listen');
    exit(logger, 1);
    return;
  }
  logger.info(
    {
      address: server.address.address,
      port: server.address.port,
      cosigner: witness.cosigner.vkey,
      logs: settings.logs.size,
    },
    'listening',
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: finishing requests in flight');
    void server.close(config.shutdown.drainTimeoutMs).then(() => {
      logger.info('stopped');
      exit(logger, 0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'serve':
    await serve(rest);
    break;
  case 'keygen':
    await keygen(rest);
    break;
  case 'vkey':
    vkey(rest);
    break;
  case '--help':
  case '-h':
  case 'help':
    process.stdout.write(`${USAGE}\n`);
    break;
  default:
    fail(command === undefined ? USAGE : `unknown command "${command}"\n${USAGE}`);
}
