/**
 * minisign public keys (SPEC.md 3): the bare base64 string `RW...` and the two-line `.pub` file.
 *
 * Payload (42 bytes, minisign.h `PubkeyStruct`): "Ed" | key number (8 bytes) | Ed25519 public key (32 bytes).
 */
import { Buffer } from 'node:buffer';
import type { KeyObject } from 'node:crypto';

import { FormatError } from '../errors.js';
import {
  KEY_NUM_BYTES,
  MAX_UNTRUSTED_COMMENT_LINE_BYTES,
  concatBytes,
  decodeBase64Exact,
  decodePrintable,
  encodeBase64,
  inputBytes,
  isPrintableLine,
  keyIdFromKeyNum,
  splitLines,
  stripPrefix,
  asciiBytes,
  bytesEqual,
  type TextInput,
} from './bytes.js';
import { PUBLIC_KEY_BYTES, isAcceptablePublicKey, publicKeyObject } from './ed25519.js';

/** Signature algorithm bytes of keys and of prehashed / legacy signatures (minisign.h SIGALG, SIGALG_HASHED). */
export const SIG_ALG = 'Ed';
export const SIG_ALG_HASHED = 'ED';

export const UNTRUSTED_COMMENT_PREFIX = 'untrusted comment: ';

/** Size of the decoded public key payload. */
export const PUBLIC_KEY_PAYLOAD_BYTES = 2 + KEY_NUM_BYTES + PUBLIC_KEY_BYTES;

/** Cap on a `.pub` file: far above the 1023-byte comment line minisign can read plus the key line. */
export const MAX_PUBLIC_KEY_FILE_BYTES = 2048;

/** A minisign public key. Treat the byte arrays as read-only. */
export interface MinisignPublicKey {
  /** 16 upper-case hex digits, as minisign prints the key id (and as `X.<KEYID>.minisig` names it). */
  readonly keyId: string;
  /** The 8 key-number bytes as stored in keys and signatures. */
  readonly keyNum: Uint8Array;
  /** The raw 32-byte Ed25519 public key. */
  readonly key: Uint8Array;
}

/** A parsed `.pub` file. */
export interface PublicKeyFile {
  readonly publicKey: MinisignPublicKey;
  /** The text after `untrusted comment: `; not covered by anything, never trusted. */
  readonly untrustedComment: string;
}

const keyObjects = new WeakMap<MinisignPublicKey, KeyObject>();

/**
 * Builds a public key from its parts, refusing what libsodium would refuse (non-canonical or small-order points)
 * with KEY_INVALID. The result is frozen and holds copies of the inputs.
 */
export function makePublicKey(keyNum: Uint8Array, key: Uint8Array): MinisignPublicKey {
  if (keyNum.byteLength !== KEY_NUM_BYTES) throw new FormatError('KEY_INVALID', 'a key number has 8 bytes');
  if (key.byteLength !== PUBLIC_KEY_BYTES) throw new FormatError('KEY_INVALID', 'an Ed25519 public key has 32 bytes');
  if (!isAcceptablePublicKey(key)) {
    throw new FormatError('KEY_INVALID', 'the Ed25519 public key is not canonical or has small order');
  }
  const keyObject = publicKeyObject(key);
  if (keyObject === undefined) throw new FormatError('KEY_INVALID', 'the Ed25519 public key is not usable');
  const pk: MinisignPublicKey = Object.freeze({
    keyId: keyIdFromKeyNum(keyNum),
    keyNum: Uint8Array.from(keyNum),
    key: Uint8Array.from(key),
  });
  keyObjects.set(pk, keyObject);
  return pk;
}

/** The Node KeyObject for a key made by this module (re-derived, and checked, for one built by hand). */
export function keyObjectOf(pk: MinisignPublicKey): KeyObject {
  const cached = keyObjects.get(pk);
  if (cached !== undefined) return cached;
  return keyObjectOf(makePublicKey(pk.keyNum, pk.key));
}

/**
 * Parses a bare public key string as `minisign -P` takes it (`RW` followed by 54 more base64 characters).
 * Strict: exactly 56 characters of canonical base64, no whitespace, algorithm `Ed`; KEY_INVALID otherwise.
 */
export function parsePublicKey(text: string): MinisignPublicKey {
  if (typeof text !== 'string') throw new FormatError('KEY_INVALID', 'a public key string is expected');
  const payload = decodeBase64Exact(text, PUBLIC_KEY_PAYLOAD_BYTES);
  if (payload === undefined) {
    throw new FormatError('KEY_INVALID', 'a public key is 56 characters of canonical base64');
  }
  return publicKeyFromPayload(payload);
}

