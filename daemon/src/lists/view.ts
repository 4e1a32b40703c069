/**
 * What the query path reads: the lists in force, one immutable object per generation. The interface is the query
 * path's (daemon/src/policy/lists.ts); the registry implements ListProvider.
 */
export type { ListProvider, ListView, Matcher } from '../policy/lists.js';
