// parseFullMatcher (a FULL parsed straight into the matcher's arrays), and pollMatcher / openStoredMatcher that use
// it: the same result as prepareMatcher over parseFull's entries, and the same refusals with the same codes.
import { createHash } from 'node:crypto';

import fc from 'fast-check';
import t from 'tap';

import { FormatError } from '../dist/errors.js';
import { makeFull, parseFull, serializeFull, type FullList } from '../dist/full.js';
import { parseFullMatcher } from '../dist/fullmatcher.js';
import { prepareMatcher } from '../dist/matcher.js';
import { openStored, openStoredMatcher, poll, pollMatcher, type ReleaseContext } from '../dist/release.js';
import { T0, hashOf, header, listOf } from './codec-helpers.ts';
import { publisher, type Publisher } from './release-helpers.ts';

/** A FULL of `ids.length` entries: kind index per id. */
function fullOf(serial: number, ids: readonly (readonly [number, number])[]): FullList {
  return listOf(serial, ids);
}

/** What a parser did with `bytes`: its error code, or the matcher arrays it gave. */
function outcome(parse: () => unknown): unknown {
  try {
    return parse();
  } catch (err) {
    if (err instanceof FormatError) return `code ${err.code}`;
    throw err;
  }
}

/** parseFull's result turned into the matcher's arrays, as the daemon did before parseFullMatcher. */
function viaParseFull(bytes: Uint8Array, maxBytes?: number): unknown {
  const full = parseFull(bytes, maxBytes === undefined ? undefined : { maxBytes });
  return {
    header: full.header,
    count: full.entries.count,
    bodySha256: full.bodySha256,
    parts: prepareMatcher(full.entries.hashes, full.entries.kinds),
  };
}

function viaMatcher(bytes: Uint8Array, maxBytes?: number): unknown {
  return parseFullMatcher(bytes, maxBytes === undefined ? undefined : { maxBytes });
}

/** Rewrites body-sha256 to the digest of the (altered) body, so that only the intended defect remains. */
function redigest(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1');
  const bodyStart = text.indexOf('\n\n') + 2;
  const sha = createHash('sha256').update(bytes.subarray(bodyStart)).digest('hex');
  const at = text.indexOf('\nbody-sha256: ') + '\nbody-sha256: '.length;
  const out = Buffer.from(bytes);
  out.write(sha, at, 'latin1');
  return out;
}

t.test('gives what prepareMatcher gives over parseFull, for lists with every kind', async (t) => {
  const lists = [
    fullOf(1, []),
    fullOf(1, [[1, 0]]),
    fullOf(1, [[1, 2]]),
    fullOf(
      2,
      Array.from({ length: 500 }, (_, i) => [i, i % 4] as const),
    ),
  ];
  for (const list of lists) {
    const bytes = serializeFull(list);
    t.same(viaMatcher(bytes), viaParseFull(bytes), `${list.entries.count} entries`);
  }
});

t.test('agrees with parseFull on random lists', async (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 1e6 }), { maxLength: 300 }), fc.nat(), (ids, seed) => {
      const bytes = serializeFull(
        fullOf(
          3,
          ids.map((id, i) => [id, (seed + i * 7) % 4] as const),
        ),
      );
      const a = viaMatcher(bytes) as { parts: unknown };
      const b = viaParseFull(bytes) as { parts: unknown };
      return JSON.stringify(a) === JSON.stringify(b);
    }),
    { numRuns: 100 },
  );
  t.pass('every run agreed');
});

t.test('refuses a mutated file exactly when parseFull does, with the same code', async (t) => {
  const base = serializeFull(
    fullOf(
      4,
      Array.from({ length: 40 }, (_, i) => [i * 3, i % 4] as const),
    ),
  );
  const bodyStart = base.toString('latin1').indexOf('\n\n') + 2;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
      fc.boolean(),
      (edits, keepDigest) => {
        const bytes = Buffer.from(base);
        for (const [at, value] of edits) bytes[at] = value;
        // Body edits with the digest refreshed reach the line checks; without, the digest check refuses them.
        const input = keepDigest && edits.every(([at]) => at >= bodyStart) ? redigest(bytes) : bytes;
        const a = outcome(() => viaMatcher(input));
        const b = outcome(() => viaParseFull(input));
        return JSON.stringify(a) === JSON.stringify(b);
      },
    ),
    { numRuns: 400 },
  );
  t.pass('every run agreed');
});

