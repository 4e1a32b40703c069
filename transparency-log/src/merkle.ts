/**
 * Merkle tree hashing and proofs: RFC 6962 2.1 (SHA-256, as tlog-tiles requires), with the proof algorithms of
 * RFC 9162 2.1.3 and 2.1.4 (the same proofs, written as loops). Pure and synchronous: proofs are described as
 * ranges of leaves first (which hashes a proof needs), and computed from whatever holds those hashes (tiles.ts).
 *
 * Sizes and indexes are JavaScript numbers up to 2^53 - 1; arithmetic uses division, never 32-bit bit operators.
 */
import { createHash } from 'node:crypto';

import { TlogError } from './errors.js';

/** RFC 6962 2.1: SHA-256 hashes, 32 bytes. */
export const HASH_BYTES = 32;

export type Hash = Uint8Array;

function sha256(...parts: Uint8Array[]): Hash {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

/** RFC 6962 2.1: the hash of an empty tree, MTH({}) = SHA-256(). */
export const EMPTY_ROOT: Hash = sha256();

/** RFC 6962 2.1: MTH({d}) = SHA-256(0x00 || d), the hash of one entry. */
export function leafHash(entry: Uint8Array): Hash {
  return sha256(LEAF_PREFIX, entry);
}

/** RFC 6962 2.1: SHA-256(0x01 || left || right), the hash of an interior node. */
export function nodeHash(left: Hash, right: Hash): Hash {
  return sha256(NODE_PREFIX, left, right);
}

export function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

function isHash(h: unknown): h is Hash {
  return h instanceof Uint8Array && h.byteLength === HASH_BYTES;
}

function isSize(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** The largest power of two strictly below `n` (n >= 2): RFC 6962 2.1's split point k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && 2 ** Math.round(Math.log2(n)) === n;
}

/**
 * The root of a tree built leaf by leaf, keeping only the hashes of its complete subtrees (at most 53): what
 * rebuilds a log's root from all of its entries without holding them.
 */
export class TreeBuilder {
  /** Roots of the complete subtrees, left to right, each half the size of the one before. */
  readonly #stack: { hash: Hash; size: number }[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Appends one leaf, given its leaf hash. */
  addLeafHash(hash: Hash): void {
    if (!isHash(hash)) throw new RangeError('a leaf hash has 32 bytes');
    let top = { hash, size: 1 };
    for (let prev = this.#stack.at(-1); prev !== undefined && prev.size === top.size; prev = this.#stack.at(-1)) {
      this.#stack.pop();
      top = { hash: nodeHash(prev.hash, top.hash), size: prev.size * 2 };
    }
    this.#stack.push(top);
    this.#size++;
  }

  /** MTH of the leaves so far. */
  root(): Hash {
    let i = this.#stack.length - 1;
    if (i < 0) return EMPTY_ROOT;
    let r = this.#stack[i]!.hash;
    while (--i >= 0) r = nodeHash(this.#stack[i]!.hash, r);
    return r;
  }
}

/** RFC 6962 2.1: MTH of a list of leaf hashes. */
export function rootOf(leafHashes: Iterable<Hash>): Hash {
  const b = new TreeBuilder();
  for (const h of leafHashes) b.addLeafHash(h);
  return b.root();
}

/** A complete subtree: `2^level` leaves from `index * 2^level`. Level 0 nodes are leaf hashes. */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** A half-open range of leaves `[start, end)` whose MTH is one element of a proof. */
export type LeafRange = readonly [start: number, end: number];

/** The complete subtrees that make up MTH(D[start:end]), left to right (RFC 6962 2.1's recursion). */
export function rangeNodes(start: number, end: number): NodeId[] {
  const out: NodeId[] = [];
  const walk = (a: number, b: number): void => {
    const n = b - a;
    if (isPowerOfTwo(n) && a % n === 0) {
      out.push({ level: Math.round(Math.log2(n)), index: a / n });
      return;
    }
    const k = splitPoint(n);
    walk(a, a + k);
    walk(a + k, b);
  };
  if (!(isSize(start) && isSize(end) && start < end)) throw new RangeError(`bad leaf range [${start}, ${end})`);
  walk(start, end);
  return out;
}

/** MTH(D[start:end]) from the hashes of complete subtrees, read through `node`. */
export function hashRange(start: number, end: number, node: (id: NodeId) => Hash): Hash {
  const walk = (a: number, b: number): Hash => {
    const n = b - a;
    if (isPowerOfTwo(n) && a % n === 0) return node({ level: Math.round(Math.log2(n)), index: a / n });
    const k = splitPoint(n);
    return nodeHash(walk(a, a + k), walk(a + k, b));
  };
  if (!(isSize(start) && isSize(end) && start < end)) throw new RangeError(`bad leaf range [${start}, ${end})`);
  return walk(start, end);
}

/**
 * RFC 9162 2.1.3.1: the audit path of leaf `index` in a tree of `size` leaves, as leaf ranges (PATH(m, D[n]),
 * bottom to top). Each range's MTH is one proof hash.
 */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  if (!(isSize(index) && isSize(size) && index < size)) {
    throw new TlogError('LOG_PROOF_INVALID', `no inclusion proof for leaf ${index} in a tree of ${size}`);
  }
  const out: LeafRange[] = [];
  const path = (m: number, a: number, b: number): void => {
    const n = b - a;
    if (n === 1) return;
    const k = splitPoint(n);
    if (m < k) {
      path(m, a, a + k);
      out.push([a + k, b]);
    } else {
      path(m - k, a + k, b);
      out.push([a, a + k]);
    }
  };
  path(index, 0, size);
  return out;
}

/**
 * RFC 9162 2.1.4.1: the consistency proof from a tree of `oldSize` leaves to one of `newSize` (PROOF(m, D[n])),
 * as leaf ranges. Empty when the sizes are equal or the old tree is empty (nothing to prove, tlog-witness).
 */
export function consistencyRanges(oldSize: number, newSize: number): LeafRange[] {
  if (!(isSize(oldSize) && isSize(newSize) && oldSize <= newSize)) {
    throw new TlogError('LOG_PROOF_INVALID', `no consistency proof from size ${oldSize} to ${newSize}`);
  }
  const out: LeafRange[] = [];
  if (oldSize === 0 || oldSize === newSize) return out;
  const subproof = (m: number, a: number, b: number, complete: boolean): void => {
    const n = b - a;
    if (m === n) {
      if (!complete) out.push([a, b]);
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      subproof(m, a, a + k, complete);
      out.push([a + k, b]);
    } else {
      subproof(m - k, a + k, b, false);
      out.push([a, a + k]);
    }
  };
  subproof(oldSize, 0, newSize, true);
  return out;
}

function proofInvalid(message: string): TlogError {
  return new TlogError('LOG_PROOF_INVALID', message);
}

function checkHashes(proof: readonly Uint8Array[], what: string): void {
  if (!Array.isArray(proof)) throw proofInvalid(`${what}: not a list of hashes`);
  for (const h of proof) if (!isHash(h)) throw proofInvalid(`${what}: a proof hash is not 32 bytes`);
}

/**
 * The walk up the tree that RFC 9162 2.1.3.2 and 2.1.4.2 share: `fn` is the node's index and `sn` the last
 * index at the current level. A path hash is the left sibling when `fn` is odd or the last node (then the levels
 * where the node is a left child with no right sibling are skipped), the right sibling otherwise. The path must
 * end exactly at the root (`sn` 0).
 */
function walkPath(
  fn: number,
  sn: number,
  path: readonly Hash[],
  what: string,
  on: { left: (h: Hash) => void; right: (h: Hash) => void },
): void {
  for (const p of path) {
    if (sn === 0) throw proofInvalid(`${what}: too many hashes`);
    if (fn % 2 === 1 || fn === sn) {
      on.left(p);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      on.right(p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofInvalid(`${what}: too few hashes`);
}

/**
 * RFC 9162 2.1.3.2: the root an inclusion proof gives for `leaf` at `index` in a tree of `size`. Throws
 * LOG_PROOF_INVALID when the proof cannot be one for these numbers (wrong length, bad index).
 */
export function rootFromInclusionProof(index: number, size: number, leaf: Hash, proof: readonly Hash[]): Hash {
  if (!(isSize(index) && isSize(size) && index < size)) {
    throw proofInvalid(`leaf ${index} is not in a tree of ${size}`);
  }
  if (!isHash(leaf)) throw proofInvalid('the leaf hash is not 32 bytes');
  checkHashes(proof, 'inclusion proof');
  let r = leaf;
  walkPath(index, size - 1, proof, 'inclusion proof', {
    left: (p) => (r = nodeHash(p, r)),
    right: (p) => (r = nodeHash(r, p)),
  });
  return r;
}

/** RFC 9162 2.1.3.2: checks that `leaf` is at `index` in the tree of `size` leaves with root `root`. */
export function verifyInclusion(index: number, size: number, leaf: Hash, proof: readonly Hash[], root: Hash): void {
  if (!isHash(root)) throw proofInvalid('the root hash is not 32 bytes');
  if (!sameHash(rootFromInclusionProof(index, size, leaf, proof), root)) {
    throw proofInvalid(`inclusion proof of leaf ${index} does not lead to the root of size ${size}`);
  }
}

/**
 * RFC 9162 2.1.4.2: the two roots a consistency proof gives, from the old tree of `oldSize` (whose root is
 * `oldRoot`) to a tree of `newSize`: `old` is what the proof says the old root is, `new` the new root. When
 * `oldSize` is a power of two the proof does not hold the old root and `old` is `oldRoot` itself. Throws
 * LOG_PROOF_INVALID when the proof cannot be one for these sizes. Requires 0 < oldSize < newSize.
 */
export function rootsFromConsistencyProof(
  oldSize: number,
  newSize: number,
  oldRoot: Hash,
  proof: readonly Hash[],
): { old: Hash; new: Hash } {
  if (!(isSize(oldSize) && isSize(newSize) && oldSize > 0 && oldSize < newSize)) {
    throw proofInvalid(`no consistency proof from size ${oldSize} to ${newSize}`);
  }
  if (!isHash(oldRoot)) throw proofInvalid('the old root hash is not 32 bytes');
  checkHashes(proof, 'consistency proof');
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  if (path.length === 0) throw proofInvalid('consistency proof: empty');
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = (fn - 1) / 2;
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  walkPath(fn, sn, path.slice(1), 'consistency proof', {
    left: (c) => {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
    },
    right: (c) => (sr = nodeHash(sr, c)),
  });
  return { old: fr, new: sr };
}

/**
 * RFC 9162 2.1.4.2: checks that the tree of `oldSize` leaves with root `oldRoot` is a prefix of the tree of
 * `newSize` leaves with root `newRoot`. The edge cases follow tlog-witness: equal sizes need an empty proof and
 * equal roots; an old size of zero needs an empty proof and the empty tree's root (the empty tree is a prefix of
 * every tree).
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Hash,
  newRoot: Hash,
  proof: readonly Hash[],
): void {
  if (!(isSize(oldSize) && isSize(newSize) && oldSize <= newSize)) {
    throw proofInvalid(`size ${oldSize} cannot be a prefix of size ${newSize}`);
  }
  if (!isHash(oldRoot) || !isHash(newRoot)) throw proofInvalid('a root hash is not 32 bytes');
  checkHashes(proof, 'consistency proof');
  if (oldSize === 0) {
    if (proof.length !== 0) throw proofInvalid('consistency proof from the empty tree must be empty');
    if (!sameHash(oldRoot, EMPTY_ROOT)) throw proofInvalid('a tree of size 0 has the empty root');
    if (newSize === 0 && !sameHash(newRoot, EMPTY_ROOT)) throw proofInvalid('a tree of size 0 has the empty root');
    return;
  }
  if (oldSize === newSize) {
    if (proof.length !== 0) throw proofInvalid('consistency proof between equal sizes must be empty');
    if (!sameHash(oldRoot, newRoot)) throw proofInvalid(`two different roots for size ${oldSize}`);
    return;
  }
  const got = rootsFromConsistencyProof(oldSize, newSize, oldRoot, proof);
  if (!sameHash(got.old, oldRoot) || !sameHash(got.new, newRoot)) {
    throw proofInvalid(`consistency proof from size ${oldSize} to ${newSize} does not verify`);
  }
}
