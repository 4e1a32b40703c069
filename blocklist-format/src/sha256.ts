/**
 * A small SHA-256 (FIPS 180-4) in TypeScript, for the keyed hash of the query path (hash.ts).
 *
 * Why not node:crypto: every native call pays a fixed toll of microseconds, and the HMAC of a short name needs only
 * two block compressions once the key's ipad/opad midstates are kept, which node:crypto cannot hold. The figures
 * that decided it are in hash.ts. Tests check this against node:crypto on random inputs of every length 0..300.
 *
 * The state is 8 words in an Int32Array (V8 keeps int32 values unboxed); a word's value is the big-endian reading
 * of its 4 bytes, as in the standard. `w` holds a 16-word block that the caller fills. Nothing here allocates.
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

/** The initial hash value H(0) (FIPS 180-4 5.3.3). */
export const SHA256_IV: Readonly<Int32Array> = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

export const SHA256_BLOCK_BYTES = 64;

/** A fresh 16-word block for `sha256Compress`. */
export function newBlock(): Int32Array {
  return new Int32Array(16);
}

/**
 * One compression (FIPS 180-4 6.2.2): `state` absorbs the block in w[0..15]; `w` is only read.
 *
 * The rounds are written out 16 at a time (FIPS 180-4 4.1.2 and 4.2.2 inline: V8 does not inline helper functions
 * into a function this large), so the message schedule lives in 16 local variables (w_t overwrites w_(t-16)) and
 * the working variables rename instead of shifting. In situ (hash-bench.js) this made an HMAC of a short name 1.7x
 * faster than the plain 64-round loop over a 64-word schedule array (~375 against ~630 ns).
 */
