/**
 * HPACK (RFC 7541): the header compression of HTTP/2. The decoder takes the blocks a client sends (the static table
 * of Appendix A, a dynamic table bounded by our SETTINGS_HEADER_TABLE_SIZE, the Huffman code of Appendix B) and
 * refuses what the RFC calls a decoding error (COMPRESSION_ERROR): an index out of range, an integer past 2^28, a
 * string longer than its block, a Huffman string with the EOS symbol or padding that is not the EOS code's most
 * significant bits or longer than 7 bits (5.2), a table size update past the limit or after the first field (4.2).
 *
 * The encoder writes what a DNS server answers with: indexed static entries and literals (never indexed, no dynamic
 * table), optionally Huffman-coded; with incremental indexing and its own dynamic table too, for the tests that play
 * a client against the decoder.
 *
 * Field names and values are latin1 strings, one character per octet, so a string's length is its octet count (RFC
 * 7541 4.1 counts octets).
 */
import { Buffer } from 'node:buffer';

/** A decoding error (RFC 7541 2.4: a connection error of type COMPRESSION_ERROR, RFC 9113 4.3). */
export class HpackError extends Error {
  readonly code = 'HPACK_DECODING_ERROR';
}

/** RFC 7541 Appendix A: the static table; index 1 is the first entry. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length;

/** The first static index of each name, and the index of each name and value pair, for the encoder. */
const STATIC_NAME = new Map<string, number>();
const STATIC_PAIR = new Map<string, number>();
for (const [i, [name, value]] of STATIC_TABLE.entries()) {
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
  STATIC_PAIR.set(`${name}\0${value}`, i + 1);
}

/** RFC 7541 4.1: an entry's size, its name and value octets plus 32. */
export const ENTRY_OVERHEAD = 32;

// RFC 7541 Appendix B: the code length of each symbol, 0-255 and EOS (256). The code is canonical: within one
// length, codes are consecutive in symbol order, and each length's first code follows the last of the shorter ones
// (shifted left), so the lengths alone give every code.
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
  28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6,
  5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23,
  22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22,
  23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26,
  20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27,
  27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27,
  27, 27, 27, 26, 30,
];
const EOS = 256;

/** Each symbol's code, right-aligned in its length (HUFFMAN_LENGTHS). */
export const HUFFMAN_CODES = new Uint32Array(257);
{
  const order = Array.from({ length: 257 }, (_, s) => s).sort(
    (a, b) => HUFFMAN_LENGTHS[a]! - HUFFMAN_LENGTHS[b]! || a - b,
  );
  let code = 0;
  let len = HUFFMAN_LENGTHS[order[0]!]!;
  for (const s of order) {
    const l = HUFFMAN_LENGTHS[s]!;
    code *= 2 ** (l - len);
    len = l;
    HUFFMAN_CODES[s] = code;
    code++;
  }
}
export { HUFFMAN_LENGTHS };

/**
 * The decoder: a state machine over the code's tree that eats four bits at a time. States are the tree's 256
 * internal nodes (the root is 0). TRANSITIONS[state * 16 + nibble] packs the next state (bits 0-7), the symbol
 * completed on the way plus one (bits 8-16; 0: none, and a 4-bit step completes at most one symbol, every code being
 * at least 5 bits long) and FAIL (bit 17: the EOS code was completed). PAD_OK[state]: whether the bits eaten since
 * the last symbol may end the string, being at most 7 bits and all ones (a prefix of the EOS code, RFC 7541 5.2).
 */
