/**
 * A list's core on the calling thread, behind the interface of its worker (client.ts). The daemon never uses it:
 * its lists are verified, parsed and committed in a worker so that the query thread never waits for them. Tests
 * of the sync rules (refusals, rollback, trust, the lifecycle) use it where the thread is not what they check: a
 * worker costs ~0.3 s of CPU loading its modules, once per registry.
 *
 * Each answer is copied with its entry arrays moved, as the worker's postMessage moves them, and a failure is a
 * WorkerFailed as the worker's is. What only a worker has is left out: request deadlines (the core's downloads
 * have their own timeouts), the idle exit and the lower thread priority. terminate() fails the requests in flight
 * and cuts the core's downloads, as ending a worker does.
 */
import { matcherTransferList } from '@hashwall/format';

import { WorkerFailed, type CoreClient } from './client.js';
import type { CoreConfig, SyncCore } from './core.js';
import type { OpenReply, PollReply } from './types.js';

export class InlineClient implements CoreClient {
  private readonly config: CoreConfig;
  private core: SyncCore | undefined;
  private readonly pending = new Set<(err: Error) => void>();

  constructor(config: CoreConfig) {
    this.config = config;
  }

  get fresh(): boolean {
    return this.core === undefined;
  }

  private async start(): Promise<SyncCore> {
    // Loaded on first use: the daemon's main thread never loads the core (the worker does).
    const { SyncCore } = await import('./core.js');
    try {
      return (this.core ??= new SyncCore(this.config));
    } catch (err) {
      throw new WorkerFailed(`list worker failed: ${(err as Error).message}`);
    }
  }

  private request<R extends OpenReply | PollReply>(run: (core: SyncCore) => R | Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.add(reject);
      const settle = (): boolean => this.pending.delete(reject);
      this.start()
        .then(run)
        .then(
          (reply) => {
            // As postMessage hands it over: a copy, the entry arrays moved rather than shared.
            const entries = 'entries' in reply ? reply.entries : undefined;
            if (settle()) resolve(structuredClone(reply, { transfer: entries ? matcherTransferList(entries) : [] }));
          },
          (err: unknown) => {
            if (!settle()) return;
            reject(err instanceof WorkerFailed ? err : new WorkerFailed(String((err as Error)?.message ?? err)));
          },
        );
    });
  }

  open(): Promise<OpenReply> {
    return this.request((core) => core.open());
  }

  poll(mirror: number, now: number): Promise<PollReply> {
    return this.request((core) => core.poll(mirror, now));
  }

  terminate(): Promise<void> {
    const core = this.core;
    this.core = undefined;
    for (const reject of [...this.pending]) {
      this.pending.delete(reject);
      reject(new WorkerFailed('list worker stopped'));
    }
    core?.close();
    return Promise.resolve();
  }
}