t.test('refuses each defect of a body line, the order, the length, the digest and the cap', async (t) => {
  const list = fullOf(5, [
    [1, 0],
    [2, 1],
    [3, 2],
    [4, 3],
  ]);
  const bytes = serializeFull(list);
  const text = bytes.toString('latin1');
  const bodyStart = text.indexOf('\n\n') + 2;
  const head = text.slice(0, bodyStart);
  const lines = text.slice(bodyStart).split('\n').slice(0, -1);
  const withBody = (ls: string[]): Buffer => redigest(Buffer.from(head + ls.map((l) => l + '\n').join(''), 'latin1'));
  const code = (b: Uint8Array): unknown => outcome(() => viaMatcher(b));
  t.same(code(withBody(lines)), viaParseFull(bytes), 'the file itself');
  t.equal(code(withBody([lines[1]!, lines[0]!, ...lines.slice(2)])), 'code MALFORMED', 'unsorted');
  t.equal(code(withBody([lines[0]!, lines[0]!, ...lines.slice(2)])), 'code MALFORMED', 'duplicate hash');
  t.equal(code(withBody([lines[0]!.toUpperCase(), ...lines.slice(1)])), 'code MALFORMED', 'upper-case hex');
  t.equal(code(withBody([lines[0]!.replace(/^./, 'g'), ...lines.slice(1)])), 'code MALFORMED', 'not hex');
  t.equal(code(withBody([lines[0]!.slice(0, 64) + ' X', ...lines.slice(1)])), 'code MALFORMED', 'kind X');
  t.equal(code(withBody([lines[0]!.slice(0, 64) + ' u', ...lines.slice(1)])), 'code MALFORMED', 'kind u');
  t.equal(code(withBody([lines[0]!.slice(0, 64) + '\tD', ...lines.slice(1)])), 'code MALFORMED', 'a tab');
  const noLf = Buffer.from(withBody(lines));
  noLf[bodyStart + 66] = 0x20;
  t.equal(code(redigest(noLf)), 'code MALFORMED', 'no LF at the end of a line');
  t.equal(code(withBody(lines.slice(1))), 'code MALFORMED', 'fewer lines than entries');
  t.equal(code(Buffer.concat([bytes, Buffer.from('\n')])), 'code MALFORMED', 'a byte past the body');
  t.equal(code(Buffer.from(text.replace(/body-sha256: ./, 'body-sha256: 0'), 'latin1')), 'code DIGEST_MISMATCH');
  t.equal(
    outcome(() => viaMatcher(bytes, bytes.length - 1)),
    'code TOO_LARGE',
    'over the caller cap',
  );
  t.equal(code(Buffer.from(text.replace('HWL1 FULL', 'HWL1 FOLL'), 'latin1')), 'code MALFORMED', 'bad magic');
  t.equal(
    code(new Uint8Array(0)),
    outcome(() => viaParseFull(new Uint8Array(0))),
    'empty input',
  );
});

t.test('a list of only U entries gives an empty matcher with the count of U', async (t) => {
  const bytes = serializeFull(
    makeFull(header(6), {
      count: 2,
      hashes: Buffer.from(hashOf(1) < hashOf(2) ? hashOf(1) + hashOf(2) : hashOf(2) + hashOf(1), 'hex'),
      kinds: Buffer.from('UU', 'latin1'),
    }),
  );
  const m = parseFullMatcher(bytes);
  t.equal(m.count, 2);
  t.equal(m.parts.size, 0);
  t.same(m.parts.counts, { D: 0, H: 0, U: 2, P: 0 });
  t.same(m, viaParseFull(bytes));
});

const NOW = T0 + 3600;
const ctx = (p: Publisher): ReleaseContext => ({ source: p.source, trust: p.trust, listId: 'demo', now: NOW });

t.test('pollMatcher gives poll results with matcher arrays, by the FULL and by a delta', async (t) => {
  const p = publisher();
  const one = fullOf(1, [
    [1, 0],
    [2, 1],
    [3, 3],
  ]);
  const two = fullOf(2, [
    [1, 0],
    [2, 2],
    [4, 1],
  ]);
  p.publish(one);
  const a = await pollMatcher(ctx(p));
  if (a.kind !== 'updated') throw new Error('expected an update');
  t.equal(a.via, 'full');
  t.same(a.full.parts, prepareMatcher(one.entries.hashes, one.entries.kinds));
  t.same(a.full.header, one.header);
  t.equal(a.full.bodySha256, one.bodySha256);
  const plain = await poll(ctx(p));
  t.same(plain.kind === 'updated' && plain.state, a.state, 'the same state as poll');
  t.same(await pollMatcher(ctx(p), a.state, one), { kind: 'unchanged', index: a.index });
  p.publish(two);
  const b = await pollMatcher(ctx(p), a.state, () => one);
  if (b.kind !== 'updated') throw new Error('expected an update');
  t.equal(b.via, 'delta');
  t.same(b.full.parts, prepareMatcher(two.entries.hashes, two.entries.kinds));
  t.equal(b.full.count, 3);
  t.equal(Buffer.compare(Buffer.from(b.fullBytes!), serializeFull(two)), 0);
});

t.test('pollMatcher refuses what poll refuses', async (t) => {
  const p = publisher();
  p.publish(fullOf(1, [[1, 0]]));
  p.source.tamper('full/1.hwl');
  await t.rejects(pollMatcher(ctx(p)), { code: 'DIGEST_MISMATCH' });
  await t.rejects(poll(ctx(p)), { code: 'DIGEST_MISMATCH' });
});

t.test('openStoredMatcher re-opens what openStored re-opens, and refuses the same', async (t) => {
  const p = publisher();
  const one = fullOf(1, [
    [1, 0],
    [2, 3],
  ]);
  p.publish(one);
  const a = await poll(ctx(p));
  if (a.kind !== 'updated') throw new Error('expected an update');
  const stored = { indexBytes: a.indexBytes, indexSignatures: a.indexSignatures, fullBytes: a.fullBytes };
  const m = openStoredMatcher(ctx(p), stored, a.state);
  const l = openStored(ctx(p), stored, a.state);
  t.same(m.state, l.state);
  t.same(m.full.parts, prepareMatcher(l.full.entries.hashes, l.full.entries.kinds));
  const altered = Buffer.from(a.fullBytes);
  altered[altered.length - 2] = 0x48;
  const bad = { ...stored, fullBytes: altered };
  t.throws(() => openStoredMatcher(ctx(p), bad), { code: 'DIGEST_MISMATCH' });
  t.throws(() => openStored(ctx(p), bad), { code: 'DIGEST_MISMATCH' });
  t.throws(() => openStoredMatcher(ctx(p), stored, { ...a.state, seq: 9 }), { code: 'MALFORMED' });
});
