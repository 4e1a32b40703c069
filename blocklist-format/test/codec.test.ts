import fc from 'fast-check';
import t from 'tap';

import { EMPTY_ENTRIES } from '../dist/entries.js';
import { applyDelta, computeDelta, parseDelta, serializeDelta } from '../dist/delta.js';
import { makeFull, parseFull, serializeFull } from '../dist/full.js';
import { formatTime, parseTime } from '../dist/header.js';
import {
  deltaTrustedComment,
  fullTrustedComment,
  indexTrustedComment,
  parseIndex,
  serializeIndex,
  type IndexList,
} from '../dist/indexfile.js';
import { T0, entryMap, hashOf, header, listOf } from './codec-helpers.ts';

const sampleIndex = (): IndexList => ({
  header: {
    listId: 'demo',
    seq: 88412,
    serial: 12,
    created: T0,
    expires: T0 + 7 * 86400,
    minPoll: 900,
    extensions: [],
  },
  full: { path: 'full/12.hwl', size: 1234, sha256: hashOf(1) },
  deltas: [
    { baseSerial: 9, path: 'delta/9-12.hwld', size: 99, sha256: hashOf(2) },
    { baseSerial: 11, path: 'delta/11-12.hwld', size: 100, sha256: hashOf(3) },
  ],
});

t.test('times round-trip and impossible dates are refused', async (t) => {
  t.equal(formatTime(T0), '2026-11-22T06:00:00Z');
  t.equal(parseTime('2026-11-22T06:00:00Z', 'x'), T0);
  for (const bad of [
    '2026-02-30T00:00:00Z',
    '2026-11-22T24:00:00Z',
    '2026-11-22T06:00:60Z',
    '2026-11-22 06:00:00Z',
    '2026-11-22T06:00:00z',
    '2026-11-22T06:00:00.000Z',
    '0099-01-01T00:00:00Z',
    '+02026-11-22T06:00:00Z',
  ]) {
    t.throws(() => parseTime(bad, 'x'), { code: 'MALFORMED' }, bad);
  }
});

t.test('a FULL serializes to the layout of SPEC.md 2.1 and parses back to the same value', async (t) => {
  const list = listOf(2026112201, [
    [1, 0],
    [2, 1],
    [3, 2],
    [4, 3],
  ]);
  const bytes = serializeFull(list);
  const text = bytes.toString('latin1');
  const [head, body] = text.split('\n\n') as [string, string];
  t.same(
    head.split('\n').map((l) => l.split(':')[0]),
    ['HWL1 FULL', 'list-id', 'serial', 'created', 'expires', 'hash', 'hash-key-id', 'entries', 'body-sha256'],
  );
  t.match(head, /\ncreated: 2026-11-22T06:00:00Z\n/);
  t.equal(body.split('\n').length, 5, 'four lines and the final LF');
  const lines = body.trimEnd().split('\n');
  t.same([...lines].sort(), lines, 'body sorted bytewise');
  t.same(parseFull(bytes), list);
  t.equal(Buffer.compare(serializeFull(parseFull(bytes)), bytes), 0, 're-serializing gives the same bytes');
});

t.test('an empty FULL has an empty body', async (t) => {
  const list = makeFull(header(1), EMPTY_ENTRIES);
  const bytes = serializeFull(list);
  t.ok(
    bytes
      .toString('latin1')
      .endsWith('entries: 0\nbody-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\n'),
  );
  t.same(parseFull(bytes), list);
});

t.test('public mode carries the hash key; x- keys are kept after the fixed keys', async (t) => {
  const list = listOf(5, [[1, 0]], {
    hashKey: { mode: 'public', key: 'ab'.repeat(32) },
    extensions: [
      ['x-note', 'made for tests'],
      ['x-a', '1'],
    ],
  });
  const bytes = serializeFull(list);
  t.match(
    bytes.toString('latin1'),
    /hash-key-id: public\nhash-key: (ab){32}\nentries: 1\nbody-sha256: [0-9a-f]{64}\nx-note: made for tests\nx-a: 1\n\n/,
  );
  t.same(parseFull(bytes), list);
});

t.test('a DELTA round-trips and applies to its base', async (t) => {
  const a = listOf(1, [
    [1, 0],
    [2, 1],
    [3, 2],
    [4, 3],
  ]);
  const b = listOf(2, [
    [1, 0],
    [2, 0],
    [5, 3],
  ]);
  const d = computeDelta(a, b);
  t.equal(d.removals.count, 3, 'id 3 and 4 removed, id 2 changes kind');
  t.equal(d.additions.count, 2);
  const bytes = serializeDelta(d);
  const text = bytes.toString('latin1');
  const body = text
    .slice(text.indexOf('\n\n') + 2)
    .trimEnd()
    .split('\n');
  t.ok(body.slice(0, 3).every((l) => l.startsWith('-')) && body.slice(3).every((l) => l.startsWith('+')));
  t.same(parseDelta(bytes), d);
  t.equal(Buffer.compare(serializeDelta(parseDelta(bytes)), bytes), 0);
  t.equal(Buffer.compare(serializeFull(applyDelta(a, parseDelta(bytes))), serializeFull(b)), 0);
});