const TRANSITIONS = new Int32Array(256 * 16);
const PAD_OK = new Uint8Array(256);
const FAIL = 1 << 17;
{
  // The tree: children of internal node n at LEFT[n], RIGHT[n]; a leaf is stored as -(symbol + 1).
  const left = new Int32Array(256);
  const right = new Int32Array(256);
  const depth = new Int32Array(256);
  const ones = new Uint8Array(256);
  let nodes = 1;
  ones[0] = 1;
  for (let s = 0; s <= EOS; s++) {
    const len = HUFFMAN_LENGTHS[s]!;
    const code = HUFFMAN_CODES[s]!;
    let n = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const children = bit === 0 ? left : right;
      if (i === 0) {
        children[n] = -(s + 1);
        break;
      }
      if (children[n] === 0) {
        children[n] = nodes;
        depth[nodes] = depth[n]! + 1;
        ones[nodes] = ones[n]! & bit;
        nodes++;
      }
      n = children[n]!;
    }
  }
  for (let s = 0; s < 256; s++) {
    PAD_OK[s] = ones[s]! === 1 && depth[s]! <= 7 ? 1 : 0;
    for (let nibble = 0; nibble < 16; nibble++) {
      let n = s;
      let emitted = 0;
      let fail = 0;
      for (let i = 3; i >= 0; i--) {
        const next = ((nibble >> i) & 1) === 0 ? left[n]! : right[n]!;
        if (next < 0) {
          const sym = -next - 1;
          if (sym === EOS) fail = FAIL;
          emitted = sym + 1;
          n = 0;
        } else {
          n = next;
        }
      }
      TRANSITIONS[s * 16 + nibble] = n | (emitted << 8) | fail;
    }
  }
}

/** Scratch for decoded Huffman strings (grown as needed; one decode at a time in the one thread). */
let scratch = Buffer.allocUnsafe(4096);

/**
 * Decodes the Huffman string `buf[start, end)` into the module's scratch buffer; its length. Throws HpackError on
 * EOS or bad padding.
 */
function huffmanDecode(buf: Buffer, start: number, end: number): number {
  // Each code is at least 5 bits: at most 8/5 symbols an octet.
  const max = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < max) scratch = Buffer.allocUnsafe(Math.max(max, scratch.length * 2));
  const out = scratch;
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    let t = TRANSITIONS[(state << 4) | (b >> 4)]!;
    if ((t & FAIL) !== 0) throw new HpackError('Huffman: EOS in a string');
    if (t >>> 8 !== 0) out[n++] = (t >>> 8) - 1;
    state = t & 0xff;
    t = TRANSITIONS[(state << 4) | (b & 0xf)]!;
    if ((t & FAIL) !== 0) throw new HpackError('Huffman: EOS in a string');
    if (t >>> 8 !== 0) out[n++] = (t >>> 8) - 1;
    state = t & 0xff;
  }
  if (PAD_OK[state] !== 1) throw new HpackError('Huffman: padding is not the EOS prefix of at most 7 bits');
  return n;
}

/** The Huffman coding of `s` (latin1). */
export function huffmanEncode(s: string): Buffer {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff]!;
  const out = Buffer.allocUnsafe((bits + 7) >> 3);
  let acc = 0;
  let accBits = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff;
    const len = HUFFMAN_LENGTHS[c]!;
    // acc holds fewer than 8 bits before this: at most 37 after, exact in a double.
    acc = acc * 2 ** len + HUFFMAN_CODES[c]!;
    accBits += len;
    while (accBits >= 8) {
      accBits -= 8;
      const byte = Math.floor(acc / 2 ** accBits);
      out[o++] = byte;
      acc -= byte * 2 ** accBits;
    }
  }
  // RFC 7541 5.2: pad with the most significant bits of EOS (all ones).
  if (accBits > 0) out[o++] = (acc << (8 - accBits)) | ((1 << (8 - accBits)) - 1);
  return out;
}

/** The length of `s`'s Huffman coding in octets. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >> 3;
}

/**
 * RFC 7541 5.1: an integer of an N-bit prefix at `buf[pos]`. Returns the value; the position after it is left in
 * `intEnd`. Refuses more than four continuation octets (values past 2^28 + 2^N: no field here is that large, and
 * a longer run would overflow, RFC 7541 7.4).
 */
let intEnd = 0;
function readInt(buf: Buffer, pos: number, end: number, prefixBits: number): number {
  const mask = (1 << prefixBits) - 1;
  let v = buf[pos]! & mask;
  pos++;
  if (v < mask) {
    intEnd = pos;
    return v;
  }
  let shift = 0;
  for (;;) {
    if (pos >= end) throw new HpackError('an integer runs past the block');
    if (shift > 21) throw new HpackError('an integer too large');
    const b = buf[pos++]!;
    v += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) break;
  }
  intEnd = pos;
  return v;
}

