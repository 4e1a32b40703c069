// The streamed delta: applyDeltaFrom (the base FULL read in pieces, the result written to a spool in pieces) must
// write byte for byte what serializeFull(applyDelta(parseFull(base), delta)) gives, and refuse what that refuses
// with the same code, wherever the piece boundaries fall; and pollMatcher with the base given as a file
// (StoredFull) and a spool must give what the in-memory delta gives, with the same fallbacks and refusals.
import { createHash } from 'node:crypto';

import fc from 'fast-check';
import t from 'tap';

import { applyDelta, applyDeltaFrom, computeDelta, type DeltaList } from '../dist/delta.js';
import { entriesFromPairs } from '../dist/entries.js';
import { FormatError } from '../dist/errors.js';
import { parseFull, serializeFull, type FullList } from '../dist/full.js';
import type { FullMatcher } from '../dist/fullmatcher.js';
import { pollMatcher, type PollResult, type ReleaseContext, type StoredFull } from '../dist/release.js';
import type { FullFile } from '../dist/spool.js';
import { hashOf, listOf } from './codec-helpers.ts';
import { NOW, ONE as one, TWO as two, publisher, type Publisher } from './release-helpers.ts';
import { MemorySpool, StreamingSource, fileOf } from './stream-helpers.ts';

const KINDS = ['D', 'H', 'U', 'P'] as const;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The in-memory path: the base parsed whole, the delta applied, the result serialized; or the code. */
function inMemory(baseBytes: Uint8Array, delta: DeltaList, maxBytes?: number): string {
  try {
    const base = parseFull(baseBytes, maxBytes === undefined ? undefined : { maxBytes });
    return serializeFull(applyDelta(base, delta)).toString('hex');
  } catch (err) {
    if (err instanceof FormatError) return `code ${err.code}`;
    throw err;
  }
}

/** The streamed path over `file`, checking what it reports against what it wrote; or the code. */
function streamed(
  t: { fail(message: string): void },
  file: FullFile,
  delta: DeltaList,
  options: { pieceBytes?: number; maxBytes?: number; baseFileSha256?: string; maxRead?: number } = {},
): string {
  const spool = new MemorySpool(options.maxRead);
  try {
    const made = applyDeltaFrom(file, delta, spool, options);
    const bytes = spool.bytes();
    if (made.size !== bytes.length || made.fileSha256 !== sha256(bytes) || made.count !== delta.header.entries) {
      t.fail('applyDeltaFrom reports another file than it wrote');
    }
    return bytes.toString('hex');
  } catch (err) {
    if (err instanceof FormatError) return `code ${err.code}`;
    throw err;
  }
}

function list(serial: number, ids: readonly (readonly [number, number])[]): FullList {
  const seen = new Map<number, number>();
  for (const [id, kind] of ids) seen.set(id, kind);
  return listOf(serial, [...seen]);
}

function entries(ids: readonly (readonly [number, number])[]) {
  const seen = new Map<number, number>();
  for (const [id, kind] of ids) seen.set(id, kind);
  return entriesFromPairs([...seen].map(([id, kind]) => [hashOf(id), KINDS[kind % 4]!] as const));
}

const idsArb = fc.array(fc.tuple(fc.integer({ min: 0, max: 150 }), fc.integer({ min: 0, max: 3 })), {
  maxLength: 60,
});
const pieceArb = fc.oneof(fc.constantFrom(1, 67, 4096), fc.integer({ min: 1, max: 3000 }));
const readArb = fc.constantFrom(Infinity, 1, 7, 100, 4096);

/**
 * A delta for `base`: the one to a random target, possibly with one field or list forged, or one made of random
 * removals and additions (most of which do not apply).
 */
