/**
 * Types shared by the list sync: what the worker reports to the main thread, the events the registry emits, and
 * the figures it keeps per list for the metrics. Plain data only: everything here crosses a worker boundary or
 * feeds a metric.
 */
import { ERROR_CODES, type ErrorCode, type HashKeyRef, type MatcherParts } from '@hashwall/format';
import type { Validators } from '@hashwall/release-client';
import { TLOG_ERROR_CODES, type TlogErrorCode } from '@hashwall/tlog';

import type { ListView } from '../types/lists.js';
import type { GuardFacts, HeldRecord, HoldReasons, ReleaseRecord } from './hold.js';
import type { KeyringFile, StoredState } from './store.js';

/**
 * Why a poll or a stored list was refused: a FormatError code of @hashwall/format (keyrings included, SPEC.md 5),
 * a release-log code of @hashwall/tlog (`LOG_*`, SPEC.md 6), or one of the daemon's own:
 * - `LOG_INDEX_REQUIRED`: an index without `log-index` for a list configured with a release log;
 * - `STORE_FAILED`: the verified files could not be written to the state directory (nothing was swapped);
 * - `WORKER_FAILED`: the worker doing the work crashed or missed its deadline (it is replaced).
 */
export type SyncErrorCode = ErrorCode | TlogErrorCode | 'LOG_INDEX_REQUIRED' | 'STORE_FAILED' | 'WORKER_FAILED';

/** Every code a refusal can carry (the metrics count each one from 0). */
export const SYNC_ERROR_CODES: readonly SyncErrorCode[] = Object.freeze([
  ...ERROR_CODES,
  ...TLOG_ERROR_CODES,
  'LOG_INDEX_REQUIRED',
  'STORE_FAILED',
  'WORKER_FAILED',
]);

/**
 * What a poll attempt against one mirror ended with. `held`: a verified list the guard held (hold.ts): not
 * applied, the list in force stays until the operator releases it.
 */
export type PollOutcome = 'updated' | 'heartbeat' | 'unchanged' | 'not-modified' | 'held' | 'rejected';

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
  /** Entries left out of the matcher because they block a guard name (hold.ts), and where those names are. */
  readonly exempted: number;
  readonly guardPlaces: readonly string[];
}

/** The trust a list's core holds now, for the figures: its keyring and its release log's size. */
export interface TrustFacts {
  /** SPEC.md 5: the current keyring's version and expiry (a list anchored on root keys). */
  readonly keyringVersion?: number;
  readonly keyringExpires?: number;
  /** SPEC.md 6: the size of the checkpoint last accepted (a list with a release log). */
  readonly logSize?: number;
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
  /** SPEC.md 5.4: the keyring version it was under; a walk that ends lower is a rollback. */
  readonly keyringVersion?: number;
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
  /** The last commit's record (the list state, its keyrings and checkpoint). */
  readonly stored?: StoredState;
  readonly current?: FullFacts;
  /** The guard names the list in force blocks (left out of its matcher): a later list is held only for new ones. */
  readonly guarded?: GuardFacts;
  readonly floor?: Floor;
  /**
   * The keyrings and checkpoint in force (a few KiB at most), re-opened by the next worker. They may be newer than
   * `stored`'s: a walk accepted a keyring that is committed with the next list state (no state yet) or was not
   * written (a disk error: written at the next commit).
   */
  readonly keyring?: KeyringFile;
  readonly indexKeyring?: KeyringFile;
  readonly checkpoint?: Uint8Array;
  readonly trustDirty?: boolean;
  readonly validators: readonly (readonly [mirror: number, validators: readonly (readonly [string, Validators])[]])[];
}

/** Every reply carries the trust the core holds after it (keyring, log size), for the figures. */
interface WithTrust {
  readonly trust?: TrustFacts;
}

export type OpenReply = WithTrust &
  (
    | { readonly status: 'absent' }
    | { readonly status: 'loaded'; readonly meta: ListMeta; readonly entries: EntryArrays }
    | {
        readonly status: 'unusable';
        readonly code: SyncErrorCode;
        readonly message: string;
        /** Present when state.json itself was readable. */
        readonly floor?: Floor;
      }
  );

export type PollReply = WithTrust &
  (
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
        /** The operator's release that let a held list through (hold.ts). */
        readonly released?: ReleaseRecord;
      }
    | { readonly kind: 'held'; readonly held: HeldRecord }
    | {
        readonly kind: 'rejected';
        readonly code: SyncErrorCode;
        readonly message: string;
        /** LOG_SPLIT_VIEW: where both checkpoints were kept (none when the evidence cap was reached). */
        readonly evidence?: string;
      }
  );

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
  /** The guard held a verified list (hold.ts): once per held serial. */
  held: [e: { readonly listId: string; readonly serial: number; readonly reasons: HoldReasons }];
  /** An operator's release let a held list through; it is in force now. */
  released: [e: { readonly listId: string; readonly serial: number; readonly by: string; readonly reason: string }];
  /** The keyring walk reached a newer keyring (SPEC.md 5.1). */
  keyring: [e: { readonly listId: string; readonly version: number; readonly expires: number }];
  /** The release log showed a split view (SPEC.md 6): two signed checkpoints that cannot both be true. */
  'split-view': [e: { readonly listId: string; readonly mirror: string; readonly evidence?: string }];
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
  /** The serial the guard holds (hold.ts), or null. */
  readonly heldSerial: number | null;
  /** Entries of the list in force left out because they block a guard name. */
  readonly exemptedEntries: number;
  /** SPEC.md 5: the current keyring's version and expiry, for a list anchored on root keys. */
  readonly keyringVersion: number | null;
  readonly keyringExpires: number | null;
  /** SPEC.md 6: the size of the release log's checkpoint last accepted. */
  readonly logSize: number | null;
  /** Split views of the release log seen (each alarmed; the evidence kept in the state directory). */
  readonly splitViews: number;
}