function publicKeyFromPayload(payload: Uint8Array): MinisignPublicKey {
  if (payload[0] !== SIG_ALG.charCodeAt(0) || payload[1] !== SIG_ALG.charCodeAt(1)) {
    throw new FormatError('KEY_INVALID', 'unsupported public key algorithm (only Ed is known)');
  }
  return makePublicKey(payload.subarray(2, 2 + KEY_NUM_BYTES), payload.subarray(2 + KEY_NUM_BYTES));
}

/**
 * Parses a `.pub` file: `untrusted comment: <text>` LF, the base64 key LF, nothing else. Strict: LF line ends
 * only (a CR anywhere, so also a final CRLF, is refused), a final LF, no BOM, a printable comment line of at most
 * 1022 bytes (what minisign reads back). KEY_INVALID, or TOO_LARGE past 2 KiB.
 */
export function parsePublicKeyFile(text: TextInput): PublicKeyFile {
  const bytes = inputBytes(text, MAX_PUBLIC_KEY_FILE_BYTES, 'KEY_INVALID', 'public key file');
  const [commentLine, keyLine] = splitLines(bytes, 2, 'KEY_INVALID', 'public key file') as [Uint8Array, Uint8Array];
  const untrustedComment = parseUntrustedCommentLine(commentLine, 'KEY_INVALID', 'public key file');
  const payload = decodeBase64Exact(keyLine, PUBLIC_KEY_PAYLOAD_BYTES);
  if (payload === undefined) {
    throw new FormatError('KEY_INVALID', 'public key file: the key line is not 56 characters of canonical base64');
  }
  return Object.freeze({ publicKey: publicKeyFromPayload(payload), untrustedComment });
}

/** @internal Parses an `untrusted comment: ` line (without its LF). */
export function parseUntrustedCommentLine(line: Uint8Array, code: 'KEY_INVALID' | 'MALFORMED', what: string): string {
  if (line.byteLength > MAX_UNTRUSTED_COMMENT_LINE_BYTES) {
    throw new FormatError(code, `${what}: the untrusted comment line is longer than minisign reads`);
  }
  const rest = stripPrefix(line, UNTRUSTED_COMMENT_PREFIX);
  if (rest === undefined) throw new FormatError(code, `${what}: the first line must start "untrusted comment: "`);
  const comment = decodePrintable(rest);
  if (comment === undefined) throw new FormatError(code, `${what}: the untrusted comment is not printable UTF-8`);
  return comment;
}

/** @internal Checks an untrusted comment a caller wants written; the same rule as for reading. */
export function checkUntrustedComment(comment: string, code: 'KEY_INVALID' | 'MALFORMED'): void {
  if (typeof comment !== 'string' || !isPrintableLine(comment)) {
    throw new FormatError(code, 'an untrusted comment must be one line of printable text');
  }
  if (Buffer.byteLength(UNTRUSTED_COMMENT_PREFIX + comment, 'utf8') > MAX_UNTRUSTED_COMMENT_LINE_BYTES) {
    throw new FormatError(code, 'the untrusted comment line would be longer than minisign reads');
  }
}

/** The bare base64 form (`RW...`, 56 characters) that `minisign -P` takes. */
export function publicKeyToString(pk: MinisignPublicKey): string {
  return encodeBase64(concatBytes(asciiBytes(SIG_ALG), pk.keyNum, pk.key));
}

/**
 * The `.pub` file exactly as minisign writes it: `untrusted comment: minisign public key <KEYID>` LF, key LF.
 * The key id is zero-padded to 16 digits as minisign 0.12 writes it (0.11 omitted leading zeros; the comment is
 * untrusted and either form parses).
 */
export function serializePublicKeyFile(pk: MinisignPublicKey, untrustedComment?: string): string {
  const comment = untrustedComment ?? `minisign public key ${pk.keyId}`;
  checkUntrustedComment(comment, 'KEY_INVALID');
  return `${UNTRUSTED_COMMENT_PREFIX}${comment}\n${publicKeyToString(pk)}\n`;
}

/** True when two public keys are the same key (same key id and key bytes). */
export function samePublicKey(a: MinisignPublicKey, b: MinisignPublicKey): boolean {
  return bytesEqual(a.keyNum, b.keyNum) && bytesEqual(a.key, b.key);
}
