/**
 * KEYRING files (SPEC.md 5): `keyring/<version>.hwk`, the root keys and signing keys of a list anchored on root
 * keys, signed by root keys. The codec, the trusted comment, the trust store a keyring gives, and the index's
 * `keyring:` check (SPEC.md 5.3). The walk from one version to the next is keyring-walk.ts.
 */
import { FormatError } from './errors.js';
import {
  HeaderReader,
  checkValidity,
  formatTime,
  isListId,
  malformed,
  parseInteger,
  parseListId,
  parseTime,
  splitHeader,
  writeHeader,
  type Extension,
} from './header.js';
import { parseIndex, type IndexHeader } from './indexfile.js';
import { parsePublicKey, publicKeyToString, type MinisignPublicKey } from './minisign/public-key.js';
import { TrustStore, verifyThreshold, type ThresholdResult, type TrustPolicy } from './minisign/threshold.js';
import type { TextInput } from './minisign/bytes.js';

/** SPEC.md 5: a keyring file is at most 16 KiB. */
export const MAX_KEYRING_BYTES = 16 * 1024;
/** SPEC.md 5: expires - created <= 400 days. */
export const MAX_KEYRING_VALIDITY_DAYS = 400;
/** SPEC.md 5: 1 to 8 `root` lines and 1 to 8 `sign` lines. */
export const MAX_KEYRING_KEYS = 8;

export const KEYRING_MAGIC = 'HWL1 KEYRING';

/** `keyring/<version>.hwk` (SPEC.md 5). */
export function keyringPath(version: number): string {
  return `keyring/${version}.hwk`;
}

export interface KeyringHeader {
  readonly listId: string;
  /** 1, 2, 3, ...: each exactly one above the version it replaces. */
  readonly version: number;
  readonly created: number;
  readonly expires: number;
  /** How many distinct roots of this keyring must sign the next version (and this one). */
  readonly rootThreshold: number;
  /** How many distinct signing keys must sign each INDEX, FULL and DELTA under this keyring. */
  readonly signThreshold: number;
  readonly extensions: readonly Extension[];
}

export interface Keyring {
  readonly header: KeyringHeader;
  /** The `root` keys, in file order (sorted bytewise by their `RW...` text). */
  readonly roots: readonly MinisignPublicKey[];
  /** The `sign` keys, in file order (sorted bytewise by their `RW...` text). */
  readonly signKeys: readonly MinisignPublicKey[];
}

/** SPEC.md 5: the exact trusted comment of a keyring's signatures. */
export function keyringTrustedComment(h: { listId: string; version: number; expires: number }): string {
  return `hwl1 type=keyring list=${h.listId} version=${h.version} expires=${formatTime(h.expires)}`;
}

function checkThreshold(what: string, t: number, count: number): void {
  if (t < 1 || t > count) throw malformed(`${what}: must be from 1 to the ${count} key line(s)`);
}

/** Parses one `root RW...` or `sign RW...` line; the key strictly (canonical base64, a usable Ed25519 key). */
function parseKeyLine(line: string, n: number): { role: 'root' | 'sign'; text: string; key: MinisignPublicKey } {
  const space = line.indexOf(' ');
  const role = line.slice(0, space);
  if (space < 0 || (role !== 'root' && role !== 'sign')) {
    throw malformed(`keyring line ${n}: not "root <public key>" or "sign <public key>"`);
  }
  const text = line.slice(space + 1);
  let key: MinisignPublicKey;
  try {
    key = parsePublicKey(text);
  } catch (err) {
    if (err instanceof FormatError) {
      throw new FormatError(err.code, `keyring line ${n}: ${err.message}`, { cause: err });
    }
    throw err;
  }
  return { role, text, key };
}

/**
 * Parses a KEYRING strictly (SPEC.md 5). The caller verifies the signatures of the previous version's roots over
 * these same bytes first (keyring-walk.ts). Refuses: more than 16 KiB (TOO_LARGE, before anything else); a header
 * out of order, with unknown or repeated keys; version 0; `expires` not after `created` or more than 400 days
 * after; a threshold outside 1..the number of its lines; no or more than 8 `root` or `sign` lines; roots not all
 * before the signing keys; a group not sorted bytewise; a key id twice in the file (so no key is both a root and
 * a signing key); a key line that is not `root ` or `sign ` and 56 characters of canonical base64 (KEY_INVALID
 * for a key that decodes but cannot be used).
 */
