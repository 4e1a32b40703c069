/**
 * /healthz and /readyz. Alive means the process answers HTTP. Ready means it should be sent queries: its DNS
 * listeners are open (and not draining), its lists are in force or their start policy is met (and, if
 * `readiness.requireLists` says so, every required list is in force), and it can answer: an upstream is not marked
 * down, or serve-stale can answer from the cache while none is up. Each check says why, for the operator reading
 * the JSON; `status` is `ready`, `degraded` (ready, but a list is not in force, an upstream is down, or answers come
 * from the stale cache) or `not-ready`.
 *
 * A fleet behind a load balancer or anycast sees the same upstreams and the same lists on every node: a check that
 * failed for a fleet-wide cause would withdraw every node at once. So only what the operator asks for (a required
 * list) or what leaves a node unable to answer at all makes it not ready; the rest is `degraded`, with the reason.
 */
import type { ListStats } from '../lists/types.js';

export interface Check {
  readonly ok: boolean;
  /** Ready, but not as it should be (the reason says what). */
  readonly degraded?: boolean;
  readonly reason: string;
}

export type ReadinessStatus = 'ready' | 'degraded' | 'not-ready';

export interface Readiness {
  readonly ready: boolean;
  readonly status: ReadinessStatus;
  readonly checks: { readonly listening: Check; readonly lists: Check; readonly upstreams: Check };
  /** Every configured list, and whether a verified list is in force for it. */
  readonly lists: readonly { readonly id: string; readonly inForce: boolean; readonly required: boolean }[];
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
  /** Serve-stale is on and the cache holds answers: they are served while every upstream is down. */
  readonly staleServable?: boolean;
  /** `readiness.requireLists`: lists without which the node is not ready (default none). */
  readonly requireLists?: 'all' | 'none' | readonly string[];
}

function listsCheck(input: ReadinessInput, required: ReadonlySet<string>): Check {
  const all = input.lists;
  if (all.length === 0) return { ok: true, reason: 'no lists configured: nothing is blocked' };
  const enforced = all.filter((l) => l.enforced).map((l) => l.id);
  const missing = all.filter((l) => !l.enforced).map((l) => l.id);
  if (input.refuseAll) {
    return {
      ok: false,
      reason: `no verified list yet for ${missing.join(', ')} (onStartWithoutList: refuse): every query is refused`,
    };
  }
  if (enforced.length === 0 && input.starting) {
    return { ok: false, reason: 'waiting for a first verified list (onStartWithoutList: wait)' };
  }
  const requiredMissing = missing.filter((id) => required.has(id));
  if (requiredMissing.length > 0) {
    return {
      ok: false,
      reason:
        `not in force: ${requiredMissing.join(', ')}, which readiness.requireLists requires: names on ` +
        `${requiredMissing.length === 1 ? 'it' : 'them'} would not be blocked`,
    };
  }
  if (missing.length === 0) return { ok: true, reason: `in force: ${enforced.join(', ')} (every configured list)` };
  if (enforced.length === 0) {
    return {
      ok: true,
      degraded: true,
      reason: 'no list in force: serving unfiltered, as onStartWithoutList allows (see the error log)',
    };
  }
  return {
    ok: true,
    degraded: true,
    reason:
      `not in force: ${missing.join(', ')}: names on ${missing.length === 1 ? 'it' : 'them'} are not blocked ` +
      `(${enforced.length} of ${all.length} in force; see the error log)`,
  };
}

function upstreamsCheck(input: ReadinessInput): Check {
  const up = input.upstreams.filter((u) => u.up).map((u) => u.name);
  const down = input.upstreams.filter((u) => !u.up).map((u) => u.name);
  if (input.upstreams.length === 0) return { ok: false, reason: 'no upstream known yet' };
  if (up.length > 0 && down.length === 0) return { ok: true, reason: `up: ${up.join(', ')}` };
  if (up.length > 0) {
    return {
      ok: true,
      degraded: true,
      reason: `up: ${up.join(', ')} (${up.length} of ${input.upstreams.length}); marked down: ${down.join(', ')}`,
    };
  }
  if (input.staleServable === true) {
    return {
      ok: true,
      degraded: true,
      reason:
        `every upstream is marked down (${down.join(', ')}): answering from the cache, stale, where it can ` +
        '(RFC 8767), SERVFAIL elsewhere',
    };
  }
  return { ok: false, reason: `every upstream is marked down: ${down.join(', ')}` };
}

export function readiness(input: ReadinessInput): Readiness {
  const listening: Check = input.stopping
    ? { ok: false, reason: 'stopping: draining the queries in flight' }
    : input.listening
      ? { ok: true, reason: 'DNS listeners open' }
      : { ok: false, reason: 'DNS listeners not open yet' };
  const want = input.requireLists ?? 'none';
  const required = new Set(want === 'all' ? input.lists.map((l) => l.id) : want === 'none' ? [] : want);
  const lists = listsCheck(input, required);
  const upstreams = upstreamsCheck(input);
  const ready = listening.ok && lists.ok && upstreams.ok;
  const degraded = lists.degraded === true || upstreams.degraded === true;
  return {
    ready,
    status: !ready ? 'not-ready' : degraded ? 'degraded' : 'ready',
    checks: { listening, lists, upstreams },
    lists: input.lists.map((l) => ({ id: l.id, inForce: l.enforced, required: required.has(l.id) })),
  };
}
