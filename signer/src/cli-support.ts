/**
 * What every command shares: the console it writes to, argument parsing with node:util parseArgs (strict, so an
 * unknown or misspelt option is an error, never ignored), per-command --help, and typed option values.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { MAX_LIST_VALIDITY_DAYS, parseTime } from '@hashwall/format';

import { usage } from './errors.js';

/** The terminal a password prompt reads from: stdin, which has `setRawMode` only when it is a TTY. */
export type Terminal = NodeJS.ReadableStream & {
  readonly isTTY?: boolean;
  readonly isRaw?: boolean;
  setRawMode?(raw: boolean): unknown;
};

/**
 * Everything a command takes from its process, so that main.ts can run one in a process of its own (cli.ts,
 * processIo) or inside another (a script, the tests). Results go to `out` (stdout), diagnostics to `err` (stderr),
 * one line per call.
 */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Writes to stderr without a line end (a password prompt). */
  errText(text: string): void;
  /** Where passwords are read from when a command has to ask. */
  readonly stdin: Terminal;
  /** The environment (for HASHWALL_SIGNER_PASSWORD). */
  readonly env: NodeJS.ProcessEnv;
  /** The directory relative paths resolve against. */
  readonly cwd: string;
  /** Seconds since the epoch, whole. */
  now(): number;
}

export function processIo(): Io {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    errText: (text) => process.stderr.write(text),
    // A getter: process.stdin is made on first use, and only a command that prompts needs it.
    get stdin() {
      return process.stdin;
    },
    env: process.env,
    cwd: process.cwd(),
    now: () => Math.floor(Date.now() / 1000),
  };
}

export function warn(io: Io, message: string): void {
  io.err(`warning: ${message}`);
}

export interface CommandSpec<O extends NonNullable<ParseArgsConfig['options']>> {
  readonly name: string;
  /** The full --help text (usage line, description, options, exit codes). */
  readonly help: string;
  readonly options: O;
  /** Positional arguments: [min, max]. */
  readonly positionals: readonly [number, number];
}

export type Parsed<O extends NonNullable<ParseArgsConfig['options']>> = ReturnType<
  typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>
>;

/**
 * Parses `argv` for a command. Returns undefined after printing the help when --help or -h is given. Throws
 * USAGE for an unknown option, a missing value, or the wrong number of positional arguments.
 */
export function parseCommand<O extends NonNullable<ParseArgsConfig['options']>>(
  spec: CommandSpec<O>,
  argv: readonly string[],
  io: Io,
): Parsed<O> | undefined {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(spec.help.trimEnd());
    return undefined;
  }
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({ args: [...argv], options: spec.options, allowPositionals: true, strict: true });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw usage(`${spec.name}: ${message} (see hashwall-signer ${spec.name} --help)`);
  }
  const [min, max] = spec.positionals;
  const n = parsed.positionals.length;
  if (n < min || n > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw usage(`${spec.name}: expected ${want} argument(s), got ${n} (see hashwall-signer ${spec.name} --help)`);
  }
  return parsed;
}

/** A required string option. */
export function required(value: string | undefined, name: string, command: string): string {
  if (value === undefined || value === '') throw usage(`${command}: --${name} is required`);
  return value;
}

/** A decimal integer option within [min, max]. */
export function intValue(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^(0|[1-9][0-9]*)$/.test(value)) throw usage(`--${name}: not a decimal integer: ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw usage(`--${name}: must be from ${min} to ${max}`);
  return n;
}

/** A time option in SPEC.md's form `YYYY-MM-DDTHH:MM:SSZ`, as seconds since the epoch. */
export function timeValue(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseTime(value, `--${name}`);
  } catch {
    throw usage(`--${name}: not a UTC time YYYY-MM-DDTHH:MM:SSZ: ${JSON.stringify(value)}`);
  }
}

/** Validity of a FULL: --expires, or --validity-days (default 7), never more than SPEC.md's 31 days. */
export function listExpiry(created: number, expires: string | undefined, validityDays: string | undefined): number {
  if (expires !== undefined && validityDays !== undefined) {
    throw usage('give --expires or --validity-days, not both');
  }
  const at = timeValue(expires, 'expires');
  if (at !== undefined) {
    if (at <= created) throw usage('--expires must be after --created');
    if (at - created > MAX_LIST_VALIDITY_DAYS * 86400) {
      throw usage(`--expires: at most ${MAX_LIST_VALIDITY_DAYS} days after --created (SPEC.md 2.1)`);
    }
    return at;
  }
  const days = intValue(validityDays, 'validity-days', 1, MAX_LIST_VALIDITY_DAYS) ?? 7;
  return created + days * 86400;
}

/** The shared text of every command's help: exit codes and where passwords come from. */
export const EXIT_CODES_HELP = `Exit codes: 0 ok; 1 verification failed or refused; 2 usage or input error; 3 I/O error;
4 internal error (a bug); 130 interrupted at a password prompt.`;

export const PASSWORD_HELP = `Passwords of encrypted secret keys: the i-th --password-file goes with the i-th --key (the
file's first line, one trailing newline removed; keep it mode 0600); else the environment variable
HASHWALL_SIGNER_PASSWORD (visible to your other processes: for automation only); else a prompt on the terminal,
without echo. Never put a password on the command line.`;
