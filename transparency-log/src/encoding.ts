/**
 * Text encodings the C2SP specifications share: canonical standard base64 (RFC 4648 4), decimal sizes without
 * leading zeroes, and UTF-8 without control characters (signed-note). Parsers refuse rather than repair, so every
 * value has one text form.
 */
import { decodeBase64Exact, encodeBase64 } from '@hashwall/format';

import { malformed } from './errors.js';

export { encodeBase64 };

/**
 * Canonical standard base64 of any length: `A-Za-z0-9+/`, exactly the padding needed, unused bits zero, no
 * whitespace. Returns undefined when refused. (Go's decoder, which the sumdb uses, ignores the unused bits and
 * skips CR and LF; a text that relies on either is refused here.)
 */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0) return undefined;
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return decodeBase64Exact(text, (text.length / 4) * 3 - pad);
}

/**
 * A non-negative decimal integer as tlog-checkpoint and tlog-witness write sizes: ASCII digits, no leading zero
 * (`0` alone for zero), at most 2^53 - 1 (the specifications allow up to 2^63 - 1; no log here comes near 2^53).
 */
export function parseDecimal(text: string, what: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) throw malformed(`${what}: not a decimal without leading zeroes`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw malformed(`${what}: over 2^53 - 1`);
  return n;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes text that signed-note allows: valid UTF-8 with no ASCII control character (below U+0020) but newline.
 * Returns undefined when refused.
 */
export function decodeNoteText(bytes: Uint8Array): string | undefined {
  for (const b of bytes) if (b < 0x20 && b !== 0x0a) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Unicode White_Space (what Go's unicode.IsSpace tests), which key names and origins may not contain. */
const WHITE_SPACE = /\p{White_Space}/u;

/**
 * signed-note: a key name is non-empty and holds no Unicode space and no `+`. Names are also what a log's origin
 * SHOULD look like (tlog-checkpoint), and must be valid note text.
 */
export function isKeyName(name: string): boolean {
  return (
    name.length > 0 &&
    !WHITE_SPACE.test(name) &&
    !name.includes('+') &&
    !/\p{Cs}/u.test(name) &&
    decodeNoteText(Buffer.from(name, 'utf8')) !== undefined
  );
}

export function utf8Bytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}
