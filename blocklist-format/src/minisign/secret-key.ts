/**
 * minisign secret key files (minisign.h `SeckeyStruct`), unencrypted and scrypt-encrypted, and key generation.
 *
 * Payload, 158 bytes:
 *   sig_alg "Ed" (2) | kdf_alg "Sc" or 00 00 (2) | chk_alg "B2" (2) | kdf_salt (32) | opslimit u64 LE (8) |
 *   memlimit u64 LE (8) | key number (8) | Ed25519 secret key = seed | public key (64) | checksum (32)
 * checksum = BLAKE2b-256(sig_alg | key number | secret key). When encrypted, the last 104 bytes (key number,
 * secret key, checksum) are XORed with crypto_pwhash_scryptsalsa208sha256(password, salt, opslimit, memlimit).
 *
 * Secrets never appear in an error message, a log line, `util.inspect` or `JSON.stringify` output.
 */
import { Buffer } from 'node:buffer';
import { generateKeyPairSync, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';

import { blake2b } from '@noble/hashes/blake2b';

import { FormatError } from '../errors.js';
import {
  KEY_NUM_BYTES,
  asciiBytes,
  bytesEqual,
  concatBytes,
  decodeBase64Exact,
  encodeBase64,
  inputBytes,
  splitLines,
  type TextInput,
} from './bytes.js';
import { SEED_BYTES, privateKeyFromSeed } from './ed25519.js';
import {
  SIG_ALG,
  UNTRUSTED_COMMENT_PREFIX,
  checkUntrustedComment,
  makePublicKey,
  parseUntrustedCommentLine,
  type MinisignPublicKey,
} from './public-key.js';

const KDF_ALG_SCRYPT = 'Sc';
const CHK_ALG = 'B2';
const SALT_BYTES = 32;
const SECRET_KEY_BYTES = 64;
const CHECKSUM_BYTES = 32;

// Offsets in the 158-byte payload.
const OFF_KDF_ALG = 2;
const OFF_CHK_ALG = 4;
const OFF_SALT = 6;
const OFF_OPSLIMIT = OFF_SALT + SALT_BYTES; // 38
const OFF_MEMLIMIT = OFF_OPSLIMIT + 8; // 46
const OFF_KEYNUM = OFF_MEMLIMIT + 8; // 54
const OFF_SK = OFF_KEYNUM + KEY_NUM_BYTES; // 62
const OFF_CHK = OFF_SK + SECRET_KEY_BYTES; // 126
const SECRET_KEY_PAYLOAD_BYTES = OFF_CHK + CHECKSUM_BYTES; // 158
/** The encrypted part: key number, secret key and checksum (minisign's `KeynumSK`). */
const ENCRYPTED_BYTES = SECRET_KEY_PAYLOAD_BYTES - OFF_KEYNUM; // 104

/** Cap on a secret key file. */
export const MAX_SECRET_KEY_FILE_BYTES = 2048;

/** Longest password minisign reads (`fgets` into 1024 bytes, less the LF). */
export const MAX_PASSWORD_BYTES = 1023;

/** scrypt cost as libsodium's crypto_pwhash_scryptsalsa208sha256 takes it, stored in the key file. */
export interface ScryptLimits {
  readonly opslimit: number;
  readonly memlimit: number;
}

/** minisign's default (`..._OPSLIMIT_SENSITIVE`, `..._MEMLIMIT_SENSITIVE`): N = 2^20, r = 8, p = 1, 1 GiB. */
export const SCRYPT_LIMITS_SENSITIVE: ScryptLimits = Object.freeze({ opslimit: 33554432, memlimit: 1073741824 });

/**
 * TEST ONLY: libsodium's minimum limits (N = 2^10, r = 8, p = 1, 1 MiB). A key encrypted with them falls to a
 * password guesser quickly; use them only to keep tests fast.
 */
export const SCRYPT_LIMITS_TEST_ONLY: ScryptLimits = Object.freeze({ opslimit: 32768, memlimit: 16777216 });

const OPSLIMIT_MIN = 32768n;
const MEMLIMIT_MIN = 16777216n;
/** Refuse key files whose KDF would need more than this much memory (twice minisign's default). */
const MAX_SCRYPT_MEMORY_BYTES = 2n ** 31n;
/** Refuse key files whose KDF would do more than this many block mixes N * p (four times minisign's default). */
const MAX_SCRYPT_WORK = 2n ** 22n;

/** scrypt parameters. */
export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/**
 * The scrypt parameters libsodium's crypto_pwhash_scryptsalsa208sha256 derives from (opslimit, memlimit)
 * (its `pickparams`): r = 8; when opslimit < memlimit / 32, p = 1 and N is bounded by opslimit / 32, else N is
 * bounded by memlimit / 1024 and p = (opslimit / 4 / N) / 8. N is the largest power of two with N <= max / 2
 * (at least 2). Throws KEY_INVALID for limits libsodium would fail on or that exceed this module's caps.
 */
export function scryptParamsFor(opslimit: bigint, memlimit: bigint): ScryptParams {
  const r = 8n;
  const ops = opslimit < OPSLIMIT_MIN ? OPSLIMIT_MIN : opslimit;
  let p: bigint;
  let maxN: bigint;
  if (ops < memlimit / 32n) {
    p = 1n;
    maxN = ops / (r * 4n);
  } else {
    maxN = memlimit / (r * 128n);
    p = 0n; // set below, once N is known
  }
  let log2N = 1n;
  for (; log2N < 63n; log2N++) {
    if (1n << log2N > maxN / 2n) break;
  }
  const N = 1n << log2N;
  if (!(ops < memlimit / 32n)) {
    let maxrp = ops / 4n / N;
    if (maxrp > 0x3fffffffn) maxrp = 0x3fffffffn;
    p = maxrp / r;
  }
  // libsodium's escrypt_kdf refuses these; so does minisign, then.
  if (p === 0n || N > 0xffffffffn || r * p >= 1n << 30n) {
    throw new FormatError('KEY_INVALID', 'the key file has scrypt limits libsodium cannot use');
  }
  if (128n * r * N > MAX_SCRYPT_MEMORY_BYTES || N * p > MAX_SCRYPT_WORK) {
    throw new FormatError('KEY_INVALID', 'the key file asks for a more expensive scrypt than this tool allows');
  }
  return { N: Number(N), r: Number(r), p: Number(p) };
}

function scryptStream(password: Uint8Array, salt: Uint8Array, params: ScryptParams): Uint8Array {
  // OpenSSL needs 128 * r * (N + 2) bytes for V plus 128 * r * p for B; give it that and a little slack.
  const maxmem = 128 * params.r * (params.N + 2) + 128 * params.r * params.p + (1 << 20);
  return new Uint8Array(scryptSync(password, salt, ENCRYPTED_BYTES, { ...params, maxmem }));
}

function checksum(keyNum: Uint8Array, sk: Uint8Array): Uint8Array {
  return blake2b(concatBytes(asciiBytes(SIG_ALG), keyNum, sk), { dkLen: CHECKSUM_BYTES });
}

function passwordBytes(password: string | Uint8Array): Uint8Array {
  let bytes: Uint8Array;
  if (typeof password === 'string') {
    if (/\p{Cs}/u.test(password)) throw new FormatError('KEY_PASSWORD', 'the password is not valid Unicode text');
    bytes = Buffer.from(password, 'utf8');
  } else if (password instanceof Uint8Array) {
    bytes = password;
  } else {
    throw new FormatError('KEY_PASSWORD', 'a password is a string or bytes');
  }
  // minisign reads one line with fgets and takes strlen: no NUL, CR or LF, at most 1023 bytes.
  if (bytes.byteLength > MAX_PASSWORD_BYTES || bytes.includes(0) || bytes.includes(0x0a) || bytes.includes(0x0d)) {
    throw new FormatError('KEY_PASSWORD', 'a password is at most 1023 bytes without NUL, CR or LF');
  }
  return bytes;
}

function readU64(bytes: Uint8Array, offset: number): bigint {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readBigUInt64LE(offset);
}

interface SecretParts {
  readonly seed: Uint8Array;
  readonly signingKey: KeyObject;
}

const secrets = new WeakMap<MinisignSecretKey, SecretParts>();

/**
 * A minisign secret key held in memory. Its secret bytes are reachable only through this module's functions;
 * printing or serializing the object to JSON shows the key id and nothing else.
 */
export class MinisignSecretKey {
  /** 16 upper-case hex digits, as minisign prints the key id. */
  readonly keyId: string;
  /** The 8 key-number bytes as stored. */
  readonly keyNum: Uint8Array;
  readonly publicKey: MinisignPublicKey;

  /**
   * A secret key from its 8-byte key number and 32-byte Ed25519 seed. When `expectedPublicKey` is given (as a key
   * file stores it) it must be the key the seed derives, else KEY_INVALID.
   */
  constructor(keyNum: Uint8Array, seed: Uint8Array, expectedPublicKey?: Uint8Array) {
    if (keyNum.byteLength !== KEY_NUM_BYTES) throw new FormatError('KEY_INVALID', 'a key number has 8 bytes');
    if (seed.byteLength !== SEED_BYTES) throw new FormatError('KEY_INVALID', 'an Ed25519 seed has 32 bytes');
    const derived = privateKeyFromSeed(seed);
    if (derived === undefined) throw new FormatError('KEY_INVALID', 'the Ed25519 secret key is not usable');
    if (expectedPublicKey !== undefined && !bytesEqual(expectedPublicKey, derived.publicKey)) {
      throw new FormatError('KEY_INVALID', 'the secret key file is inconsistent (public half does not match)');
    }
    this.publicKey = makePublicKey(keyNum, derived.publicKey);
    this.keyId = this.publicKey.keyId;
    this.keyNum = this.publicKey.keyNum;
    secrets.set(this, { seed: Uint8Array.from(seed), signingKey: derived.key });
    Object.freeze(this);
  }

  toJSON(): { keyId: string } {
    return { keyId: this.keyId };
  }

  [inspect.custom](): string {
    return `MinisignSecretKey { keyId: '${this.keyId}' }`;
  }
}

function partsOf(sk: MinisignSecretKey): SecretParts {
  const parts = secrets.get(sk);
  if (parts === undefined) throw new FormatError('KEY_INVALID', 'not a secret key made by this module');
  return parts;
}

/** @internal The Node signing key of a secret key (for signature.ts; not exported from the package). */
export function signingKeyOf(sk: MinisignSecretKey): KeyObject {
  return partsOf(sk).signingKey;
}

/** A new key pair: a random Ed25519 key and a random 8-byte key number, as `minisign -G` makes them. */
export function generateKeyPair(): MinisignSecretKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  if (typeof jwk.d !== 'string') throw new Error('Node did not export an Ed25519 private key');
  const seed = new Uint8Array(Buffer.from(jwk.d, 'base64url'));
  try {
    return new MinisignSecretKey(new Uint8Array(randomBytes(KEY_NUM_BYTES)), seed);
  } finally {
    seed.fill(0);
  }
}

