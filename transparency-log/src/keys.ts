/**
 * Note keys (signed-note "Verifier keys"; tlog-cosignature): Ed25519 log keys (signature type 0x01) and Ed25519
 * cosigner keys (type 0x04, cosignature/v1), their text encodings and the signers and verifiers made from them.
 *
 * - vkey, what verifiers are given: `<name>+<hex key id>+<base64(type || public key)>`.
 * - skey, the secret key file's one line, as the Go checksum database writes it (golang.org/x/mod/sumdb/note):
 *   `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || Ed25519 seed)>`. A witness uses the same file: its cosigner
 *   key is the same Ed25519 key with the key id of type 0x04.
 * - key id = SHA-256(name || 0x0A || type || public key)[:4], read big-endian.
 *
 * Ed25519 goes through @hashwall/format, which refuses what libsodium refuses (small-order and non-canonical keys,
 * S not below the group order), so list signatures and log signatures accept the same keys.
 */
import { createHash, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

import {
  ed25519Sign,
  ed25519Verify,
  isAcceptablePublicKey,
  privateKeyFromSeed,
  publicKeyObject,
} from '@hashwall/format';

import { decodeBase64, encodeBase64, isKeyName, utf8Bytes } from './encoding.js';
import { TlogError } from './errors.js';

/** signed-note "Signature types": Ed25519 over the note text. */
export const SIG_TYPE_ED25519 = 0x01;
/** signed-note "Signature types": timestamped Ed25519 checkpoint cosignatures (tlog-cosignature). */
export const SIG_TYPE_COSIGNATURE_V1 = 0x04;

const PUBLIC_KEY_BYTES = 32;
const SEED_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
/** tlog-cosignature: an 8-byte timestamp, then the Ed25519 signature. */
export const COSIGNATURE_BYTES = 8 + ED25519_SIGNATURE_BYTES;
/** A key string longer than this is refused before it is parsed. */
export const MAX_KEY_TEXT_BYTES = 1024;

/** signed-note: SHA-256(name || 0x0A || type || public key)[:4] as a big-endian uint32. */
export function keyIdOf(name: string, type: number, publicKey: Uint8Array): number {
  const digest = createHash('sha256')
    .update(utf8Bytes(name))
    .update(new Uint8Array([0x0a, type]))
    .update(publicKey)
    .digest();
  return digest.readUInt32BE(0);
}

export function keyIdHex(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

/** Checks a note signature made by one key. */
export interface NoteVerifier {
  readonly name: string;
  /** The uint32 key id. */
  readonly keyId: number;
  /** SIG_TYPE_ED25519 or SIG_TYPE_COSIGNATURE_V1. */
  readonly type: number;
  readonly publicKey: Uint8Array;
  /** The vkey text. */
  readonly vkey: string;
  /** Whether `signature` (the bytes after the key id) is this key's signature over the note text. */
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

/** A witness's cosigning key (type 0x04). */
export interface Cosigner {
  readonly name: string;
  readonly keyId: number;
  readonly type: number;
  readonly publicKey: Uint8Array;
  readonly vkey: string;
  /** tlog-cosignature: the 8-byte `timestamp` and the Ed25519 signature of the cosignature/v1 message. */
  cosign(text: Uint8Array, timestamp: number): Uint8Array;
}

/** Makes note signatures with one key. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  readonly type: number;
  readonly publicKey: Uint8Array;
  readonly vkey: string;
  /** The signature over the note text (without the key id). */
  sign(text: Uint8Array): Uint8Array;
}

function keyInvalid(message: string): TlogError {
  return new TlogError('LOG_KEY_INVALID', message);
}

/** tlog-cosignature "Ed25519 signed message": `cosignature/v1`, `time <t>`, then the checkpoint's note text. */
export function cosignatureMessage(timestamp: number, text: Uint8Array): Uint8Array {
  if (!(Number.isSafeInteger(timestamp) && timestamp >= 0)) throw new RangeError(`bad timestamp ${timestamp}`);
  const head = utf8Bytes(`cosignature/v1\ntime ${timestamp}\n`);
  const out = new Uint8Array(head.byteLength + text.byteLength);
  out.set(head);
  out.set(text, head.byteLength);
  return out;
}

/**
 * The timestamp of a cosignature/v1 signature (its first 8 bytes, big-endian), or undefined when the signature is
 * not 72 bytes or the time is past 2^53 - 1 (tlog-cosignature allows up to 2^63 - 1; no clock reads that).
 */
export function cosignatureTimestamp(signature: Uint8Array): number | undefined {
  if (signature.byteLength !== COSIGNATURE_BYTES) return undefined;
  const t = Buffer.from(signature.buffer, signature.byteOffset, 8).readBigUInt64BE(0);
  return t <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(t) : undefined;
}

export function formatVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  return `${name}+${keyIdHex(keyIdOf(name, type, publicKey))}+${encodeBase64(new Uint8Array([type, ...publicKey]))}`;
}

/** What identifies a note key: its name, type, public key, and the key id and vkey they give. */
function keyFields(name: string, type: number, publicKey: Uint8Array): Omit<NoteVerifier, 'verify'> {
  return {
    name,
    keyId: keyIdOf(name, type, publicKey),
    type,
    publicKey: new Uint8Array(publicKey),
    vkey: formatVerifierKey(name, type, publicKey),
  };
}

function makeVerifier(name: string, type: number, publicKey: Uint8Array): NoteVerifier {
  if (!isAcceptablePublicKey(publicKey)) throw keyInvalid('not a usable Ed25519 public key');
  const key = publicKeyObject(publicKey);
  if (key === undefined) throw keyInvalid('not an Ed25519 public key');
  const verify =
    type === SIG_TYPE_ED25519
      ? (text: Uint8Array, sig: Uint8Array): boolean =>
          sig.byteLength === ED25519_SIGNATURE_BYTES && ed25519Verify(key, text, sig)
      : (text: Uint8Array, sig: Uint8Array): boolean => {
          const t = cosignatureTimestamp(sig);
          return t !== undefined && ed25519Verify(key, cosignatureMessage(t, text), sig.subarray(8));
        };
  return Object.freeze({ ...keyFields(name, type, publicKey), verify });
}

/** Splits `<name>+<8 hex>+<rest>`; the name holds no `+`, the rest (base64) may. */
function splitKeyText(text: string, what: string): { name: string; keyId: number; payload: Uint8Array } {
  if (typeof text !== 'string') throw keyInvalid(`${what}: not text`);
  if (text.length > MAX_KEY_TEXT_BYTES)
    throw new TlogError('LOG_TOO_LARGE', `${what}: over ${MAX_KEY_TEXT_BYTES} bytes`);
  const m = /^([^+]*)\+([0-9a-f]{8})\+(.*)$/s.exec(text);
  if (m === null) throw keyInvalid(`${what}: not <name>+<8 lower-case hex digits>+<base64>`);
  const [, name, hex, b64] = m;
  if (!isKeyName(name!)) throw keyInvalid(`${what}: a key name is non-empty, without spaces or "+"`);
  const payload = decodeBase64(b64!);
  if (payload === undefined || payload.byteLength < 2) throw keyInvalid(`${what}: the key is not canonical base64`);
  return { name: name!, keyId: parseInt(hex!, 16), payload };
}

/**
 * Parses a vkey of signature type 0x01 (an Ed25519 note key, as a log's) or 0x04 (a cosigner key, as a
 * witness's). The key id must be the one the name, type and key give. LOG_KEY_INVALID otherwise.
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const { name, keyId, payload } = splitKeyText(vkey, 'verifier key');
  const type = payload[0]!;
  if (type !== SIG_TYPE_ED25519 && type !== SIG_TYPE_COSIGNATURE_V1) {
    throw keyInvalid(`verifier key: signature type 0x${type.toString(16).padStart(2, '0')} is not supported`);
  }
  const publicKey = payload.subarray(1);
  if (publicKey.byteLength !== PUBLIC_KEY_BYTES) throw keyInvalid('verifier key: an Ed25519 key has 32 bytes');
  if (keyIdOf(name, type, publicKey) !== keyId) throw keyInvalid('verifier key: the key id does not match the key');
  return makeVerifier(name, type, publicKey);
}

/**
 * A witness's cosigner key from its vkey: type 0x04 as tlog-cosignature encodes it, or the same key written as an
 * Ed25519 note key (type 0x01, what some witnesses publish), whose key id is then recomputed for type 0x04.
 */
export function parseCosignerKey(vkey: string): NoteVerifier {
  const v = parseVerifierKey(vkey);
  return v.type === SIG_TYPE_COSIGNATURE_V1 ? v : makeVerifier(v.name, SIG_TYPE_COSIGNATURE_V1, v.publicKey);
}

/** An Ed25519 note key (log key) from its vkey; a cosigner key (type 0x04) is refused. */
export function parseLogKey(vkey: string): NoteVerifier {
  const v = parseVerifierKey(vkey);
  if (v.type !== SIG_TYPE_ED25519) throw keyInvalid('a log key is an Ed25519 note key (signature type 0x01)');
  return v;
}

const SKEY_PREFIX = 'PRIVATE+KEY+';

/** A secret note key: signs notes (type 0x01) and, for a witness, cosignatures (type 0x04). */
export class NoteSecretKey {
  readonly name: string;
  readonly publicKey: Uint8Array;
  readonly #key: NonNullable<ReturnType<typeof privateKeyFromSeed>>;

  private constructor(name: string, seed: Uint8Array) {
    const key = privateKeyFromSeed(seed);
    if (key === undefined || !isAcceptablePublicKey(key.publicKey)) throw keyInvalid('not a usable Ed25519 seed');
    this.name = name;
    this.publicKey = key.publicKey;
    this.#key = key;
  }

  /** A new random key named `name` (signed-note: a schema-less URL such as `lists.example/demo` is recommended). */
  static generate(name: string): NoteSecretKey {
    if (!isKeyName(name)) throw keyInvalid('a key name is non-empty, without spaces or "+"');
    const seed = randomBytes(SEED_BYTES);
    try {
      return new NoteSecretKey(name, seed);
    } finally {
      seed.fill(0);
    }
  }

  /** Parses an skey (see the file header). LOG_KEY_INVALID unless every part is right. */
  static parse(skey: string): NoteSecretKey {
    if (typeof skey !== 'string' || !skey.startsWith(SKEY_PREFIX)) {
      throw keyInvalid('secret note key: does not start with PRIVATE+KEY+');
    }
    const { name, keyId, payload } = splitKeyText(skey.slice(SKEY_PREFIX.length), 'secret note key');
    try {
      if (payload[0] !== SIG_TYPE_ED25519) throw keyInvalid('secret note key: not an Ed25519 key (type 0x01)');
      if (payload.byteLength !== 1 + SEED_BYTES) throw keyInvalid('secret note key: an Ed25519 seed has 32 bytes');
      const key = new NoteSecretKey(name, payload.subarray(1));
      if (keyIdOf(name, SIG_TYPE_ED25519, key.publicKey) !== keyId) {
        throw keyInvalid('secret note key: the key id does not match the key');
      }
      return key;
    } finally {
      payload.fill(0);
    }
  }

  /** The skey text: a secret. */
  serialize(): string {
    const jwk = this.#key.key.export({ format: 'jwk' });
    const seed = Buffer.from(String(jwk.d), 'base64url');
    try {
      const id = keyIdHex(keyIdOf(this.name, SIG_TYPE_ED25519, this.publicKey));
      return `${SKEY_PREFIX}${this.name}+${id}+${encodeBase64(new Uint8Array([SIG_TYPE_ED25519, ...seed]))}`;
    } finally {
      seed.fill(0);
    }
  }

  /** The signer of Ed25519 notes (type 0x01): what a log signs its checkpoints with. */
  noteSigner(): NoteSigner {
    const key = this.#key.key;
    return Object.freeze({
      ...keyFields(this.name, SIG_TYPE_ED25519, this.publicKey),
      sign: (text: Uint8Array) => ed25519Sign(key, text),
    });
  }

  /** The cosigner (type 0x04): signs `cosignature/v1` messages at a given time (tlog-cosignature). */
  cosigner(): Cosigner {
    const key = this.#key.key;
    return Object.freeze({
      ...keyFields(this.name, SIG_TYPE_COSIGNATURE_V1, this.publicKey),
      cosign: (text: Uint8Array, timestamp: number): Uint8Array => {
        const out = new Uint8Array(COSIGNATURE_BYTES);
        Buffer.from(out.buffer).writeBigUInt64BE(BigInt(timestamp), 0);
        out.set(ed25519Sign(key, cosignatureMessage(timestamp, text)), 8);
        return out;
      },
    });
  }

  /** The vkey of the note key (type 0x01). */
  get vkey(): string {
    return formatVerifierKey(this.name, SIG_TYPE_ED25519, this.publicKey);
  }

  toJSON(): { name: string; vkey: string } {
    return { name: this.name, vkey: this.vkey };
  }

  [inspect.custom](): string {
    return `NoteSecretKey { ${this.vkey} }`;
  }
}
