/**
 * The interface between the list sync (src/lists and the DNS workers' cluster/follower.ts, which implement
 * ListProvider) and the query path (which reads it). A ListView is immutable: a provider publishes a new one, with
 * generation + 1, on every change, and the query path reads `view()` once per query, so a query sees the old lists
 * or the new ones, never a mix.
 */
import type { ListMatcher } from '@hashwall/format';

export type Matcher = ListMatcher;

export interface ListView {
  /** Increases on every swap. Verdicts and cache entries remember the generation they were made under. */
  readonly generation: number;
  /** One matcher per loaded list, in configuration order (the first list wins a tie, see MatcherSet). */
  readonly matchers: readonly Matcher[];
  /** A list with onStartWithoutList=refuse has no valid list yet: every query is refused. */
  readonly refuseAll: boolean;
}

export interface ListProvider {
  view(): ListView;
  on(event: 'swap', fn: (v: ListView) => void): unknown;
}
