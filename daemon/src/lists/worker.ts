/**
 * The worker thread of one list: it owns the list's SyncCore and answers the main thread's requests one at a
 * time. Verifying a signature over a large FULL, parsing a million lines, applying a delta and the fsyncs of a
 * commit all happen here, so the thread that answers DNS queries never waits for them. The entry arrays of a
 * verified list go back as transferred buffers (no copy on the main thread). Each answer also carries what the core
 * keeps between requests (a few hundred bytes), so the main thread can end this thread once it has answered and
 * start the next one from there: a million-entry load leaves nothing behind in the process.
 *
 * The thread runs LIST_THREAD_NICE steps below the process's CPU priority: where the query thread and this one
 * share a core (one process pinned to a core, a container with one CPU), the query thread preempts it at once and
 * it takes only the time queries leave, so a list load, and the teardown of this thread's heap when it ends, do
 * not show in the query latency. A load takes longer when the core is busy with queries; the list in force
 * stays until it is done.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
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

/** Nice steps this thread runs below the process (Linux nice: 19 is the lowest priority). */
export const LIST_THREAD_NICE = 10;

/**
 * Lowers this thread's CPU priority (Linux: nice is per thread, and setpriority(2) takes a thread id from
 * /proc/thread-self). Returns the thread id, or null where there is no /proc (the thread keeps the process's).
 */
function lowerPriority(): number | null {
  let tid: number;
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return null;
  }
  try {
    setPriority(tid, Math.min(19, getPriority(tid) + LIST_THREAD_NICE));
  } catch {
    // Lowering one's own priority is always allowed; if this fails the thread keeps the process's.
  }
  return tid;
}

function transferables(reply: OpenReply | PollReply): ArrayBuffer[] {
  const entries: EntryArrays | undefined = 'entries' in reply ? reply.entries : undefined;
  return entries ? matcherTransferList(entries) : [];
}

if (parentPort) {
  const port = parentPort;
  lowerPriority();
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
