#!/usr/bin/env node
/**
 * `hashwall-signer`: the list maintainer's command line. This file only dispatches to a command module and turns
 * what it throws into a message on stderr and an exit code (errors.ts); each command lives in ./commands/.
 */
import { processIo, type Io } from './cli-support.js';
import { EXIT_OK, EXIT_USAGE, describeError, exitCodeFor } from './errors.js';
import * as build from './commands/build.js';
import * as check from './commands/check.js';
import * as diff from './commands/diff.js';
import * as heartbeat from './commands/heartbeat.js';
import * as inspect from './commands/inspect.js';
import * as keygen from './commands/keygen.js';
import * as keyring from './commands/keyring.js';
import * as publish from './commands/publish.js';
import * as sign from './commands/sign.js';

type Command = (argv: readonly string[], io: Io) => Promise<number>;

const COMMANDS: Readonly<Record<string, { run: Command; summary: string }>> = {
  keygen: {
    run: keygen.run,
    summary: 'make a minisign signing key pair, a list hash key (--list-key) or a release log key (--log-key)',
  },
  keyring: { run: keyring.run, summary: 'root keys and signing-key rotation: init, next, sign, publish a keyring' },
  build: { run: build.run, summary: 'turn the plaintext source into a hashed FULL' },
  publish: { run: publish.run, summary: 'add a FULL to a release directory: deltas, index, signatures' },
  heartbeat: { run: heartbeat.run, summary: 're-sign the index with seq + 1 and a new expiry (from a timer)' },
  sign: { run: sign.run, summary: 'sign --add: add your signature to every file of the current release' },
  // Loaded when run: it alone needs the HTTP client (undici), a third of every other command's start-up time.
  verify: {
    run: async (argv, io) => (await import('./commands/verify.js')).run(argv, io),
    summary: 'check a release directory or URL exactly as a daemon will',
  },
  inspect: { run: inspect.run, summary: "show a file's header, entry counts and signatures" },
  check: { run: check.run, summary: 'say whether and how a name or URL is listed (needs the list key)' },
  diff: { run: diff.run, summary: 'count removals and additions by kind between two FULLs' },
};

const VERSION = '0.1.0';

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: hashwall-signer COMMAND [options]   (hashwall-signer COMMAND --help for each)

Turns a confidential plaintext blocklist into a hashed, signed HWL1 release directory, and checks releases.

Commands:
${lines.join('\n')}

Exit codes: 0 ok; 1 verification failed or refused; 2 usage or input error; 3 I/O error;
4 internal error (a bug); 130 interrupted at a password prompt.`;
}

async function main(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(help());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '--version' || name === '-V') {
    io.out(`hashwall-signer ${VERSION}`);
    return EXIT_OK;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.err(`hashwall-signer: USAGE: unknown command "${name}" (see hashwall-signer --help)`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    io.err(`hashwall-signer ${name}: ${describeError(err)}`);
    return exitCodeFor(err);
  }
}

const io = processIo();
process.exitCode = await main(process.argv.slice(2), io);