export function parseKeyring(bytes: Uint8Array): Keyring {
  if (bytes.length > MAX_KEYRING_BYTES)
    throw new FormatError('TOO_LARGE', `keyring is over ${MAX_KEYRING_BYTES} bytes`);
  const { fields, bodyStart } = splitHeader(bytes, KEYRING_MAGIC);
  const h = new HeaderReader(fields);
  const listId = parseListId(h.take('list-id'));
  const version = parseInteger(h.take('version'), 'version');
  if (version === 0) throw malformed('version: keyring versions start at 1');
  const created = parseTime(h.take('created'), 'created');
  const expires = parseTime(h.take('expires'), 'expires');
  checkValidity(created, expires, MAX_KEYRING_VALIDITY_DAYS);
  const rootThreshold = parseInteger(h.take('root-threshold'), 'root-threshold');
  const signThreshold = parseInteger(h.take('sign-threshold'), 'sign-threshold');
  const extensions = h.extensions();

  const body = Buffer.from(bytes.buffer, bytes.byteOffset + bodyStart, bytes.length - bodyStart).toString('latin1');
  if (body.length === 0 || !body.endsWith('\n')) throw malformed('keyring body is empty or lacks a final LF');
  const roots: MinisignPublicKey[] = [];
  const signKeys: MinisignPublicKey[] = [];
  const ids = new Set<string>();
  let last = { role: 'root', text: '' };
  body
    .slice(0, -1)
    .split('\n')
    .forEach((line, i) => {
      const n = i + 1;
      const k = parseKeyLine(line, n);
      if (k.role === 'root' && last.role === 'sign') throw malformed(`keyring line ${n}: a root after a signing key`);
      // Bytewise within a group: latin1 strings of ASCII compare as their bytes do.
      if (k.role === last.role && !(k.text > last.text)) {
        throw malformed(`keyring line ${n}: ${k.role} lines are not sorted bytewise, or repeated`);
      }
      if (ids.has(k.key.keyId)) throw malformed(`keyring line ${n}: key ${k.key.keyId} appears twice in the keyring`);
      ids.add(k.key.keyId);
      (k.role === 'root' ? roots : signKeys).push(k.key);
      last = k;
    });
  for (const [what, keys] of [
    ['root', roots],
    ['sign', signKeys],
  ] as const) {
    if (keys.length === 0) throw malformed(`keyring has no ${what} line`);
    if (keys.length > MAX_KEYRING_KEYS) throw malformed(`keyring has more than ${MAX_KEYRING_KEYS} ${what} lines`);
  }
  checkThreshold('root-threshold', rootThreshold, roots.length);
  checkThreshold('sign-threshold', signThreshold, signKeys.length);
  return Object.freeze({
    header: Object.freeze({ listId, version, created, expires, rootThreshold, signThreshold, extensions }),
    roots: Object.freeze(roots),
    signKeys: Object.freeze(signKeys),
  });
}

/**
 * The one byte form of a KEYRING. The keys of each group are written sorted bytewise whatever their order in
 * `keyring` (a keyring is two sets of keys). RangeError for what parseKeyring would refuse.
 */
export function serializeKeyring(keyring: Keyring): Buffer {
  const x = keyring.header;
  if (!isListId(x.listId)) throw new RangeError(`bad list-id ${x.listId}`);
  if (!Number.isSafeInteger(x.version) || x.version < 1) throw new RangeError('keyring versions start at 1');
  checkValidity(x.created, x.expires, MAX_KEYRING_VALIDITY_DAYS);
  const groups = [
    ['root', keyring.roots, x.rootThreshold],
    ['sign', keyring.signKeys, x.signThreshold],
  ] as const;
  const ids = new Set<string>();
  let body = '';
  for (const [role, keys, threshold] of groups) {
    if (keys.length < 1 || keys.length > MAX_KEYRING_KEYS) throw new RangeError(`1 to 8 ${role} keys`);
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > keys.length) {
      throw new RangeError(`${role}-threshold must be from 1 to ${keys.length}`);
    }
    for (const k of keys) {
      if (ids.has(k.keyId)) throw new RangeError(`key ${k.keyId} appears twice in the keyring`);
      ids.add(k.keyId);
    }
    const texts = keys.map(publicKeyToString).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const t of texts) body += `${role} ${t}\n`;
  }
  const head = writeHeader(
    KEYRING_MAGIC,
    [
      ['list-id', x.listId],
      ['version', String(x.version)],
      ['created', formatTime(x.created)],
      ['expires', formatTime(x.expires)],
      ['root-threshold', String(x.rootThreshold)],
      ['sign-threshold', String(x.signThreshold)],
    ],
    x.extensions,
  );
  const out = Buffer.from(head + body, 'latin1');
  if (out.length > MAX_KEYRING_BYTES) throw new RangeError(`keyring over ${MAX_KEYRING_BYTES} bytes`);
  return out;
}

