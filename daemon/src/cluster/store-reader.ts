/**
 * The worker thread a follower (a DNS worker process, see cluster/follower.ts) reads a list's state directory in.
 * Read-only: it re-verifies what the primary committed with the same code as the list sync (lists/stored.ts: the
 * keyrings, the index, the FULL against it, the hash key; SPEC.md 4.3, 5.4 and 7), reading the stored FULL in ~1 MiB
 * pieces (hashed against the signed index, then parsed straight into the matcher's arrays, never held whole), and
 * leaves the guard set's names out of the matcher as the list sync does (lists/hold.ts). It never writes, sweeps or
 * polls: the state directory has one writer, the primary's list sync. The arrays go back transferred.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { FormatError, matcherTransferList } from '@hashwall/format';

import { ListStore } from '../lists/store.js';
import { openStoredList } from '../lists/stored.js';
import type { ReaderConfig, ReaderReply } from './types.js';

function read(config: ReaderConfig): ReaderReply {
  const store = new ListStore(config.stateDir, config.listId);
  const r = store.openRead(config.maxListBytes);
  if (r.status === 'absent') return { status: 'absent' };
  if (r.status !== 'ok') return { status: 'unusable', message: r.message };
  try {
    // The same re-open as the list sync's (lists/stored.ts): keyrings, the FULL, the hash key, the guard set.
    const opened = openStoredList(config, r);
    const h = opened.full.header;
    return {
      status: 'loaded',
      serial: h.serial,
      bodySha256: opened.full.bodySha256,
      expires: h.expires,
      hashKey: h.hashKey,
      entries: opened.guarded.parts,
      exempted: opened.guarded.exempted,
    };
  } catch (err) {
    return {
      status: 'unusable',
      message: err instanceof FormatError ? `${err.code}: ${err.message}` : (err as Error).message,
    };
  } finally {
    r.files.full.close();
  }
}

if (parentPort) {
  const port = parentPort;
  const config = workerData as ReaderConfig;
  port.on('message', (id: number) => {
    const reply = read(config);
    port.postMessage({ id, reply }, reply.status === 'loaded' ? matcherTransferList(reply.entries) : []);
  });
}
