/**
 * The client's keyring walk (SPEC.md 5.1, 5.2, 5.4), TUF's root rotation for hashwall: from the stored keyring (or
 * the configured anchor, version 0) to the newest one the mirror serves, each version checked by the roots of the
 * one before it and by its own. `acceptKeyring` is one step, pure, with the clock given; `followKeyrings` fetches
 * and steps through a {@link ReleaseSource}; `currentKeyringTrust` is the trust store a poll's index, FULL and
 * DELTA are then verified under.
 *
 * Where SPEC.md is silent this follows TUF's client workflow (5.3): an intermediate keyring may have expired (only
 * the one the walk ends on must be current, TUF 5.3.10), and a walk takes at most 16 steps a poll (TUF bounds root
 * rotations per update the same way).
 */
import { FormatError } from './errors.js';
import { sha256Hex } from './full.js';
import {
  MAX_KEYRING_BYTES,
  keyringPath,
  keyringTrustStore,
  keyringTrustedComment,
  parseKeyring,
  rootsOf,
  verifyKeyringSignatures,
  type Keyring,
  type KeyringRoots,
} from './keyring.js';
import type { MinisignPublicKey } from './minisign/public-key.js';
import { MAX_SIGNATURE_FILE_BYTES } from './minisign/signature.js';
import { MAX_SIGNATURES_PER_FILE, signatureFileName, type TrustStore } from './minisign/threshold.js';
import { CLOCK_SKEW_SECONDS } from './release.js';
import type { ReleaseSource } from './source.js';

/** SPEC.md 5.1: at most 16 keyring steps a poll. */
export const MAX_KEYRING_STEPS = 16;

/** What an operator configures for a list anchored on root keys: the roots of version 0 and their threshold. */
export interface KeyringAnchor {
  readonly listId: string;
  readonly roots: readonly MinisignPublicKey[];
  readonly rootThreshold: number;
}

/** A keyring file with the signature files it was accepted with, and the file's SHA-256. */
export interface SignedKeyring {
  readonly keyring: Keyring;
  readonly bytes: Uint8Array;
  readonly signatures: readonly Uint8Array[];
  /** SHA-256 of `bytes`, 64 lower-case hex (SPEC.md 5.4: kept in the list's state). */
  readonly sha256: string;
}

/** SPEC.md 5.4: what a client keeps per list besides the list state: the keyring version and its file's digest. */
export interface KeyringState {
  readonly version: number;
  readonly sha256: string;
}

export function keyringState(k: SignedKeyring): KeyringState {
  return { version: k.keyring.header.version, sha256: k.sha256 };
}

function anchorRoots(anchor: KeyringAnchor): KeyringRoots {
  return { listId: anchor.listId, version: 0, roots: anchor.roots, rootThreshold: anchor.rootThreshold };
}

/** How the roots that sign a version's successor are named in messages. */
function whoseRoots(roots: KeyringRoots): string {
  return roots.version === 0 ? 'the anchor' : `keyring ${roots.version}`;
}

/**
 * One step of the walk (SPEC.md 5.1), pure: accepts `candidate` as the successor of `previous` (the anchor, or the
 * current keyring), or throws. In this order, so that nothing is read from the file before a signature holds:
 * 1. at least `previous.rootThreshold` distinct roots of `previous` signed the bytes (KEYRING_SIGNATURE);
 * 2. the file parses (MALFORMED, TOO_LARGE, KEY_INVALID); its list-id is `previous`'s (LIST_MISMATCH); the
 *    trusted comment is the one its header calls for (COMMENT_MISMATCH);
 * 3. its version is `previous.version + 1` (KEYRING_VERSION: a skipped, repeated or replayed version);
 * 4. `created <= now + 300 s` (NOT_YET_VALID);
 * 5. at least its own `root-threshold` distinct roots of its own signed it too (KEYRING_SIGNATURE).
 * Expiry is not checked here: a keyring that expired while a client was away is still a link of the chain; the
 * one the walk ends on must be current ({@link currentKeyringTrust}).
 */