const deltaArb = (base: FullList): fc.Arbitrary<DeltaList> =>
  fc
    .record({
      target: idsArb,
      forge: fc.constantFrom(
        'none',
        'none',
        'none',
        'entries',
        'body',
        'base-body',
        'base-serial',
        'list',
        'random',
        'random-count',
      ),
      removals: idsArb,
      additions: idsArb,
      delta: fc.integer({ min: -2, max: 2 }),
    })
    .map(({ target, forge, removals, additions, delta }) => {
      const valid = computeDelta(base, list(base.header.serial + 1, target));
      const h = valid.header;
      switch (forge) {
        case 'entries':
          return { ...valid, header: { ...h, entries: Math.max(0, h.entries + (delta || 1)) } };
        case 'body':
          return { ...valid, header: { ...h, bodySha256: hashOf(9999) } };
        case 'base-body':
          return { ...valid, header: { ...h, baseBodySha256: hashOf(9998) } };
        case 'base-serial':
          return { ...valid, header: { ...h, baseSerial: h.baseSerial + 7, serial: h.serial + 7 } };
        case 'list':
          return { ...valid, header: { ...h, listId: 'other' } };
        case 'random':
        case 'random-count': {
          const r = entries(removals);
          const a = entries(additions);
          const count = base.entries.count - r.count + a.count + (forge === 'random-count' ? delta : 0);
          return { header: { ...h, entries: Math.max(0, count) }, removals: r, additions: a };
        }
        default:
          return valid;
      }
    });

t.test('the streamed delta writes the in-memory result byte for byte, or refuses it with the same code', async (t) => {
  let same = 0;
  let refused = 0;
  fc.assert(
    fc.property(
      idsArb.chain((ids) => {
        const base = list(1, ids);
        return fc.tuple(fc.constant(base), deltaArb(base), pieceArb, readArb);
      }),
      ([base, delta, pieceBytes, maxRead]) => {
        const bytes = serializeFull(base);
        const want = inMemory(bytes, delta);
        const got = streamed(t, fileOf(bytes, maxRead), delta, { pieceBytes, baseFileSha256: sha256(bytes) });
        if (got !== want) t.fail(`streamed ${got.slice(0, 40)}, in memory ${want.slice(0, 40)}`);
        if (want.startsWith('code')) refused++;
        else same++;
        return got === want;
      },
    ),
    { numRuns: 400 },
  );
  t.ok(same > 0 && refused > 0, `both outcomes seen (${same} applied, ${refused} refused)`);
});

t.test('a damaged base is refused as parseFull refuses it, wherever the merge stops', async (t) => {
  const codes = new Set<string>();
  fc.assert(
    fc.property(
      idsArb.chain((ids) => {
        const base = list(1, ids);
        return fc.tuple(
          fc.constant(base),
          deltaArb(base),
          pieceArb,
          fc.nat(),
          fc.integer({ min: 1, max: 255 }),
          fc.boolean(),
        );
      }),
      ([base, delta, pieceBytes, where, xor, redigest]) => {
        const bytes = Buffer.from(serializeFull(base));
        const at = where % bytes.length;
        bytes[at] = bytes[at]! ^ xor;
        if (redigest) {
          // Only the intended defect remains: body-sha256 rewritten to the damaged body's.
          const text = bytes.toString('latin1');
          const bodyStart = text.indexOf('\n\n') + 2;
          const field = text.indexOf('\nbody-sha256: ');
          if (bodyStart >= 2 && field >= 0 && field + 14 + 64 < bodyStart && at >= bodyStart) {
            bytes.write(sha256(bytes.subarray(bodyStart)), field + 14, 'latin1');
          }
        }
        const want = inMemory(bytes, delta);
        const got = streamed(t, fileOf(bytes), delta, { pieceBytes });
        codes.add(got.startsWith('code') ? got : 'applied');
        if (got !== want) t.fail(`streamed ${got.slice(0, 40)}, in memory ${want.slice(0, 40)}`);
        // A base that is not the verified file is refused as such, whatever else it is.
        const checked = streamed(t, fileOf(bytes), delta, { pieceBytes, baseFileSha256: sha256(serializeFull(base)) });
        if (checked !== 'code DIGEST_MISMATCH') t.fail(`a base with another digest gave ${checked.slice(0, 40)}`);
        return got === want && checked === 'code DIGEST_MISMATCH';
      },
    ),
    { numRuns: 300 },
  );
  t.ok(codes.has('code MALFORMED') && codes.has('code DIGEST_MISMATCH'), [...codes].join(', '));
});

