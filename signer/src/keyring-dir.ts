/**
 * The keyrings of a release directory (SPEC.md 5): `keyring/<v>.hwk` and their signatures. The current keyring is
 * the highest version present; `publish` and `heartbeat` sign under it (the index names it, `keyring: v`, and the
 * signing keys must be its `sign` keys). Every check is @hashwall/format's: a new version is accepted here by
 * `acceptKeyring`, the function a daemon's walk runs, before it is written.
 */
import { join } from 'node:path';

import {
  FormatError,
  MAX_KEYRING_BYTES,
  acceptKeyring,
  formatTime,
  keyringPath,
  openStoredKeyring,
  parseSignatureFile,
  signatureFileName,
  type KeyringAnchor,
  type MinisignSecretKey,
  type SignedKeyring,
} from '@hashwall/format';

import { ensureDir, listDir, readCapped } from './files.js';
import { readSignatures, writeReleaseFiles } from './release-dir.js';

/** Versions of the keyrings present in `dir/keyring/`, ascending. */
export async function keyringVersions(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await listDir(join(dir, 'keyring'))) {
    const m = /^([1-9][0-9]{0,15})\.hwk$/.exec(name);
    if (m !== null && Number.isSafeInteger(Number(m[1]))) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

/** A keyring file and its signature files, read from `dir` (relative path `keyring/<v>.hwk`). */
export async function readKeyringFiles(dir: string, version: number): Promise<{ bytes: Buffer; signatures: Buffer[] }> {
  const path = keyringPath(version);
  const bytes = await readCapped(join(dir, path), MAX_KEYRING_BYTES, 'keyring');
  return { bytes, signatures: [...(await readSignatures(dir, path)).values()] };
}

/**
 * The current keyring of a release directory: the highest version, re-opened as a daemon re-opens a stored one
 * (its own roots' threshold over its signatures). Undefined when the directory has no keyring.
 */
export async function currentKeyring(dir: string, listId?: string): Promise<SignedKeyring | undefined> {
  const versions = await keyringVersions(dir);
  const v = versions[versions.length - 1];
  if (v === undefined) return undefined;
  const files = await readKeyringFiles(dir, v);
  const k = openStoredKeyring({ listId: listId ?? keyringListId(files.bytes) }, files);
  if (k.keyring.header.version !== v) {
    throw new FormatError('KEYRING_VERSION', `${keyringPath(v)} holds version ${k.keyring.header.version}`);
  }
  return k;
}

/** The list-id a keyring file names (read to choose what to check it against; openStoredKeyring checks it). */
function keyringListId(bytes: Uint8Array): string {
  const m = /^HWL1 KEYRING\nlist-id: ([a-z0-9-]{1,63})\n/.exec(Buffer.from(bytes.subarray(0, 100)).toString('latin1'));
  return m?.[1] ?? '';
}

/**
 * SPEC.md 5.2 and 5.3 on the publisher's side, for `publish` and `heartbeat`: the version the new index must name,
 * or undefined for a directory without keyrings (a list trusted by plain signing keys). Refuses (before anything is
 * written) a keyring for another list (LIST_MISMATCH), an expired keyring (KEYRING_EXPIRED: daemons accept no
 * index under it), and a `--key` that is not one of its signing keys (UNTRUSTED_KEY); warns when fewer keys than
 * its sign-threshold sign (the others add theirs with `sign --add`).
 */
export async function signingKeyring(
  dir: string,
  listId: string,
  signers: readonly MinisignSecretKey[],
  now: number,
  warn: (message: string) => void,
): Promise<number | undefined> {
  const current = await currentKeyring(dir);
  if (current === undefined) return undefined;
  const h = current.keyring.header;
  if (h.listId !== listId) throw new FormatError('LIST_MISMATCH', `${keyringPath(h.version)} is for list ${h.listId}`);
  if (!(now < h.expires)) {
    throw new FormatError(
      'KEYRING_EXPIRED',
      `keyring ${h.version} expired at ${formatTime(h.expires)}: publish a new keyring version first`,
    );
  }
  const ids = new Set(current.keyring.signKeys.map((k) => k.keyId));
  for (const s of signers) {
    if (!ids.has(s.keyId)) {
      throw new FormatError('UNTRUSTED_KEY', `key ${s.keyId} is not a signing key of keyring ${h.version}`);
    }
  }
  if (signers.length < h.signThreshold) {
    warn(`keyring ${h.version} needs ${h.signThreshold} signing keys: the others must add theirs with sign --add`);
  }
  if (h.expires - now < 30 * 86400) {
    warn(`keyring ${h.version} expires at ${formatTime(h.expires)}: publish the next version before then`);
  }
  return h.version;
}

/**
 * Adds a fully signed keyring version to `dir` (`keyring publish`): it must be accepted by the walk a daemon runs,
 * from the directory's current keyring, or from `anchor` for version 1 (the roots ISPs configure; default: the
 * keyring's own roots and threshold). The signature files are written before the keyring file, so that a daemon
 * that finds the file finds them too.
 */
export async function addKeyring(
  dir: string,
  candidate: { bytes: Uint8Array; signatures: readonly Uint8Array[] },
  now: number,
  anchor?: KeyringAnchor,
): Promise<SignedKeyring> {
  const current = await currentKeyring(dir);
  let previous: KeyringAnchor | SignedKeyring;
  if (current !== undefined) previous = current;
  else if (anchor !== undefined) previous = anchor;
  else {
    const own = openStoredKeyring({ listId: keyringListId(candidate.bytes) }, candidate).keyring;
    previous = { listId: own.header.listId, roots: own.roots, rootThreshold: own.header.rootThreshold };
  }
  const accepted = acceptKeyring(previous, candidate, now);
  const path = keyringPath(accepted.keyring.header.version);
  const files = new Map<string, Uint8Array>();
  accepted.signatures.forEach((sig, i) => {
    files.set(i === 0 ? `${path}.minisig` : signatureFileName(path, parseSignatureFile(sig).keyId), sig);
  });
  await ensureDir(join(dir, 'keyring'));
  // The keyring file last: writeReleaseFiles writes files in map order (the index has its own place).
  files.set(path, accepted.bytes);
  await writeReleaseFiles(dir, files, { replaceSignatures: false });
  return accepted;
}
