/** What crosses the boundaries of the worker model: the store reader thread, and the primary's IPC messages. */
import type { HashKeyRef, MatcherParts } from '@hashwall/format';

import type { ListTrust } from '../lists/view.js';

/** What a store reader thread is started with: the list's trust (plain data: structured clone). */
export type ReaderConfig = ListTrust;

export type ReaderReply =
  | { readonly status: 'absent' }
  | { readonly status: 'unusable'; readonly message: string }
  | {
      readonly status: 'loaded';
      readonly serial: number;
      readonly bodySha256: string;
      /** The FULL's expiry (SPEC.md 4.5), for onExpired: drop. */
      readonly expires: number;
      readonly hashKey: HashKeyRef;
      /** The matcher's parts, the entries that block a guard name left out (lists/hold.ts). */
      readonly entries: MatcherParts;
      readonly exempted: number;
    };

/**
 * Messages from the primary to its DNS workers (over the cluster IPC channel). Namespaced by `hashwall` so that
 * other users of the channel (prom-client's AggregatorRegistry) pass by.
 */
export type PrimaryMessage =
  /** The primary's list sync swapped a list: re-read the state directory. */
  { readonly hashwall: 'lists' };

/** Messages from a DNS worker to the primary. */
export type WorkerMessage =
  /** Listening (after its lists were read). */
  { readonly hashwall: 'ready'; readonly addresses: unknown };
