/**
 * The signer's errors and exit codes. Format problems are `FormatError`s from @hashwall/format with their stable
 * codes, release log problems `TlogError`s from @hashwall/tlog (codes `LOG_...`); what only a command line has
 * (bad arguments, files, locks) is a `SignerError` with a code of its own.
 * Every error is printed as `hashwall-signer: CODE: message`; messages never hold a secret, and never an entry of
 * a source list (they name the file and line instead), so a build's log does not leak the list.
 */
import { FormatError, type ErrorCode } from '@hashwall/format';
import { TlogError, type TlogErrorCode } from '@hashwall/tlog';

/** Exit codes, documented in README.md ("Exit codes"). */
export const EXIT_OK = 0;
/** Verification failed, or the command refused to act (lower serial, file exists, lock held, not listed). */
export const EXIT_REFUSED = 1;
/** Bad arguments or bad input (a malformed source, key, list file; a wrong password). */
export const EXIT_USAGE = 2;
/** A file or network operation failed. */
export const EXIT_IO = 3;
/** An unexpected error: a bug. The message carries a stack trace to report. */
export const EXIT_INTERNAL = 4;
/** Interrupted at a password prompt (Ctrl-C), as a shell reports SIGINT. */
export const EXIT_INTERRUPTED = 130;

export const SIGNER_ERROR_CODES = [
  /** Bad command line: unknown option, missing argument, bad value. */
  'USAGE',
  /** A file system operation failed (the message names the file and the system error code). */
  'IO',
  /** Refusing to overwrite a file without --force. */
  'EXISTS',
  /** Another publish, heartbeat or sign holds the release directory's lock. */
  'LOCKED',
  /** The user interrupted a password prompt. */
  'INTERRUPTED',
  /** The source list has errors (each printed with file:line before this). */
  'SOURCE_INVALID',
  /** The list would block a popular name (build, publish; --override REASON records why it must). */
  'GUARD_POPULAR',
  /** The list adds or removes more entries since the last release than allowed (build, publish). */
  'GUARD_CHANGE',
] as const;

export type SignerErrorCode = (typeof SIGNER_ERROR_CODES)[number];

export class SignerError extends Error {
  override readonly name = 'SignerError';
  readonly code: SignerErrorCode;

  constructor(code: SignerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function usage(message: string): SignerError {
  return new SignerError('USAGE', message);
}

/** Format codes that mean "the input is not usable" rather than "it failed a check". */
const INPUT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'MALFORMED',
  'INVALID_NAME',
  'KEY_INVALID',
  'KEY_PASSWORD',
  'TOO_LARGE',
]);

/** Release log codes (@hashwall/tlog) that mean "the input is not usable". */
const LOG_INPUT_CODES: ReadonlySet<TlogErrorCode> = new Set<TlogErrorCode>([
  'LOG_MALFORMED',
  'LOG_KEY_INVALID',
  'LOG_TOO_LARGE',
]);

/** The exit code for an error thrown by a command. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof TlogError) {
    if (err.code === 'LOG_FETCH_FAILED') return EXIT_IO;
    return LOG_INPUT_CODES.has(err.code) ? EXIT_USAGE : EXIT_REFUSED;
  }
  if (err instanceof FormatError) {
    if (err.code === 'FETCH_FAILED') return EXIT_IO;
    return INPUT_CODES.has(err.code) ? EXIT_USAGE : EXIT_REFUSED;
  }
  if (err instanceof SignerError) {
    switch (err.code) {
      case 'USAGE':
      case 'SOURCE_INVALID':
        return EXIT_USAGE;
      case 'IO':
        return EXIT_IO;
      case 'INTERRUPTED':
        return EXIT_INTERRUPTED;
      case 'EXISTS':
      case 'LOCKED':
      case 'GUARD_POPULAR':
      case 'GUARD_CHANGE':
        return EXIT_REFUSED;
    }
  }
  if (isSystemError(err)) return EXIT_IO;
  return EXIT_INTERNAL;
}

/** A Node system error (`ENOENT`, `EACCES`...). */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && 'syscall' in err;
}

/** Wraps a system error from an operation on `path` as a SignerError IO that names the file and the errno code. */
export function ioError(err: unknown, what: string, path: string): SignerError {
  const code = isSystemError(err) ? err.code : 'EIO';
  const why =
    code === 'ENOENT'
      ? 'no such file or directory'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'ENOTDIR'
            ? 'not a directory'
            : code === 'ENOSPC'
              ? 'no space left on the device'
              : code;
  return new SignerError('IO', `${what} ${path}: ${why} (${code})`, { cause: err });
}

/** The one-line form of an error for stderr: `CODE: message`. Unexpected errors keep their stack for bug reports. */
export function describeError(err: unknown): string {
  if (err instanceof FormatError || err instanceof SignerError || err instanceof TlogError) {
    return `${err.code}: ${err.message}`;
  }
  if (isSystemError(err)) return `IO: ${err.message}`;
  if (err instanceof Error) return `INTERNAL: ${err.stack ?? err.message}`;
  return `INTERNAL: ${String(err)}`;
}
