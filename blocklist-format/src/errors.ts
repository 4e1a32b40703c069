/**
 * Errors with stable codes. Callers and tests branch on `code`, never on the message text.
 * Every code is documented in README.md ("Error codes").
 */
export const ERROR_CODES = [
  /** Bytes that do not follow the format: bad header, bad line, bad base64, wrong counts. */
  'MALFORMED',
  /** A name or URL that cannot be canonicalized or listed (SPEC.md 1.1, 1.2). */
  'INVALID_NAME',
  /** A signature that does not verify over the bytes it covers. */
  'SIGNATURE_INVALID',
  /** A legacy (non-prehashed) `Ed` minisign signature: refused (SPEC.md 3). */
  'LEGACY_SIGNATURE',
  /** No signature made by a key trusted for this list-id. */
  'UNTRUSTED_KEY',
  /** Fewer distinct trusted keys signed than the threshold requires. */
  'THRESHOLD_NOT_MET',
  /** The trusted comment disagrees with the header, or signatures disagree with each other. */
  'COMMENT_MISMATCH',
  /** The file is for another list-id than the one asked for. */
  'LIST_MISMATCH',
  /** Past `expires` (with the allowed skew). */
  'EXPIRED',
  /** `created` is in the future (beyond the allowed skew). */
  'NOT_YET_VALID',
  /** A lower serial or seq than one already accepted. */
  'ROLLBACK',
  /** The same serial with a different body digest: the publisher (or a key) signed two lists. */
  'EQUIVOCATION',
  /** More bytes than a cap allows. */
  'TOO_LARGE',
  /** A body or file whose SHA-256 differs from the one it was announced with. */
  'DIGEST_MISMATCH',
  /** A file whose size differs from the one the index gave. */
  'SIZE_MISMATCH',
  /** A delta that does not apply to its base: absent removal, present addition, wrong base or result. */
  'DELTA_MISMATCH',
  /** A key file that cannot be read: bad structure, checksum, algorithm. */
  'KEY_INVALID',
  /** An encrypted secret key and no password, or the wrong password. */
  'KEY_PASSWORD',
  /** Fetching a file failed (HTTP status, network, timeout). Set by callers that fetch. */
  'FETCH_FAILED',
  /** A list hashed with a licensed key the client does not hold: it could never match a name. */
  'UNKNOWN_HASH_KEY',
  /** A keyring not signed by the threshold of the previous version's roots, or of its own (SPEC.md 5.1). */
  'KEYRING_SIGNATURE',
  /** A keyring whose version is not the one it is fetched as, one above the current (SPEC.md 5.1). */
  'KEYRING_VERSION',
  /** The current keyring has expired: no index is accepted under it (SPEC.md 5.2). */
  'KEYRING_EXPIRED',
  /** An index naming a keyring the mirror does not serve, or no keyring published at all (SPEC.md 5.3). */
  'KEYRING_WITHHELD',
  /** An index without a `keyring:` line for a list anchored on root keys (SPEC.md 5.3). */
  'KEYRING_REQUIRED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class FormatError extends Error {
  override readonly name = 'FormatError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True when `err` is a FormatError, optionally with the given code. */
export function isFormatError(err: unknown, code?: ErrorCode): err is FormatError {
  return err instanceof FormatError && (code === undefined || err.code === code);
}
