/**
 * What both holders of lists share: the list sync of one process (registry.ts and sync.ts) and a DNS worker's
 * lists, read from the primary's state directory (cluster/follower.ts). Each decides when a list changes; here is
 * what a change means to the view, whether a list's configuration changed on reload, a list's trust as plain data
 * for the thread that verifies it, its hash key, and the time rules on what is in force.
 */
import { createHash } from 'node:crypto';

import { HashKey, type HashKeyRef, type ListKey, type ListMatcher } from '@hashwall/format';

import type { ResolvedList } from '../config/load.js';
import type { ListConfig } from '../config/schema.js';
import type { ListView } from '../types/lists.js';

/**
 * The view of a set of lists: one frozen ListView per generation. A new one is published (generation + 1, `onSwap`
 * told) only when what the lists contribute changed: another matcher, one more or less, or refuseAll flipped.
 */
export class ViewPublisher {
  #current: ListView;
  readonly #onSwap: (view: ListView) => void;

  constructor(refuseAll: boolean, onSwap: (view: ListView) => void) {
    this.#current = Object.freeze({ generation: 0, matchers: Object.freeze([]), refuseAll });
    this.#onSwap = onSwap;
  }

  /** The view in force. Read it once per query: it is replaced, never changed. */
  get view(): ListView {
    return this.#current;
  }

  /** Publishes `matchers` (configuration order) and `refuseAll` unless that is the view in force; true if it did. */
  publish(matchers: readonly ListMatcher[], refuseAll: boolean): boolean {
    const old = this.#current;
    if (
      refuseAll === old.refuseAll &&
      matchers.length === old.matchers.length &&
      matchers.every((m, i) => m === old.matchers[i])
    ) {
      return false;
    }
    this.#current = Object.freeze({
      generation: old.generation + 1,
      matchers: Object.freeze([...matchers]),
      refuseAll,
    });
    this.#onSwap(this.#current);
    return true;
  }
}

/**
 * A stable digest of everything that configures a list (its settings, trusted keys, threshold, hash key and state
 * directory): equal on reload means the list is kept as it runs, with its matcher.
 */
export function listFingerprint(resolved: ResolvedList, stateDir: string): string {
  const policy = resolved.trust.get(resolved.config.id);
  const keys = (policy?.keys ?? []).map((k) => `${k.keyId}:${Buffer.from(k.key).toString('hex')}`);
  const listKey = resolved.listKey ? `${resolved.listKey.id}:${resolved.listKey.keyHex()}` : '';
  return createHash('sha256')
    .update(JSON.stringify({ config: resolved.config, keys, threshold: policy?.threshold, listKey, stateDir }))
    .digest('hex');
}

/** What the thread that reads and verifies a list's state directory needs: plain data (structured clone). */
export interface ListTrust {
  readonly listId: string;
  readonly stateDir: string;
  /** Trusted keys for this list-id (MinisignPublicKey fields; TrustStore checks them again). */
  readonly keys: readonly { readonly keyId: string; readonly keyNum: Uint8Array; readonly key: Uint8Array }[];
  readonly threshold: number;
  /** Licensed hash-key ids the daemon holds for this list (empty: only public-mode lists can be used). */
  readonly hashKeyIds: readonly string[];
  readonly maxListBytes: number;
}

export function listTrust(resolved: ResolvedList, stateDir: string): ListTrust {
  const c = resolved.config;
  const policy = resolved.trust.get(c.id);
  if (!policy) throw new Error(`internal: no trust policy for list ${c.id}`);
  return {
    listId: c.id,
    stateDir,
    keys: policy.keys.map((k) => ({ keyId: k.keyId, keyNum: Uint8Array.from(k.keyNum), key: Uint8Array.from(k.key) })),
    threshold: policy.threshold,
    hashKeyIds: resolved.listKey ? [resolved.listKey.id] : [],
    maxListBytes: c.maxListBytes,
  };
}

/** The hash key of a list: the one in its header (public mode), else the licensed key configured for it. */
export function hashKeyFor(ref: HashKeyRef, listKey: ListKey | undefined): HashKey {
  if (ref.mode === 'public') return new HashKey(Buffer.from(ref.key, 'hex'));
  if (listKey === undefined || listKey.id !== ref.id) {
    // The thread that verified the list refuses such a list (UNKNOWN_HASH_KEY) before it gets here.
    throw new Error(`internal: no configured hash key "${ref.id}"`);
  }
  return listKey.hashKey();
}

/**
 * SPEC.md 4.5: whether a time `expires` (an index's, or a FULL's) has passed at `nowSeconds`: a stale index, an
 * expired FULL. At `expires` exactly, never earlier: the 300 s skew only widens what a poll accepts.
 */
export function pastExpiry(nowSeconds: number, expires: number): boolean {
  return !(nowSeconds < expires);
}

/** Whether a list in force whose FULL expires at `expires` is taken out of the view (onExpired: drop). */
export function dropped(config: ListConfig, nowSeconds: number, expires: number): boolean {
  return config.onExpired === 'drop' && pastExpiry(nowSeconds, expires);
}

/** onStartWithoutList=refuse and no valid list yet: every query is refused. */
export function refusing(config: ListConfig, hadList: boolean): boolean {
  return config.onStartWithoutList === 'refuse' && !hadList;
}