/** A parsed secret key file. */
export interface SecretKeyFile {
  readonly secretKey: MinisignSecretKey;
  /** Whether the file was password-protected (kdf algorithm `Sc`). */
  readonly encrypted: boolean;
  /** The text after `untrusted comment: `. */
  readonly untrustedComment: string;
}

export interface ParseSecretKeyOptions {
  /** The password of an encrypted key. Ignored for an unencrypted one. */
  readonly password?: string | Uint8Array;
}

/**
 * Parses a minisign secret key file (two LF-ended lines, as minisign writes it; CR, BOM, extra lines and
 * non-canonical base64 refused).
 * - Unencrypted (kdf algorithm bytes zero): the checksum must be all zero (as `minisign -G -W` writes it) or
 *   correct (as `minisign -C -W` and {@link serializeSecretKeyFile} write it); salt and limits are not looked at.
 * - Encrypted (`Sc`): scrypt with the file's limits decrypts; a wrong checksum means a wrong password
 *   (KEY_PASSWORD). Corruption of the encrypted bytes cannot be told from a wrong password and reads as one.
 * In both cases the stored public half must be the one the seed derives (KEY_INVALID).
 * Errors: KEY_INVALID (structure, algorithm, checksum, KDF limits), KEY_PASSWORD (missing or wrong password),
 * TOO_LARGE (over 2 KiB).
 */
