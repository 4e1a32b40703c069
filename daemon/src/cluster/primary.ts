/**
 * Several DNS processes on one machine (`workers: N | auto`): the worker model.
 *
 * - The primary (the process started as hashwalld) reads the config, runs the one list sync (ListRegistry: one poller
 *   per list, the only writer of the state directory) and forks N workers with node:cluster. It answers no DNS.
 * - Each worker is a whole query path (startDaemon) whose lists are a FollowerLists: it reads what the primary
 *   committed to the state directory, re-verified in a thread of its own, at start and whenever the primary's
 *   registry swaps a list (an IPC message). So the mirrors are polled once, whatever N is.
 * - Sharing the DNS port: where the running Node has SO_REUSEPORT for UDP and TCP (`reusePort`, Node 22.12 and 23.1
 *   on), every worker binds its own sockets with it, and the kernel spreads clients over them by address hash.
 *   Elsewhere (Node 20), the workers bind through the cluster module: the primary holds the UDP socket and the TCP
 *   listener, the workers share the UDP socket and get accepted TCP connections round-robin. Detected at start by
 *   binding two sockets to one port (UDP and TCP) on 127.0.0.1.
 * - Signals: SIGHUP to the primary reloads its config and lists, then is passed to every worker (each reloads its
 *   own config, listeners and lists); SIGTERM makes the primary pass SIGTERM on, wait for every worker to drain
 *   and exit (bounded by shutdown.drainTimeoutMs plus a margin), then stop its list sync. A worker that gets a
 *   signal directly (systemd signals the whole cgroup) handles it as a single process would.
 * - A worker that exits while the primary is not stopping is restarted, after a delay that doubles from 100 ms to
 *   30 s while workers keep failing within a minute of their start, so a crash loop does not spin.
 * - Metrics: the workers are cluster workers, so prom-client's AggregatorRegistry in the primary can collect and sum
 *   their registries over the cluster IPC channel (our own messages are namespaced by `hashwall`). The primary
 *   holds the list registry, so list metrics, /readyz and the canary belong there.
 */
import cluster, { type Worker } from 'node:cluster';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

import type { Settings } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ENV_LISTEN, ENV_SHARE, type PortSharing } from '../dns/sharing.js';
import type { ListProvider } from '../types/lists.js';
import type { Logger } from '../util/log.js';
import { parseHostPort } from '../util/net.js';
import type { PrimaryMessage, WorkerMessage } from './types.js';

/** A DNS worker exited before it listened; its own log line says why (a `listen` key it could not bind, say). */
export class WorkerStartError extends Error {
  override readonly name = 'WorkerStartError';
  readonly code = 'WORKER_START_FAILED';
  /** The worker's exit status: 2 for a configuration or listen error, which the primary exits with too. */
  readonly exitCode: number;

  constructor(exitCode: number) {
    super(`a DNS worker exited with status ${exitCode} before it listened (its log line above says why)`);
    this.exitCode = exitCode;
  }
}

/** The number of DNS processes `config.workers` asks for. */
export function workerCount(config: Pick<Config, 'workers'>): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/**
 * Whether this Node can bind two sockets to one port with SO_REUSEPORT, for UDP and for TCP (Node 20 silently
 * ignores the option, so the second bind fails with EADDRINUSE there).
 */
export async function reusePortWorks(): Promise<boolean> {
  const udp = async (): Promise<boolean> => {
    // `reusePort` is not in @types/node 20's SocketOptions: passed as extra data that older Nodes ignore.
    const opts = { type: 'udp4', reusePort: true } as Parameters<typeof createSocket>[0];
    const a = createSocket(opts);
    const b = createSocket(opts);
    try {
      await new Promise<void>((res, rej) => {
        a.once('error', rej);
        a.bind({ port: 0, address: '127.0.0.1', exclusive: true }, () => res());
      });
      const port = a.address().port;
      return await new Promise<boolean>((res) => {
        b.once('error', () => res(false));
        b.bind({ port, address: '127.0.0.1', exclusive: true }, () => res(true));
      });
    } catch {
      return false;
    } finally {
      for (const s of [a, b]) {
        try {
          s.close();
        } catch {
          // not bound
        }
      }
    }
  };
  const tcp = async (): Promise<boolean> => {
    const a = createServer();
    const b = createServer();
    const listen = (s: ReturnType<typeof createServer>, port: number): Promise<boolean> =>
      new Promise((res) => {
        s.once('error', () => res(false));
        // `reusePort` (Node 22.12, 23.1) is not in @types/node 20's ListenOptions.
        s.listen({ port, host: '127.0.0.1', exclusive: true, reusePort: true } as Parameters<typeof s.listen>[0], () =>
          res(true),
        );
      });
    try {
      if (!(await listen(a, 0))) return false;
      const addr = a.address();
      return typeof addr === 'object' && addr !== null && (await listen(b, addr.port));
    } finally {
      a.close();
      b.close();
    }
  };
  return (await udp()) && (await tcp());
}

