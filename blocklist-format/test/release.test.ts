import t from 'tap';

import { FormatError } from '../dist/errors.js';
import { serializeFull, type FullList } from '../dist/full.js';
import { generateKeyPair, TrustStore } from '../dist/minisign.js';
import { buildRelease } from '../dist/publish.js';
import { checkRelease, openStored, poll, type ListState, type ReleaseContext } from '../dist/release.js';
import { T0, listOf } from './codec-helpers.ts';
import { NOW, ONE as one, TWO as two, publisher, type Publisher } from './release-helpers.ts';

const ctx = (p: Publisher, extra: Partial<ReleaseContext> = {}): ReleaseContext => ({
  source: p.source,
  trust: p.trust,
  listId: 'demo',
  now: NOW,
  ...extra,
});
const three = listOf(3, [
  [1, 0],
  [5, 1],
]);

async function first(p: Publisher) {
  const r = await poll(ctx(p));
  if (r.kind !== 'updated') throw new Error('expected an update');
  return r;
}

t.test('a fresh client fetches the index and the FULL', async (t) => {
  const p = publisher();
  p.publish(one);
  const r = await first(p);
  t.equal(r.via, 'full');
  t.same(r.state, { listId: 'demo', serial: 1, seq: 1, bodySha256: one.bodySha256, fullSha256: r.index.full.sha256 });
  t.equal(Buffer.compare(Buffer.from(r.fullBytes), serializeFull(one)), 0);
});

t.test('the next serial comes through the delta and gives the FULL byte for byte', async (t) => {
  const p = publisher();
  p.publish(one);
  const a = await first(p);
  p.publish(two);
  p.source.fetched.length = 0;
  const b = await poll(ctx(p), a.state, a.full);
  t.equal(b.kind, 'updated');
  if (b.kind !== 'updated') return;
  t.equal(b.via, 'delta');
  t.notOk(p.source.fetched.includes('full/2.hwl'), 'the FULL was not downloaded');
  t.equal(Buffer.compare(Buffer.from(b.fullBytes), serializeFull(two)), 0);
  t.same(b.full, two);
});

t.test('a broken delta falls back to the FULL and says why', async (t) => {
  const p = publisher();
  p.publish(one);
  const a = await first(p);
  p.publish(two);
  p.source.tamper('delta/1-2.hwld');
  const b = await poll(ctx(p), a.state, a.full);
  if (b.kind !== 'updated') {
    t.fail('expected an update');
    return;
  }
  t.equal(b.via, 'full');
  t.equal(b.deltaError?.code, 'DIGEST_MISMATCH');
  t.same(b.full, two);
});

t.test('a base loader is called only when a delta from the stored serial is applied', async (t) => {
  const p = publisher();
  p.publish(one);
  const a = await first(p);
  let calls = 0;
  const load = (): FullList => {
    calls++;
    return a.full;
  };
  t.same(await poll(ctx(p), a.state, load), { kind: 'unchanged', index: a.index }, 'unchanged: not called');
  t.equal(calls, 0);
  p.publish(two);
  const b = await poll(ctx(p), a.state, async () => Promise.resolve(load()));
  if (b.kind !== 'updated') {
    t.fail('expected an update');
    return;
  }
  t.equal(b.via, 'delta');
  t.equal(calls, 1, 'called once, for the delta');
  t.same(b.full, two);
  t.equal(Buffer.compare(Buffer.from(b.fullBytes), serializeFull(two)), 0);
});

