/**
 * The worker thread a follower (a DNS worker process, see cluster/follower.ts) reads a list's state directory in.
 * Read-only: it re-verifies what the primary committed (the same `openStoredMatcher` of @hashwall/format and the
 * same ListStore reader as the list sync, SPEC.md 4.3 and 7), reading the stored FULL in ~1 MiB pieces (hashed against
 * the signed index, then parsed straight into the matcher's arrays, never held whole), but it never writes, sweeps
 * or polls: the state directory has one writer, the primary's list sync. The arrays go back transferred.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { FormatError, TrustStore, matcherTransferList, openStoredMatcherFrom } from '@hashwall/format';

import { ListStore } from '../lists/store.js';
import type { ReaderConfig, ReaderReply } from './types.js';

function read(config: ReaderConfig, trust: TrustStore): ReaderReply {
  const store = new ListStore(config.stateDir, config.listId);
  const r = store.openRead(config.maxListBytes);
  if (r.status === 'absent') return { status: 'absent' };
  if (r.status !== 'ok') return { status: 'unusable', message: r.message };
  try {
    const { listId, serial, seq, bodySha256, fullSha256 } = r.state;
    const opened = openStoredMatcherFrom({ trust, listId: config.listId, maxListBytes: config.maxListBytes }, r.files, {
      listId,
      serial,
      seq,
      bodySha256,
      fullSha256,
    });
    const h = opened.full.header;
    if (h.hashKey.mode === 'licensed' && !config.hashKeyIds.includes(h.hashKey.id)) {
      return { status: 'unusable', message: `hashed with key "${h.hashKey.id}", which is not configured` };
    }
    return {
      status: 'loaded',
      serial: h.serial,
      bodySha256: opened.full.bodySha256,
      expires: h.expires,
      hashKey: h.hashKey,
      entries: opened.full.parts,
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
  const trust = new TrustStore([[config.listId, { keys: config.keys, threshold: config.threshold }]]);
  port.on('message', (id: number) => {
    const reply = read(config, trust);
    port.postMessage({ id, reply }, reply.status === 'loaded' ? matcherTransferList(reply.entries) : []);
  });
}
