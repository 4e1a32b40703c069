/**
 * The dispatcher of `hashwall-signer`: finds the command module, runs it with an Io (everything it takes from its
 * process: console, stdin, environment, working directory, clock), and turns what it throws into a message on
 * stderr and an exit code (errors.ts). cli.ts runs it for the executable; scripts and tests may run it in process.
 */
import type { Io } from './cli-support.js';
import { EXIT_OK, EXIT_USAGE, describeError, exitCodeFor } from './errors.js';
import { inWorkingDir } from './files.js';

type Command = (argv: readonly string[], io: Io) => Promise<number>;

/** The commands, each in ./commands/NAME.js, with the line `--help` gives it. */
const COMMANDS: Readonly<Record<string, string>> = {
  keygen: 'make a minisign signing key pair, a list hash key (--list-key) or a release log key (--log-key)',
  keyring: 'root keys and signing-key rotation: init, next, sign, publish a keyring',
  build: 'turn the plaintext source into a hashed FULL',
  publish: 'add a FULL to a release directory: deltas, index, signatures',
  heartbeat: 're-sign the index with seq + 1 and a new expiry (from a timer)',
  sign: 'sign --add: add your signature to every file of the current release',
  verify: 'check a release directory or URL exactly as a daemon will',
  inspect: "show a file's header, entry counts and signatures",
  check: 'say whether and how a name or URL is listed (needs the list key)',
  diff: 'count removals and additions by kind between two FULLs',
};

/**
 * A command's module, loaded when it runs: a command needs only its own code (verify alone needs the HTTP client,
 * undici; publish and heartbeat the release log), and `--help` none of them.
 */
function load(name: string): Promise<{ run: Command }> {
  return import(`./commands/${name}.js`) as Promise<{ run: Command }>;
}

const VERSION = '0.1.0';

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, summary]) => `  ${name.padEnd(width)}  ${summary}`);
  return `Usage: hashwall-signer COMMAND [options]   (hashwall-signer COMMAND --help for each)

Turns a confidential plaintext blocklist into a hashed, signed HWL1 release directory, and checks releases.

Commands:
${lines.join('\n')}

Exit codes: 0 ok; 1 verification failed or refused; 2 usage or input error; 3 I/O error;
4 internal error (a bug); 130 interrupted at a password prompt.`;
}

/** Runs `hashwall-signer ...argv` with `io`; resolves to the exit code. Relative paths resolve against io.cwd. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(help());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '--version' || name === '-V') {
    io.out(`hashwall-signer ${VERSION}`);
    return EXIT_OK;
  }
  if (!Object.hasOwn(COMMANDS, name)) {
    io.err(`hashwall-signer: USAGE: unknown command "${name}" (see hashwall-signer --help)`);
    return EXIT_USAGE;
  }
  try {
    const { run } = await load(name);
    return await inWorkingDir(io.cwd, () => run(rest, io));
  } catch (err) {
    io.err(`hashwall-signer ${name}: ${describeError(err)}`);
    return exitCodeFor(err);
  }
}