/** RFC 7541 5.1: writes `v` with an N-bit prefix whose high bits are `first`. */
function writeInt(out: number[], first: number, prefixBits: number, v: number): void {
  const mask = (1 << prefixBits) - 1;
  if (v < mask) {
    out.push(first | v);
    return;
  }
  out.push(first | mask);
  v -= mask;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

// What the decoder checks of a literal's octets (RFC 9113 8.2.1): a name is lower-case token characters (a pseudo
// header's leading colon is allowed), a value has no NUL, CR or LF and no leading or trailing space or tab.
const NAME_OK = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_OK[c.charCodeAt(0)] = 1;

function nameOk(buf: Buffer, start: number, end: number): boolean {
  if (end === start) return false;
  let i = start;
  if (buf[i] === 0x3a) i++; // ':'
  if (i === end) return false;
  for (; i < end; i++) if (NAME_OK[buf[i]!] !== 1) return false;
  return true;
}

function valueOk(buf: Buffer, start: number, end: number): boolean {
  if (end === start) return true;
  const first = buf[start]!;
  const last = buf[end - 1]!;
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return false;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === 0 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}

/**
 * The decoding side of one connection. `decode` fills `names` and `values` (the first `count` of each) with a
 * block's fields in order, and counts the header list's size as RFC 9113 6.5.2 does. Past `maxListBytes` it keeps
 * decoding (the dynamic table must follow the encoder whatever happens to the request) but keeps no more fields:
 * `overflow` is then set. `malformed` is set by a field name or value RFC 9113 8.2.1 forbids.
 */
export class HpackDecoder {
  /** SETTINGS_HEADER_TABLE_SIZE as we announced it: the dynamic table can never be larger. */
  readonly maxTableSize: number;
  /** The table size the encoder last chose (a table size update), at most maxTableSize. */
  #tableSize: number;
  /** The dynamic table, a ring: the newest entry at #head - 1, #length entries, #bytes of RFC 7541 4.1 size. */
  readonly #names: string[];
  readonly #values: string[];
  readonly #bad: Uint8Array;
  #head = 0;
  #length = 0;
  #bytes = 0;

  readonly names: string[] = [];
  readonly values: string[] = [];
  count = 0;
  listBytes = 0;
  overflow = false;
  malformed = false;
  maxListBytes: number;
  /** The most fields a block may keep (more: overflow, as a list too large). */
  maxFields: number;

  constructor(maxTableSize = 4096, maxListBytes = 16_384, maxFields = 64) {
    this.maxTableSize = maxTableSize;
    this.#tableSize = maxTableSize;
    const slots = Math.max(1, Math.floor(maxTableSize / ENTRY_OVERHEAD));
    this.#names = new Array<string>(slots).fill('');
    this.#values = new Array<string>(slots).fill('');
    this.#bad = new Uint8Array(slots);
    this.maxListBytes = maxListBytes;
    this.maxFields = maxFields;
  }

  /** The dynamic table's entries, newest first (for tests). */
  get table(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head - 1 - i + this.#names.length) % this.#names.length;
      out.push([this.#names[at]!, this.#values[at]!]);
    }
    return out;
  }

  /** The dynamic table's size in RFC 7541 4.1 octets. */
  get tableBytes(): number {
    return this.#bytes;
  }

  /** Decodes the block `buf[start, end)`. Throws HpackError (a COMPRESSION_ERROR) on a decoding error. */
  decode(buf: Buffer, start: number, end: number): void {
    this.count = 0;
    this.listBytes = 0;
    this.overflow = false;
    this.malformed = false;
    let pos = start;
    let fields = false;
    while (pos < end) {
      const b = buf[pos]!;
      let name: string;
      let value: string;
      let bad = false;
      if (b >= 0x80) {
        // RFC 7541 6.1: an indexed field.
        const index = readInt(buf, pos, end, 7);
        pos = intEnd;
        if (index === 0) throw new HpackError('index 0');
        if (index <= STATIC_COUNT) {
          const e = STATIC_TABLE[index - 1]!;
          name = e[0];
          value = e[1];
        } else {
          const at = this.#slot(index);
          name = this.#names[at]!;
          value = this.#values[at]!;
          bad = this.#bad[at] === 1;
        }
        fields = true;
      } else if ((b & 0xe0) === 0x20) {
        // RFC 7541 6.3: a dynamic table size update, only before the first field (4.2).
        if (fields) throw new HpackError('a table size update after a field');
        const size = readInt(buf, pos, end, 5);
        pos = intEnd;
        if (size > this.maxTableSize) throw new HpackError('a table size update past SETTINGS_HEADER_TABLE_SIZE');
        this.#tableSize = size;
        this.#evict(0);
        continue;
      } else {
        // RFC 7541 6.2: a literal, with incremental indexing (01), without (0000) or never indexed (0001).
        const indexing = (b & 0xc0) === 0x40;
        const index = readInt(buf, pos, end, indexing ? 6 : 4);
        pos = intEnd;
        if (index === 0) {
          pos = this.#string(buf, pos, end);
          if (!nameOk(strBuf, strStart, strEnd)) bad = true;
          name = strBuf.toString('latin1', strStart, strEnd);
        } else if (index <= STATIC_COUNT) {
          name = STATIC_TABLE[index - 1]![0];
        } else {
          const at = this.#slot(index);
          name = this.#names[at]!;
          bad = this.#bad[at] === 1;
        }
        pos = this.#string(buf, pos, end);
        if (!valueOk(strBuf, strStart, strEnd)) bad = true;
        const len = strEnd - strStart;
        // A value past the cap is not made a string unless the table keeps it.
        value =
          indexing || this.listBytes + name.length + len + ENTRY_OVERHEAD <= this.maxListBytes
            ? strBuf.toString('latin1', strStart, strEnd)
            : '';
        if (indexing) this.#insert(name, value, bad);
        fields = true;
        this.#field(name, value, len, bad);
        continue;
      }
      this.#field(name, value, value.length, bad);
    }
  }

  #field(name: string, value: string, valueBytes: number, bad: boolean): void {
    this.listBytes += name.length + valueBytes + ENTRY_OVERHEAD;
    if (this.overflow) return;
    if (this.listBytes > this.maxListBytes || this.count >= this.maxFields) {
      this.overflow = true;
      return;
    }
    if (bad) this.malformed = true;
    this.names[this.count] = name;
    this.values[this.count] = value;
    this.count++;
  }

  /** The ring slot of dynamic index `index` (62 is the newest entry). */
  #slot(index: number): number {
    const i = index - STATIC_COUNT - 1;
    if (i >= this.#length) throw new HpackError('an index past the dynamic table');
    const n = this.#names.length;
    return (this.#head - 1 - i + n) % n;
  }

  /** Reads a string literal at `pos` (RFC 7541 5.2) into strBuf[strStart, strEnd); the position after it. */
  #string(buf: Buffer, pos: number, end: number): number {
    if (pos >= end) throw new HpackError('a string runs past the block');
    const huffman = (buf[pos]! & 0x80) !== 0;
    const len = readInt(buf, pos, end, 7);
    pos = intEnd;
    if (len > end - pos) throw new HpackError('a string runs past the block');
    if (huffman) {
      strEnd = huffmanDecode(buf, pos, pos + len);
      strBuf = scratch;
      strStart = 0;
    } else {
      strBuf = buf;
      strStart = pos;
      strEnd = pos + len;
    }
    return pos + len;
  }

  /** RFC 7541 4.4: adds an entry, evicting the oldest ones to make room; one larger than the table empties it. */
  #insert(name: string, value: string, bad: boolean): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.#tableSize) {
      this.#evict(this.#tableSize);
      return;
    }
    this.#evict(size);
    const n = this.#names.length;
    this.#names[this.#head] = name;
    this.#values[this.#head] = value;
    this.#bad[this.#head] = bad ? 1 : 0;
    this.#head = (this.#head + 1) % n;
    this.#length++;
    this.#bytes += size;
  }

  /** RFC 7541 4.3: evicts the oldest entries until `room` more octets fit in the table size. */
  #evict(room: number): void {
    const n = this.#names.length;
    while (this.#length > 0 && this.#bytes + room > this.#tableSize) {
      const at = (this.#head - this.#length + n) % n;
      this.#bytes -= this.#names[at]!.length + this.#values[at]!.length + ENTRY_OVERHEAD;
      this.#names[at] = '';
      this.#values[at] = '';
      this.#length--;
    }
  }
}

