/**
 * The main thread's handle on a list's worker (worker.ts): requests with a deadline each. A worker that crashes or
 * misses a deadline is terminated (which also cuts its downloads) and the request fails with WORKER_FAILED; the next
 * request starts a fresh worker, which the caller re-opens from the state directory.
 */
import { Worker } from 'node:worker_threads';

import type { CoreConfig } from './core.js';
import type { OpenReply, PollReply } from './types.js';
import type { WorkerRequest, WorkerResponse } from './worker.js';

export class WorkerFailed extends Error {
  override readonly name = 'WorkerFailed';
  readonly code = 'WORKER_FAILED';
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

/** A request without its id (the client numbers them). */
type Body = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

const WORKER_URL = new URL('./worker.js', import.meta.url);

export class WorkerClient {
  private readonly config: CoreConfig;
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** How many workers this client has started (1 after the first request; more after a crash). */
  started = 0;

  constructor(config: CoreConfig) {
    this.config = config;
  }

  /** True when no worker runs: the next request starts one, with an empty state until it is opened. */
  get fresh(): boolean {
    return this.worker === undefined;
  }

  private spawn(): Worker {
    const w = new Worker(WORKER_URL, {
      workerData: this.config,
      name: `hashwall-list-${this.config.listId}`,
      // The worker runs only our built JavaScript: none of the parent's loaders or --import hooks.
      execArgv: [],
    });
    this.started++;
    w.on('message', (res: WorkerResponse) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      clearTimeout(p.timer);
      if (res.ok) p.resolve(res.reply);
      else p.reject(new WorkerFailed(res.message));
    });
    const fail = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = undefined;
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
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
    const w = this.worker ?? this.spawn();
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new WorkerFailed(`list worker gave no answer within ${deadlineMs} ms`));
        void this.terminate();
      }, deadlineMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
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
    const w = this.worker;
    if (!w) return;
    this.worker = undefined;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new WorkerFailed('list worker stopped'));
    }
    await w.terminate();
  }
}
