// Property tests (fast-check, bounded): proofs made from a log's tiles verify for any sizes and leaves, and any
// flipped bit in a proof, a root, a leaf or a signature makes verification fail; a log grown publish by publish
// has the tiles of one built at once.
import fc from 'fast-check';
import t from 'tap';

import {
  LogAppender,
  NoteSecretKey,
  TileHashReader,
  TreeBuilder,
  isTlogError,
  leafHash,
  openCheckpoint,
  parseCosignerKey,
  parseLogKey,
  cosignCheckpoint,
  addSignatures,
  parseNote,
  signCheckpoint,
  verifyConsistency,
  verifyInclusion,
  type Hash,
} from '../dist/index.js';
import { MemoryTiles, entry } from './helpers.ts';

const MAX = 1100; // past four level-0 tiles
const entries = Array.from({ length: MAX }, (_, i) => entry(i));
const roots: Hash[] = [];
const tiles = new MemoryTiles();
{
  // Grown one entry at a time, writing each size's partial tiles, as publishes do.
  const b = new TreeBuilder();
  const a = LogAppender.empty();
  roots.push(b.root());
  for (const e of entries) {
    b.addLeafHash(leafHash(e));
    a.add(e);
    tiles.add(a.finish());
    roots.push(b.root());
  }
}

function flip(bytes: Uint8Array, bit: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[Math.floor(bit / 8) % out.length]! ^= 1 << (bit % 8);
  return out;
}

const fails = (f: () => void): boolean => {
  try {
    f();
    return false;
  } catch (err) {
    if (!isTlogError(err)) throw err;
    return true;
  }
};

const sizes = fc.integer({ min: 1, max: MAX }).chain((n) => fc.tuple(fc.integer({ min: 0, max: n }), fc.constant(n)));

t.test('any two sizes: the consistency proof from tiles verifies; a flipped bit anywhere fails', async (t) => {
  await fc.assert(
    fc.asyncProperty(sizes, fc.nat(), async ([m, n], bit) => {
      const proof = await new TileHashReader(tiles, n).consistencyProof(m);
      verifyConsistency(m, n, roots[m]!, roots[n]!, proof);
      // From the empty tree nothing is proved about the new root (tlog-witness); the old one must be the empty root.
      if (!fails(() => verifyConsistency(m, n, flip(roots[m]!, bit), roots[n]!, proof))) throw new Error('old root');
      if (m === 0 || m === n) return;
      if (!fails(() => verifyConsistency(m, n, roots[m]!, flip(roots[n]!, bit), proof))) throw new Error('new root');
      if (proof.length > 0) {
        const k = bit % proof.length;
        const bad = proof.map((h, i) => (i === k ? flip(h, bit >> 3) : h));
        if (!fails(() => verifyConsistency(m, n, roots[m]!, roots[n]!, bad))) throw new Error(`proof hash ${k}`);
        if (!fails(() => verifyConsistency(m, n, roots[m]!, roots[n]!, proof.slice(1)))) throw new Error('short');
        if (!fails(() => verifyConsistency(m, n, roots[m]!, roots[n]!, [...proof, proof[0]!]))) throw new Error('long');
      }
    }),
    { numRuns: 300 },
  );
  t.pass('300 runs');
});

t.test('any leaf: the inclusion proof from tiles verifies; a flipped bit anywhere fails', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: MAX }).chain((n) => fc.tuple(fc.integer({ min: 0, max: n - 1 }), fc.constant(n))),
      fc.nat(),
      async ([i, n], bit) => {
        const reader = new TileHashReader(tiles, n);
        const proof = await reader.inclusionProof(i);
        const leaf = leafHash(entries[i]!);
        verifyInclusion(i, n, leaf, proof, roots[n]!);
        if (!fails(() => verifyInclusion(i, n, flip(leaf, bit), proof, roots[n]!))) throw new Error('leaf');
        if (!fails(() => verifyInclusion(i, n, leafHash(flip(entries[i]!, bit)), proof, roots[n]!)))
          throw new Error('entry');
        if (!fails(() => verifyInclusion(i, n, leaf, proof, flip(roots[n]!, bit)))) throw new Error('root');
        if (proof.length > 0) {
          const k = bit % proof.length;
          const bad = proof.map((h, j) => (j === k ? flip(h, bit >> 3) : h));
          if (!fails(() => verifyInclusion(i, n, leaf, bad, roots[n]!))) throw new Error(`proof hash ${k}`);
        }
        if (n > 1 && !fails(() => verifyInclusion((i + 1) % n, n, leaf, proof, roots[n]!))) throw new Error('index');
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 runs');
});

t.test('a log grown in any steps has the tiles and root of one built at once', async (t) => {
  const whole = LogAppender.empty();
  for (const e of entries) whole.add(e);
  const expected = whole.finish();
  await fc.assert(
    fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: MAX - 1 }), { maxLength: 4 }), async (cuts) => {
      const store = new MemoryTiles();
      let a = LogAppender.empty();
      let at = 0;
      for (const cut of [...cuts.sort((x, y) => x - y), MAX]) {
        for (; at < cut; at++) a.add(entries[at]!);
        store.add(a.finish());
        a = await LogAppender.resume(store, at, roots[at]!);
      }
      for (const [path, bytes] of expected) {
        if (Buffer.compare(store.files.get(path) ?? new Uint8Array(), bytes) !== 0) throw new Error(path);
      }
      if (Buffer.compare(a.root(), roots[MAX]!) !== 0) throw new Error('root');
    }),
    { numRuns: 30 },
  );
  t.pass('30 runs');
});

t.test('a flipped bit anywhere in a signed checkpoint or a cosignature refuses it', async (t) => {
  const log = NoteSecretKey.generate('lists.example/demo');
  const witness = NoteSecretKey.generate('witness.example/w1');
  const logKey = parseLogKey(log.vkey);
  const wKey = parseCosignerKey(witness.cosigner().vkey);
  const signed = signCheckpoint({ origin: 'lists.example/demo', size: 5, root: roots[5]!, extensions: [] }, [
    log.noteSigner(),
  ]);
  const note = addSignatures(parseNote(signed), [
    cosignCheckpoint(parseNote(signed), witness.cosigner(), 1_700_000_000),
  ]);
  const policy = { origin: 'lists.example/demo', logKeys: [logKey], witnesses: [wKey], witnessThreshold: 1 };
  t.equal(openCheckpoint(note, policy).cosignatures.length, 1);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: note.byteLength * 8 - 1 }), (bit) => {
      const bad = flip(note, bit);
      try {
        openCheckpoint(bad, policy);
      } catch (err) {
        if (isTlogError(err)) return;
        throw err;
      }
      throw new Error(`bit ${bit} went unnoticed`);
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 runs');
});