// The string #string last read: octets [strStart, strEnd) of strBuf (the block itself, or the Huffman scratch).
let strBuf: Buffer = scratch;
let strStart = 0;
let strEnd = 0;

/** How the encoder writes a field it cannot index from the static table as a whole. */
export interface EncodeOptions {
  /** Huffman-code strings: always, never, or where it is shorter ('shorter', RFC 7541 5.2's usual choice). */
  readonly huffman?: boolean | 'shorter';
  /** Literal kind: without indexing (the default), never indexed, or with incremental indexing. */
  readonly indexing?: 'none' | 'never' | 'incremental';
  /** A dynamic table size update to emit first (RFC 7541 6.3). */
  readonly tableSizeUpdate?: number;
}

/**
 * An encoder: static-table indexes where a name and value match an entry, a literal otherwise (indexed name where
 * the static or dynamic table has it). With `indexing: 'incremental'` it keeps a dynamic table of `maxTableSize`
 * octets as a peer's decoder will, and indexes whole entries it holds.
 */
export class HpackEncoder {
  #tableSize: number;
  readonly #entries: [string, string][] = [];
  #bytes = 0;

  constructor(maxTableSize = 4096) {
    this.#tableSize = maxTableSize;
  }

  encode(fields: readonly (readonly [string, string])[], o: EncodeOptions = {}): Buffer {
    const out: number[] = [];
    if (o.tableSizeUpdate !== undefined) {
      writeInt(out, 0x20, 5, o.tableSizeUpdate);
      this.#tableSize = o.tableSizeUpdate;
      this.#evict(0);
    }
    const indexing = o.indexing ?? 'none';
    for (const [name, value] of fields) {
      const pair = STATIC_PAIR.get(`${name}\0${value}`) ?? this.#dynamicPair(name, value);
      if (pair !== undefined) {
        writeInt(out, 0x80, 7, pair);
        continue;
      }
      const nameIndex = STATIC_NAME.get(name) ?? this.#dynamicName(name) ?? 0;
      if (indexing === 'incremental') writeInt(out, 0x40, 6, nameIndex);
      else writeInt(out, indexing === 'never' ? 0x10 : 0x00, 4, nameIndex);
      if (nameIndex === 0) this.#writeString(out, name, o.huffman ?? false);
      this.#writeString(out, value, o.huffman ?? false);
      if (indexing === 'incremental') this.#insert(name, value);
    }
    return Buffer.from(out);
  }