export function acceptKeyring(
  previous: KeyringAnchor | SignedKeyring,
  candidate: { readonly bytes: Uint8Array; readonly signatures: readonly Uint8Array[] },
  now: number,
): SignedKeyring {
  const prev = 'keyring' in previous ? rootsOf(previous.keyring) : anchorRoots(previous);
  const expected = prev.version + 1;
  const byPrevious = verifyKeyringSignatures(candidate.bytes, candidate.signatures, prev, whoseRoots(prev));
  const keyring = parseKeyring(candidate.bytes);
  const h = keyring.header;
  if (h.listId !== prev.listId) throw new FormatError('LIST_MISMATCH', `keyring is for list ${h.listId}`);
  if (byPrevious.trustedComment !== keyringTrustedComment(h)) {
    throw new FormatError('COMMENT_MISMATCH', 'keyring trusted comment disagrees with its header');
  }
  if (h.version !== expected) {
    throw new FormatError('KEYRING_VERSION', `${keyringPath(expected)} holds version ${h.version}`);
  }
  if (h.created > now + CLOCK_SKEW_SECONDS) {
    throw new FormatError('NOT_YET_VALID', `keyring ${h.version} was created in the future`);
  }
  const byItself = verifyKeyringSignatures(candidate.bytes, candidate.signatures, rootsOf(keyring), 'itself');
  if (byItself.trustedComment !== byPrevious.trustedComment) {
    throw new FormatError('COMMENT_MISMATCH', 'the roots signed different trusted comments');
  }
  return Object.freeze({
    keyring,
    bytes: candidate.bytes,
    signatures: Object.freeze([...candidate.signatures]),
    sha256: sha256Hex(candidate.bytes),
  });
}

/**
 * Re-opens the keyring a client stored (at start, SPEC.md 5.4): its SHA-256 must be the state's, its version the
 * state's, its list-id the anchor's, and its own roots' threshold must hold over its stored signatures. The
 * chain that led to it was checked when it was accepted; the state directory is trusted for that (as TUF trusts
 * its stored root). MALFORMED when the files disagree with the state (tampered with or half-written).
 */
export function openStoredKeyring(
  anchor: Pick<KeyringAnchor, 'listId'>,
  stored: { readonly bytes: Uint8Array; readonly signatures: readonly Uint8Array[] },
  state?: KeyringState,
): SignedKeyring {
  const sha256 = sha256Hex(stored.bytes);
  if (state !== undefined && sha256 !== state.sha256) {
    throw new FormatError('MALFORMED', 'the stored keyring is not the one the state names');
  }
  const keyring = parseKeyring(stored.bytes);
  const h = keyring.header;
  if (h.listId !== anchor.listId) throw new FormatError('LIST_MISMATCH', `stored keyring is for list ${h.listId}`);
  if (state !== undefined && h.version !== state.version) {
    throw new FormatError('MALFORMED', 'the stored keyring version disagrees with the state');
  }
  const own = verifyKeyringSignatures(stored.bytes, stored.signatures, rootsOf(keyring), 'itself');
  if (own.trustedComment !== keyringTrustedComment(h)) {
    throw new FormatError('COMMENT_MISMATCH', 'keyring trusted comment disagrees with its header');
  }
  return Object.freeze({ keyring, bytes: stored.bytes, signatures: Object.freeze([...stored.signatures]), sha256 });
}

export interface KeyringContext {
  readonly source: ReleaseSource;
  readonly anchor: KeyringAnchor;
  /** Seconds since the epoch: the poll's one `now`. */
  readonly now: number;
}

/** What a walk found. Commit `accepted` (with the list state, SPEC.md 5.4) even when `error` is set. */
export interface KeyringWalk {
  /** The keyring in force after the walk: the last accepted, else the stored one; undefined: none yet (version 0). */
  readonly current: SignedKeyring | undefined;
  /** The keyrings accepted by this walk, in version order, each checked by the one before it. */
  readonly accepted: readonly SignedKeyring[];
  /**
   * True when the walk ended on "not found" (404 or 410) for the next version: `current` is the newest. False when
   * it stopped at 16 steps (walk on at the next poll) or on `error`.
   */
  readonly complete: boolean;
  /**
   * Why the walk stopped early: a refused keyring (its code) or FETCH_FAILED. No index is accepted this poll:
   * a fetch that failed is never read as "no newer keyring".
   */
  readonly error?: FormatError;
}

/**
 * Fetches `X.minisig` and `X.<KEYID>.minisig` for each key id not yet asked for, at most 8 found in all
 * (TOO_LARGE past that, SPEC.md 4), each capped at 2 KiB; absent files are skipped.
 */