/** The roots that sign a keyring's successor: an accepted keyring's, or the configured anchor's (version 0). */
export interface KeyringRoots {
  readonly listId: string;
  /** 0 for the anchor. */
  readonly version: number;
  readonly roots: readonly MinisignPublicKey[];
  readonly rootThreshold: number;
}

/** The roots of an accepted keyring, as the next version is checked against them. */
export function rootsOf(keyring: Keyring): KeyringRoots {
  const h = keyring.header;
  return { listId: h.listId, version: h.version, roots: keyring.roots, rootThreshold: h.rootThreshold };
}

/**
 * Verifies a keyring file's signatures against a set of roots and their threshold (each root counted once), over
 * the raw bytes. Any failure (no root signed, too few, a root's bad or legacy signature, a malformed or ninth
 * signature file, roots that signed different comments) is KEYRING_SIGNATURE, with the check's own error as
 * `cause`.
 */
export function verifyKeyringSignatures(
  bytes: Uint8Array,
  signatures: readonly TextInput[],
  roots: KeyringRoots,
  whose: string,
): ThresholdResult {
  const store = new TrustStore([[roots.listId, { keys: roots.roots, threshold: roots.rootThreshold }]]);
  try {
    return verifyThreshold(bytes, signatures, store, roots.listId);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    throw new FormatError(
      'KEYRING_SIGNATURE',
      `not signed by ${roots.rootThreshold} of the ${roots.roots.length} roots of ${whose}: ${err.code}: ${err.message}`,
      { cause: err },
    );
  }
}

/**
 * SPEC.md 5.3: the trust store of a list under a keyring: its `sign` keys and `sign-threshold`, each key counted
 * once, and the keyring's version, which every index verified through this store must name (`keyring:`).
 */
export function keyringTrustStore(keyring: Keyring): TrustStore {
  const h = keyring.header;
  return new TrustStore([[h.listId, { keys: keyring.signKeys, threshold: h.signThreshold, keyring: h.version }]]);
}

/**
 * SPEC.md 5.3: an index verified under a keyring must name that keyring's version. Equal: fine. Lower: ROLLBACK
 * (an index signed before a rotation). Higher: KEYRING_WITHHELD (the mirror serves an index of a keyring it does
 * not serve). Absent: KEYRING_REQUIRED. No keyring in the policy (a list trusted by plain signing keys): the
 * index's `keyring:` line is ignored (SPEC.md 5).
 */
export function checkIndexKeyring(header: Pick<IndexHeader, 'keyring'>, policy: TrustPolicy | undefined): void {
  const want = policy?.keyring;
  if (want === undefined) return;
  const got = header.keyring;
  if (got === undefined) {
    throw new FormatError('KEYRING_REQUIRED', `the index names no keyring; this list is anchored on keyring ${want}`);
  }
  if (got < want) throw new FormatError('ROLLBACK', `the index names keyring ${got}, below the current ${want}`);
  if (got > want) {
    throw new FormatError('KEYRING_WITHHELD', `the index names keyring ${got}, the mirror serves only up to ${want}`);
  }
}

/**
 * verifyThreshold for an index. When it fails under a keyring and the index (read, never trusted, only to name
 * the failure) names a later keyring, the failure is KEYRING_WITHHELD, its `cause` the signature error: an index
 * signed by the keys of a keyring the mirror does not serve cannot verify under the current one, and the operator
 * needs to know why. The index is refused either way.
 */
export function verifyIndexSignatures(
  bytes: Uint8Array,
  signatures: readonly TextInput[],
  store: TrustStore,
  listId: string,
): ThresholdResult {
  try {
    return verifyThreshold(bytes, signatures, store, listId);
  } catch (err) {
    const want = store.get(listId)?.keyring;
    if (!(err instanceof FormatError) || want === undefined) throw err;
    let named: number | undefined;
    try {
      named = parseIndex(bytes).header.keyring;
    } catch {
      throw err;
    }
    if (named === undefined || named <= want) throw err;
    throw new FormatError(
      'KEYRING_WITHHELD',
      `the index is not signed under keyring ${want} (${err.code}) and names keyring ${named}, which the mirror does not serve`,
      { cause: err },
    );
  }
}