  #writeString(out: number[], s: string, huffman: boolean | 'shorter'): void {
    const h = huffman === 'shorter' ? huffmanLength(s) < s.length : huffman;
    if (h) {
      const coded = huffmanEncode(s);
      writeInt(out, 0x80, 7, coded.length);
      for (const b of coded) out.push(b);
    } else {
      writeInt(out, 0, 7, s.length);
      for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
    }
  }

  #dynamicPair(name: string, value: string): number | undefined {
    const i = this.#entries.findIndex(([n, v]) => n === name && v === value);
    return i < 0 ? undefined : STATIC_COUNT + 1 + i;
  }

  #dynamicName(name: string): number | undefined {
    const i = this.#entries.findIndex(([n]) => n === name);
    return i < 0 ? undefined : STATIC_COUNT + 1 + i;
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.#tableSize) {
      this.#entries.length = 0;
      this.#bytes = 0;
      return;
    }
    this.#evict(size);
    this.#entries.unshift([name, value]);
    this.#bytes += size;
  }

  #evict(room: number): void {
    while (this.#entries.length > 0 && this.#bytes + room > this.#tableSize) {
      const [n, v] = this.#entries.pop()!;
      this.#bytes -= n.length + v.length + ENTRY_OVERHEAD;
    }
  }
}

/** RFC 7541 5.1 for callers that build blocks by hand (the answer's header block): `v` with an N-bit prefix. */
export function writeIntTo(buf: Buffer, at: number, first: number, prefixBits: number, v: number): number {
  const out: number[] = [];
  writeInt(out, first, prefixBits, v);
  for (const b of out) buf[at++] = b;
  return at;
}