t.test('a base loader that fails, or gives another list, makes the poll fall back to the FULL', async (t) => {
  const p = publisher();
  p.publish(one);
  const a = await first(p);
  p.publish(two);
  const failing = await poll(ctx(p), a.state, () => {
    throw new FormatError('DIGEST_MISMATCH', 'the stored FULL was altered');
  });
  t.equal(failing.kind === 'updated' && failing.via, 'full');
  t.equal(failing.kind === 'updated' && failing.deltaError?.code, 'DIGEST_MISMATCH');
  const wrong = await poll(ctx(p), a.state, () => three);
  t.equal(wrong.kind === 'updated' && wrong.via, 'full');
  t.equal(wrong.kind === 'updated' && wrong.deltaError?.code, 'MALFORMED', 'another serial than the state names');
  const otherBody = await poll(ctx(p), a.state, () => listOf(1, [[7, 0]]));
  t.equal(otherBody.kind === 'updated' && otherBody.deltaError?.code, 'MALFORMED', 'another body for the serial');
  t.same(otherBody.kind === 'updated' && otherBody.full, two);
});

t.test('a base loader that throws something other than a FormatError fails the poll', async (t) => {
  const p = publisher();
  p.publish(one);
  const a = await first(p);
  p.publish(two);
  await t.rejects(
    poll(ctx(p), a.state, () => {
      throw new RangeError('internal');
    }),
    RangeError,
  );
});

t.test('a heartbeat raises seq and keeps the list; the same seq is unchanged', async (t) => {
  const p = publisher();
  p.publish(one);
  const a = await first(p);
  t.same(await poll(ctx(p), a.state, a.full), { kind: 'unchanged', index: a.index });
  p.published.length = 0;
  p.publish(one); // same FULL, seq 2
  const b = await poll(ctx(p), a.state, a.full);
  t.equal(b.kind, 'heartbeat');
  if (b.kind === 'heartbeat') t.equal(b.state.seq, 2);
});

t.test('rollbacks of seq or serial are refused', async (t) => {
  const p = publisher();
  p.publish(two);
  const a = await first(p);
  const state: ListState = { ...a.state, seq: 5 };
  await t.rejects(poll(ctx(p), state, a.full), { code: 'ROLLBACK' }, 'seq below the stored one');
  const q = publisher('demo', p.key);
  q.seq = 10;
  q.publish(one);
  await t.rejects(poll(ctx(q), a.state, a.full), { code: 'ROLLBACK' }, 'serial below the stored one');
});

t.test('equivocation: the same serial with another FULL, or a delta naming another base body', async (t) => {
  const p = publisher();
  p.publish(one);
  const a = await first(p);
  const q = publisher('demo', p.key);
  q.seq = 1;
  q.publish(listOf(1, [[9, 0]]));
  await t.rejects(poll(ctx(q), a.state, a.full), { code: 'EQUIVOCATION' });
  const r = publisher('demo', p.key);
  r.seq = 1;
  r.published.push(listOf(1, [[8, 0]])); // a different serial-1 list as the delta base
  r.publish(two);
  await t.rejects(poll(ctx(r), a.state, a.full), { code: 'EQUIVOCATION' });
});