export function sha256Compress(state: Int32Array, w: Int32Array): void {
  let w0 = w[0]!;
  let w1 = w[1]!;
  let w2 = w[2]!;
  let w3 = w[3]!;
  let w4 = w[4]!;
  let w5 = w[5]!;
  let w6 = w[6]!;
  let w7 = w[7]!;
  let w8 = w[8]!;
  let w9 = w[9]!;
  let w10 = w[10]!;
  let w11 = w[11]!;
  let w12 = w[12]!;
  let w13 = w[13]!;
  let w14 = w[14]!;
  let w15 = w[15]!;
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  let f = state[5]!;
  let g = state[6]!;
  let h = state[7]!;
  let t = 0;
  let s0 = 0;
  let s1 = 0;
  // Rounds 0..15 read the block.
  {
    s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    t = (h + s1 + ((e & f) ^ (~e & g)) + K[0]! + w0) | 0;
    s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    d = (d + t) | 0;
    h = (t + s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    s1 = ((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7));
    t = (g + s1 + ((d & e) ^ (~d & f)) + K[1]! + w1) | 0;
    s0 = ((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10));
    c = (c + t) | 0;
    g = (t + s0 + ((h & a) ^ (h & b) ^ (a & b))) | 0;
    s1 = ((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7));
    t = (f + s1 + ((c & d) ^ (~c & e)) + K[2]! + w2) | 0;
    s0 = ((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10));
    b = (b + t) | 0;
    f = (t + s0 + ((g & h) ^ (g & a) ^ (h & a))) | 0;
    s1 = ((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7));
    t = (e + s1 + ((b & c) ^ (~b & d)) + K[3]! + w3) | 0;
    s0 = ((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10));
    a = (a + t) | 0;
    e = (t + s0 + ((f & g) ^ (f & h) ^ (g & h))) | 0;
    s1 = ((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7));
    t = (d + s1 + ((a & b) ^ (~a & c)) + K[4]! + w4) | 0;
    s0 = ((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10));
    h = (h + t) | 0;
    d = (t + s0 + ((e & f) ^ (e & g) ^ (f & g))) | 0;
    s1 = ((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7));
    t = (c + s1 + ((h & a) ^ (~h & b)) + K[5]! + w5) | 0;
    s0 = ((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10));
    g = (g + t) | 0;
    c = (t + s0 + ((d & e) ^ (d & f) ^ (e & f))) | 0;
    s1 = ((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7));
    t = (b + s1 + ((g & h) ^ (~g & a)) + K[6]! + w6) | 0;
    s0 = ((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10));
    f = (f + t) | 0;
    b = (t + s0 + ((c & d) ^ (c & e) ^ (d & e))) | 0;
    s1 = ((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7));
    t = (a + s1 + ((f & g) ^ (~f & h)) + K[7]! + w7) | 0;
    s0 = ((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10));
    e = (e + t) | 0;
    a = (t + s0 + ((b & c) ^ (b & d) ^ (c & d))) | 0;
    s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    t = (h + s1 + ((e & f) ^ (~e & g)) + K[8]! + w8) | 0;
    s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    d = (d + t) | 0;
    h = (t + s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    s1 = ((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7));
    t = (g + s1 + ((d & e) ^ (~d & f)) + K[9]! + w9) | 0;
    s0 = ((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10));
    c = (c + t) | 0;
    g = (t + s0 + ((h & a) ^ (h & b) ^ (a & b))) | 0;
    s1 = ((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7));
    t = (f + s1 + ((c & d) ^ (~c & e)) + K[10]! + w10) | 0;
    s0 = ((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10));
    b = (b + t) | 0;
    f = (t + s0 + ((g & h) ^ (g & a) ^ (h & a))) | 0;
    s1 = ((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7));
    t = (e + s1 + ((b & c) ^ (~b & d)) + K[11]! + w11) | 0;
    s0 = ((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10));
    a = (a + t) | 0;
    e = (t + s0 + ((f & g) ^ (f & h) ^ (g & h))) | 0;
    s1 = ((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7));
    t = (d + s1 + ((a & b) ^ (~a & c)) + K[12]! + w12) | 0;
    s0 = ((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10));
    h = (h + t) | 0;
    d = (t + s0 + ((e & f) ^ (e & g) ^ (f & g))) | 0;
    s1 = ((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7));
    t = (c + s1 + ((h & a) ^ (~h & b)) + K[13]! + w13) | 0;
    s0 = ((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10));
    g = (g + t) | 0;
    c = (t + s0 + ((d & e) ^ (d & f) ^ (e & f))) | 0;
    s1 = ((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7));
    t = (b + s1 + ((g & h) ^ (~g & a)) + K[14]! + w14) | 0;
    s0 = ((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10));
    f = (f + t) | 0;
    b = (t + s0 + ((c & d) ^ (c & e) ^ (d & e))) | 0;
    s1 = ((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7));
    t = (a + s1 + ((f & g) ^ (~f & h)) + K[15]! + w15) | 0;
    s0 = ((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10));
    e = (e + t) | 0;
    a = (t + s0 + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  }
  // Rounds 16..63 extend the schedule in place as they go.
  for (let j = 16; j < 64; j += 16) {
    s0 = ((w1 >>> 7) | (w1 << 25)) ^ ((w1 >>> 18) | (w1 << 14)) ^ (w1 >>> 3);
    s1 = ((w14 >>> 17) | (w14 << 15)) ^ ((w14 >>> 19) | (w14 << 13)) ^ (w14 >>> 10);
    w0 = (s1 + w9 + s0 + w0) | 0;
    s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    t = (h + s1 + ((e & f) ^ (~e & g)) + K[j + 0]! + w0) | 0;
    s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    d = (d + t) | 0;
    h = (t + s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    s0 = ((w2 >>> 7) | (w2 << 25)) ^ ((w2 >>> 18) | (w2 << 14)) ^ (w2 >>> 3);
    s1 = ((w15 >>> 17) | (w15 << 15)) ^ ((w15 >>> 19) | (w15 << 13)) ^ (w15 >>> 10);
    w1 = (s1 + w10 + s0 + w1) | 0;
    s1 = ((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7));
    t = (g + s1 + ((d & e) ^ (~d & f)) + K[j + 1]! + w1) | 0;
    s0 = ((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10));
    c = (c + t) | 0;
    g = (t + s0 + ((h & a) ^ (h & b) ^ (a & b))) | 0;
    s0 = ((w3 >>> 7) | (w3 << 25)) ^ ((w3 >>> 18) | (w3 << 14)) ^ (w3 >>> 3);
    s1 = ((w0 >>> 17) | (w0 << 15)) ^ ((w0 >>> 19) | (w0 << 13)) ^ (w0 >>> 10);
    w2 = (s1 + w11 + s0 + w2) | 0;
    s1 = ((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7));
    t = (f + s1 + ((c & d) ^ (~c & e)) + K[j + 2]! + w2) | 0;
    s0 = ((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10));
    b = (b + t) | 0;
    f = (t + s0 + ((g & h) ^ (g & a) ^ (h & a))) | 0;
    s0 = ((w4 >>> 7) | (w4 << 25)) ^ ((w4 >>> 18) | (w4 << 14)) ^ (w4 >>> 3);
    s1 = ((w1 >>> 17) | (w1 << 15)) ^ ((w1 >>> 19) | (w1 << 13)) ^ (w1 >>> 10);
    w3 = (s1 + w12 + s0 + w3) | 0;
    s1 = ((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7));
    t = (e + s1 + ((b & c) ^ (~b & d)) + K[j + 3]! + w3) | 0;
    s0 = ((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10));
    a = (a + t) | 0;
    e = (t + s0 + ((f & g) ^ (f & h) ^ (g & h))) | 0;
    s0 = ((w5 >>> 7) | (w5 << 25)) ^ ((w5 >>> 18) | (w5 << 14)) ^ (w5 >>> 3);
    s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    w4 = (s1 + w13 + s0 + w4) | 0;
    s1 = ((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7));
    t = (d + s1 + ((a & b) ^ (~a & c)) + K[j + 4]! + w4) | 0;
    s0 = ((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10));
    h = (h + t) | 0;
    d = (t + s0 + ((e & f) ^ (e & g) ^ (f & g))) | 0;
    s0 = ((w6 >>> 7) | (w6 << 25)) ^ ((w6 >>> 18) | (w6 << 14)) ^ (w6 >>> 3);
    s1 = ((w3 >>> 17) | (w3 << 15)) ^ ((w3 >>> 19) | (w3 << 13)) ^ (w3 >>> 10);
    w5 = (s1 + w14 + s0 + w5) | 0;
    s1 = ((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7));
    t = (c + s1 + ((h & a) ^ (~h & b)) + K[j + 5]! + w5) | 0;
    s0 = ((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10));
    g = (g + t) | 0;
    c = (t + s0 + ((d & e) ^ (d & f) ^ (e & f))) | 0;
    s0 = ((w7 >>> 7) | (w7 << 25)) ^ ((w7 >>> 18) | (w7 << 14)) ^ (w7 >>> 3);
    s1 = ((w4 >>> 17) | (w4 << 15)) ^ ((w4 >>> 19) | (w4 << 13)) ^ (w4 >>> 10);
    w6 = (s1 + w15 + s0 + w6) | 0;
    s1 = ((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7));
    t = (b + s1 + ((g & h) ^ (~g & a)) + K[j + 6]! + w6) | 0;
    s0 = ((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10));
    f = (f + t) | 0;
    b = (t + s0 + ((c & d) ^ (c & e) ^ (d & e))) | 0;
    s0 = ((w8 >>> 7) | (w8 << 25)) ^ ((w8 >>> 18) | (w8 << 14)) ^ (w8 >>> 3);
    s1 = ((w5 >>> 17) | (w5 << 15)) ^ ((w5 >>> 19) | (w5 << 13)) ^ (w5 >>> 10);
    w7 = (s1 + w0 + s0 + w7) | 0;
    s1 = ((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7));
    t = (a + s1 + ((f & g) ^ (~f & h)) + K[j + 7]! + w7) | 0;
    s0 = ((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10));
    e = (e + t) | 0;
    a = (t + s0 + ((b & c) ^ (b & d) ^ (c & d))) | 0;
    s0 = ((w9 >>> 7) | (w9 << 25)) ^ ((w9 >>> 18) | (w9 << 14)) ^ (w9 >>> 3);
    s1 = ((w6 >>> 17) | (w6 << 15)) ^ ((w6 >>> 19) | (w6 << 13)) ^ (w6 >>> 10);
    w8 = (s1 + w1 + s0 + w8) | 0;
    s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    t = (h + s1 + ((e & f) ^ (~e & g)) + K[j + 8]! + w8) | 0;
    s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    d = (d + t) | 0;
    h = (t + s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    s0 = ((w10 >>> 7) | (w10 << 25)) ^ ((w10 >>> 18) | (w10 << 14)) ^ (w10 >>> 3);
    s1 = ((w7 >>> 17) | (w7 << 15)) ^ ((w7 >>> 19) | (w7 << 13)) ^ (w7 >>> 10);
    w9 = (s1 + w2 + s0 + w9) | 0;
    s1 = ((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7));
    t = (g + s1 + ((d & e) ^ (~d & f)) + K[j + 9]! + w9) | 0;
    s0 = ((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10));
    c = (c + t) | 0;
    g = (t + s0 + ((h & a) ^ (h & b) ^ (a & b))) | 0;
    s0 = ((w11 >>> 7) | (w11 << 25)) ^ ((w11 >>> 18) | (w11 << 14)) ^ (w11 >>> 3);
    s1 = ((w8 >>> 17) | (w8 << 15)) ^ ((w8 >>> 19) | (w8 << 13)) ^ (w8 >>> 10);
    w10 = (s1 + w3 + s0 + w10) | 0;
    s1 = ((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7));
    t = (f + s1 + ((c & d) ^ (~c & e)) + K[j + 10]! + w10) | 0;
    s0 = ((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10));
    b = (b + t) | 0;
    f = (t + s0 + ((g & h) ^ (g & a) ^ (h & a))) | 0;
    s0 = ((w12 >>> 7) | (w12 << 25)) ^ ((w12 >>> 18) | (w12 << 14)) ^ (w12 >>> 3);
    s1 = ((w9 >>> 17) | (w9 << 15)) ^ ((w9 >>> 19) | (w9 << 13)) ^ (w9 >>> 10);
    w11 = (s1 + w4 + s0 + w11) | 0;
    s1 = ((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7));
    t = (e + s1 + ((b & c) ^ (~b & d)) + K[j + 11]! + w11) | 0;
    s0 = ((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10));
    a = (a + t) | 0;
    e = (t + s0 + ((f & g) ^ (f & h) ^ (g & h))) | 0;
    s0 = ((w13 >>> 7) | (w13 << 25)) ^ ((w13 >>> 18) | (w13 << 14)) ^ (w13 >>> 3);
    s1 = ((w10 >>> 17) | (w10 << 15)) ^ ((w10 >>> 19) | (w10 << 13)) ^ (w10 >>> 10);
    w12 = (s1 + w5 + s0 + w12) | 0;
    s1 = ((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7));
    t = (d + s1 + ((a & b) ^ (~a & c)) + K[j + 12]! + w12) | 0;
    s0 = ((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10));
    h = (h + t) | 0;
    d = (t + s0 + ((e & f) ^ (e & g) ^ (f & g))) | 0;
    s0 = ((w14 >>> 7) | (w14 << 25)) ^ ((w14 >>> 18) | (w14 << 14)) ^ (w14 >>> 3);
    s1 = ((w11 >>> 17) | (w11 << 15)) ^ ((w11 >>> 19) | (w11 << 13)) ^ (w11 >>> 10);
    w13 = (s1 + w6 + s0 + w13) | 0;
    s1 = ((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7));
    t = (c + s1 + ((h & a) ^ (~h & b)) + K[j + 13]! + w13) | 0;
    s0 = ((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10));
    g = (g + t) | 0;
    c = (t + s0 + ((d & e) ^ (d & f) ^ (e & f))) | 0;
    s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    s1 = ((w12 >>> 17) | (w12 << 15)) ^ ((w12 >>> 19) | (w12 << 13)) ^ (w12 >>> 10);
    w14 = (s1 + w7 + s0 + w14) | 0;
    s1 = ((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7));
    t = (b + s1 + ((g & h) ^ (~g & a)) + K[j + 14]! + w14) | 0;
    s0 = ((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10));
    f = (f + t) | 0;
    b = (t + s0 + ((c & d) ^ (c & e) ^ (d & e))) | 0;
    s0 = ((w0 >>> 7) | (w0 << 25)) ^ ((w0 >>> 18) | (w0 << 14)) ^ (w0 >>> 3);
    s1 = ((w13 >>> 17) | (w13 << 15)) ^ ((w13 >>> 19) | (w13 << 13)) ^ (w13 >>> 10);
    w15 = (s1 + w8 + s0 + w15) | 0;
    s1 = ((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7));
    t = (a + s1 + ((f & g) ^ (~f & h)) + K[j + 15]! + w15) | 0;
    s0 = ((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10));
    e = (e + t) | 0;
    a = (t + s0 + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/**
 * Absorbs `bytes[start..end)` as the end of a message whose first `priorBytes` bytes (a multiple of 64) are already
 * in `state`, then the padding (FIPS 180-4 5.1.1). `state` then holds the digest.
 */
export function sha256Finish(
  state: Int32Array,
  w: Int32Array,
  bytes: Uint8Array,
  start: number,
  end: number,
  priorBytes: number,
): void {
  let p = start;
  // Whole blocks straight from the input.
  while (end - p >= 64) {
    for (let i = 0; i < 16; i++, p += 4) {
      w[i] = (bytes[p]! << 24) | (bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!;
    }
    sha256Compress(state, w);
  }
  // The tail (0..63 bytes), the 0x80 byte, zeros, and the 64-bit bit length: one block, or two when the tail is
  // 56 bytes or more.
  // Whole words first, then the last 0..3 bytes with the 0x80 byte after them in one word.
  const rest = end - p;
  let i = 0;
  for (const words = rest >> 2; i < words; i++, p += 4) {
    w[i] = (bytes[p]! << 24) | (bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!;
  }
  let last = 0;
  let shift = 24;
  for (; p < end; p++, shift -= 8) last |= bytes[p]! << shift;
  w[i++] = last | (0x80 << shift);
  for (; i < 16; i++) w[i] = 0;
  if (rest >= 56) {
    sha256Compress(state, w);
    for (i = 0; i < 14; i++) w[i] = 0;
  }
  const bits = (priorBytes + (end - start)) * 8;
  w[14] = Math.floor(bits / 0x100000000) | 0;
  w[15] = bits | 0;
  sha256Compress(state, w);
}

/** Writes the 8 state words to `out` as 32 big-endian bytes from `offset`. */
export function wordsToBytes(state: Int32Array, out: Uint8Array, offset: number): void {
  for (let i = 0; i < 8; i++) {
    const x = state[i]!;
    const o = offset + 4 * i;
    out[o] = x >>> 24;
    out[o + 1] = x >>> 16;
    out[o + 2] = x >>> 8;
    out[o + 3] = x;
  }
}

/** SHA-256 of `bytes` (a convenience for tests and tools; the hot path uses the pieces above). */
export function sha256(bytes: Uint8Array): Uint8Array {
  const state = Int32Array.from(SHA256_IV);
  sha256Finish(state, newBlock(), bytes, 0, bytes.length, 0);
  const out = new Uint8Array(32);
  wordsToBytes(state, out, 0);
  return out;
}
