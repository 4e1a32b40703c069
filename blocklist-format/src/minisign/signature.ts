/**
 * minisign signatures in the prehashed `ED` form (SPEC.md 3), as minisign 0.11+ writes them with `-S`:
 *
 *   untrusted comment: <text> LF
 *   base64("ED" | key number (8) | Ed25519(BLAKE2b-512(file)) (64)) LF
 *   trusted comment: <text> LF
 *   base64(Ed25519(signature (64) | trusted comment bytes)) LF
 *
 * The legacy `Ed` form (Ed25519 over the file itself) parses but never verifies here: LEGACY_SIGNATURE.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';

import { FormatError } from '../errors.js';
import {
  KEY_NUM_BYTES,
  asciiBytes,
  bytesEqual,
  concatBytes,
  decodeBase64Exact,
  decodePrintable,
  encodeBase64,
  inputBytes,
  isPrintableLine,
  keyIdFromKeyNum,
  splitLines,
  stripPrefix,
  type TextInput,
} from './bytes.js';
import { SIGNATURE_BYTES, ed25519Sign, ed25519Verify } from './ed25519.js';
import {
  SIG_ALG,
  SIG_ALG_HASHED,
  UNTRUSTED_COMMENT_PREFIX,
  checkUntrustedComment,
  keyObjectOf,
  parseUntrustedCommentLine,
  type MinisignPublicKey,
} from './public-key.js';
import { signingKeyOf, type MinisignSecretKey } from './secret-key.js';

/** SPEC.md 4: a signature file is fetched with a 2 KiB cap; larger ones are refused before parsing. */
export const MAX_SIGNATURE_FILE_BYTES = 2048;

export const TRUSTED_COMMENT_PREFIX = 'trusted comment: ';

/** The untrusted comment minisign writes by default (minisign.h DEFAULT_COMMENT). */
export const DEFAULT_SIGNATURE_COMMENT = 'signature from minisign secret key';

const SIGNATURE_PAYLOAD_BYTES = 2 + KEY_NUM_BYTES + SIGNATURE_BYTES;

/** A signature file split into its fields. Nothing in it is verified or trusted yet. */
export interface ParsedSignature {
  /** `ED`: prehashed (the only form SPEC.md accepts); `Ed`: legacy. */
  readonly algorithm: 'ED' | 'Ed';
  /** The signer's key id, as minisign prints it (16 upper-case hex digits). */
  readonly keyId: string;
  readonly keyNum: Uint8Array;
  /** The 64-byte signature over BLAKE2b-512 of the file (over the file itself for `Ed`). */
  readonly signature: Uint8Array;
  readonly untrustedComment: string;
  /** Unverified until a verify function returns it. */
  readonly trustedComment: string;
  /** The exact bytes of the trusted comment, which the global signature covers. */
  readonly trustedCommentBytes: Uint8Array;
  /** The 64-byte signature over `signature | trustedCommentBytes`. */
  readonly globalSignature: Uint8Array;
}

/** What a successful verification returns: the now-trusted comment and the key that signed. */
export interface VerifiedSignature {
  readonly trustedComment: string;
  readonly keyId: string;
}

/**
 * Splits a `.minisig` into its fields, strictly: at most 2 KiB (TOO_LARGE, checked first), exactly four LF-ended
 * lines and nothing after, no CR anywhere (a final CRLF too), no BOM, the two prefixes, printable UTF-8 comments
 * (minisign 0.12's rule: tab allowed, other control characters not), canonical base64 of exactly 74 and 64 bytes,
 * algorithm `ED` or `Ed`. Everything else: MALFORMED. Verifies nothing; use {@link verifySignature}.
 */
export function parseSignatureFile(text: TextInput): ParsedSignature {
  const bytes = inputBytes(text, MAX_SIGNATURE_FILE_BYTES, 'MALFORMED', 'signature file');
  const [commentLine, sigLine, trustedLine, globalLine] = splitLines(bytes, 4, 'MALFORMED', 'signature file') as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  const untrustedComment = parseUntrustedCommentLine(commentLine, 'MALFORMED', 'signature file');
  const payload = decodeBase64Exact(sigLine, SIGNATURE_PAYLOAD_BYTES);
  if (payload === undefined) {
    throw new FormatError('MALFORMED', 'signature file: line 2 is not 100 characters of canonical base64');
  }
  const alg = String.fromCharCode(payload[0] ?? 0, payload[1] ?? 0);
  if (alg !== SIG_ALG_HASHED && alg !== SIG_ALG) {
    throw new FormatError('MALFORMED', 'signature file: unsupported signature algorithm');
  }
  const trustedCommentBytes = stripPrefix(trustedLine, TRUSTED_COMMENT_PREFIX);
  if (trustedCommentBytes === undefined) {
    throw new FormatError('MALFORMED', 'signature file: line 3 must start "trusted comment: "');
  }
  const trustedComment = decodePrintable(trustedCommentBytes);
  if (trustedComment === undefined) {
    throw new FormatError('MALFORMED', 'signature file: the trusted comment is not printable UTF-8');
  }
  const globalSignature = decodeBase64Exact(globalLine, SIGNATURE_BYTES);
  if (globalSignature === undefined) {
    throw new FormatError('MALFORMED', 'signature file: line 4 is not 88 characters of canonical base64');
  }
  const keyNum = Uint8Array.from(payload.subarray(2, 2 + KEY_NUM_BYTES));
  return Object.freeze({
    algorithm: alg,
    keyId: keyIdFromKeyNum(keyNum),
    keyNum,
    signature: Uint8Array.from(payload.subarray(2 + KEY_NUM_BYTES)),
    untrustedComment,
    trustedComment,
    trustedCommentBytes: Uint8Array.from(trustedCommentBytes),
    globalSignature,
  });
}

