/**
 * Which kind of key a file holds, so that a tool given the wrong file can say which one it was given: a list hash
 * key (SPEC.md 1.3, `hwl1-list-key`, by convention `NAME.listkey`), a minisign public key (SPEC.md 3, `NAME.pub`)
 * or a minisign secret key (`NAME.key`). The three are easy to mix up by name, and the mix-up that matters is a
 * secret signing key handed over where a list hash key was asked for.
 */
import { FormatError } from './errors.js';
import { parseListKey } from './hash.js';
import { parsePublicKeyFile } from './minisign/public-key.js';
import { parseSecretKeyFile } from './minisign/secret-key.js';

export type KeyFileKind = 'list-key' | 'public-key' | 'secret-key' | 'unknown';

/**
 * The kind of key in `file`, or `unknown`. Never throws and keeps no key material: an encrypted secret key is
 * recognised without its password (nothing is decrypted), an unencrypted one is parsed and let go.
 */
export function keyFileKind(file: Uint8Array): KeyFileKind {
  const is = (parse: () => unknown, passwordNeeded = false): boolean => {
    try {
      parse();
      return true;
    } catch (err) {
      return passwordNeeded && err instanceof FormatError && err.code === 'KEY_PASSWORD';
    }
  };
  if (is(() => parseListKey(file))) return 'list-key';
  if (is(() => parsePublicKeyFile(file))) return 'public-key';
  if (is(() => parseSecretKeyFile(file), true)) return 'secret-key';
  return 'unknown';
}
