/**
 * minisign keys and signatures (SPEC.md 3): public and secret key files, prehashed `ED` signing and strict
 * verification, and threshold verification scoped to a list-id. The implementation lives in ./minisign/.
 */
export { keyIdFromKeyNum, keyNumFromKeyId, type TextInput } from './minisign/bytes.js';
export {
  MAX_PUBLIC_KEY_FILE_BYTES,
  makePublicKey,
  parsePublicKey,
  parsePublicKeyFile,
  publicKeyToString,
  samePublicKey,
  serializePublicKeyFile,
  type MinisignPublicKey,
  type PublicKeyFile,
} from './minisign/public-key.js';
export {
  MAX_SECRET_KEY_FILE_BYTES,
  MinisignSecretKey,
  SCRYPT_LIMITS_SENSITIVE,
  SCRYPT_LIMITS_TEST_ONLY,
  generateKeyPair,
  parseSecretKeyFile,
  scryptParamsFor,
  serializeSecretKeyFile,
  type ParseSecretKeyOptions,
  type ScryptLimits,
  type ScryptParams,
  type SecretKeyFile,
  type SerializeSecretKeyOptions,
} from './minisign/secret-key.js';
export {
  DEFAULT_SIGNATURE_COMMENT,
  MAX_SIGNATURE_FILE_BYTES,
  PREHASH_BYTES,
  parseSignatureFile,
  prehash,
  sign,
  verifySignature,
  type ParsedSignature,
  type VerifiedSignature,
} from './minisign/signature.js';
export {
  MAX_SIGNATURES_PER_FILE,
  TrustStore,
  parseSignatureFileName,
  signatureFileName,
  verifyThreshold,
  verifyThresholdPrehashed,
  type ThresholdResult,
  type TrustPolicy,
} from './minisign/threshold.js';
// The Ed25519 primitives with libsodium's encoding checks, and strict base64, for the C2SP signed notes of the
// release log (@hashwall/tlog), so that both signature formats refuse the same keys and signatures.
export { decodeBase64Exact, encodeBase64 } from './minisign/bytes.js';
export {
  ed25519Sign,
  ed25519Verify,
  isAcceptablePublicKey,
  privateKeyFromSeed,
  publicKeyObject,
} from './minisign/ed25519.js';