async function fetchKeyringSignatures(
  source: ReleaseSource,
  path: string,
  names: readonly string[],
  have: Uint8Array[],
): Promise<Uint8Array[]> {
  const got = await Promise.all(names.map((n) => source.get(n, { maxBytes: MAX_SIGNATURE_FILE_BYTES })));
  const out = [...have, ...got.flatMap((g) => (g.status === 'ok' ? [g.body] : []))];
  if (out.length > MAX_SIGNATURES_PER_FILE) {
    throw new FormatError('TOO_LARGE', `more than ${MAX_SIGNATURES_PER_FILE} signatures for ${path}`);
  }
  return out;
}

/**
 * One keyring fetch: `keyring/<version>.hwk` (at most 16 KiB), and the signature files of the roots that must
 * sign it: first those of `previous` (and `X.minisig`), whose threshold is checked over the raw bytes before the
 * file is parsed; then those of the file's own roots not asked for yet. `absent` only for "not found" (HTTP 404 or
 * 410, no such file); every other failure throws (FETCH_FAILED, TOO_LARGE).
 */
async function fetchCandidate(
  source: ReleaseSource,
  previous: KeyringRoots,
  version: number,
): Promise<{ status: 'absent' } | { status: 'ok'; bytes: Uint8Array; signatures: Uint8Array[] }> {
  const path = keyringPath(version);
  const res = await source.get(path, { maxBytes: MAX_KEYRING_BYTES });
  if (res.status === 'absent') return { status: 'absent' };
  if (res.status !== 'ok') throw new FormatError('FETCH_FAILED', `${path}: the source answered not-modified`);
  const asked = new Set<string>([
    signatureFileName(path),
    ...previous.roots.map((k) => signatureFileName(path, k.keyId)),
  ]);
  const first = await fetchKeyringSignatures(source, path, [...asked], []);
  // The file's own roots are known only once it is parsed, which waits until the previous roots have signed it.
  verifyKeyringSignatures(res.body, first, previous, whoseRoots(previous));
  const more = parseKeyring(res.body)
    .roots.map((k) => signatureFileName(path, k.keyId))
    .filter((n) => !asked.has(n));
  return { status: 'ok', bytes: res.body, signatures: await fetchKeyringSignatures(source, path, more, first) };
}

/**
 * SPEC.md 5.1: from `stored` (or the anchor) fetches `keyring/<v+1>.hwk`, accepts it with {@link acceptKeyring},
 * then tries v+2, until one is not found (`complete`), 16 steps were taken, or one fails (`error`, with its code;
 * the keyrings accepted before it stand). Never throws a FormatError: every failure is the result's `error`.
 */
export async function followKeyrings(ctx: KeyringContext, stored?: SignedKeyring): Promise<KeyringWalk> {
  let current = stored;
  const accepted: SignedKeyring[] = [];
  if (stored !== undefined && stored.keyring.header.listId !== ctx.anchor.listId) {
    const error = new FormatError('LIST_MISMATCH', `stored keyring is for list ${stored.keyring.header.listId}`);
    return { current, accepted, complete: false, error };
  }
  for (let step = 0; step < MAX_KEYRING_STEPS; step++) {
    const previous = current ?? ctx.anchor;
    const roots = current ? rootsOf(current.keyring) : anchorRoots(ctx.anchor);
    try {
      const got = await fetchCandidate(ctx.source, roots, roots.version + 1);
      if (got.status === 'absent') return { current, accepted, complete: true };
      current = acceptKeyring(previous, got, ctx.now);
      accepted.push(current);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      return { current, accepted, complete: false, error: err };
    }
  }
  return { current, accepted, complete: false };
}

/**
 * SPEC.md 5.2 and 5.3: the trust store a poll verifies the index, FULL and DELTA under, after a walk: the current
 * keyring's signing keys and sign-threshold, and its version for the index's `keyring:` check. Throws the walk's
 * error (a refused keyring or a failed fetch: no index this poll); KEYRING_WITHHELD when no keyring is published
 * (version 0 has roots only); KEYRING_EXPIRED when `now` is not before the current keyring's `expires` (read
 * literally: no skew for an expiry the client enforces, as for the list in force, SPEC.md 4.5).
 */
export function currentKeyringTrust(walk: Pick<KeyringWalk, 'current' | 'error'>, now: number): TrustStore {
  if (walk.error) throw walk.error;
  const k = walk.current?.keyring;
  if (k === undefined) throw new FormatError('KEYRING_WITHHELD', `${keyringPath(1)} is not published`);
  if (!(now < k.header.expires)) {
    throw new FormatError('KEYRING_EXPIRED', `keyring ${k.header.version} has expired: no index is accepted under it`);
  }
  return keyringTrustStore(k);
}
