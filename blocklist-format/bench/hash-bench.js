// Compares ways to compute h(name) = HMAC-SHA-256(K, name) (SPEC.md 1.3) for short names, the daemon's hot path:
//   node --expose-gc blocklist-format/bench/hash-bench.js   (after `npx tsc -b`)
// Prints ns per hash (median of 7 rounds) for node:crypto, @noble/hashes and HashKey (hash.ts), per name length.
import { createHmac, randomBytes } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac';
import { sha256 } from '@noble/hashes/sha2';

import { HashKey } from '../dist/hash.js';

const KEY = randomBytes(32);
const ROUNDS = 7;
const PER_ROUND = 100_000;

function names(length, count) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-';
  const out = [];
  for (let i = 0; i < count; i++) {
    let s = '';
    while (s.length < length - 8) s += alphabet[(Math.random() * alphabet.length) | 0];
    out.push(Buffer.from(`${s}.example`.slice(-length)));
  }
  return out;
}

function measure(label, inputs, fn) {
  for (let i = 0; i < 20_000; i++) fn(inputs[i % inputs.length]); // warm-up (JIT)
  const perRound = [];
  for (let r = 0; r < ROUNDS; r++) {
    globalThis.gc?.();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < PER_ROUND; i++) fn(inputs[i & 1023]);
    perRound.push(Number(process.hrtime.bigint() - t0) / PER_ROUND);
  }
  perRound.sort((a, b) => a - b);
  return { label, ns: perRound[ROUNDS >> 1] };
}

const out32 = new Uint8Array(32);
const words = new Uint32Array(8);
const key = new HashKey(KEY);
const primed = hmac.create(sha256, KEY);
let reused = primed.clone();

const ways = [
  ['node:crypto createHmac().update().digest()', (b) => createHmac('sha256', KEY).update(b).digest()],
  ['@noble/hashes hmac() one-shot', (b) => hmac(sha256, KEY, b)],
  [
    '@noble/hashes primed hmac, _cloneInto + digestInto',
    (b) => {
      reused = primed._cloneInto(reused);
      reused.update(b);
      reused.digestInto(out32);
    },
  ],
  ['HashKey.hashInto (midstates + TS SHA-256), words', (b) => key.hashInto(b, 0, b.length, words)],
  ['HashKey.hashInto, bytes', (b) => key.hashInto(b, 0, b.length, out32)],
];

// Check that every way agrees before timing anything.
const probe = Buffer.from('www.example.com');
const want = createHmac('sha256', KEY).update(probe).digest('hex');
for (const [label, fn] of ways) {
  const got = fn(probe);
  const hex = got
    ? Buffer.from(got).toString('hex')
    : label.includes('words')
      ? Buffer.from(
          new Uint32Array(words.map((x) => ((x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24)) >>> 0))
            .buffer,
        ).toString('hex')
      : Buffer.from(out32).toString('hex');
  if (hex !== want) throw new Error(`${label} disagrees with node:crypto`);
}

console.log(`node ${process.version}, ${PER_ROUND} hashes a round, median of ${ROUNDS} rounds, ns per hash`);
for (const length of [15, 40, 100, 253]) {
  const inputs = names(length, 1024);
  console.log(`\nname length ${length} bytes`);
  for (const [label, fn] of ways) {
    const { ns } = measure(label, inputs, fn);
    console.log(`  ${ns.toFixed(0).padStart(6)}  ${label}`);
  }
}
