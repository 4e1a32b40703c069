/**
 * The keyed hash of SPEC.md 1.3, `h(s) = HMAC-SHA-256(K, utf8(s))`, and the list key file that holds `K`.
 *
 * HMAC (RFC 2104) of a message m is H((K ^ opad) || H((K ^ ipad) || m)). The two 64-byte pad blocks depend only on
 * the key, so `HashKey` compresses each once and keeps the two midstates; a name of up to 55 bytes then costs two
 * compressions (one for the inner hash, one for the outer), with no allocation.
 *
 * Measured before choosing (`node --expose-gc blocklist-format/bench/hash-bench.js`, Node 20.20, this project's
 * 2-core machine, ns per hash, median of 7 rounds of 100,000):
 *
 *   name length                                          15 B    40 B   100 B   253 B
 *   node:crypto createHmac().update().digest()           1923    1760    1901    1906
 *   @noble/hashes hmac, primed instance _cloneInto       1226    1275    1639    2518
 *   HashKey.hashInto (these midstates, sha256.ts)         375     398     596    1152
 *
 * node:crypto pays its native-call toll on every hash; noble's clone copies objects. The daemon hashes up to 5 or 6
 * suffixes per query on a verdict-cache miss, so the hot path uses the midstates and sha256.ts; node:crypto stays
 * the reference the tests check both against.
 */
import { randomBytes } from 'node:crypto';

import { FormatError } from './errors.js';
import { isHex64, isListId } from './header.js';
import { SHA256_IV, newBlock, sha256Compress, sha256Finish, wordsToBytes } from './sha256.js';

/** The length of a list key `K` in bytes (SPEC.md 1.3). */
export const LIST_KEY_BYTES = 32;
/** The `hash-key-id` that means public mode: the key itself is in the list's header (SPEC.md 1.3). */
export const PUBLIC_KEY_ID = 'public';

// Scratch for every HashKey: JavaScript runs one call at a time and nothing here calls out, so one set suffices.
const STATE = new Int32Array(8);
const W = newBlock();
const DIGEST = new Uint8Array(32);
let encodeBuffer = new Uint8Array(1024);
const encoder = new TextEncoder();

/** A list key ready to hash with: the HMAC-SHA-256 inner and outer midstates of `K` (SPEC.md 1.3). */
export class HashKey {
  // Private fields: the midstates stand in for the key, so util.inspect and JSON never show them.
  readonly #inner = Int32Array.from(SHA256_IV);
  readonly #outer = Int32Array.from(SHA256_IV);