t.test('applying a delta refuses every mismatch with DELTA_MISMATCH', async (t) => {
  const a = listOf(1, [
    [1, 0],
    [2, 1],
    [3, 2],
  ]);
  const b = listOf(2, [
    [1, 0],
    [4, 1],
  ]);
  const d = computeDelta(a, b);
  const other = listOf(1, [
    [1, 0],
    [2, 1],
  ]);
  t.throws(() => applyDelta(other, d), { code: 'DELTA_MISMATCH' }, 'base digest differs');
  t.throws(
    () =>
      applyDelta(
        listOf(0, [
          [1, 0],
          [2, 1],
          [3, 2],
        ]),
        d,
      ),
    { code: 'DELTA_MISMATCH' },
    'base serial differs',
  );
  t.throws(
    () =>
      applyDelta(
        listOf(
          1,
          [
            [1, 0],
            [2, 1],
            [3, 2],
          ],
          { listId: 'other' },
        ),
        d,
      ),
    { code: 'DELTA_MISMATCH' },
  );
  // Forge deltas whose base digest matches but whose contents do not apply.
  const forged = (removals: [number, number][], additions: [number, number][], entries = d.header.entries) => ({
    header: { ...d.header, entries },
    removals: listOf(9, removals).entries,
    additions: listOf(9, additions).entries,
  });
  t.throws(() => applyDelta(a, forged([[7, 0]], [[4, 1]], 3)), { code: 'DELTA_MISMATCH' }, 'removing an absent hash');
  t.throws(() => applyDelta(a, forged([[2, 0]], [], 2)), { code: 'DELTA_MISMATCH' }, 'removing with another kind');
  t.throws(() => applyDelta(a, forged([], [[1, 1]], 4)), { code: 'DELTA_MISMATCH' }, 'adding a present hash');
  t.throws(
    () =>
      applyDelta(
        a,
        forged(
          [
            [2, 1],
            [3, 2],
          ],
          [[4, 1]],
          3,
        ),
      ),
    { code: 'DELTA_MISMATCH' },
    'wrong count',
  );
  t.throws(
    () =>
      applyDelta(
        a,
        forged(
          [
            [2, 1],
            [3, 2],
          ],
          [[5, 1]],
        ),
      ),
    { code: 'DELTA_MISMATCH' },
    'wrong result digest',
  );
});

t.test('an INDEX with the optional keyring and log-index lines round-trips (SPEC.md 2.3)', async (t) => {
  const base = sampleIndex();
  const both: IndexList = { ...base, header: { ...base.header, keyring: 3, logIndex: 41, extensions: [['x-a', 'b']] } };
  const bytes = serializeIndex(both);
  t.match(bytes.toString('latin1'), /\nmin-poll: 900\nkeyring: 3\nlog-index: 41\nx-a: b\n\n/);
  t.same(parseIndex(bytes), both);
  t.same(serializeIndex(parseIndex(bytes)), bytes, 'one byte form');
  const onlyLog: IndexList = { ...base, header: { ...base.header, logIndex: 0 } };
  t.same(parseIndex(serializeIndex(onlyLog)), onlyLog, 'log-index 0 is the first leaf');
  t.notOk('keyring' in parseIndex(serializeIndex(base)).header, 'absent stays absent');
  t.throws(() => serializeIndex({ ...base, header: { ...base.header, keyring: 0 } }), RangeError);
});

t.test('an INDEX round-trips, and trusted comments follow SPEC.md 3', async (t) => {
  const idx = sampleIndex();
  const bytes = serializeIndex(idx);
  t.equal(
    bytes.toString('latin1'),
    'HWL1 INDEX\nlist-id: demo\nseq: 88412\nserial: 12\ncreated: 2026-11-22T06:00:00Z\nexpires: 2026-11-29T06:00:00Z\n' +
      `min-poll: 900\n\nfull full/12.hwl 1234 ${hashOf(1)}\ndelta 9 delta/9-12.hwld 99 ${hashOf(2)}\n` +
      `delta 11 delta/11-12.hwld 100 ${hashOf(3)}\n`,
  );
  t.same(parseIndex(bytes), idx);
  t.equal(
    indexTrustedComment(idx.header),
    'hwl1 type=index list=demo seq=88412 serial=12 expires=2026-11-29T06:00:00Z',
  );
  t.equal(fullTrustedComment(header(7)), 'hwl1 type=full list=demo serial=7 expires=2026-11-29T06:00:00Z');
  t.equal(
    deltaTrustedComment({ listId: 'demo', baseSerial: 6, serial: 7, expires: T0 }),
    'hwl1 type=delta list=demo base=6 serial=7 expires=2026-11-22T06:00:00Z',
  );
});

t.test('apply(A, delta(A, B)) = B byte for byte over random sets', async (t) => {
  const set = fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 3 })), {
    selector: ([id]) => id,
    maxLength: 120,
  });
  let runs = 0;
  fc.assert(
    fc.property(set, set, (x, y) => {
      runs++;
      const a = listOf(1, x);
      const b = listOf(2, y);
      const delta = parseDelta(serializeDelta(computeDelta(a, b)));
      const result = applyDelta(a, delta);
      const same = Buffer.compare(serializeFull(result), serializeFull(b)) === 0;
      const back = parseFull(serializeFull(b));
      return same && entryMap(back.entries).size === new Set(y.map(([id]) => id)).size;
    }),
    { numRuns: 1500 },
  );
  t.ok(runs > 50, `ran ${runs} cases`);
});
