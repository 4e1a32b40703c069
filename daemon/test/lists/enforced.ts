// What a client sees: the names blocked and passed by the lists in force.
import type { TAP } from 'tap';

import type { Harness } from './helpers.ts';
import { verdictOf } from './helpers.ts';

type Asserts = Pick<TAP, 'equal'>;

/** Checks the view in force: every `blocked` name gets a D/H verdict naming the list, every `passed` name none. */
export async function expectEnforced(
  t: Asserts,
  h: Harness,
  names: { blocked: readonly string[]; passed: readonly string[]; listId?: string },
): Promise<void> {
  const view = h.registry.view();
  for (const n of names.blocked)
    t.equal(verdictOf(view, n)?.replace(/^[DH]:/, ''), names.listId ?? 'demo', `${n} is blocked`);
  for (const n of names.passed) t.equal(verdictOf(view, n), null, `${n} passes`);
}
