/** The list sync (issue 5): every configured list kept verified, persisted and in force for the query path. */
export { ListRegistry, createListRegistry, type ListRegistryOptions } from './registry.js';
export type { ListView, ListProvider } from './view.js';
export type { SyncTiming } from './sync.js';
export type {
  ListEventMap,
  ListMeta,
  ListStats,
  PollOutcome,
  SyncErrorCode,
  UpdatedEvent,
  HeartbeatEvent,
  RejectedEvent,
} from './types.js';
export { ListStore, STATE_FILE, type StoredState } from './store.js';