export interface WorkerSetOptions {
  readonly logger: Logger;
  /** The primary's list registry: every swap is passed on to the workers. */
  readonly lists: ListProvider;
  /** Overrides the detection (tests force the cluster fallback on a Node that has SO_REUSEPORT). */
  readonly sharing?: PortSharing;
}

/** What the primary runs instead of startDaemon. */
export interface WorkerSet {
  readonly count: number;
  readonly sharing: PortSharing;
  /** PIDs of the workers running now. */
  pids(): number[];
  /** The workers' IPC channels (cluster Workers), for the operations' requests (ops/cluster.ts). */
  channels(): Worker[];
  /** Restarts so far (crashed or killed workers). */
  readonly restarts: number;
  /** Passes SIGHUP to every worker (after the primary reloaded its own lists). */
  reload(settings: Settings): Promise<void>;
  /** SIGTERM to every worker; resolves when all have exited (or were killed after the grace period). */
  close(): Promise<void>;
}

/** The environment variable that gives a worker its slot (0 .. N-1; a restarted worker takes the dead one's). */
export const ENV_WORKER_SLOT = 'HASHWALL_WORKER_SLOT';

/** This worker's name for its process metrics' `process` label: `worker-<slot>` (null outside a worker). */
export function workerName(): string | null {
  if (!cluster.isWorker) return null;
  const slot = Number(process.env[ENV_WORKER_SLOT]);
  return Number.isInteger(slot) && slot >= 0 ? `worker-${slot}` : 'worker';
}

const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 30_000;
/** A worker that ran this long before it exited resets the restart delay. */
const STABLE_MS = 60_000;
/** How long the first workers may take to read their lists and listen. */
const READY_TIMEOUT_MS = 300_000;

/**
 * Forks `workerCount(settings.config)` workers running the same main script, waits until each listens, and keeps
 * them running. Call after `lists.start()`: the workers read what it committed.
 */
