/**
 * Re-opening what a list's state directory holds, shared by the list sync's worker (core.ts) and a DNS worker's
 * store reader (cluster/store-reader.ts), so both put in force exactly the same list: the stored index verified
 * with the configured keys, or for a list anchored on root keys under the stored keyring it was verified under
 * (SPEC.md 5.4: re-opened by its digest, version and own roots, the chain before it not walked again); the FULL by
 * its size and SHA-256 against that index (SPEC.md 4.3, 7); a licensed hash key the daemon holds; and the guard
 * set's names left out of the matcher (hold.ts). Nothing here touches the network or writes.
 */
import {
  FormatError,
  TrustStore,
  keyringTrustStore,
  openStoredKeyring,
  openStoredMatcherFrom,
  type FullMatcher,
  type IndexList,
  type ListState,
  type SignedKeyring,
} from '@hashwall/format';

import { guardParts, type Guarded } from './hold.js';
import type { KeyringFile, KeyringRef, StoredOpen, StoredState } from './store.js';
import type { ListTrust } from './view.js';

/** The trust store of a list trusted by plain signing keys (none for a list anchored on root keys). */
export function plainTrustStore(trust: ListTrust): TrustStore | undefined {
  if (trust.anchor) return undefined;
  return new TrustStore([[trust.listId, { keys: trust.keys, threshold: trust.threshold }]]);
}

/** The SPEC.md 4.3 state of a stored record (exactly its fields: the format compares them whole). */
export function listStateOf(s: StoredState): ListState {
  return { listId: s.listId, serial: s.serial, seq: s.seq, bodySha256: s.bodySha256, fullSha256: s.fullSha256 };
}

/** A list hashed with a licensed key the daemon does not hold is refused (UNKNOWN_HASH_KEY). */
export function checkHashKey(trust: ListTrust, full: Pick<FullMatcher, 'header'>): void {
  const ref = full.header.hashKey;
  if (ref.mode === 'licensed' && !trust.hashKeyIds.includes(ref.id)) {
    throw new FormatError('UNKNOWN_HASH_KEY', `the list is hashed with key "${ref.id}", which is not configured`);
  }
}

function reopenKeyring(trust: ListTrust, file: KeyringFile | undefined, ref: KeyringRef): SignedKeyring {
  if (file === undefined) throw new FormatError('MALFORMED', `the stored keyring ${ref.version} is missing`);
  return openStoredKeyring({ listId: trust.listId }, file, { version: ref.version, sha256: ref.sha256 });
}

/** A stored list, re-verified, with its matcher's parts guarded. */
export interface OpenedList {
  readonly state: StoredState;
  readonly index: IndexList;
  readonly full: FullMatcher;
  /** SPEC.md 5.4: the current keyring, and the one the index was verified under (the same unless older). */
  readonly keyring?: SignedKeyring;
  readonly indexKeyring?: SignedKeyring;
  /** SPEC.md 6: the checkpoint last accepted, for a list with a release log. */
  readonly checkpoint?: Uint8Array;
  readonly guarded: Guarded;
}

/**
 * Re-verifies what `ListStore.openRead` read (see the top of this file). Throws a FormatError (or an Error for a
 * damaged file) when the store cannot be used; the caller keeps its list in force or starts without one.
 */
export function openStoredList(trust: ListTrust, read: Extract<StoredOpen, { status: 'ok' }>): OpenedList {
  const { state, files } = read;
  let store: TrustStore;
  let keyring: SignedKeyring | undefined;
  let indexKeyring: SignedKeyring | undefined;
  if (trust.anchor) {
    if (!state.keyring) {
      throw new FormatError('KEYRING_REQUIRED', 'the stored list was not taken in under a keyring of this list');
    }
    keyring = reopenKeyring(trust, files.keyring, state.keyring);
    indexKeyring = state.indexKeyring ? reopenKeyring(trust, files.indexKeyring, state.indexKeyring) : keyring;
    store = keyringTrustStore(indexKeyring.keyring);
  } else {
    store = plainTrustStore(trust)!;
  }
  // The stored FULL is read in ~1 MiB pieces: hashed against the signed index, then parsed (never held whole).
  const opened = openStoredMatcherFrom(
    { trust: store, listId: trust.listId, maxListBytes: trust.maxListBytes },
    files,
    listStateOf(state),
  );
  checkHashKey(trust, opened.full);
  return {
    state,
    index: opened.index,
    full: opened.full,
    ...(keyring ? { keyring } : {}),
    ...(indexKeyring ? { indexKeyring } : {}),
    ...(trust.log && files.checkpoint ? { checkpoint: files.checkpoint } : {}),
    guarded: guardParts(trust, opened.full.parts, opened.full.header.hashKey),
  };
}