export function parseSecretKeyFile(text: TextInput, options: ParseSecretKeyOptions = {}): SecretKeyFile {
  const bytes = inputBytes(text, MAX_SECRET_KEY_FILE_BYTES, 'KEY_INVALID', 'secret key file');
  const [commentLine, keyLine] = splitLines(bytes, 2, 'KEY_INVALID', 'secret key file') as [Uint8Array, Uint8Array];
  const untrustedComment = parseUntrustedCommentLine(commentLine, 'KEY_INVALID', 'secret key file');
  const decoded = decodeBase64Exact(keyLine, SECRET_KEY_PAYLOAD_BYTES);
  if (decoded === undefined) {
    throw new FormatError('KEY_INVALID', 'secret key file: the key line is not 212 characters of canonical base64');
  }
  const payload = Uint8Array.from(decoded);
  decoded.fill(0);
  try {
    return {
      secretKey: secretKeyFromPayload(payload, options.password),
      encrypted: isEncrypted(payload),
      untrustedComment,
    };
  } finally {
    payload.fill(0);
  }
}

function isEncrypted(payload: Uint8Array): boolean {
  return (
    payload[OFF_KDF_ALG] === KDF_ALG_SCRYPT.charCodeAt(0) && payload[OFF_KDF_ALG + 1] === KDF_ALG_SCRYPT.charCodeAt(1)
  );
}

