/**
 * Loading keys and reading passwords. A password comes from a file (`--password-file`), from the environment
 * (`HASHWALL_SIGNER_PASSWORD`, for automation) or from a prompt on the terminal that does not echo; it is never
 * printed, never put in an error message, and the bytes read are zeroed once the key is open.
 */
import { stat } from 'node:fs/promises';

import {
  FormatError,
  keyFileKind,
  MAX_LIST_KEY_FILE_BYTES,
  MAX_PUBLIC_KEY_FILE_BYTES,
  MAX_SECRET_KEY_FILE_BYTES,
  parseListKey,
  parsePublicKeyFile,
  parseSecretKeyFile,
  type KeyFileKind,
  type ListKey,
  type MinisignPublicKey,
  type MinisignSecretKey,
} from '@hashwall/format';

import { warn, type Io } from './cli-support.js';
import { SignerError, isSystemError } from './errors.js';
import { fsPath, readCapped } from './files.js';

/** The environment variable a password may come from (automation; see README.md on its risks). */
export const PASSWORD_ENV = 'HASHWALL_SIGNER_PASSWORD';
/** minisign reads at most 1023 password bytes; a password file may add one newline. */
const MAX_PASSWORD_FILE_BYTES = 1024;

/** Warns when a file holding a secret can be read by group or others. */
export async function checkPrivate(path: string, what: string, io: Io): Promise<void> {
  try {
    const st = await stat(fsPath(path));
    // Pipes (`<(pass show ...)`) and devices have modes of their own; only a file on disk can be too open.
    if (st.isFile() && (st.mode & 0o077) !== 0) {
      warn(io, `${what} ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    }
  } catch {
    // Reading it reports any real problem.
  }
}

/** The first line of a password file, without one trailing newline. The caller zeroes the result after use. */
export async function readPasswordFile(path: string, io: Io): Promise<Buffer> {
  await checkPrivate(path, 'password file', io);
  const bytes = await readCapped(path, MAX_PASSWORD_FILE_BYTES, 'password file');
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0a ? bytes.length - 1 : bytes.length;
  const pw = Buffer.from(bytes.subarray(0, end));
  bytes.fill(0);
  if (pw.includes(0x0a)) {
    pw.fill(0);
    throw new FormatError('KEY_PASSWORD', `password file ${path}: more than one line`);
  }
  if (pw.length === 0) throw new FormatError('KEY_PASSWORD', `password file ${path} is empty`);
  return pw;
}

/**
 * Reads a password from the terminal without echo (stdin must be a TTY). Prints `prompt` on stderr. Ctrl-C
 * aborts (INTERRUPTED), Ctrl-D on an empty line too; backspace deletes.
 */
export async function promptPassword(prompt: string, io: Io): Promise<Buffer> {
  const stdin = io.stdin;
  if (!stdin.isTTY || stdin.setRawMode === undefined) {
    throw new FormatError(
      'KEY_PASSWORD',
      `a password is needed and there is no terminal to ask on: use --password-file or ${PASSWORD_ENV}`,
    );
  }
  // Echo off before the prompt appears, so nothing typed after it is ever shown.
  const setRawMode = stdin.setRawMode.bind(stdin);
  const wasRaw = stdin.isRaw ?? false;
  setRawMode(true);
  stdin.resume();
  io.errText(prompt);
  const chars: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return finish(resolve);
          if (ch === '\u0003') return finish(() => reject(new SignerError('INTERRUPTED', 'interrupted')));
          if (ch === '\u0004') {
            if (chars.length === 0) return finish(() => reject(new SignerError('INTERRUPTED', 'no password given')));
            continue;
          }
          if (ch === '\u007f' || ch === '\b') {
            chars.pop();
            continue;
          }
          if (ch === '\u0015') {
            chars.length = 0; // Ctrl-U: kill the line
            continue;
          }
          if (ch >= ' ') chars.push(ch);
        }
      };
      const finish = (then: () => void): void => {
        stdin.off('data', onData);
        then();
      };
      stdin.on('data', onData);
    });
  } finally {
    setRawMode(wasRaw);
    stdin.pause();
    io.errText('\n');
  }
  const pw = Buffer.from(chars.join(''), 'utf8');
  chars.fill('');
  return pw;
}

/** A password for an existing key: the given file, else the environment, else a prompt. */
async function passwordFor(keyPath: string, passwordFile: string | undefined, io: Io): Promise<Buffer> {
  if (passwordFile !== undefined) return readPasswordFile(passwordFile, io);
  const env = io.env[PASSWORD_ENV];
  if (env !== undefined && env !== '') return Buffer.from(env, 'utf8');
  return promptPassword(`Password for ${keyPath}: `, io);
}

/** A password for a new key: the given file, else the environment, else a prompt asked twice. */
export async function newPassword(passwordFile: string | undefined, io: Io): Promise<Buffer> {
  if (passwordFile !== undefined) return readPasswordFile(passwordFile, io);
  const env = io.env[PASSWORD_ENV];
  if (env !== undefined && env !== '') return Buffer.from(env, 'utf8');
  const first = await promptPassword('Password for the new key: ', io);
  const again = await promptPassword('The same password again: ', io);
  const same = first.equals(again);
  again.fill(0);
  if (!same) {
    first.fill(0);
    throw new FormatError('KEY_PASSWORD', 'the two passwords differ');
  }
  if (first.length === 0)
    throw new FormatError('KEY_PASSWORD', 'an empty password (use --no-password for no password)');
  return first;
}

/**
 * Opens a minisign secret key file. An unencrypted key needs no password; an encrypted one gets it from
 * `passwordFile`, the environment or a prompt. KEY_PASSWORD for a wrong password, KEY_INVALID for a bad file.
 */
export async function loadSecretKey(
  path: string,
  passwordFile: string | undefined,
  io: Io,
): Promise<MinisignSecretKey> {
  await checkPrivate(path, 'secret key', io);
  const text = await readCapped(path, MAX_SECRET_KEY_FILE_BYTES, 'secret key');
  try {
    try {
      return parseSecretKeyFile(text).secretKey;
    } catch (err) {
      if (!(err instanceof FormatError && err.code === 'KEY_PASSWORD')) throw keyError(err, path, text, 'secret-key');
    }
    const password = await passwordFor(path, passwordFile, io);
    try {
      return parseSecretKeyFile(text, { password }).secretKey;
    } catch (err) {
      throw prefixed(err, path);
    } finally {
      password.fill(0);
    }
  } finally {
    text.fill(0);
  }
}

/** Opens several secret keys, pairing the i-th password file with the i-th key; refuses the same key twice. */
export async function loadSecretKeys(
  paths: readonly string[],
  passwordFiles: readonly string[],
  io: Io,
): Promise<MinisignSecretKey[]> {
  if (passwordFiles.length > paths.length) {
    throw new SignerError('USAGE', 'more --password-file options than --key options');
  }
  const keys: MinisignSecretKey[] = [];
  for (const [i, path] of paths.entries()) {
    const key = await loadSecretKey(path, passwordFiles[i], io);
    if (keys.some((k) => k.keyId === key.keyId)) {
      throw new SignerError('USAGE', `key ${key.keyId} (${path}) is given twice`);
    }
    keys.push(key);
  }
  return keys;
}

/** Reads minisign `.pub` files; refuses the same key twice. */
export async function loadPublicKeys(paths: readonly string[]): Promise<MinisignPublicKey[]> {
  const keys: MinisignPublicKey[] = [];
  for (const path of paths) {
    const bytes = await readCapped(path, MAX_PUBLIC_KEY_FILE_BYTES, 'public key');
    let key: MinisignPublicKey;
    try {
      key = parsePublicKeyFile(bytes).publicKey;
    } catch (err) {
      throw keyError(err, path, bytes, 'public-key');
    } finally {
      bytes.fill(0);
    }
    if (keys.some((k) => k.keyId === key.keyId)) throw new SignerError('USAGE', `key ${key.keyId} is given twice`);
    keys.push(key);
  }
  return keys;
}

/** Reads a list key file (hash key); warns when it is readable by others. */
export async function loadListKey(path: string, io: Io): Promise<ListKey> {
  await checkPrivate(path, 'list key', io);
  const bytes = await readCapped(path, MAX_LIST_KEY_FILE_BYTES, 'list key');
  try {
    return parseListKey(bytes);
  } catch (err) {
    throw keyError(err, path, bytes, 'list-key');
  } finally {
    bytes.fill(0);
  }
}

const KIND_NAMES = {
  'list-key': 'a list hash key (NAME.listkey)',
  'public-key': 'a minisign public key (NAME.pub)',
  'secret-key': 'a minisign SECRET signing key (NAME.key)',
} as const;

/**
 * The error for a file that did not parse as `wanted`: when it is another kind of key, KEY_INVALID saying which
 * (the three are easy to mix up by name); otherwise the parse error with the file named.
 */
function keyError(err: unknown, path: string, bytes: Uint8Array, wanted: KeyFileKind): unknown {
  const kind = keyFileKind(bytes);
  if (kind === 'unknown' || kind === wanted) return prefixed(err, path);
  return new FormatError(
    'KEY_INVALID',
    `${path} is ${KIND_NAMES[kind]}, not ${KIND_NAMES[wanted as keyof typeof KIND_NAMES]}`,
  );
}

/** The same error with the file named in front of its message (codes kept; messages never hold key material). */
function prefixed(err: unknown, path: string): unknown {
  if (err instanceof FormatError) return new FormatError(err.code, `${path}: ${err.message}`, { cause: err });
  if (isSystemError(err)) return err;
  return err;
}
