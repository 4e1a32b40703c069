/**
 * Types shared by the list sync: what the worker reports to the main thread, the events the registry emits, and
 * the figures it keeps per list for the metrics. Plain data only: everything here crosses a worker boundary or
 * feeds a metric.
 */
import { ERROR_CODES, type ErrorCode, type HashKeyRef, type ListState, type MatcherParts } from '@hashwall/format';
import type { Validators } from '@hashwall/release-client';

import type { ListView } from '../types/lists.js';

/**
 * Why a poll or a stored list was refused: a FormatError code of @hashwall/format, or one of the daemon's own
 * - `STORE_FAILED`: the verified files could not be written to the state directory (nothing was swapped);
 * - `WORKER_FAILED`: the worker doing the work crashed or missed its deadline (it is replaced).
 */
export type SyncErrorCode = ErrorCode | 'STORE_FAILED' | 'WORKER_FAILED';

/** Every code a refusal can carry (the metrics count each one from 0). */
export const SYNC_ERROR_CODES: readonly SyncErrorCode[] = Object.freeze([
  ...ERROR_CODES,
  'STORE_FAILED',
  'WORKER_FAILED',
]);

/** What a poll attempt against one mirror ended with. */
export type PollOutcome = 'updated' | 'heartbeat' | 'unchanged' | 'not-modified' | 'rejected';

/** The facts of a verified list the main thread needs: from the signed index and the FULL it names. */
export interface ListMeta {
  readonly listId: string;
  readonly serial: number;
  readonly seq: number;
  /** FULL `created` and `expires`, seconds since the epoch. */
  readonly created: number;
  readonly expires: number;
  /** Index `created`, `expires` and `min-poll` (seconds). */
  readonly indexCreated: number;
  readonly indexExpires: number;
  readonly minPoll: number;
  readonly entries: number;
  readonly bodySha256: string;
  readonly hashKey: HashKeyRef;
}

/**
 * A FULL's entries as handed over from the worker: the matcher's arrays, built there with prepareMatcher, so the
 * main thread only wraps them (the buffers are transferred, not copied).
 */
export type EntryArrays = MatcherParts;

/** The high-water marks of a store whose files could not be used (they still bound what a fresh poll accepts). */
export interface Floor {
  readonly serial: number;
  readonly seq: number;
  readonly fullSha256: string;
}

/** What the list's core remembers of the enforced FULL between polls: its header fields, not its entries. */
export interface FullFacts {
  readonly listId: string;
  readonly created: number;
  readonly expires: number;
  readonly entries: number;
  readonly bodySha256: string;
  readonly hashKey: HashKeyRef;
}

/**
 * Everything a list's core keeps between requests, as plain data: a worker thread ends once it has answered (so that
 * its heap, with whatever a million-entry load left in it, goes back to the system) and the next one starts from
 * this. A few hundred bytes: the state, the enforced FULL's header fields, the high-water marks of an unusable
 * store, and the validators of each HTTP mirror's index (so a poll still sends a conditional GET).
 */
export interface CoreResume {
  readonly state?: ListState;
  readonly current?: FullFacts;
  readonly floor?: Floor;
  readonly validators: readonly (readonly [mirror: number, validators: readonly (readonly [string, Validators])[]])[];
}

export type OpenReply =
  | { readonly status: 'absent' }
  | { readonly status: 'loaded'; readonly meta: ListMeta; readonly entries: EntryArrays }
  | {
      readonly status: 'unusable';
      readonly code: SyncErrorCode;
      readonly message: string;
      /** Present when state.json itself was readable. */
      readonly floor?: Floor;
    };

export type PollReply =
  | { readonly kind: 'not-modified' }
  | { readonly kind: 'unchanged'; readonly meta: ListMeta }
  | { readonly kind: 'heartbeat'; readonly meta: ListMeta }
  | {
      readonly kind: 'updated';
      readonly meta: ListMeta;
      readonly entries: EntryArrays;
      readonly via: 'delta' | 'full';
      /** Why the delta was not used, when one was listed for the stored serial and failed. */
      readonly deltaError?: { readonly code: SyncErrorCode; readonly message: string };
    }
  | { readonly kind: 'rejected'; readonly code: SyncErrorCode; readonly message: string };