function secretKeyFromPayload(payload: Uint8Array, password: string | Uint8Array | undefined): MinisignSecretKey {
  if (payload[0] !== SIG_ALG.charCodeAt(0) || payload[1] !== SIG_ALG.charCodeAt(1)) {
    throw new FormatError('KEY_INVALID', 'unsupported secret key algorithm (only Ed is known)');
  }
  if (payload[OFF_CHK_ALG] !== CHK_ALG.charCodeAt(0) || payload[OFF_CHK_ALG + 1] !== CHK_ALG.charCodeAt(1)) {
    throw new FormatError('KEY_INVALID', 'unsupported secret key checksum (only B2 is known)');
  }
  const encrypted = isEncrypted(payload);
  if (!encrypted && (payload[OFF_KDF_ALG] !== 0 || payload[OFF_KDF_ALG + 1] !== 0)) {
    throw new FormatError('KEY_INVALID', 'unsupported key derivation function (only Sc or none are known)');
  }
  const secretPart = payload.subarray(OFF_KEYNUM);
  if (encrypted) {
    if (password === undefined)
      throw new FormatError('KEY_PASSWORD', 'the secret key is encrypted: a password is needed');
    const pw = passwordBytes(password);
    const params = scryptParamsFor(readU64(payload, OFF_OPSLIMIT), readU64(payload, OFF_MEMLIMIT));
    const stream = scryptStream(pw, payload.subarray(OFF_SALT, OFF_OPSLIMIT), params);
    for (let i = 0; i < ENCRYPTED_BYTES; i++) secretPart[i] = (secretPart[i] ?? 0) ^ (stream[i] ?? 0);
    stream.fill(0);
  }
  const keyNum = payload.subarray(OFF_KEYNUM, OFF_SK);
  const sk = payload.subarray(OFF_SK, OFF_CHK);
  const stored = payload.subarray(OFF_CHK);
  const expected = checksum(keyNum, sk);
  const ok = bytesEqual(stored, expected) || (!encrypted && stored.every((b) => b === 0));
  expected.fill(0);
  if (!ok) {
    if (encrypted) throw new FormatError('KEY_PASSWORD', 'wrong password for this secret key');
    throw new FormatError('KEY_INVALID', 'the secret key checksum does not match (corrupted key file)');
  }
  return new MinisignSecretKey(keyNum, sk.subarray(0, SEED_BYTES), sk.subarray(SEED_BYTES));
}