/** The length of a prehash: BLAKE2b-512's 64 bytes. */
export const PREHASH_BYTES = 64;

/** BLAKE2b-512 of the message: what an `ED` signature signs (libsodium crypto_generichash, 64-byte output). */
export function prehash(message: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('blake2b512').update(message).digest());
}

/**
 * Signs `message` as `minisign -S` does (prehashed `ED`), returning the exact `.minisig` text minisign writes:
 * four lines, each ended by LF. The trusted comment must be one non-empty line of printable text (minisign's
 * rule: UTF-8, tab allowed, no other control character); minisign itself never writes an empty one. The
 * untrusted comment defaults to minisign's. MALFORMED for a bad comment, TOO_LARGE when the result would pass
 * the 2 KiB a verifier accepts.
 */
export function sign(
  message: Uint8Array,
  secretKey: MinisignSecretKey,
  trustedComment: string,
  untrustedComment: string = DEFAULT_SIGNATURE_COMMENT,
): string {
  if (!(message instanceof Uint8Array)) throw new FormatError('MALFORMED', 'the message to sign must be bytes');
  if (typeof trustedComment !== 'string' || trustedComment === '' || !isPrintableLine(trustedComment)) {
    throw new FormatError('MALFORMED', 'a trusted comment must be one non-empty line of printable text');
  }
  checkUntrustedComment(untrustedComment, 'MALFORMED');
  const key = signingKeyOf(secretKey);
  const signature = ed25519Sign(key, prehash(message));
  const trustedBytes = Buffer.from(trustedComment, 'utf8');
  const globalSignature = ed25519Sign(key, concatBytes(signature, trustedBytes));
  const payload = concatBytes(asciiBytes(SIG_ALG_HASHED), secretKey.keyNum, signature);
  const text =
    `${UNTRUSTED_COMMENT_PREFIX}${untrustedComment}\n${encodeBase64(payload)}\n` +
    `${TRUSTED_COMMENT_PREFIX}${trustedComment}\n${encodeBase64(globalSignature)}\n`;
  if (Buffer.byteLength(text, 'utf8') > MAX_SIGNATURE_FILE_BYTES) {
    throw new FormatError('TOO_LARGE', 'the signature file would be larger than 2 KiB');
  }
  return text;
}

/**
 * @internal Verifies a parsed signature against one key, given BLAKE2b-512 of the message.
 * Order: legacy form, key id, file signature, global signature; the trusted comment is returned only after both
 * signatures hold.
 */
export function verifyParsed(
  digest: Uint8Array,
  parsed: ParsedSignature,
  publicKey: MinisignPublicKey,
): VerifiedSignature {
  // SPEC.md 3: legacy `Ed` signatures are rejected (minisign -V -H does the same).
  if (parsed.algorithm !== SIG_ALG_HASHED) {
    throw new FormatError('LEGACY_SIGNATURE', 'legacy (non-prehashed) minisign signature');
  }
  if (!bytesEqual(parsed.keyNum, publicKey.keyNum)) {
    throw new FormatError('UNTRUSTED_KEY', `signed by key ${parsed.keyId}, not by ${publicKey.keyId}`);
  }
  const key = keyObjectOf(publicKey);
  if (!ed25519Verify(key, digest, parsed.signature)) {
    throw new FormatError('SIGNATURE_INVALID', 'the signature does not verify');
  }
  if (!ed25519Verify(key, concatBytes(parsed.signature, parsed.trustedCommentBytes), parsed.globalSignature)) {
    throw new FormatError('SIGNATURE_INVALID', 'the trusted comment signature does not verify');
  }
  return Object.freeze({ trustedComment: parsed.trustedComment, keyId: parsed.keyId });
}

/**
 * Verifies `sigText` (a `.minisig`) over `message` with one public key, as `minisign -V -H` does, and returns the
 * trusted comment only then. Errors: TOO_LARGE (over 2 KiB), MALFORMED (see {@link parseSignatureFile}),
 * LEGACY_SIGNATURE, UNTRUSTED_KEY (another key id), SIGNATURE_INVALID (signature or global signature).
 */
export function verifySignature(
  message: Uint8Array,
  sigText: TextInput,
  publicKey: MinisignPublicKey,
): VerifiedSignature {
  if (!(message instanceof Uint8Array)) throw new FormatError('MALFORMED', 'the signed message must be bytes');
  const parsed = parseSignatureFile(sigText);
  return verifyParsed(prehash(message), parsed, publicKey);
}
