/**
 * The one place the list sync builds a matcher (SPEC.md 1.3, 1.4) from a verified FULL's entry arrays.
 */
import { HashKey, ListMatcher, type HashKeyRef, type ListKey } from '@hashwall/format';

import type { EntryArrays } from './types.js';

export { ListMatcher };

/** The hash key of a list: the one in its header (public mode), else the licensed key configured for it. */
export function hashKeyFor(ref: HashKeyRef, listKey: ListKey | undefined): HashKey {
  if (ref.mode === 'public') return new HashKey(Buffer.from(ref.key, 'hex'));
  if (listKey === undefined || listKey.id !== ref.id) {
    // The worker refuses such a list (UNKNOWN_HASH_KEY) before it gets here.
    throw new Error(`internal: no configured hash key "${ref.id}"`);
  }
  return listKey.hashKey();
}

export function buildMatcher(listId: string, key: HashKey, entries: EntryArrays): ListMatcher {
  return new ListMatcher(listId, key, entries);
}
