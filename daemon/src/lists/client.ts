/**
 * The main thread's handle on a list's worker (worker.ts): requests with a deadline each. A worker that crashes or
 * misses a deadline is terminated (which also cuts its downloads) and the request fails with WORKER_FAILED; the next
 * request starts a fresh worker, which the caller re-opens from the state directory.
 *
 * A worker that has loaded a list (an `open` or a `poll` that handed over a matcher's arrays) is ended once it has
 * been idle for `idleExitMs` (default 5 s; 0: at once; Infinity: never): the isolate of a thread that parsed a
 * million entries keeps tens of MiB of heap pages it no longer uses, and only ending the thread gives them back for
 * sure. The delay lets the poll that follows an open at start (or an operator's poll) reuse it: starting a worker
 * costs ~0.2 s of loading modules on another core, and ending one right after a load measurably lengthened the
 * query thread's longest stall during a restart (load-bench.mjs: 30-57 ms against 10-17 ms). A worker that loaded
 * nothing since it started is kept. Its answer carries what its core keeps between requests (CoreResume: the state,
 * the FULL's header fields, the mirrors' validators), and the next request starts a new worker from that, so it
 * is not `fresh` (no re-open from the state directory).
 */
import type { Worker } from 'node:worker_threads';

import { systemClock, type Clock, type Timer } from '../util/clock.js';
import { ownCodeWorker } from '../util/worker.js';
import type { CoreConfig } from './core.js';
import type { CoreResume, OpenReply, PollReply } from './types.js';
import type { WorkerReady, WorkerRequest, WorkerResponse, WorkerStart } from './worker.js';

export class WorkerFailed extends Error {
  override readonly name = 'WorkerFailed';
  readonly code = 'WORKER_FAILED';
}

type Pending = {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** The request's deadline, on the client's clock: armed once its worker is ready (its modules load in ~0.2 s). */
  timer: Timer | undefined;
  arm: () => void;
};

/** How long a new worker may take to load its modules before it counts as failed. */
const START_DEADLINE_MS = 30_000;

/** How long a worker that loaded a list may stay idle before it is ended (see WorkerClient). */
export const DEFAULT_IDLE_EXIT_MS = 5000;

/** A request without its id (the client numbers them). */
type Body = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

const WORKER_URL = new URL('./worker.js', import.meta.url);

/** What a list's sync asks of its core: the worker (WorkerClient), or the core on the same thread (InlineClient). */
export interface CoreClient {
  /** True when the next request starts with an empty state (it must be opened first). */
  readonly fresh: boolean;
  open(deadlineMs: number): Promise<OpenReply>;
  poll(mirror: number, now: number, deadlineMs: number): Promise<PollReply>;
  /** Stops at once: requests in flight fail, downloads are cut. */
  terminate(): Promise<void>;
}

export class WorkerClient implements CoreClient {
  private readonly config: CoreConfig;
  private readonly idleExitMs: number;
  private readonly clock: Clock;
  /** The current worker handed over a matcher's arrays since it started: its heap is worth giving back. */
  private loaded = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private worker: Worker | undefined;
  /** The worker has loaded and listens: request deadlines run from here. */
  private ready = false;
  /** What the last worker that answered left for the next one; undefined after a crash or a stop. */
  private resume: CoreResume | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** How many workers this client has started (1 after the first request; more after a crash). */
  started = 0;

  /**
   * `clock` times the requests' deadlines (tests move a ManualClock past them). The idle exit is Node's own,
   * unreferenced timer: it gives memory back, and no rule a test checks depends on when.
   */
  constructor(config: CoreConfig, options: { readonly idleExitMs?: number; readonly clock?: Clock } = {}) {
    this.config = config;
    this.idleExitMs = options.idleExitMs ?? DEFAULT_IDLE_EXIT_MS;
    this.clock = options.clock ?? systemClock;
  }

  private clearDeadline(p: Pending): void {
    if (p.timer !== undefined) this.clock.clearTimeout(p.timer);
  }

  /** Ends the worker after `idleExitMs` without a request, when it loaded a list. */
  private scheduleIdleExit(w: Worker): void {
    if (!this.loaded || this.pending.size > 0 || this.worker !== w || !(this.idleExitMs < Infinity)) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.worker !== w || this.pending.size > 0) return;
      // Idle: end it; the next request starts another from `resume`.
      this.worker = undefined;
      void w.terminate();
    }, this.idleExitMs);
    this.idleTimer.unref();
  }

  /** True when the next request starts a worker with an empty state (it must be opened first). */
  get fresh(): boolean {
    return this.worker === undefined && this.resume === undefined;
  }

  private spawn(): Worker {
    const start: WorkerStart = { config: this.config, ...(this.resume ? { resume: this.resume } : {}) };
    const w = ownCodeWorker(WORKER_URL, { workerData: start, name: `hashwall-list-${this.config.listId}` });
    this.started++;
    this.ready = false;
    this.loaded = false;
    const starting = setTimeout(() => {
      fail(`list worker did not start within ${START_DEADLINE_MS} ms`);
      void w.terminate();
    }, START_DEADLINE_MS);
    w.on('message', (res: WorkerResponse | WorkerReady) => {
      if ('ready' in res) {
        clearTimeout(starting);
        if (this.worker !== w) return;
        this.ready = true;
        for (const p of this.pending.values()) p.arm();
        return;
      }
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      this.clearDeadline(p);
      if (res.ok) {
        this.resume = res.resume;
        if ('entries' in res.reply) this.loaded = true;
        this.scheduleIdleExit(w);
        p.resolve(res.reply);
      } else p.reject(new WorkerFailed(res.message));
    });
    const fail = (why: string): void => {
      clearTimeout(starting);
      if (this.worker !== w) return;
      this.worker = undefined;
      this.resume = undefined;
      for (const [id, p] of this.pending) {
        this.clearDeadline(p);
        this.pending.delete(id);
        p.reject(new WorkerFailed(why));
      }
    };
    w.on('error', (err) => fail(`list worker failed: ${err.message}`));
    w.on('exit', (code) => fail(`list worker exited with code ${code}`));
    this.worker = w;
    return w;
  }

  private request<R>(body: Body, deadlineMs: number): Promise<R> {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const w = this.worker ?? this.spawn();
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const p: Pending = {
        resolve: resolve as (v: unknown) => void,
        reject,
        timer: undefined,
        arm: () => {
          p.timer ??= this.clock.setTimeout(() => {
            this.pending.delete(id);
            reject(new WorkerFailed(`list worker gave no answer within ${deadlineMs} ms`));
            void this.terminate();
          }, deadlineMs);
        },
      };
      this.pending.set(id, p);
      if (this.ready) p.arm();
      w.postMessage({ ...body, id });
    });
  }

  open(deadlineMs: number): Promise<OpenReply> {
    return this.request<OpenReply>({ op: 'open' }, deadlineMs);
  }

  poll(mirror: number, now: number, deadlineMs: number): Promise<PollReply> {
    return this.request<PollReply>({ op: 'poll', mirror, now }, deadlineMs);
  }

  /** Stops the worker at once: its requests in flight fail, its downloads are cut. */
  async terminate(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const w = this.worker;
    this.resume = undefined;
    if (!w) return;
    this.worker = undefined;
    for (const [id, p] of this.pending) {
      this.clearDeadline(p);
      this.pending.delete(id);
      p.reject(new WorkerFailed('list worker stopped'));
    }
    await w.terminate();
  }
}
