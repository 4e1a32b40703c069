/**
 * What both holders of lists share: the list sync of one process (registry.ts and sync.ts) and a DNS worker's
 * lists, read from the primary's state directory (cluster/follower.ts). Each decides when a list changes; here is
 * what a change means to the view, whether a list's configuration changed on reload, a list's trust as plain data
 * for the thread that verifies it, its hash key, and the time rules on what is in force.
 */
import { createHash } from 'node:crypto';

import { HashKey, type HashKeyRef, type ListKey, type ListMatcher, type MinisignPublicKey } from '@hashwall/format';

import type { GuardSet, ResolvedList, ResolvedLog } from '../config/load.js';
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

/** A minisign public key as plain data (MinisignPublicKey's fields: TrustStore checks them again). */
export interface KeyData {
  readonly keyId: string;
  readonly keyNum: Uint8Array;
  readonly key: Uint8Array;
}

function keyData(keys: readonly MinisignPublicKey[]): KeyData[] {
  return keys.map((k) => ({ keyId: k.keyId, keyNum: Uint8Array.from(k.keyNum), key: Uint8Array.from(k.key) }));
}

/**
 * What the thread that reads, verifies or polls a list needs: plain data (structured clone). The list's trust
 * (plain signing keys, or the roots of a list anchored on them), its release log, its hash key, and the guard set
 * every new list is checked against.
 */
export interface ListTrust {
  readonly listId: string;
  readonly stateDir: string;
  /** Trusted signing keys for this list-id (none for a list anchored on root keys). */
  readonly keys: readonly KeyData[];
  readonly threshold: number;
  /** SPEC.md 5: the roots (version 0) and their threshold, for a list anchored on root keys. */
  readonly anchor?: { readonly roots: readonly KeyData[]; readonly rootThreshold: number };
  /** SPEC.md 6: the release log, when one is configured. */
  readonly log?: ResolvedLog;
  /** Licensed hash-key ids the daemon holds for this list (empty: only public-mode lists can be used). */
  readonly hashKeyIds: readonly string[];
  /** The licensed hash key itself (hex), which the guard names are hashed with (a public list carries its own). */
  readonly listKeyHex?: string;
  readonly maxListBytes: number;
  /** The guard set (lists/hold.ts): names, where each comes from, and the change cap. */
  readonly guard: {
    readonly names: readonly string[];
    readonly from: readonly string[];
    readonly maxChangePercent: number;
    readonly maxChangeCount: number;
  };
}

export function listTrust(resolved: ResolvedList, stateDir: string, guard: GuardSet): ListTrust {
  const c = resolved.config;
  const policy = resolved.trust?.get(c.id);
  if (!policy && !resolved.anchor) throw new Error(`internal: no trust policy for list ${c.id}`);
  return {
    listId: c.id,
    stateDir,
    keys: keyData(policy?.keys ?? []),
    threshold: policy?.threshold ?? 1,
    ...(resolved.anchor
      ? { anchor: { roots: keyData(resolved.anchor.roots), rootThreshold: resolved.anchor.rootThreshold } }
      : {}),
    ...(resolved.log ? { log: resolved.log } : {}),
    hashKeyIds: resolved.listKey ? [resolved.listKey.id] : [],
    ...(resolved.listKey ? { listKeyHex: resolved.listKey.keyHex() } : {}),
    maxListBytes: c.maxListBytes,
    guard: {
      names: guard.names.map((g) => g.name),
      from: guard.names.map((g) => g.from),
      maxChangePercent: guard.maxChangePercent,
      maxChangeCount: guard.maxChangeCount,
    },
  };
}

/**
 * A stable digest of everything that configures a list (its settings, its trust, hash key, log, the guard set and
 * the state directory): equal on reload means the list is kept as it runs, with its matcher.
 */
export function listFingerprint(resolved: ResolvedList, stateDir: string, guard: GuardSet): string {
  const t = listTrust(resolved, stateDir, guard);
  const hex = (keys: readonly KeyData[]) => keys.map((k) => `${k.keyId}:${Buffer.from(k.key).toString('hex')}`);
  return createHash('sha256')
    .update(
      JSON.stringify({
        config: resolved.config,
        trust: { ...t, keys: hex(t.keys), anchor: t.anchor && { ...t.anchor, roots: hex(t.anchor.roots) } },
      }),
    )
    .digest('hex');
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
