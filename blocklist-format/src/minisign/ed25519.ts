/**
 * Ed25519 through Node's crypto (OpenSSL), plus the encoding checks libsodium makes and OpenSSL does not, so that a
 * key or signature minisign refuses is refused here too.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { Buffer } from 'node:buffer';

import { base64url } from './bytes.js';

export const PUBLIC_KEY_BYTES = 32;
export const SEED_BYTES = 32;
export const SIGNATURE_BYTES = 64;

/** The field prime 2^255 - 19. */
const P = (1n << 255n) - 19n;
/** The group order L = 2^252 + 27742317777372353535851937790883648493 (little-endian scalars must be below it). */
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
/**
 * y-coordinates of the points of order 1, 2, 4 and 8 (the torsion subgroup): y = 1, -1, 0, and the two roots
 * of d*y^4 + 2*y^2 - 1 = 0 (order 8). A point with one of these y values has small order whatever its sign bit.
 * The order-8 values are checked against the curve equation in the tests.
 */
export const SMALL_ORDER_Y: readonly bigint[] = [
  0n,
  1n,
  P - 1n,
  leInt(Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex')),
  leInt(Buffer.from('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', 'hex')),
];

function leInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.byteLength - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i] ?? 0);
  return v;
}

/** The y-coordinate of an encoded point (sign bit cleared), not reduced. */
function encodedY(point: Uint8Array): bigint {
  return leInt(point) & ((1n << 255n) - 1n);
}

/**
 * True when a public key encoding is one libsodium's `crypto_sign_verify_detached` accepts: a canonical y (below
 * the prime) and not a point of small order. A small-order key lets anyone forge signatures that verify.
 * (Whether y decodes to a curve point at all is left to OpenSSL, which fails such a key at verification.)
 */
export function isAcceptablePublicKey(key: Uint8Array): boolean {
  if (key.byteLength !== PUBLIC_KEY_BYTES) return false;
  const y = encodedY(key);
  if (y >= P) return false;
  return !SMALL_ORDER_Y.includes(y);
}

/**
 * True when the R and S halves of a signature pass libsodium's pre-checks: S below the group order, R not of
 * small order (libsodium reduces a non-canonical R before that test, so this reduces too).
 */
export function isAcceptableSignature(sig: Uint8Array): boolean {
  if (sig.byteLength !== SIGNATURE_BYTES) return false;
  if (leInt(sig.subarray(32)) >= L) return false;
  return !SMALL_ORDER_Y.includes(encodedY(sig.subarray(0, 32)) % P);
}

/** A Node public KeyObject for a raw 32-byte key, or undefined when OpenSSL refuses it. */
export function publicKeyObject(key: Uint8Array): KeyObject | undefined {
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: base64url(key) }, format: 'jwk' });
  } catch {
    return undefined;
  }
}

/**
 * A Node private KeyObject from a 32-byte seed, and the public key OpenSSL derives from it.
 * Returns undefined when OpenSSL refuses the seed.
 */
export function privateKeyFromSeed(seed: Uint8Array): { key: KeyObject; publicKey: Uint8Array } | undefined {
  try {
    // Node imports an OKP private JWK from `d` alone but insists `x` is a string; the public half is derived here
    // and compared by the caller, never taken on trust.
    const key = createPrivateKey({
      key: { kty: 'OKP', crv: 'Ed25519', d: base64url(seed), x: '' },
      format: 'jwk',
    });
    const jwk = createPublicKey(key).export({ format: 'jwk' });
    if (typeof jwk.x !== 'string') return undefined;
    return { key, publicKey: new Uint8Array(Buffer.from(jwk.x, 'base64url')) };
  } catch {
    return undefined;
  }
}

export function ed25519Sign(key: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, data, key));
}

/** Verifies a detached Ed25519 signature; never throws. */
export function ed25519Verify(key: KeyObject, data: Uint8Array, sig: Uint8Array): boolean {
  if (!isAcceptableSignature(sig)) return false;
  try {
    return nodeVerify(null, data, key, sig);
  } catch {
    return false;
  }
}