export async function startWorkers(settings: Settings, options: WorkerSetOptions): Promise<WorkerSet> {
  const log = options.logger;
  const count = workerCount(settings.config);
  const sharing = options.sharing ?? ((await reusePortWorks()) ? 'reuseport' : 'cluster');
  let drainMs = settings.config.shutdown.drainTimeoutMs;
  let stopping = false;
  /** Until the first workers listen, an exit fails the start (WorkerStartError) rather than being restarted. */
  let starting = true;
  let restarts = 0;
  let delayMs = RESTART_MIN_MS;
  const started = new Map<Worker, number>();
  const slots = new Map<Worker, number>();
  // The worker runs the same entry script (main.js) with the same Node flags.
  cluster.setupPrimary({ silent: false });

  // Port 0 (tests): every worker must bind the same port, so the primary picks it once.
  const ports = await resolvePorts(settings.config.listen);
  const fork = (slot: number): Worker => {
    const w = cluster.fork({
      [ENV_SHARE]: sharing,
      [ENV_LISTEN]: JSON.stringify(ports),
      [ENV_WORKER_SLOT]: String(slot),
    });
    started.set(w, performance.now());
    slots.set(w, slot);
    return w;
  };

  const onSwap = (): void => {
    if (stopping) return;
    const msg: PrimaryMessage = { hashwall: 'lists' };
    for (const w of started.keys()) if (w.isConnected()) w.send(msg);
  };
  options.lists.on('swap', onSwap);

  cluster.on('exit', (w, code, signal) => {
    const began = started.get(w);
    if (began === undefined) return;
    const slot = slots.get(w) ?? 0;
    started.delete(w);
    slots.delete(w);
    if (stopping || starting) return;
    const ran = performance.now() - began;
    if (ran > STABLE_MS) delayMs = RESTART_MIN_MS;
    log.error(
      { pid: w.process.pid, code, signal, restartInMs: delayMs },
      'a DNS worker exited; it is restarted. If this repeats, check its last log lines and report it',
    );
    const wait = delayMs;
    delayMs = Math.min(RESTART_MAX_MS, delayMs * 2);
    setTimeout(() => {
      if (stopping) return;
      restarts++;
      fork(slot);
    }, wait);
  });

  /** Resolves with the addresses the worker listens on, as its ready message carries them. */
  const ready = (w: Worker): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`a DNS worker did not listen within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
      const onMsg = (m: unknown): void => {
        const msg = m as WorkerMessage | null;
        if (msg?.hashwall !== 'ready') return;
        clearTimeout(timer);
        w.off('message', onMsg);
        w.off('exit', onExit);
        resolve(msg.addresses);
      };
      const onExit = (code: number): void => {
        clearTimeout(timer);
        w.off('message', onMsg);
        reject(new WorkerStartError(code));
      };
      w.on('message', onMsg);
      w.once('exit', onExit);
    });

  const first = Array.from({ length: count }, (_, slot) => fork(slot));
  let addresses: unknown[];
  try {
    addresses = await Promise.all(first.map(ready));
    starting = false;
  } catch (err) {
    stopping = true;
    for (const w of started.keys()) w.process.kill('SIGKILL');
    throw err;
  }
  // The first worker's addresses: with a shared port every worker's are the same (port 0 resolved once, by the
  // first bind), and this line is the one an operator or a test reads them from.
  log.info(
    { workers: count, sharing, pids: first.map((w) => w.process.pid), addresses: addresses[0] },
    'DNS workers listening',
  );

  let closing: Promise<void> | null = null;
  return {
    count,
    sharing,
    get restarts() {
      return restarts;
    },
    pids: () => [...started.keys()].map((w) => w.process.pid ?? 0),
    channels: () => [...started.keys()].filter((w) => w.isConnected()),
    reload(next: Settings): Promise<void> {
      drainMs = next.config.shutdown.drainTimeoutMs;
      if (workerCount(next.config) !== count) {
        log.warn(
          { running: count, configured: workerCount(next.config) },
          'the number of workers changes only at a restart; the running workers are kept',
        );
      }
      for (const w of started.keys()) w.process.kill('SIGHUP');
      return Promise.resolve();
    },
    close(): Promise<void> {
      closing ??= (async () => {
        stopping = true;
        const all = [...started.keys()];
        const exited = all.map((w) => new Promise<void>((res) => (w.isDead() ? res() : w.once('exit', () => res()))));
        for (const w of all) w.process.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<'late'>((res) => (timer = setTimeout(() => res('late'), drainMs + 5000)));
        if ((await Promise.race([Promise.all(exited), grace])) === 'late') {
          log.warn('DNS workers still running after the drain timeout: killed');
          for (const w of all) if (!w.isDead()) w.process.kill('SIGKILL');
          await Promise.all(exited);
        }
        clearTimeout(timer);
        started.clear();
      })();
      return closing;
    },
  };
}

/**
 * A free port for each listen spec with port 0 (UDP and TCP both free on it), as `spec -> host:port`. Only for
 * tests and ad hoc runs: a configured port is used as it is.
 */
async function resolvePorts(specs: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const hp = parseHostPort(spec, 53);
    if (hp.port !== 0) continue;
    for (let attempt = 0; attempt < 10; attempt++) {
      const udp = createSocket(hp.family === 6 ? 'udp6' : 'udp4');
      const port = await new Promise<number>((res, rej) => {
        udp.once('error', rej);
        udp.bind({ port: 0, address: hp.host, exclusive: true }, () => res(udp.address().port));
      });
      const tcp = createServer();
      const ok = await new Promise<boolean>((res) => {
        tcp.once('error', () => res(false));
        tcp.listen({ port, host: hp.host, exclusive: true }, () => res(true));
      });
      udp.close();
      await new Promise<void>((res) => tcp.close(() => res()));
      if (ok) {
        out[spec] = hp.family === 6 ? `[${hp.host}]:${port}` : `${hp.host}:${port}`;
        break;
      }
    }
  }
  return out;
}

/** Tells the primary that this worker listens (no-op in a single process). */
export function announceReady(addresses: unknown): void {
  if (cluster.isWorker && process.send) {
    const msg: WorkerMessage = { hashwall: 'ready', addresses };
    process.send(msg);
  }
}
