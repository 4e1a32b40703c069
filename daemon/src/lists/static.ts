/** A ListProvider whose view changes only when `set` is called: for tests, benchmarks and a daemon with no lists. */
import type { ListProvider, ListView, Matcher } from '../types/lists.js';

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
