// FORMAT.md 6, the client: an index is accepted only from a checkpoint the log signed and enough witnesses
// cosigned, consistent with the one stored, with the index's exact bytes at its log-index; read over a real HTTP
// server through @hashwall/release-client, as a daemon reads its mirror.
import { HttpSource } from '@hashwall/release-client';
import t, { type Test } from 'tap';

import {
  NoteSecretKey,
  checkLeafInLog,
  isTlogError,
  tileReaderFromSource,
  type LeafCheck,
  type TileReader,
} from '../dist/index.js';
import { serveFiles } from './http-helpers.ts';
import { TestLog } from './log-helpers.ts';
import { entry, utf8 } from './helpers.ts';

async function readerFor(t: Test, files: Map<string, Uint8Array>): Promise<TileReader> {
  const source = new HttpSource(await serveFiles(t, files), { totalTimeoutMs: 10_000 });
  t.teardown(() => source.close());
  return tileReaderFromSource(source);
}

async function refusal(check: LeafCheck): Promise<string> {
  try {
    await checkLeafInLog(check);
  } catch (err) {
    if (isTlogError(err)) return err.code;
    throw err;
  }
  return 'accepted';
}

t.test('an index in a witnessed checkpoint is accepted, and the next one consistently with it', async (t) => {
  const log = new TestLog();
  log.publish([entry(0), entry(1), entry(2)]);
  const reader = await readerFor(t, log.files);
  const first = await checkLeafInLog({ reader, trust: log.trust(2), leaf: entry(2), leafIndex: 2 });
  t.equal(first.checkpoint.size, 3);
  t.equal(first.cosignatures.length, 2);
  // The log grows across tile boundaries; the stored checkpoint is the one returned before.
  log.publish(Array.from({ length: 300 }, (_, i) => entry(3 + i)));
  const second = await checkLeafInLog({
    reader,
    trust: log.trust(2),
    leaf: entry(302),
    leafIndex: 302,
    stored: first.bytes,
  });
  t.equal(second.checkpoint.size, 303);
  const same = await checkLeafInLog({
    reader,
    trust: log.trust(1),
    leaf: entry(100),
    leafIndex: 100,
    stored: second.bytes,
  });
  t.equal(same.checkpoint.size, 303, 'an unchanged checkpoint is consistent with itself');
});

t.test('each FORMAT.md 6 rule refuses with its own code', async (t) => {
  const log = new TestLog();
  const stored = log.publish([entry(0), entry(1), entry(2), entry(3)]);
  const five = log.publish([entry(4)], 1);
  const reader = await readerFor(t, log.files);
  const base = { reader, trust: log.trust(1), leaf: entry(4), leafIndex: 4 };
  t.equal(await refusal(base), 'accepted');
  t.equal(await refusal({ ...base, trust: log.trust(2) }), 'LOG_WITNESS_THRESHOLD', 'one witness cosigned, two needed');
  t.equal(await refusal({ ...base, leafIndex: 5 }), 'LOG_NOT_INCLUDED', 'log-index past the size');
  t.equal(await refusal({ ...base, leafIndex: 3 }), 'LOG_NOT_INCLUDED', 'other bytes at that index');
  t.equal(await refusal({ ...base, leaf: utf8('forged') }), 'LOG_NOT_INCLUDED');
  t.equal(await refusal({ ...base, trust: { ...log.trust(1), origin: 'lists.example/other' } }), 'LOG_ORIGIN_MISMATCH');
  const stranger = new TestLog(NoteSecretKey.generate('lists.example/demo'));
  t.equal(await refusal({ ...base, trust: { ...stranger.trust(0) } }), 'LOG_UNTRUSTED_KEY', 'another log key');
  t.equal(await refusal({ ...base, stored }), 'accepted', 'grew from the stored size 4');
  const later = log.publish([entry(5)]);
  log.files.set('log/checkpoint', five);
  t.equal(
    await refusal({ ...base, stored: later }),
    'LOG_ROLLBACK',
    'the mirror serves an older checkpoint than stored',
  );
});

t.test('a fork of the log (same key, another leaf) is a split view, with both notes as evidence', async (t) => {
  const honest = new TestLog();
  const stored = honest.publish([entry(0), entry(1), entry(2)]);
  // The same key and witnesses, a different history: leaf 1 replaced.
  const fork = new TestLog(honest.key, honest.witnesses);
  fork.publish([entry(0), utf8('another index'), entry(2), entry(3)]);
  const reader = await readerFor(t, fork.files);
  const err = await checkLeafInLog({ reader, trust: honest.trust(2), leaf: entry(3), leafIndex: 3, stored }).catch(
    (e: unknown) => e,
  );
  t.ok(isTlogError(err, 'LOG_SPLIT_VIEW'), String(err));
  if (isTlogError(err)) {
    t.same(Buffer.from(err.evidence!.earlier), Buffer.from(stored), 'the stored note');
    t.same(Buffer.from(err.evidence!.later), Buffer.from(fork.checkpoints.get(4)!), 'the fork');
  }
  // Same size, another root.
  const sameSize = new TestLog(honest.key, honest.witnesses);
  sameSize.publish([entry(0), entry(1), utf8('other')]);
  const r2 = await readerFor(t, sameSize.files);
  const e2 = await checkLeafInLog({ reader: r2, trust: honest.trust(2), leaf: entry(1), leafIndex: 1, stored }).catch(
    (e: unknown) => e,
  );
  t.ok(isTlogError(e2, 'LOG_SPLIT_VIEW'), 'two roots for size 3');
});

t.test('a mirror that serves damaged tiles is a mirror problem, not a split view', async (t) => {
  const log = new TestLog();
  const stored = log.publish([entry(0), entry(1)]);
  log.publish([entry(2), entry(3), entry(4)]);
  const files = new Map(log.files);
  const tile = new Uint8Array(files.get('log/tile/0/000.p/5')!);
  tile[40]! ^= 1;
  files.set('log/tile/0/000.p/5', tile);
  const reader = await readerFor(t, files);
  t.equal(await refusal({ reader, trust: log.trust(2), leaf: entry(4), leafIndex: 4 }), 'LOG_TILE_MISMATCH');
  t.equal(await refusal({ reader, trust: log.trust(2), leaf: entry(4), leafIndex: 4, stored }), 'LOG_TILE_MISMATCH');
  files.delete('log/tile/0/000.p/5');
  t.equal(await refusal({ reader, trust: log.trust(2), leaf: entry(4), leafIndex: 4 }), 'LOG_FETCH_FAILED');
  files.delete('log/checkpoint');
  t.equal(await refusal({ reader, trust: log.trust(2), leaf: entry(4), leafIndex: 4 }), 'LOG_FETCH_FAILED');
  files.set('log/checkpoint', new Uint8Array(16 * 1024 + 1).fill(0x41));
  t.equal(
    await refusal({ reader, trust: log.trust(2), leaf: entry(4), leafIndex: 4 }),
    'LOG_TOO_LARGE',
    'the 16 KiB cap',
  );
});
