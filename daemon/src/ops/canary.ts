/**
 * The canary check. A list may name a canary (`lists[].canary`): a name its maintainer lists on purpose. Whenever
 * the lists in force change (every update, an expiry, a reload), each canary is asked of the daemon's own query
 * path in-process (Daemon.probe: the same policy, allowlist and list view that answer clients) and must come out
 * blocked, by a list in force whose own entries block it. The result is `hashwall_list_canary_ok{list}`; a failure
 * is logged at error with what was seen, so the operator knows whether to look at the hash key (the list does not
 * block its own canary), the allowlist (the query path passes it) or the list state (not in force).
 */
import type { ProbeResult } from '../types/ops.js';
import type { ListView } from '../types/lists.js';
import { BLOCK } from '../types/decision.js';
import type { Logger } from '../util/log.js';

export interface CanaryResult {
  readonly listId: string;
  readonly ok: boolean;
  /** Why not, for the log and for tests: 'not-enforced' | 'not-listed' | 'not-blocked'. */
  readonly reason: 'ok' | 'not-enforced' | 'not-listed' | 'not-blocked';
  readonly rcode: number;
  /** The list the query path named, if it blocked. */
  readonly blockedBy: string | null;
}

export interface CanaryOptions {
  /** The configured lists with a canary. */
  readonly lists: () => readonly { readonly id: string; readonly canary?: string | undefined }[];
  /** The lists in force. */
  readonly view: () => ListView;
  /** An in-process query through the query path. */
  readonly probe: (name: string) => ProbeResult;
  /** Where each result goes (the metrics). */
  readonly report: (listId: string, ok: boolean | null) => void;
  readonly logger: Logger;
}

export class CanaryMonitor {
  readonly #o: CanaryOptions;
  /** Last result per list id, to log recoveries and to drop lists no longer configured. */
  readonly #last = new Map<string, boolean>();

  constructor(options: CanaryOptions) {
    this.#o = options;
  }

  /** Checks every configured canary now; returns the results. Never throws. */
  check(): CanaryResult[] {
    const results: CanaryResult[] = [];
    const configured = new Set<string>();
    const view = this.#o.view();
    for (const l of this.#o.lists()) {
      if (l.canary === undefined) continue;
      configured.add(l.id);
      const r = this.#checkOne(l.id, l.canary, view);
      results.push(r);
      this.#o.report(l.id, r.ok);
      const before = this.#last.get(l.id);
      this.#last.set(l.id, r.ok);
      if (!r.ok) {
        this.#o.logger.error(
          { list: l.id, reason: r.reason, rcode: r.rcode, blockedBy: r.blockedBy },
          r.reason === 'not-enforced'
            ? 'canary check failed: the list is not in force (see the list sync log lines)'
            : r.reason === 'not-listed'
              ? 'canary check failed: the list in force does not block its own canary name: check the list ' +
                'hash key (hashKeyFile) and the canary setting, and tell the list maintainer'
              : 'canary check failed: the query path does not block the canary name: check blocking.allowlist ' +
                'and the list state',
        );
      } else if (before === false) {
        this.#o.logger.info({ list: l.id }, 'canary check passes again');
      }
    }
    for (const id of [...this.#last.keys()]) {
      if (!configured.has(id)) {
        this.#last.delete(id);
        this.#o.report(id, null);
      }
    }
    return results;
  }

  #checkOne(listId: string, canary: string, view: ListView): CanaryResult {
    const matcher = view.matchers.find((m) => m.listId === listId);
    let probe: ProbeResult;
    try {
      probe = this.#o.probe(canary);
    } catch {
      probe = { rcode: -1, decision: null };
    }
    const blockedBy = probe.decision?.action === BLOCK ? probe.decision.listId : null;
    const base = { listId, rcode: probe.rcode, blockedBy };
    if (matcher === undefined) return { ...base, ok: false, reason: 'not-enforced' };
    const own = matcher.verdict(canary);
    if (own === null || own.kind === 'P') return { ...base, ok: false, reason: 'not-listed' };
    if (blockedBy === null) return { ...base, ok: false, reason: 'not-blocked' };
    return { ...base, ok: true, reason: 'ok' };
  }
}