t.test('the base is read and the result written in pieces, never whole', async (t) => {
  const ids = Array.from({ length: 300 }, (_, i) => [i, i % 4] as const);
  const base = list(1, ids);
  const delta = computeDelta(base, list(2, [...ids.slice(5), [1000, 0], [1001, 2]]));
  const bytes = serializeFull(base);
  let largest = 0;
  const file: FullFile = {
    size: bytes.length,
    read(position, into) {
      largest = Math.max(largest, into.length);
      const n = Math.min(into.length, bytes.length - position);
      into.set(bytes.subarray(position, position + n));
      return n;
    },
  };
  const spool = new MemorySpool();
  const made = applyDeltaFrom(file, delta, spool, { pieceBytes: 10 * 67 });
  t.equal(spool.bytes().toString('hex'), serializeFull(applyDelta(base, delta)).toString('hex'));
  t.ok(largest <= 4096, `the largest read was ${largest} bytes (the header's 4 KiB, then 10 lines)`);
  t.equal(spool.writes, 1 + Math.ceil(made.count / 10), 'the header, then one write per 10 lines');
  t.equal(made.fileSha256, sha256(spool.bytes()));
});

t.test('the base cap and an I/O error', async (t) => {
  const base = list(1, [
    [1, 0],
    [2, 1],
  ]);
  const delta = computeDelta(base, list(2, [[3, 0]]));
  const bytes = serializeFull(base);
  t.equal(inMemory(bytes, delta, 100), 'code TOO_LARGE');
  t.equal(streamed(t, fileOf(bytes), delta, { maxBytes: 100 }), 'code TOO_LARGE');
  const failing = fileOf(bytes, Infinity, (reads) => {
    if (reads === 1) throw new Error('EIO');
  });
  t.throws(() => applyDeltaFrom(failing, delta, new MemorySpool()), { message: 'EIO' }, 'not a FormatError');
  const short: FullFile = { size: bytes.length, read: (p, into) => fileOf(bytes.subarray(0, 300)).read(p, into) };
  t.equal(streamed(t, short, delta), 'code DIGEST_MISMATCH', 'a file that ends early');
});

// The poll.

/** A streaming copy of a publisher's files (so that a fallback FULL is streamed into a second spool). */
function streamingOf(p: Publisher): StreamingSource {
  const s = new StreamingSource();
  for (const [k, v] of p.source.files) s.files.set(k, v);
  return s;
}

interface Spools {
  readonly made: MemorySpool[];
  readonly ctx: ReleaseContext;
}

function spooled(p: Publisher, source = streamingOf(p)): Spools {
  const made: MemorySpool[] = [];
  return {
    made,
    ctx: {
      source,
      trust: p.trust,
      listId: 'demo',
      now: NOW,
      spool: () => {
        const s = new MemorySpool(5);
        made.push(s);
        return s;
      },
    },
  };
}

function storedOf(bytes: Uint8Array, fileSha256 = sha256(bytes)): StoredFull {
  return { file: fileOf(bytes, 50), fileSha256 };
}

function updated(r: PollResult<FullMatcher>): Extract<PollResult<FullMatcher>, { kind: 'updated' }> {
  if (r.kind !== 'updated') throw new Error(`expected an update, got ${r.kind}`);
  return r;
}

async function enforcingOne(p: Publisher) {
  p.publish(one);
  const a = updated(await pollMatcher({ source: p.source, trust: p.trust, listId: 'demo', now: NOW }));
  p.publish(two);
  return a;
}

