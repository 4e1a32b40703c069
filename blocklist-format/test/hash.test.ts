import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';

import fc from 'fast-check';
import t from 'tap';

import {
  HashKey,
  ListKey,
  MAX_LIST_KEY_FILE_BYTES,
  generateListKey,
  parseListKey,
  serializeListKey,
} from '../dist/hash.js';
import { sha256 } from '../dist/sha256.js';

const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../../fixtures/hash/${name}`, import.meta.url), 'utf8')) as T;

const vectors = fixture<{ key: string; cases: { input: string; hash: string; source: string }[] }>('vectors.json');
const keyFiles = fixture<{
  valid: { file: string; id: string; key: string }[];
  invalid: { code: string; cases: { file: string; note: string }[] };
}>('list-keys.json');

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const hmacHex = (key: Uint8Array, msg: Uint8Array | string): string =>
  createHmac('sha256', key).update(msg).digest('hex');

/** The 8 digest words as hashInto writes them, back to hex (each word is the big-endian value of 4 bytes). */
function wordsHex(words: ArrayLike<number>): string {
  const out = Buffer.alloc(32);
  for (let i = 0; i < 8; i++) out.writeUInt32BE(words[i]! >>> 0, 4 * i);
  return out.toString('hex');
}

t.test('gives the SPEC.md 1.3 vectors and the boundary vectors', async (t) => {
  t.equal(vectors.key, '0b'.repeat(32));
  t.equal(vectors.cases.filter((c) => c.source === 'SPEC.md 1.3').length, 4, 'the four SPEC.md vectors');
  const key = new HashKey(Buffer.from(vectors.key, 'hex'));
  for (const c of vectors.cases) {
    const bytes = Buffer.from(c.input, 'utf8');
    t.equal(key.hashHex(c.input), c.hash, `hashHex ${JSON.stringify(c.input.slice(0, 30))}`);
    t.equal(key.hashHex(bytes), c.hash, 'hashHex of the bytes');
    t.equal(hex(key.hash(c.input)), c.hash, 'hash');
    const out8 = new Uint8Array(32);
    key.hashInto(bytes, 0, bytes.length, out8);
    t.equal(hex(out8), c.hash, 'hashInto bytes');
    const out32 = new Uint32Array(8);
    key.hashInto(bytes, 0, bytes.length, out32);
    t.equal(wordsHex(out32), c.hash, 'hashInto Uint32Array');
    const outI32 = new Int32Array(8);
    key.hashInto(bytes, 0, bytes.length, outI32);
    t.equal(wordsHex(outI32), c.hash, 'hashInto Int32Array');
    t.equal(hmacHex(Buffer.from(vectors.key, 'hex'), bytes), c.hash, 'node:crypto agrees with the fixture');
  }
});

t.test('SHA-256 and HMAC agree with node:crypto for every input length 0..300 under random keys', async (t) => {
  let mismatches = 0;
  for (let len = 0; len <= 300; len++) {
    const msg = randomBytes(len);
    const k = randomBytes(32);
    if (hex(sha256(msg)) !== createHash('sha256').update(msg).digest('hex')) mismatches++;
    if (new HashKey(k).hashHex(msg) !== hmacHex(k, msg)) mismatches++;
  }
  t.equal(mismatches, 0);
});

t.test('SHA-256 and HMAC agree with node:crypto on random inputs and keys (property)', async (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ maxLength: 300, size: 'max' }),
      fc.nat(40),
      fc.nat(40),
      (k, msg, before, after) => {
        // The message sits inside a larger buffer, to check the start/end range.
        const buf = new Uint8Array(before + msg.length + after).fill(0xa5);
        buf.set(msg, before);
        const words = new Uint32Array(8);
        new HashKey(k).hashInto(buf, before, before + msg.length, words);
        const want = hmacHex(k, msg);
        return (
          wordsHex(words) === want &&
          new HashKey(k).hashHex(msg) === want &&
          hex(sha256(msg)) === createHash('sha256').update(msg).digest('hex')
        );
      },
    ),
    { numRuns: 5000 },
  );
  t.pass('no counterexample');
});

t.test('hashes long inputs (many blocks) and strings as UTF-8', async (t) => {
  const k = randomBytes(32);
  const key = new HashKey(k);
  const long = randomBytes(100_000);
  t.equal(key.hashHex(long), hmacHex(k, long));
  const s = 'bücher.example/päth/😀/' + 'x'.repeat(5000);
  t.equal(key.hashHex(s), hmacHex(k, Buffer.from(s, 'utf8')));
  t.equal(key.hashHex('x'.repeat(2000)), hmacHex(k, 'x'.repeat(2000)), 'a string longer than the first encode buffer');
  t.equal(key.hashHex('example.com'), hmacHex(k, 'example.com'), 'and a short one after it');
});

t.test('hashInto leaves everything outside its output alone', async (t) => {
  const key = new HashKey(randomBytes(32));
  const input = Buffer.from('www.example.test');
  const copy = Buffer.from(input);
  const out = new Uint8Array(40).fill(7);
  key.hashInto(input, 0, input.length, out);
  t.same(input, copy, 'the input is unchanged');
  t.same([...out.subarray(32)], Array(8).fill(7), 'bytes past 32 are unchanged');
});

t.test('refuses a key that is not 32 bytes with KEY_INVALID', async (t) => {
  for (const n of [0, 16, 31, 33, 64]) {
    t.throws(() => new HashKey(new Uint8Array(n)), { code: 'KEY_INVALID' }, `${n} bytes`);
  }
  t.throws(() => new HashKey('0b'.repeat(32) as unknown as Uint8Array), { code: 'KEY_INVALID' }, 'a string');
});

t.test('refuses a range or an output that does not fit with RangeError', async (t) => {
  const key = new HashKey(new Uint8Array(32));
  const b = new Uint8Array(10);
  t.throws(() => key.hashInto(b, -1, 5, new Uint8Array(32)), RangeError);
  t.throws(() => key.hashInto(b, 6, 5, new Uint8Array(32)), RangeError);
  t.throws(() => key.hashInto(b, 0, 11, new Uint8Array(32)), RangeError);
  t.throws(() => key.hashInto(b, Number.NaN, 5, new Uint8Array(32)), RangeError);
  t.throws(() => key.hashInto(b, 0, 5, new Uint8Array(31)), RangeError);
  t.throws(() => key.hashInto(b, 0, 5, new Uint32Array(7)), RangeError);
  t.doesNotThrow(() => key.hashInto(b, 10, 10, new Uint32Array(8)), 'an empty range at the end');
});

t.test('never shows the key or its midstates when logged or serialized', async (t) => {
  const k = new Uint8Array(32).fill(0xab);
  const key = new HashKey(k);
  const listKey = new ListKey('demo', k);
  for (const shown of [
    inspect(key, { showHidden: true }),
    JSON.stringify(key),
    inspect(listKey),
    JSON.stringify(listKey),
  ]) {
    t.notMatch(shown, /ab ?ab|171/i, shown);
  }
  t.match(inspect(listKey), /demo/, 'the id is shown');
});

t.test('parses every valid list key file and serializes it back byte for byte', async (t) => {
  for (const c of keyFiles.valid) {
    for (const input of [c.file, Buffer.from(c.file, 'latin1')]) {
      const k = parseListKey(input);
      t.equal(k.id, c.id);
      t.equal(hex(k.key), c.key);
      t.equal(k.keyHex(), c.key);
      t.equal(k.isPublic, c.id === 'public');
      t.equal(serializeListKey(k), c.file);
      t.equal(k.hashKey().hashHex('example.com'), hmacHex(Buffer.from(c.key, 'hex'), 'example.com'));
    }
  }
});

t.test('refuses every invalid list key file with its code', async (t) => {
  t.ok(keyFiles.invalid.cases.length >= 20);
  for (const c of keyFiles.invalid.cases) {
    t.throws(() => parseListKey(c.file), { code: keyFiles.invalid.code }, c.note);
    t.throws(() => parseListKey(Buffer.from(c.file, 'utf8')), { code: keyFiles.invalid.code }, `${c.note} (bytes)`);
  }
});

t.test('refuses list key files with non-ASCII bytes, control bytes or over the size cap', async (t) => {
  const good = serializeListKey(generateListKey('demo'));
  const bytes = Buffer.from(good, 'latin1');
  for (let i = 0; i < bytes.length; i++) {
    for (const v of [0x00, 0x0d, 0x7f, 0x80, 0xff]) {
      const b = Buffer.from(bytes);
      b[i] = v;
      t.throws(() => parseListKey(b), { code: 'KEY_INVALID' }, `byte ${i} = ${v}`);
    }
  }
  t.throws(() => parseListKey(good + ' '.repeat(MAX_LIST_KEY_FILE_BYTES)), { code: 'TOO_LARGE' });
  t.throws(() => parseListKey(Buffer.alloc(MAX_LIST_KEY_FILE_BYTES + 1, 0x61)), { code: 'TOO_LARGE' });
  t.throws(() => parseListKey(good.replace('demo', 'dém')), { code: 'KEY_INVALID' }, 'a non-ASCII string');
});

t.test('generates fresh keys with a valid id and refuses a bad one', async (t) => {
  const a = generateListKey('demo-2026a');
  const b = generateListKey('demo-2026a');
  t.equal(a.id, 'demo-2026a');
  t.equal(a.key.length, 32);
  t.not(a.keyHex(), b.keyHex(), 'two keys differ');
  t.equal(parseListKey(serializeListKey(a)).keyHex(), a.keyHex(), 'round trip');
  t.ok(generateListKey('public').isPublic, 'a public-mode key');
  for (const id of ['', 'Demo', '-a', 'a_b', 'a'.repeat(64), 'a.b']) {
    t.throws(() => generateListKey(id), { code: 'KEY_INVALID' }, JSON.stringify(id));
    t.throws(() => new ListKey(id, new Uint8Array(32)), { code: 'KEY_INVALID' }, `ListKey ${JSON.stringify(id)}`);
  }
  t.throws(() => new ListKey('demo', new Uint8Array(31)), { code: 'KEY_INVALID' });
});

t.test('a ListKey keeps its own copy of the key', async (t) => {
  const bytes = new Uint8Array(32).fill(1);
  const k = new ListKey('demo', bytes);
  bytes.fill(2);
  t.equal(k.keyHex(), '01'.repeat(32), 'the constructor copied');
  k.key.fill(3);
  t.equal(k.keyHex(), '01'.repeat(32), 'the getter returns a copy');
});