  /** `key`: the 32-byte list key (SPEC.md 1.3). Anything else is refused with KEY_INVALID. */
  constructor(key: Uint8Array) {
    if (!(key instanceof Uint8Array) || key.length !== LIST_KEY_BYTES) {
      throw new FormatError('KEY_INVALID', `a list key is ${LIST_KEY_BYTES} bytes`);
    }
    // RFC 2104 2: K padded with zeros to the 64-byte block, XORed with ipad (0x36) and opad (0x5c).
    const w = newBlock();
    for (const [state, pad] of [
      [this.#inner, 0x36363636],
      [this.#outer, 0x5c5c5c5c],
    ] as const) {
      for (let i = 0; i < 16; i++) {
        const p = 4 * i;
        const word = p < LIST_KEY_BYTES ? (key[p]! << 24) | (key[p + 1]! << 16) | (key[p + 2]! << 8) | key[p + 3]! : 0;
        w[i] = word ^ pad;
      }
      sha256Compress(state, w);
    }
    w.fill(0);
  }

  /**
   * The hot path: h(bytes[start..end)) into `out`, without allocating. A 32-bit array gets the 8 digest words, each
   * the big-endian value of 4 digest bytes (so word order is byte order); a Uint8Array gets the 32 digest bytes.
   */
  hashInto(bytes: Uint8Array, start: number, end: number, out: Uint32Array | Int32Array | Uint8Array): void {
    if (!(start >= 0 && start <= end && end <= bytes.length)) throw new RangeError('hashInto: range out of bounds');
    const st = STATE;
    const w = W;
    const inner = this.#inner;
    for (let i = 0; i < 8; i++) st[i] = inner[i]!;
    sha256Finish(st, w, bytes, start, end, 64);
    // The outer message is the 32-byte inner digest after the opad block: one padded block, 768 bits in all.
    for (let i = 0; i < 8; i++) w[i] = st[i]!;
    w[8] = 0x80000000 | 0;
    for (let i = 9; i < 15; i++) w[i] = 0;
    w[15] = (64 + 32) * 8;
    const outer = this.#outer;
    for (let i = 0; i < 8; i++) st[i] = outer[i]!;
    sha256Compress(st, w);
    if (out.BYTES_PER_ELEMENT === 1) {
      if (out.length < 32) throw new RangeError('hashInto: out holds fewer than 32 bytes');
      wordsToBytes(st, out as Uint8Array, 0);
    } else {
      if (out.length < 8) throw new RangeError('hashInto: out holds fewer than 8 words');
      for (let i = 0; i < 8; i++) out[i] = st[i]!;
    }
  }

  /** h(s) as 32 bytes; a string is hashed as its UTF-8 bytes. */
  hash(s: string | Uint8Array): Uint8Array {
    const out = new Uint8Array(32);
    if (typeof s === 'string') {
      const n = encode(s);
      this.hashInto(encodeBuffer, 0, n, out);
    } else {
      this.hashInto(s, 0, s.length, out);
    }
    return out;
  }

  /** h(s) as 64 lower-case hex digits, the form of a list's body lines (SPEC.md 1.3, 2.1). */
  hashHex(s: string | Uint8Array): string {
    if (typeof s === 'string') {
      const n = encode(s);
      this.hashInto(encodeBuffer, 0, n, DIGEST);
    } else {
      this.hashInto(s, 0, s.length, DIGEST);
    }
    return Buffer.from(DIGEST.buffer, DIGEST.byteOffset, 32).toString('hex');
  }
}

/** UTF-8 of `s` into `encodeBuffer` (grown as needed); returns the byte count. */
function encode(s: string): number {
  if (s.length * 3 > encodeBuffer.length) encodeBuffer = new Uint8Array(s.length * 3);
  return encoder.encodeInto(s, encodeBuffer).written;
}

// ---------------------------------------------------------------------------------------------------------------
// The list key file.
//
//   hwl1-list-key
//   hash-key-id: demo-2026a
//   hash-key: <64 lower-case hex>
//
// Exactly these three lines, in this order, ASCII, each ended by LF (so the file ends with LF); no CR, BOM, tab,
// blank line, comment or trailing space: one valid byte form per key, like every HWL1 file. The id follows the
// list-id syntax [a-z0-9][a-z0-9-]{0,62}; the id `public` marks a public-mode key, which the signer writes into the
// list's header (SPEC.md 1.3). Any other content is refused with KEY_INVALID, a file over 1 KiB with TOO_LARGE.
// ---------------------------------------------------------------------------------------------------------------

export const LIST_KEY_MAGIC = 'hwl1-list-key';
/** Refuse list key files larger than this before looking at them (a valid one is at most 158 bytes). */
export const MAX_LIST_KEY_FILE_BYTES = 1024;

const KEY_FILE = /^hwl1-list-key\nhash-key-id: ([^\n]*)\nhash-key: ([^\n]*)\n$/;

/** A list key: its id (the list's `hash-key-id`) and the 32 key bytes. */
export class ListKey {
  readonly id: string;
  // Private: logging or serializing a ListKey to JSON never shows the key.
  readonly #key: Uint8Array;

  constructor(id: string, key: Uint8Array) {
    if (!isListId(id)) throw new FormatError('KEY_INVALID', 'hash-key-id: not [a-z0-9][a-z0-9-]{0,62}');
    if (!(key instanceof Uint8Array) || key.length !== LIST_KEY_BYTES) {
      throw new FormatError('KEY_INVALID', `hash-key: a list key is ${LIST_KEY_BYTES} bytes`);
    }
    this.id = id;
    this.#key = Uint8Array.from(key);
  }

  /** A copy of the 32 key bytes. */
  get key(): Uint8Array {
    return Uint8Array.from(this.#key);
  }

  /** True for the key of a public-mode list (`hash-key-id: public`). */
  get isPublic(): boolean {
    return this.id === PUBLIC_KEY_ID;
  }

  /** The key as 64 lower-case hex digits (what a public-mode header carries as `hash-key`). */
  keyHex(): string {
    return Buffer.from(this.#key).toString('hex');
  }

  /** A HashKey with this key's midstates. */
  hashKey(): HashKey {
    return new HashKey(this.#key);
  }
}

/** Parses a list key file strictly (format above). Errors: KEY_INVALID, TOO_LARGE; never echoes the key. */
export function parseListKey(file: string | Uint8Array): ListKey {
  if (file.length > MAX_LIST_KEY_FILE_BYTES) {
    throw new FormatError('TOO_LARGE', `a list key file is at most ${MAX_LIST_KEY_FILE_BYTES} bytes`);
  }
  let text: string;
  if (typeof file === 'string') {
    text = file;
  } else {
    for (const b of file) {
      if (b > 0x7e) throw new FormatError('KEY_INVALID', 'list key file: not ASCII');
    }
    text = Buffer.from(file.buffer, file.byteOffset, file.length).toString('latin1');
  }
  const m = KEY_FILE.exec(text);
  if (!m) {
    throw new FormatError(
      'KEY_INVALID',
      `list key file: not the three lines "${LIST_KEY_MAGIC}", "hash-key-id: ...", "hash-key: ..."`,
    );
  }
  const [, id, hex] = m as unknown as [string, string, string];
  if (!isListId(id)) throw new FormatError('KEY_INVALID', 'list key file: hash-key-id is not [a-z0-9][a-z0-9-]{0,62}');
  if (!isHex64(hex)) throw new FormatError('KEY_INVALID', 'list key file: hash-key is not 64 lower-case hex digits');
  return new ListKey(id, Buffer.from(hex, 'hex'));
}

/** The one byte form of a list key file. */
export function serializeListKey(key: ListKey): string {
  return `${LIST_KEY_MAGIC}\nhash-key-id: ${key.id}\nhash-key: ${key.keyHex()}\n`;
}

/** A fresh random list key (32 bytes from the system CSPRNG) with the given id (`public` for a public-mode list). */
export function generateListKey(id: string): ListKey {
  if (!isListId(id)) throw new FormatError('KEY_INVALID', 'hash-key-id: not [a-z0-9][a-z0-9-]{0,62}');
  return new ListKey(id, randomBytes(LIST_KEY_BYTES));
}
