/**
 * One DNS process: the query path (server.ts) behind its listeners, started, reloaded and stopped. A reload opens
 * the new listeners before it retires the old ones and swaps the query path's parts between two queries, so no
 * query is dropped; a stop stops accepting, lets the queries in flight finish (at most shutdown.drainTimeoutMs),
 * then closes everything.
 *
 * Listeners: plain DNS (`listen`: UDP and TCP on each address), DNS over TLS (`dot.listen`) and DNS over HTTPS
 * (`doh.listen`), all handing queries to the one query path. A reload gives the kept DoT and DoH listeners the
 * certificate and key read anew (new sessions use them; open ones go on), and every listener the new PROXY
 * protocol settings.
 */
import type { Settings } from './config/load.js';
import type { Config } from './config/schema.js';
import { DohListener } from './dns/doh.js';
import type { QueryEvents } from './dns/events.js';
import { Listener, type BoundAddress } from './dns/listeners.js';
import { ProxyGate } from './dns/proxy.js';
import { DotListener, type TlsSettings } from './dns/tls.js';
import { QueryPath, type QueryPathOptions } from './server.js';
import type { ProbeResult, UpstreamState } from './types/ops.js';
import { ListenError } from './util/net.js';

export type DaemonOptions = QueryPathOptions;

export interface DaemonAddresses {
  readonly udp: readonly BoundAddress[];
  readonly tcp: readonly BoundAddress[];
  /** DNS over TLS. */
  readonly dot: readonly BoundAddress[];
  /** DNS over HTTPS. */
  readonly doh: readonly BoundAddress[];
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

/** What the daemon does with any of its listeners. */
interface Served {
  readonly spec: string;
  readonly inFlight: number;
  stop(): void;
  drained(timeoutMs: number): Promise<boolean>;
  close(): void;
}

/** The TLS settings of `settings` (its certificate and key as read when it was loaded), or null. */
function tlsOf(settings: Settings): TlsSettings | null {
  return settings.tls === null ? null : { ...settings.tls, minVersion: settings.config.tls.minVersion };
}

/** Opens one listener of `key` (`listen.0`); a failure is a ListenError naming that key and the address. */
async function opening<L>(key: string, spec: string, open: () => Promise<L>): Promise<L> {
  try {
    return await open();
  } catch (err) {
    throw new ListenError(key, spec, err);
  }
}

/** Starts listening per `settings` and returns the running daemon; a ListenError if an address cannot be bound. */
export async function startDaemon(settings: Settings, options: DaemonOptions): Promise<Daemon> {
  const log = options.logger;
  const path = new QueryPath(options);
  path.use(path.build(settings.config));
  const report = (t: 'udp' | 'tcp' | 'dot', o: Parameters<QueryEvents['proxyHeader']>[1]): void =>
    path.events.proxyHeader(t, o);
  const gateOf = (config: Config): ProxyGate | null =>
    config.proxyProtocol.trusted.length === 0 ? null : new ProxyGate(config.proxyProtocol, report);
  const events = path.events;
  const clock = options.clock;
  const listeners = new Map<string, Listener>();
  const dots = new Map<string, DotListener>();
  const dohs = new Map<string, DohListener>();
  const all = (): Served[] => [...listeners.values(), ...dots.values(), ...dohs.values()];

  /** Opens what `config` lists and `has` does not; closes what it opened if one fails. */
  const openMissing = async (next: Settings, proxy: ProxyGate | null): Promise<Served[]> => {
    const c = next.config;
    const tls = tlsOf(next);
    const opened: Served[] = [];
    try {
      for (const [i, spec] of c.listen.entries()) {
        if (listeners.has(spec)) continue;
        opened.push(
          await opening(`listen.${i}`, spec, () => Listener.open(spec, path, c.tcp, log, { events, clock, proxy })),
        );
      }
      for (const [i, spec] of c.dot.listen.entries()) {
        if (dots.has(spec)) continue;
        opened.push(
          await opening(`dot.listen.${i}`, spec, () =>
            DotListener.open(spec, path, c.tcp, tls!, log, { events, clock, proxy }),
          ),
        );
      }
      for (const [i, spec] of c.doh.listen.entries()) {
        if (dohs.has(spec)) continue;
        opened.push(
          await opening(`doh.listen.${i}`, spec, () =>
            DohListener.open(spec, path, c.doh, c.tcp, tls!, log, { events, clock }),
          ),
        );
      }
    } catch (err) {
      for (const l of opened) l.close();
      throw err;
    }
    return opened;
  };
  const adopt = (opened: Served[]): void => {
    for (const l of opened) {
      if (l instanceof Listener) listeners.set(l.spec, l);
      else if (l instanceof DotListener) dots.set(l.spec, l);
      else if (l instanceof DohListener) dohs.set(l.spec, l);
    }
  };

  try {
    adopt(await openMissing(settings, gateOf(settings.config)));
  } catch (err) {
    path.close();
    throw err;
  }

  const addresses = (): DaemonAddresses =>
    Object.freeze({
      udp: Object.freeze([...listeners.values()].map((l) => l.udpAddress!)),
      tcp: Object.freeze([...listeners.values()].map((l) => l.tcpAddress!)),
      dot: Object.freeze([...dots.values()].map((l) => l.address!)),
      doh: Object.freeze([...dohs.values()].map((l) => l.address!)),
    });
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
  const retire = async (l: Served, drainMs: number): Promise<void> => {
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
      const c = next.config;
      const parts = path.build(c, path.parts);
      const proxy = gateOf(c);
      let opened: Served[];
      try {
        opened = await openMissing(next, proxy);
      } catch (err) {
        path.discard(parts);
        throw err;
      }
      // Open new before closing old: queries keep flowing on the addresses that stay.
      path.use(parts);
      adopt(opened);
      const tls = tlsOf(next);
      const drainMs = c.shutdown.drainTimeoutMs;
      const reconcile = <L extends Served>(map: Map<string, L>, wanted: readonly string[], keep: (l: L) => void) => {
        const want = new Set(wanted);
        for (const [spec, l] of map) {
          if (want.has(spec)) {
            keep(l);
          } else {
            map.delete(spec);
            void retire(l, drainMs);
          }
        }
      };
      reconcile(listeners, c.listen, (l) => {
        l.tcp = c.tcp;
        l.proxy = proxy;
      });
      reconcile(dots, c.dot.listen, (l) => {
        l.tcp = c.tcp;
        l.proxy = proxy;
        l.setTls(tls!);
      });
      reconcile(dohs, c.doh.listen, (l) => {
        l.tcp = c.tcp;
        l.settings = c.doh;
        l.setTls(tls!);
      });
      logStart(c);
      log.info({ addresses: addresses() }, 'configuration reloaded');
    },
    close(): Promise<void> {
      closing ??= (async () => {
        const drainMs = path.parts.config.shutdown.drainTimeoutMs;
        const served = all();
        for (const l of served) l.stop();
        const drained = await Promise.all(served.map((l) => l.drained(drainMs)));
        if (drained.includes(false)) log.warn({ drainTimeoutMs: drainMs }, 'drain timeout: unanswered queries dropped');
        // Jobs still in flight end in SERVFAIL while the sockets are still open.
        path.close();
        for (const l of served) l.close();
        listeners.clear();
        dots.clear();
        dohs.clear();
      })();
      return closing;
    },
    inFlight(): number {
      let n = 0;
      for (const l of all()) n += l.inFlight;
      return n;
    },
    cacheSize: () => path.cacheSize,
    cacheBytes: () => path.cacheBytes,
    cacheEvictions: () => path.cacheEvictions,
    upstreamHealth: () => path.upstreamHealth(),
    probe: (name) => path.probe(name),
  };
}
