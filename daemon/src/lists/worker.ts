/**
 * The worker thread of one list: it owns the list's SyncCore and answers the main thread's requests one at a
 * time. Verifying a signature over a large FULL, parsing a million lines, applying a delta and the fsyncs of a
 * commit all happen here, so the thread that answers DNS queries never waits for them. The entry arrays of a
 * verified list go back as transferred buffers (no copy on the main thread). Each answer also carries what the core
 * keeps between requests (a few hundred bytes), so the main thread can end this thread once it has answered and
 * start the next one from there: a million-entry load leaves nothing behind in the process.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { matcherTransferList } from '@hashwall/format';

import { SyncCore, type CoreConfig } from './core.js';
import type { CoreResume, EntryArrays, OpenReply, PollReply } from './types.js';

export type WorkerRequest =
  | { readonly id: number; readonly op: 'open' }
  | { readonly id: number; readonly op: 'poll'; readonly mirror: number; readonly now: number };

/** What a worker starts with: the list's configuration, and what the previous worker left (see CoreResume). */
export interface WorkerStart {
  readonly config: CoreConfig;
  readonly resume?: CoreResume;
}

/** Sent once, when the worker has loaded and listens (request deadlines run from then). */
export interface WorkerReady {
  readonly ready: true;
}

export type WorkerResponse =
  | { readonly id: number; readonly ok: true; readonly reply: OpenReply | PollReply; readonly resume: CoreResume }
  | { readonly id: number; readonly ok: false; readonly message: string };

function transferables(reply: OpenReply | PollReply): ArrayBuffer[] {
  const entries: EntryArrays | undefined = 'entries' in reply ? reply.entries : undefined;
  return entries ? matcherTransferList(entries) : [];
}

if (parentPort) {
  const port = parentPort;
  const start = workerData as WorkerStart;
  const core = new SyncCore(start.config, start.resume);
  // Requests are handled strictly one after another: the main thread never sends two at once, and if it did,
  // a poll must not interleave with another poll's commit.
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (req: WorkerRequest) => {
    queue = queue.then(async () => {
      try {
        // The main thread stops a worker by terminating it (which also cuts its downloads): no close request.
        const reply = req.op === 'open' ? core.open() : await core.poll(req.mirror, req.now);
        const res: WorkerResponse = { id: req.id, ok: true, reply, resume: core.resume() };
        port.postMessage(res, transferables(reply));
      } catch (err) {
        const res: WorkerResponse = {
          id: req.id,
          ok: false,
          message: err instanceof Error ? err.message : String(err),
        };
        port.postMessage(res);
      }
    });
  });
  const ready: WorkerReady = { ready: true };
  port.postMessage(ready);
}