t.test('pollMatcher applies a delta to a stored file into a spool, as the in-memory delta does', async (t) => {
  const p = publisher();
  const a = await enforcingOne(p);
  const inMem = updated(
    await pollMatcher({ source: p.source, trust: p.trust, listId: 'demo', now: NOW }, a.state, one),
  );
  t.equal(inMem.via, 'delta');
  const s = spooled(p);
  let loads = 0;
  const r = updated(
    await pollMatcher(s.ctx, a.state, () => {
      loads++;
      return storedOf(serializeFull(one));
    }),
  );
  t.equal(loads, 1);
  t.equal(r.via, 'delta');
  t.equal(s.made.length, 1, 'one spool, the result');
  t.equal(r.spool, s.made[0]);
  t.equal(r.fullBytes, undefined, 'no FULL in memory');
  t.equal(s.made[0]!.bytes().toString('hex'), serializeFull(two).toString('hex'), 'the FULL of serial 2');
  t.notOk((s.ctx.source as StreamingSource).fetched.includes('full/2.hwl'), 'the FULL was not downloaded');
  t.same(r.state, inMem.state);
  t.same(r.full, inMem.full, 'the same matcher arrays');

  // Given directly, and without a spool (poll reads the file whole): the same list.
  const direct = updated(await pollMatcher(spooled(p).ctx, a.state, storedOf(serializeFull(one))));
  t.same(direct.full, inMem.full);
  const noSpool = updated(
    await pollMatcher({ source: p.source, trust: p.trust, listId: 'demo', now: NOW }, a.state, () =>
      storedOf(serializeFull(one)),
    ),
  );
  t.equal(noSpool.via, 'delta');
  t.equal(Buffer.from(noSpool.fullBytes!).toString('hex'), serializeFull(two).toString('hex'));
});

t.test('a failed streamed delta falls back to the FULL with the in-memory code, in a second spool', async (t) => {
  const p = publisher();
  const a = await enforcingOne(p);
  const oneBytes = serializeFull(one);
  const cases: [string, () => StoredFull, string][] = [
    [
      'a stored file altered after it was verified',
      () => storedOf(Buffer.from(oneBytes).fill(0x30, 400, 401), a.state.fullSha256),
      'DIGEST_MISMATCH',
    ],
    ['a file of another digest than the state', () => storedOf(oneBytes, sha256(Buffer.from('x'))), 'MALFORMED'],
    ['another serial than the state names', () => storedOf(serializeFull(two)), 'MALFORMED'],
    [
      'a loader that fails',
      () => {
        throw new FormatError('DIGEST_MISMATCH', 'gone');
      },
      'DIGEST_MISMATCH',
    ],
  ];
  for (const [what, load, code] of cases) {
    const s = spooled(p);
    const r = updated(await pollMatcher(s.ctx, a.state, load));
    t.equal(r.via, 'full', what);
    t.equal(r.deltaError?.code, code, what);
    t.equal(r.spool, s.made.at(-1), `${what}: the FULL's spool is the last one made`);
    t.equal(s.made.at(-1)!.bytes().toString('hex'), serializeFull(two).toString('hex'));
  }

  // A tampered delta: the same code as the in-memory path.
  p.source.tamper('delta/1-2.hwld', 300);
  const inMem = updated(
    await pollMatcher({ source: p.source, trust: p.trust, listId: 'demo', now: NOW }, a.state, one),
  );
  const s = spooled(p);
  const r = updated(await pollMatcher(s.ctx, a.state, () => storedOf(oneBytes)));
  t.equal(r.via, 'full');
  t.ok(inMem.deltaError, 'the in-memory delta failed');
  t.equal(r.deltaError?.code, inMem.deltaError?.code);
});

t.test('a delta naming another body for the stored serial is equivocation, with a stored file too', async (t) => {
  const p = publisher();
  p.publish(one);
  const a = updated(await pollMatcher({ source: p.source, trust: p.trust, listId: 'demo', now: NOW }));
  const r = publisher('demo', p.key);
  r.seq = 1;
  r.published.push(listOf(1, [[8, 0]])); // a different serial-1 list as the delta base
  r.publish(two);
  const s = spooled(r);
  await t.rejects(
    pollMatcher(s.ctx, a.state, () => storedOf(serializeFull(one))),
    { code: 'EQUIVOCATION' },
  );
  t.equal(s.made.length, 0, 'refused before any spool was made');
});