// -------------------------------------------------------------------------------------------------------------
// Events (consumed by the metrics and by tests). Every event names its list; none carries a list entry.
// -------------------------------------------------------------------------------------------------------------

interface Attempt {
  readonly listId: string;
  /** The mirror this poll ran against (a URL without credentials). */
  readonly mirror: string;
  /** Wall-clock milliseconds the attempt took. */
  readonly durationMs: number;
}

export interface UpdatedEvent extends Attempt {
  readonly serial: number;
  readonly seq: number;
  readonly entries: number;
  readonly via: 'delta' | 'full';
}

export interface HeartbeatEvent extends Attempt {
  readonly serial: number;
  readonly seq: number;
}

export interface RejectedEvent extends Attempt {
  readonly code: SyncErrorCode;
  readonly message: string;
}

export interface ListEventMap {
  /** A new view for queries (generation + 1). */
  swap: [view: ListView];
  /** A list was put in force from the state directory (at start or after a worker restart). */
  loaded: [e: { readonly listId: string; readonly serial: number; readonly seq: number; readonly entries: number }];
  updated: [e: UpdatedEvent];
  heartbeat: [e: HeartbeatEvent];
  unchanged: [e: Attempt];
  'not-modified': [e: Attempt];
  rejected: [e: RejectedEvent];
  /** A delta was listed for the enforced serial but failed; the FULL was fetched instead. */
  'delta-fallback': [e: { readonly listId: string; readonly code: SyncErrorCode; readonly message: string }];
  /** Every mirror failed or refused in one round; the next try is in `retryInMs`. */
  'round-failed': [e: { readonly listId: string; readonly failures: number; readonly retryInMs: number }];
  /** The enforced index went stale (SPEC.md 4.5), or became fresh again. */
  stale: [e: { readonly listId: string; readonly stale: boolean; readonly indexExpires: number }];
  /** The enforced FULL passed its expiry (SPEC.md 4.5); `action` is the operator's on-expired. */
  expired: [e: { readonly listId: string; readonly expires: number; readonly action: 'keep' | 'drop' }];
  /** The state directory of a list could not be used; it was ignored. */
  'store-unusable': [e: { readonly listId: string; readonly code: SyncErrorCode; readonly message: string }];
  /** onStartWithoutList=wait ran out: the daemon serves without this list. */
  'start-timeout': [e: { readonly listId: string; readonly waitedMs: number }];
  /** The configured canary name is not blocked by a newly enforced list. */
  'canary-missing': [e: { readonly listId: string; readonly serial: number }];
}

/** The figures of one list, readable at any time (for /metrics and /readyz). Times are epoch seconds. */
export interface ListStats {
  readonly id: string;
  /** A list is in force for queries. */
  readonly enforced: boolean;
  /** Where the enforced list came from. */
  readonly origin: 'none' | 'store' | 'network';
  readonly entries: number;
  readonly serial: number | null;
  readonly seq: number | null;
  readonly fullExpires: number | null;
  readonly indexExpires: number | null;
  /** The poll interval floor in force, seconds: max(index min-poll, 60). */
  readonly minPollSeconds: number;
  readonly lastAttemptAt: number | null;
  /** Last poll that ended updated, heartbeat, unchanged or not-modified. */
  readonly lastSuccessAt: number | null;
  /** Last time a new serial was put in force. */
  readonly lastUpdateAt: number | null;
  readonly stale: boolean;
  /** The enforced FULL is past its expiry (kept or dropped per on-expired). */
  readonly expired: boolean;
  /** Rounds in a row in which every mirror failed. */
  readonly consecutiveFailures: number;
  readonly outcomes: Readonly<Record<PollOutcome, number>>;
  readonly rejections: Readonly<Partial<Record<SyncErrorCode, number>>>;
  readonly deltaFallbacks: number;
  readonly storeUnusable: number;
}
