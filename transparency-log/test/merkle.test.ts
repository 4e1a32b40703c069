// RFC 6962 hashing and RFC 9162 proofs against the Certificate Transparency reference tree (fixtures/tlog/
// rfc6962.json, from transparency-dev/merkle): every node and root, every proof made from our tiles, and the
// published verification probes, valid and mutated.
import t from 'tap';

import {
  EMPTY_ROOT,
  LogAppender,
  TileHashReader,
  TreeBuilder,
  consistencyRanges,
  inclusionRanges,
  isTlogError,
  leafHash,
  nodeHash,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from '../dist/index.js';
import { MemoryTiles, fixture, hex, unhex } from './helpers.ts';

interface Vectors {
  leaves: string[];
  nodes: string[][];
  roots: string[];
  inclusion: { index: number; size: number; proof: string[] }[];
  consistency: { oldSize: number; newSize: number; proof: string[] }[];
  inclusionProbes: {
    file: string;
    desc: string;
    index: number;
    size: number;
    root: string;
    leafHash: string;
    proof: string[];
    ok: boolean;
  }[];
  consistencyProbes: {
    file: string;
    desc: string;
    oldSize: number;
    newSize: number;
    oldRoot: string;
    newRoot: string;
    proof: string[];
    ok: boolean;
    note?: string;
  }[];
}

const v = fixture<Vectors>('rfc6962.json');
const leaves = v.leaves.map(unhex);

/** The tiles of the reference tree at `size`. */
function tilesAt(size: number): TileHashReader {
  const a = LogAppender.empty();
  for (const l of leaves.slice(0, size)) a.add(l);
  return new TileHashReader(new MemoryTiles().add(a.finish()), size);
}

t.test('leaf and node hashes follow RFC 6962 2.1', async (t) => {
  t.equal(hex(EMPTY_ROOT), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'SHA-256 of nothing');
  t.same(
    leaves.map((l) => hex(leafHash(l))),
    v.nodes[0],
    'level 0: SHA-256(0x00 || d)',
  );
  for (let level = 1; level < v.nodes.length; level++) {
    const below = v.nodes[level - 1]!;
    t.same(
      v.nodes[level]!.map((_, i) => hex(nodeHash(unhex(below[2 * i]!), unhex(below[2 * i + 1]!)))),
      v.nodes[level],
      `level ${level}: SHA-256(0x01 || left || right)`,
    );
  }
});

t.test('the root of every prefix of the reference tree is the published one', async (t) => {
  for (let n = 0; n <= leaves.length; n++) {
    t.equal(hex(rootOf(leaves.slice(0, n).map(leafHash))), v.roots[n], `MTH of ${n} leaves`);
    t.equal(hex(await tilesAt(n).root()), v.roots[n], `the same from its tiles`);
    const b = new TreeBuilder();
    for (const l of leaves.slice(0, n)) b.addLeafHash(leafHash(l));
    t.equal(b.size, n);
  }
});

t.test('inclusion proofs made from tiles are the published ones and verify', async (t) => {
  for (const c of v.inclusion) {
    const proof = await tilesAt(c.size).inclusionProof(c.index);
    t.same(proof.map(hex), c.proof, `leaf ${c.index} of ${c.size}`);
    t.equal(inclusionRanges(c.index, c.size).length, c.proof.length);
    verifyInclusion(c.index, c.size, leafHash(leaves[c.index]!), proof, unhex(v.roots[c.size]!));
  }
  t.equal(v.inclusion.length, 36, 'every leaf of every size 1..8');
});

t.test('consistency proofs made from tiles are the published ones and verify', async (t) => {
  for (const c of v.consistency) {
    const proof = await tilesAt(c.newSize).consistencyProof(c.oldSize);
    t.same(proof.map(hex), c.proof, `${c.oldSize} -> ${c.newSize}`);
    t.equal(consistencyRanges(c.oldSize, c.newSize).length, c.proof.length);
    verifyConsistency(c.oldSize, c.newSize, unhex(v.roots[c.oldSize]!), unhex(v.roots[c.newSize]!), proof);
  }
  t.equal(v.consistency.length, 28, 'every pair 0 < m < n <= 8');
});

t.test('the published inclusion probes verify or fail as they should', async (t) => {
  for (const p of v.inclusionProbes) {
    let ok = true;
    try {
      verifyInclusion(p.index, p.size, unhex(p.leafHash), p.proof.map(unhex), unhex(p.root));
    } catch (err) {
      t.ok(isTlogError(err, 'LOG_PROOF_INVALID'), `${p.file}: the code`);
      ok = false;
    }
    t.equal(ok, p.ok, `${p.file}: ${p.desc}`);
  }
  t.ok(v.inclusionProbes.filter((p) => !p.ok).length > 40, 'most probes are mutations that must fail');
});

t.test('the published consistency probes verify or fail as they should', async (t) => {
  for (const p of v.consistencyProbes) {
    let ok = true;
    try {
      verifyConsistency(p.oldSize, p.newSize, unhex(p.oldRoot), unhex(p.newRoot), p.proof.map(unhex));
    } catch (err) {
      t.ok(isTlogError(err, 'LOG_PROOF_INVALID'), `${p.file}: the code`);
      ok = false;
    }
    t.equal(ok, p.ok, `${p.file}: ${p.desc}${p.note ? ` (${p.note})` : ''}`);
  }
});

t.test('the edge cases follow tlog-witness', async (t) => {
  const r = unhex(v.roots[3]!);
  t.doesNotThrow(() => verifyConsistency(0, 3, EMPTY_ROOT, r, []), 'the empty tree is a prefix of every tree');
  t.throws(() => verifyConsistency(0, 3, r, r, []), { code: 'LOG_PROOF_INVALID' }, 'size 0 has the empty root');
  t.throws(() => verifyConsistency(0, 3, EMPTY_ROOT, r, [r]), { code: 'LOG_PROOF_INVALID' }, 'from 0: no proof');
  t.doesNotThrow(() => verifyConsistency(3, 3, r, r, []), 'equal sizes, equal roots');
  t.throws(() => verifyConsistency(3, 3, r, EMPTY_ROOT, []), { code: 'LOG_PROOF_INVALID' }, 'equal sizes, two roots');
  t.throws(() => verifyConsistency(4, 3, r, r, []), { code: 'LOG_PROOF_INVALID' }, 'a tree cannot shrink');
  t.throws(() => inclusionRanges(3, 3), { code: 'LOG_PROOF_INVALID' }, 'no leaf 3 in a tree of 3');
  t.throws(() => consistencyRanges(4, 3), { code: 'LOG_PROOF_INVALID' });
  t.throws(
    () => verifyInclusion(0, 2 ** 53, leafHash(leaves[0]!), [], r),
    { code: 'LOG_PROOF_INVALID' },
    'sizes past 2^53 - 1',
  );
});
