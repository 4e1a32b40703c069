/**
 * The interface between list sync (daemon/src/lists, which implements ListProvider) and the query path (which
 * consumes it). A ListView is immutable: list sync publishes a new one, with generation + 1, on every change, and
 * the query path reads `view()` once per query, so a query sees the old lists or the new ones, never a mix.
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

/** A provider whose view changes only when `set` is called: for tests, and for a daemon with no lists. */
export class StaticListProvider implements ListProvider {
  #view: ListView;
  readonly #listeners: ((v: ListView) => void)[] = [];

  constructor(matchers: readonly Matcher[] = [], refuseAll = false) {
    this.#view = Object.freeze({ generation: 1, matchers: Object.freeze([...matchers]), refuseAll });
  }

  view(): ListView {
    return this.#view;
  }

  on(_event: 'swap', fn: (v: ListView) => void): this {
    this.#listeners.push(fn);
    return this;
  }

  /** Publishes a new view (generation + 1) and tells the listeners. */
  set(matchers: readonly Matcher[], refuseAll = false): ListView {
    const v = Object.freeze({
      generation: this.#view.generation + 1,
      matchers: Object.freeze([...matchers]),
      refuseAll,
    });
    this.#view = v;
    for (const fn of this.#listeners) fn(v);
    return v;
  }
}
