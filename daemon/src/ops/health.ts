/**
 * /healthz and /readyz. Alive means the process answers HTTP. Ready means it should be sent queries: its DNS
 * listeners are open (and not draining), its lists are in force or their start policy is met, and at least one
 * upstream is not marked down. Each check says why, for the operator reading the JSON.
 */
import type { ListStats } from '../lists/types.js';

export interface Check {
  readonly ok: boolean;
  readonly reason: string;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: { readonly listening: Check; readonly lists: Check; readonly upstreams: Check };
}

export interface ReadinessInput {
  /** DNS listeners are open and the daemon is not stopping. */
  readonly listening: boolean;
  /** The daemon is draining (SIGTERM). */
  readonly stopping?: boolean;
  /** The list registry's start() has not returned yet (lists with onStartWithoutList=wait are waited for). */
  readonly starting: boolean;
  readonly lists: readonly Pick<ListStats, 'id' | 'enforced'>[];
  /** A list with onStartWithoutList=refuse has none yet: every query is answered REFUSED. */
  readonly refuseAll: boolean;
  readonly upstreams: readonly { readonly name: string; readonly up: boolean }[];
}

export function readiness(input: ReadinessInput): Readiness {
  const listening: Check = input.stopping
    ? { ok: false, reason: 'stopping: draining the queries in flight' }
    : input.listening
      ? { ok: true, reason: 'DNS listeners open' }
      : { ok: false, reason: 'DNS listeners not open yet' };

  const enforced = input.lists.filter((l) => l.enforced).map((l) => l.id);
  let lists: Check;
  if (input.lists.length === 0) {
    lists = { ok: true, reason: 'no lists configured: nothing is blocked' };
  } else if (input.refuseAll) {
    const missing = input.lists.filter((l) => !l.enforced).map((l) => l.id);
    lists = {
      ok: false,
      reason: `no verified list yet for ${missing.join(', ')} (onStartWithoutList: refuse): every query is refused`,
    };
  } else if (enforced.length > 0) {
    lists = { ok: true, reason: `in force: ${enforced.join(', ')} (${enforced.length} of ${input.lists.length})` };
  } else if (input.starting) {
    lists = { ok: false, reason: 'waiting for a first verified list (onStartWithoutList: wait)' };
  } else {
    lists = {
      ok: true,
      reason: 'no list in force: serving unfiltered, as onStartWithoutList allows (see the error log)',
    };
  }

  const up = input.upstreams.filter((u) => u.up).map((u) => u.name);
  const upstreams: Check =
    up.length > 0
      ? { ok: true, reason: `up: ${up.join(', ')} (${up.length} of ${input.upstreams.length})` }
      : input.upstreams.length === 0
        ? { ok: false, reason: 'no upstream known yet' }
        : { ok: false, reason: `every upstream is marked down: ${input.upstreams.map((u) => u.name).join(', ')}` };

  return { ready: listening.ok && lists.ok && upstreams.ok, checks: { listening, lists, upstreams } };
}
