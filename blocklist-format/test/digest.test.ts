// fullBodySha256 (the body digest without the whole body in memory) and serializeFull built in one buffer: both
// must give exactly what hashing and concatenating the encoded body gives.
import { createHash } from 'node:crypto';

import fc from 'fast-check';
import t from 'tap';

import { HASH_BYTES, KIND_D, KIND_H, KIND_P, KIND_U, type Entries } from '../dist/index.js';
import { encodeFullBody, fullBodySha256, makeFull, parseFull, serializeFull } from '../dist/index.js';
import { header } from './codec-helpers.ts';

const KINDS = [KIND_D, KIND_H, KIND_U, KIND_P];

/** `count` sorted, unique hashes (a counter in the first 4 bytes, pseudo-random after) with cycling kinds. */
function entries(count: number, seed = 1): Entries {
  const hashes = new Uint8Array(count * HASH_BYTES);
  const kinds = new Uint8Array(count);
  let x = seed >>> 0 || 1;
  for (let n = 0; n < count; n++) {
    const o = n * HASH_BYTES;
    hashes[o] = (n >>> 24) & 255;
    hashes[o + 1] = (n >>> 16) & 255;
    hashes[o + 2] = (n >>> 8) & 255;
    hashes[o + 3] = n & 255;
    for (let k = 4; k < HASH_BYTES; k++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      hashes[o + k] = x & 255;
    }
    kinds[n] = KINDS[(n + seed) % 4]!;
  }
  return { count, hashes, kinds };
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The FULL as two pieces joined: the construction serializeFull used before it wrote one buffer. */
function joined(e: Entries, serial: number): Buffer {
  const full = makeFull(header(serial), e);
  const body = encodeFullBody(e);
  const one = serializeFull(full);
  const headLength = one.length - body.length;
  return Buffer.concat([one.subarray(0, headLength), body]);
}

t.test('fullBodySha256 equals the SHA-256 of the encoded body, at and around its step size', async (t) => {
  for (const count of [0, 1, 2, 16_383, 16_384, 16_385, 40_000]) {
    const e = entries(count, count + 3);
    t.equal(fullBodySha256(e), sha(encodeFullBody(e)), `${count} entries`);
  }
});

t.test('serializeFull writes the same bytes as header and body joined, and parses back', async (t) => {
  for (const count of [0, 1, 16_385]) {
    const e = entries(count, 7);
    const bytes = serializeFull(makeFull(header(4), e));
    t.equal(Buffer.compare(bytes, joined(e, 4)), 0, `${count} entries`);
    const back = parseFull(bytes);
    t.equal(back.bodySha256, fullBodySha256(e));
    t.equal(back.entries.count, count);
    t.equal(Buffer.compare(serializeFull(back), bytes), 0, 're-serializing gives the same bytes');
  }
});

t.test('fullBodySha256 and serializeFull agree with the plain construction on random lists', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 2 ** 30 }), (count, seed) => {
      const e = entries(count, seed);
      const bytes = serializeFull(makeFull(header(2), e));
      return fullBodySha256(e) === sha(encodeFullBody(e)) && Buffer.compare(bytes, joined(e, 2)) === 0;
    }),
    { numRuns: 100 },
  );
  t.pass('every run agreed');
});

t.test('fullBodySha256 refuses arrays that disagree in length', async (t) => {
  const e = entries(3);
  t.throws(() => fullBodySha256({ ...e, count: 4 }), RangeError, 'count above the arrays');
  t.throws(() => fullBodySha256({ ...e, kinds: e.kinds.subarray(0, 2) }), RangeError, 'kinds too short');
  t.throws(() => fullBodySha256({ ...e, hashes: e.hashes.subarray(1) }), RangeError, 'hashes not 32 per entry');
  t.throws(() => fullBodySha256({ ...e, count: -1 }), RangeError, 'a negative count');
  t.throws(() => fullBodySha256({ ...e, count: 1.5 }), RangeError, 'a count that is not an integer');
});

t.test('serializeFull still refuses unsorted or ill-kinded entries', async (t) => {
  const e = entries(3);
  const swapped = new Uint8Array(e.hashes);
  swapped.copyWithin(0, 32, 64);
  t.throws(() => serializeFull({ header: header(1), entries: { ...e, hashes: swapped } }), RangeError);
  const badKind = new Uint8Array(e.kinds);
  badKind[1] = 0x58;
  t.throws(() => serializeFull({ header: header(1), entries: { ...e, kinds: badKind } }), RangeError);
});
