/**
 * Byte-level helpers shared by the minisign codecs: strict base64, line splitting, comment text rules and the
 * little-endian key id. Nothing here knows about keys or signatures.
 */
import { Buffer } from 'node:buffer';

import { FormatError, type ErrorCode } from '../errors.js';

/** A text file as callers hold it: the raw bytes, or a JS string (encoded to UTF-8 here). */
export type TextInput = string | Uint8Array;

const LF = 0x0a;
const CR = 0x0d;

/**
 * The bytes of `input`, refusing more than `cap` bytes before any other work.
 * A string with a lone surrogate has no exact UTF-8 form and is refused with `code`.
 */
export function inputBytes(input: TextInput, cap: number, code: ErrorCode, what: string): Uint8Array {
  if (typeof input === 'string') {
    // A string's UTF-8 form is never shorter than its UTF-16 length, so this cap is safe before encoding.
    if (input.length > cap) throw new FormatError('TOO_LARGE', `${what}: more than ${cap} bytes`);
    if (/\p{Cs}/u.test(input)) throw new FormatError(code, `${what}: not valid Unicode text`);
    input = Buffer.from(input, 'utf8');
  } else if (!(input instanceof Uint8Array)) {
    throw new FormatError(code, `${what}: expected text or bytes`);
  }
  if (input.byteLength > cap) throw new FormatError('TOO_LARGE', `${what}: more than ${cap} bytes`);
  return input;
}

/**
 * Splits a file into exactly `count` lines, each ended by LF. Refuses any CR (so CRLF files too), a missing final
 * LF and extra lines: minisign writes LF only, and a file has one valid byte form.
 */
export function splitLines(bytes: Uint8Array, count: number, code: ErrorCode, what: string): Uint8Array[] {
  if (bytes.includes(CR)) throw new FormatError(code, `${what}: CR found (line ends must be LF)`);
  if (bytes.byteLength === 0 || bytes[bytes.byteLength - 1] !== LF) {
    throw new FormatError(code, `${what}: must end with LF`);
  }
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < bytes.byteLength; i++) {
    if (bytes[i] === LF) {
      if (lines.length === count) throw new FormatError(code, `${what}: more than ${count} lines`);
      lines.push(bytes.subarray(start, i));
      start = i + 1;
    }
  }
  if (lines.length !== count) throw new FormatError(code, `${what}: expected ${count} lines, found ${lines.length}`);
  return lines;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes a comment as minisign 0.12's `is_printable` accepts it: valid UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF), no C0 control but tab, no DEL, no C1 control. Returns undefined when refused.
 */
export function decodePrintable(bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return undefined;
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x09) continue;
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return undefined;
  }
  // The decoder maps a leading BOM to U+FEFF and keeps it (ignoreBOM): it is printable text, not a BOM, here.
  return text;
}

/** True when `text` is one line of printable text in the sense of {@link decodePrintable}. */
export function isPrintableLine(text: string): boolean {
  if (/\p{Cs}/u.test(text)) return false;
  return decodePrintable(Buffer.from(text, 'utf8')) !== undefined;
}

/**
 * Removes an ASCII prefix from a line, or returns undefined when the line does not start with it.
 */
export function stripPrefix(line: Uint8Array, prefix: string): Uint8Array | undefined {
  if (line.byteLength < prefix.length) return undefined;
  for (let i = 0; i < prefix.length; i++) {
    if (line[i] !== prefix.charCodeAt(i)) return undefined;
  }
  return line.subarray(prefix.length);
}

/** The base64 length of `n` bytes with padding. */
export function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}

/**
 * Decodes canonical standard base64 of exactly `length` bytes: only `A-Za-z0-9+/`, exactly the padding needed,
 * unused bits zero, no whitespace. minisign's own decoder ignores the unused bits; this one refuses them, so every
 * key and signature has one text form. Returns undefined when refused.
 */
export function decodeBase64Exact(text: string | Uint8Array, length: number): Uint8Array | undefined {
  const s = typeof text === 'string' ? text : Buffer.from(text).toString('latin1');
  if (s.length !== base64Length(length)) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  const bytes = Buffer.from(s, 'base64');
  if (bytes.byteLength !== length || bytes.toString('base64') !== s) return undefined;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Number of bytes in a minisign key id (`KEYNUMBYTES`). */
export const KEY_NUM_BYTES = 8;

/**
 * The key id as minisign prints it: the 8 key-number bytes read as a little-endian 64-bit integer, written as 16
 * upper-case hex digits (`%016" PRIX64` of `le64_load(keynum)`), so the last stored byte comes first.
 */
export function keyIdFromKeyNum(keyNum: Uint8Array): string {
  if (keyNum.byteLength !== KEY_NUM_BYTES) throw new FormatError('KEY_INVALID', 'a key number has 8 bytes');
  let id = '';
  for (let i = KEY_NUM_BYTES - 1; i >= 0; i--) id += (keyNum[i] ?? 0).toString(16).padStart(2, '0');
  return id.toUpperCase();
}

export const KEY_ID_PATTERN = /^[0-9A-F]{16}$/;

/** The inverse of {@link keyIdFromKeyNum}; throws MALFORMED unless `keyId` is 16 upper-case hex digits. */
export function keyNumFromKeyId(keyId: string): Uint8Array {
  if (!KEY_ID_PATTERN.test(keyId)) throw new FormatError('MALFORMED', 'a key id is 16 upper-case hex digits');
  const out = new Uint8Array(KEY_NUM_BYTES);
  for (let i = 0; i < KEY_NUM_BYTES; i++) out[KEY_NUM_BYTES - 1 - i] = parseInt(keyId.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

export function asciiBytes(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

/**
 * Longest untrusted comment line minisign reads back, without its LF: it reads the line with
 * `fgets(buf, 1024)` and needs the LF inside those 1023 bytes.
 */
export const MAX_UNTRUSTED_COMMENT_LINE_BYTES = 1022;
