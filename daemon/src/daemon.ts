/**
 * One DNS process: the query path (server.ts) behind its listeners, started, reloaded and stopped. A reload opens
 * the new listeners before it retires the old ones and swaps the query path's parts between two queries, so no
 * query is dropped; a stop stops accepting, lets the queries in flight finish (at most shutdown.drainTimeoutMs),
 * then closes everything.
 */
import type { Settings } from './config/load.js';
import type { Config } from './config/schema.js';
import type { QueryEvents } from './dns/events.js';
import { Listener, type BoundAddress, type ListenerOptions } from './dns/listeners.js';
import { QueryPath, type QueryPathOptions } from './server.js';
import type { ProbeResult, UpstreamState } from './types/ops.js';
import { ListenError } from './util/net.js';

export type DaemonOptions = QueryPathOptions;

export interface DaemonAddresses {
  readonly udp: readonly BoundAddress[];
  readonly tcp: readonly BoundAddress[];
}

export interface Daemon {
  /** The bound addresses (so a test can listen on port 0). Changes on reload. */
  readonly addresses: DaemonAddresses;
  readonly events: QueryEvents;
  /** Applies new settings without dropping a query: listeners are kept, opened or retired; the rest is rebuilt. */
  reload(settings: Settings): Promise<void>;
  /** Stops accepting, waits for queries in flight (at most shutdown.drainTimeoutMs), then closes everything. */
  close(): Promise<void>;
  /** Client queries not yet answered. */
  inFlight(): number;
  /** Entries in the packet cache. */
  cacheSize(): number;
  /** Bytes the packet cache holds, as counted for cache.maxBytes. */
  cacheBytes(): number;
  /** Entries the packet cache evicted to stay within its bounds, since start (across reloads). */
  cacheEvictions(): number;
  /** The upstreams of the configuration in force, in order, with their health. */
  upstreamHealth(): readonly UpstreamState[];
  /** The query path's in-process question about `name` (QueryPath.probe: the canary check, the stop page). */
  probe(name: string): ProbeResult;
}

/** Opens the listener of `listen[i]`; a failure is a ListenError naming that key (`listen.0: 127.0.0.1:53: ...`). */
async function openListener(
  i: number,
  spec: string,
  path: QueryPath,
  tcp: Config['tcp'],
  log: DaemonOptions['logger'],
  options: ListenerOptions,
): Promise<Listener> {
  try {
    return await Listener.open(spec, path, tcp, log, options);
  } catch (err) {
    throw new ListenError(`listen.${i}`, spec, err);
  }
}

/** Starts listening per `settings` and returns the running daemon; a ListenError if an address cannot be bound. */
export async function startDaemon(settings: Settings, options: DaemonOptions): Promise<Daemon> {
  const log = options.logger;
  const path = new QueryPath(options);
  path.use(path.build(settings.config));
  const listenerOptions = { events: path.events, clock: options.clock };
  const listeners = new Map<string, Listener>();
  try {
    for (const [i, spec] of settings.config.listen.entries()) {
      listeners.set(spec, await openListener(i, spec, path, settings.config.tcp, log, listenerOptions));
    }
  } catch (err) {
    for (const l of listeners.values()) l.close();
    path.close();
    throw err;
  }

  const addresses = (): DaemonAddresses => {
    const all = [...listeners.values()];
    return Object.freeze({
      udp: Object.freeze(all.map((l) => l.udpAddress!)),
      tcp: Object.freeze(all.map((l) => l.tcpAddress!)),
    });
  };
  const logStart = (config: Config): void => {
    if (config.blocking.allowlist.length > 0) {
      // The operator's own names (never list entries): logged so an allowlist is never a surprise.
      log.info(
        { allowlist: config.blocking.allowlist },
        'allowlist in force: these names and their subdomains are never blocked',
      );
    }
  };
  logStart(settings.config);
  log.info({ addresses: addresses() }, 'listening for DNS');

  let closing: Promise<void> | null = null;
  const retire = async (l: Listener, drainMs: number): Promise<void> => {
    l.stop();
    await l.drained(drainMs);
    l.close();
  };

  return {
    get addresses() {
      return addresses();
    },
    events: path.events,
    async reload(next: Settings): Promise<void> {
      const parts = path.build(next.config, path.parts);
      const wanted = new Set(next.config.listen);
      const opened: Listener[] = [];
      try {
        for (const [i, spec] of next.config.listen.entries()) {
          if (!listeners.has(spec))
            opened.push(await openListener(i, spec, path, next.config.tcp, log, listenerOptions));
        }
      } catch (err) {
        for (const l of opened) l.close();
        path.discard(parts);
        throw err;
      }
      // Open new before closing old: queries keep flowing on the addresses that stay.
      path.use(parts);
      for (const l of opened) listeners.set(l.spec, l);
      for (const [spec, l] of listeners) {
        l.tcp = next.config.tcp;
        if (!wanted.has(spec)) {
          listeners.delete(spec);
          void retire(l, next.config.shutdown.drainTimeoutMs);
        }
      }
      logStart(next.config);
      log.info({ addresses: addresses() }, 'configuration reloaded');
    },
    close(): Promise<void> {
      closing ??= (async () => {
        const drainMs = path.parts.config.shutdown.drainTimeoutMs;
        const all = [...listeners.values()];
        for (const l of all) l.stop();
        const drained = await Promise.all(all.map((l) => l.drained(drainMs)));
        if (drained.includes(false)) log.warn({ drainTimeoutMs: drainMs }, 'drain timeout: unanswered queries dropped');
        // Jobs still in flight end in SERVFAIL while the sockets are still open.
        path.close();
        for (const l of all) l.close();
        listeners.clear();
      })();
      return closing;
    },
    inFlight(): number {
      let n = 0;
      for (const l of listeners.values()) n += l.inFlight;
      return n;
    },
    cacheSize: () => path.cacheSize,
    cacheBytes: () => path.cacheBytes,
    cacheEvictions: () => path.cacheEvictions,
    upstreamHealth: () => path.upstreamHealth(),
    probe: (name) => path.probe(name),
  };
}