t.test('tampering, wrong keys, thresholds, expiry and comments are refused with their codes', async (t) => {
  const p = publisher();
  p.publish(one);
  const tampered = publisher('demo', p.key);
  tampered.publish(one);
  tampered.source.tamper('index.hwl', 20);
  await t.rejects(poll(ctx(tampered)), { code: 'SIGNATURE_INVALID' });
  const body = publisher('demo', p.key);
  body.publish(one);
  body.source.tamper('full/1.hwl');
  await t.rejects(poll(ctx(body)), { code: 'DIGEST_MISMATCH' }, 'the digest is checked before the signature');
  await t.rejects(
    poll(ctx(p, { trust: new TrustStore([['demo', { keys: [generateKeyPair().publicKey], threshold: 1 }]]) })),
    {
      code: 'UNTRUSTED_KEY',
    },
  );
  const second = generateKeyPair();
  const two2 = new TrustStore([['demo', { keys: [p.key.publicKey, second.publicKey], threshold: 2 }]]);
  await t.rejects(poll(ctx(p, { trust: two2 })), { code: 'THRESHOLD_NOT_MET' });
  const both = publisher('demo', p.key);
  both.publish(one, { signers: [p.key, second] });
  t.equal((await poll(ctx(both, { trust: two2 }))).kind, 'updated', 'two keys meet a threshold of two');
  await t.rejects(poll(ctx(p, { now: T0 + 7 * 86400 - 200 })), { code: 'EXPIRED' }, 'within 300 s of expiry');
  await t.rejects(poll(ctx(p, { now: T0 - 301 })), { code: 'NOT_YET_VALID' });
  t.equal((await poll(ctx(p, { now: T0 - 300 }))).kind, 'updated', 'created = now + 300 s is accepted');
  await t.rejects(
    poll(ctx(p, { listId: 'other', trust: new TrustStore([['other', { keys: [p.key.publicKey], threshold: 1 }]]) })),
    {
      code: 'LIST_MISMATCH',
    },
  );
  await t.rejects(poll(ctx(p, { hashKeyIds: ['demo-2027'] })), { code: 'UNKNOWN_HASH_KEY' });
  await t.rejects(poll(ctx(p, { maxListBytes: 100 })), { code: 'TOO_LARGE' });
});

t.test('a trusted comment that disagrees with the header is refused', async (t) => {
  const p = publisher();
  const { files } = buildRelease({
    full: one,
    bases: [],
    seq: 1,
    created: T0,
    expires: T0 + 86400,
    minPoll: 900,
    signers: [p.key],
  });
  for (const [k, v] of files) p.source.files.set(k, v);
  const { sign } = await import('../dist/minisign.js');
  const indexBytes = files.get('index.hwl')!;
  p.source.files.set(
    'index.hwl.minisig',
    Buffer.from(sign(indexBytes, p.key, 'hwl1 type=index list=demo seq=99 serial=1 expires=2026-11-23T06:00:00Z')),
  );
  await t.rejects(poll(ctx(p)), { code: 'COMMENT_MISMATCH' });
});

t.test('a stored list re-opens only when its files agree with the signed index', async (t) => {
  const p = publisher();
  p.publish(one);
  const a = await first(p);
  const stored = { indexBytes: a.indexBytes, indexSignatures: a.indexSignatures, fullBytes: a.fullBytes };
  const back = openStored(ctx(p), stored, a.state);
  t.same(back.full, one);
  t.same(back.state, a.state);
  const broken = Uint8Array.from(a.fullBytes);
  broken[broken.length - 2] = broken[broken.length - 2]! ^ 1;
  t.throws(() => openStored(ctx(p), { ...stored, fullBytes: broken }), { code: 'DIGEST_MISMATCH' });
  t.throws(() => openStored(ctx(p), stored, { ...a.state, seq: 7 }), { code: 'MALFORMED' });
  const idx = Uint8Array.from(a.indexBytes);
  idx[30] = idx[30]! ^ 1;
  t.throws(() => openStored(ctx(p), { ...stored, indexBytes: idx }), { code: 'SIGNATURE_INVALID' });
});

t.test('checkRelease applies every listed delta to its base', async (t) => {
  const p = publisher();
  p.publish(one);
  p.publish(two);
  p.publish(three);
  const good = await checkRelease(ctx(p));
  t.ok(good.ok, JSON.stringify(good.items));
  t.same(
    good.items.map((i) => i.what),
    ['index.hwl', 'full/3.hwl', 'delta/1-3.hwld', 'delta/2-3.hwld'],
  );
  p.source.files.delete('full/1.hwl');
  p.source.tamper('delta/2-3.hwld');
  const bad = await checkRelease(ctx(p));
  t.notOk(bad.ok);
  t.same(
    bad.items.filter((i) => !i.ok).map((i) => [i.what, i.code]),
    [
      ['delta/1-3.hwld', 'FETCH_FAILED'],
      ['delta/2-3.hwld', 'DIGEST_MISMATCH'],
    ],
  );
});
