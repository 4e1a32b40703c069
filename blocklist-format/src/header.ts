/**
 * The common file layout of HWL1 (SPEC.md 2): ASCII, LF line ends, no BOM, no tab, no trailing space, a final
 * LF; a header of `key: value` lines in a fixed order, one empty line, then the body. Integers are decimal without
 * leading zeros, at most 2^53-1; times are UTC `YYYY-MM-DDTHH:MM:SSZ`. Parsers here reject, they never repair.
 */
import { FormatError } from './errors.js';

/** SPEC.md 4: a header is at most 4 KiB (counted up to and including the empty line that ends it). */
export const MAX_HEADER_BYTES = 4096;

const LIST_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const INTEGER = /^(0|[1-9][0-9]{0,15})$/;
const TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$/;
const EXTENSION_KEY = /^x-[a-z0-9][a-z0-9-]*$/;
// A value is printable ASCII, starts and ends with a non-space (so no trailing space).
const VALUE = /^[!-~](?:[ -~]*[!-~])?$/;

/** A header key starting `x-`: allowed after the fixed keys and otherwise ignored (kept for round trips). */
export type Extension = readonly [key: string, value: string];

export function malformed(message: string): FormatError {
  return new FormatError('MALFORMED', message);
}

/** `[a-z0-9][a-z0-9-]{0,62}`: the syntax of `list-id` and of a licensed `hash-key-id`. */
export function isListId(s: string): boolean {
  return LIST_ID.test(s);
}

export function isHex64(s: string): boolean {
  return HEX64.test(s);
}

export function parseInteger(s: string, what: string): number {
  if (!INTEGER.test(s)) throw malformed(`${what}: not a decimal integer without leading zeros: ${JSON.stringify(s)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw malformed(`${what}: over 2^53-1`);
  return n;
}

/** Parses a SPEC.md time into seconds since the epoch; rejects impossible dates (Feb 30, 24:00, leap seconds). */
export function parseTime(s: string, what: string): number {
  const m = TIME.exec(s);
  if (!m) throw malformed(`${what}: not a UTC time YYYY-MM-DDTHH:MM:SSZ: ${JSON.stringify(s)}`);
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  if (y < 1970 || !Number.isFinite(ms) || formatTime(ms / 1000) !== s) {
    throw malformed(`${what}: not a valid time: ${JSON.stringify(s)}`);
  }
  return ms / 1000;
}

/** Formats seconds since the epoch (whole seconds) as `YYYY-MM-DDTHH:MM:SSZ`. */
export function formatTime(seconds: number): string {
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > 253402300799) {
    throw new RangeError(`time out of range: ${seconds}`);
  }
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** Checks that a value can be written as a header value, for serializers. */
export function checkValue(key: string, value: string): void {
  if (!VALUE.test(value)) throw new RangeError(`header ${key}: value is not printable ASCII without edge spaces`);
}

/**
 * Splits a file into its header lines (without the magic line) and the offset where the body starts. Checks the
 * magic line, the header cap, and that the header is printable ASCII with `key: value` lines.
 */
export function splitHeader(
  bytes: Uint8Array,
  magic: string,
): { fields: { key: string; value: string }[]; bodyStart: number } {
  const magicLine = `${magic}\n`;
  if (
    bytes.length < magicLine.length ||
    Buffer.from(bytes.buffer, bytes.byteOffset, magicLine.length).toString('latin1') !== magicLine
  ) {
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) throw malformed('starts with a byte order mark');
    throw malformed(`does not start with "${magic}"`);
  }
  // Find the empty line ("\n\n") that ends the header, looking no further than the cap.
  const limit = Math.min(bytes.length, MAX_HEADER_BYTES);
  let end = -1;
  for (let i = magicLine.length - 1; i + 1 < limit; i++) {
    if (bytes[i] === 0x0a && bytes[i + 1] === 0x0a) {
      end = i + 1;
      break;
    }
  }
  if (end < 0) {
    if (bytes.length >= MAX_HEADER_BYTES) throw new FormatError('TOO_LARGE', 'header over 4 KiB or not terminated');
    throw malformed('header is not ended by an empty line');
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + magicLine.length, end - magicLine.length).toString(
    'latin1',
  );
  const fields: { key: string; value: string }[] = [];
  for (const line of text.split('\n')) {
    if (line === '') break; // the final "\n" of the last field line
    const colon = line.indexOf(': ');
    if (colon <= 0) throw malformed(`header line is not "key: value": ${JSON.stringify(line.slice(0, 80))}`);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (!/^[a-z0-9-]+$/.test(key)) throw malformed(`bad header key ${JSON.stringify(key.slice(0, 80))}`);
    if (!VALUE.test(value)) {
      throw malformed(`header ${key}: value is not printable ASCII without edge spaces (tab, CR or trailing space?)`);
    }
    fields.push({ key, value });
  }
  return { fields, bodyStart: end + 1 };
}

/** Reads header fields in their fixed order, then the `x-` extensions. */
export class HeaderReader {
  private i = 0;

  constructor(private readonly fields: readonly { key: string; value: string }[]) {}

  /** The value of the next field, which must be `key`. */
  take(key: string): string {
    const f = this.fields[this.i];
    if (f === undefined) throw malformed(`header: missing "${key}"`);
    if (f.key !== key) {
      const known = this.fields.some((g) => g.key === key);
      throw malformed(
        known ? `header: "${f.key}" out of order, expected "${key}"` : `header: expected "${key}", found "${f.key}"`,
      );
    }
    this.i++;
    return f.value;
  }

  /** Whether the next field is `key` (for optional fixed fields such as `hash-key`). */
  peekIs(key: string): boolean {
    return this.fields[this.i]?.key === key;
  }

  /** The remaining fields, which must all be distinct `x-` keys. */
  extensions(): Extension[] {
    const out: Extension[] = [];
    const seen = new Set<string>();
    for (; this.i < this.fields.length; this.i++) {
      const f = this.fields[this.i]!;
      if (!EXTENSION_KEY.test(f.key)) throw malformed(`header: unknown, duplicate or out-of-order key "${f.key}"`);
      if (seen.has(f.key)) throw malformed(`header: duplicate key "${f.key}"`);
      seen.add(f.key);
      out.push([f.key, f.value]);
    }
    return out;
  }
}

/** Writes a header: the magic line, the fields in order, the extensions, and the empty line. */
export function writeHeader(magic: string, fields: readonly Extension[], extensions: readonly Extension[]): string {
  const seen = new Set<string>();
  for (const [key] of extensions) {
    if (!EXTENSION_KEY.test(key) || seen.has(key)) throw new RangeError(`bad or duplicate extension key ${key}`);
    seen.add(key);
  }
  let s = `${magic}\n`;
  for (const [key, value] of [...fields, ...extensions]) {
    checkValue(key, value);
    s += `${key}: ${value}\n`;
  }
  return `${s}\n`;
}

/** Validates `created` < `expires` <= `created` + `maxDays`. */
export function checkValidity(created: number, expires: number, maxDays: number): void {
  if (expires <= created) throw malformed('expires is not after created');
  if (expires - created > maxDays * 86400) throw malformed(`expires is more than ${maxDays} days after created`);
}

export function parseListId(s: string): string {
  if (!isListId(s)) throw malformed(`list-id: not [a-z0-9][a-z0-9-]{0,62}: ${JSON.stringify(s.slice(0, 80))}`);
  return s;
}

export function parseHex64(s: string, what: string): string {
  if (!isHex64(s)) throw malformed(`${what}: not 64 lower-case hex digits`);
  return s;
}