export interface SerializeSecretKeyOptions {
  /** Encrypt with this password (1 to 1023 bytes, no NUL, CR or LF). Without it the key is written unencrypted. */
  readonly password?: string | Uint8Array;
  /**
   * scrypt limits for an encrypted key; default {@link SCRYPT_LIMITS_SENSITIVE} (minisign's). Lower values are
   * for tests only ({@link SCRYPT_LIMITS_TEST_ONLY}): they make the password cheap to guess.
   */
  readonly scryptLimits?: ScryptLimits;
  /**
   * Default: `minisign encrypted secret key` for an encrypted key (minisign's comment) and
   * `minisign unencrypted secret key` for an unencrypted one (minisign writes the same "encrypted" comment for
   * both; this says what the file is).
   */
  readonly untrustedComment?: string;
}

/**
 * The secret key file minisign reads. Unencrypted: kdf algorithm, salt and limits zero like `minisign -G -W`,
 * but with the real checksum (minisign leaves it zero; it accepts both, and the checksum catches corruption).
 * Encrypted: a random salt, the given limits, the checksum, XORed with the scrypt stream as minisign does.
 */
export function serializeSecretKeyFile(sk: MinisignSecretKey, options: SerializeSecretKeyOptions = {}): string {
  const parts = partsOf(sk);
  const encrypted = options.password !== undefined;
  const comment =
    options.untrustedComment ?? (encrypted ? 'minisign encrypted secret key' : 'minisign unencrypted secret key');
  checkUntrustedComment(comment, 'KEY_INVALID');
  const payload = new Uint8Array(SECRET_KEY_PAYLOAD_BYTES);
  payload.set(asciiBytes(SIG_ALG), 0);
  payload.set(asciiBytes(CHK_ALG), OFF_CHK_ALG);
  payload.set(sk.keyNum, OFF_KEYNUM);
  payload.set(parts.seed, OFF_SK);
  payload.set(sk.publicKey.key, OFF_SK + SEED_BYTES);
  const chk = checksum(sk.keyNum, payload.subarray(OFF_SK, OFF_CHK));
  payload.set(chk, OFF_CHK);
  chk.fill(0);
  try {
    if (options.password !== undefined) {
      const pw = passwordBytes(options.password);
      if (pw.byteLength === 0) throw new FormatError('KEY_PASSWORD', 'refusing to encrypt with an empty password');
      const limits = options.scryptLimits ?? SCRYPT_LIMITS_SENSITIVE;
      if (
        !Number.isSafeInteger(limits.opslimit) ||
        !Number.isSafeInteger(limits.memlimit) ||
        BigInt(limits.opslimit) < OPSLIMIT_MIN ||
        BigInt(limits.memlimit) < MEMLIMIT_MIN
      ) {
        throw new FormatError('KEY_INVALID', 'scrypt limits must be integers at least libsodium minimums');
      }
      const params = scryptParamsFor(BigInt(limits.opslimit), BigInt(limits.memlimit));
      payload.set(asciiBytes(KDF_ALG_SCRYPT), OFF_KDF_ALG);
      payload.set(randomBytes(SALT_BYTES), OFF_SALT);
      const view = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
      view.writeBigUInt64LE(BigInt(limits.opslimit), OFF_OPSLIMIT);
      view.writeBigUInt64LE(BigInt(limits.memlimit), OFF_MEMLIMIT);
      const stream = scryptStream(pw, payload.subarray(OFF_SALT, OFF_OPSLIMIT), params);
      for (let i = 0; i < ENCRYPTED_BYTES; i++)
        payload[OFF_KEYNUM + i] = (payload[OFF_KEYNUM + i] ?? 0) ^ (stream[i] ?? 0);
      stream.fill(0);
    }
    return `${UNTRUSTED_COMMENT_PREFIX}${comment}\n${encodeBase64(payload)}\n`;
  } finally {
    payload.fill(0);
  }
}
