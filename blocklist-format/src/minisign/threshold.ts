/**
 * Threshold verification scoped to a list-id (SPEC.md 3 and 4), and the names of further signature files.
 */
import { FormatError } from '../errors.js';
import { KEY_ID_PATTERN, type TextInput } from './bytes.js';
import { makePublicKey, type MinisignPublicKey } from './public-key.js';
import { PREHASH_BYTES, parseSignatureFile, prehash, verifyParsed, type ParsedSignature } from './signature.js';

/** SPEC.md 4: at most 8 signature files per file. */
export const MAX_SIGNATURES_PER_FILE = 8;

/** SPEC.md 2.1: list-id syntax. */
const LIST_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The keys trusted for one list-id and how many of them must sign. */
export interface TrustPolicy {
  readonly keys: readonly MinisignPublicKey[];
  /** 1 <= threshold <= min(keys.length, 8). */
  readonly threshold: number;
  /**
   * SPEC.md 5.3: the version of the keyring these keys come from, for a list anchored on root keys; every index
   * verified under them must name it (`keyring:`). Absent for a list trusted by plain signing keys.
   */
  readonly keyring?: number;
}

/**
 * Which keys are trusted for which list-id, and the threshold of each. Immutable once built. Construction refuses
 * (MALFORMED) a list-id outside SPEC.md 2.1's syntax, an empty key set, a threshold that is not an integer from
 * 1 to the number of keys, or above 8 (it could never be met: SPEC.md 4 allows 8 signature files); and
 * (KEY_INVALID) the same key id twice in one list, or a key that does not parse.
 */
export class TrustStore {
  readonly #policies = new Map<string, TrustPolicy>();

  constructor(entries: Iterable<readonly [string, TrustPolicy]> | Readonly<Record<string, TrustPolicy>>) {
    const pairs: Iterable<readonly [string, TrustPolicy]> =
      Symbol.iterator in entries ? entries : Object.entries(entries);
    for (const [listId, policy] of pairs) {
      if (typeof listId !== 'string' || !LIST_ID_PATTERN.test(listId)) {
        throw new FormatError('MALFORMED', 'trust store: a list-id is [a-z0-9][a-z0-9-]{0,62}');
      }
      if (this.#policies.has(listId)) throw new FormatError('MALFORMED', `trust store: list-id ${listId} given twice`);
      const keys: MinisignPublicKey[] = [];
      const seen = new Set<string>();
      for (const k of policy.keys) {
        if (seen.has(k.keyId)) {
          throw new FormatError('KEY_INVALID', `trust store: key ${k.keyId} listed twice for ${listId}`);
        }
        seen.add(k.keyId);
        keys.push(makePublicKey(k.keyNum, k.key));
      }
      const t = policy.threshold;
      if (keys.length === 0) throw new FormatError('MALFORMED', `trust store: no keys for ${listId}`);
      if (!Number.isInteger(t) || t < 1 || t > keys.length || t > MAX_SIGNATURES_PER_FILE) {
        throw new FormatError('MALFORMED', `trust store: threshold for ${listId} must be 1 to ${keys.length} (max 8)`);
      }
      const keyring = policy.keyring;
      if (keyring !== undefined && (!Number.isSafeInteger(keyring) || keyring < 1)) {
        throw new FormatError('MALFORMED', `trust store: the keyring version for ${listId} must be a positive integer`);
      }
      const frozen = { keys: Object.freeze(keys), threshold: t, ...(keyring === undefined ? {} : { keyring }) };
      this.#policies.set(listId, Object.freeze(frozen));
    }
    Object.freeze(this);
  }

  /** The policy for a list-id, or undefined when none of its keys are trusted. */
  get(listId: string): TrustPolicy | undefined {
    return this.#policies.get(listId);
  }

  listIds(): string[] {
    return [...this.#policies.keys()];
  }
}

/** What a threshold verification returns. */
export interface ThresholdResult {
  /** The trusted comment every counted signature carries. */
  readonly trustedComment: string;
  /** The distinct keys that counted, in the order their first signature appeared. */
  readonly keyIds: readonly string[];
}

/**
 * Verifies the signatures of one file against the keys trusted for `listId` and their threshold.
 * - More than 8 signature texts: TOO_LARGE, before anything else.
 * - Every text is parsed strictly (TOO_LARGE, MALFORMED); one bad text fails the whole check.
 * - Signatures by keys not trusted for this list-id (including keys trusted only for another list-id) are ignored.
 * - A signature by a trusted key must verify: a legacy one is LEGACY_SIGNATURE, a bad one SIGNATURE_INVALID, for
 *   the whole check (a trusted key's bad signature means tampering).
 * - No signature by a trusted key: UNTRUSTED_KEY. Counted signatures whose trusted comments differ:
 *   COMMENT_MISMATCH. Each key counts once; fewer distinct keys than the threshold: THRESHOLD_NOT_MET.
 */
export function verifyThreshold(
  message: Uint8Array,
  sigTexts: readonly TextInput[],
  store: TrustStore,
  listId: string,
): ThresholdResult {
  if (!(message instanceof Uint8Array)) throw new FormatError('MALFORMED', 'the signed message must be bytes');
  return verifyWith(() => prehash(message), sigTexts, store, listId);
}

/**
 * {@link verifyThreshold} given BLAKE2b-512 of the message instead of the message (an `ED` signature signs that
 * prehash, SPEC.md 3), for a file hashed while it streamed in and never held whole. Every rule and code is
 * verifyThreshold's; `digest` must be the 64 bytes of the prehash (else MALFORMED).
 */
export function verifyThresholdPrehashed(
  digest: Uint8Array,
  sigTexts: readonly TextInput[],
  store: TrustStore,
  listId: string,
): ThresholdResult {
  if (!(digest instanceof Uint8Array) || digest.length !== PREHASH_BYTES) {
    throw new FormatError('MALFORMED', 'a prehash is the 64 bytes of BLAKE2b-512');
  }
  return verifyWith(() => digest, sigTexts, store, listId);
}

function verifyWith(
  prehashOf: () => Uint8Array,
  sigTexts: readonly TextInput[],
  store: TrustStore,
  listId: string,
): ThresholdResult {
  if (sigTexts.length > MAX_SIGNATURES_PER_FILE) {
    throw new FormatError('TOO_LARGE', `more than ${MAX_SIGNATURES_PER_FILE} signatures for one file`);
  }
  const parsed: ParsedSignature[] = sigTexts.map((s) => parseSignatureFile(s));
  const policy = store.get(listId);
  const trusted = new Map<string, MinisignPublicKey>();
  for (const k of policy?.keys ?? []) trusted.set(k.keyId, k);

  let digest: Uint8Array | undefined;
  let comment: string | undefined;
  let mismatch = false;
  const counted: string[] = [];
  for (const sig of parsed) {
    const key = trusted.get(sig.keyId);
    if (key === undefined) continue;
    digest ??= prehashOf();
    const verified = verifyParsed(digest, sig, key);
    if (comment === undefined) comment = verified.trustedComment;
    else if (comment !== verified.trustedComment) mismatch = true;
    if (!counted.includes(verified.keyId)) counted.push(verified.keyId);
  }
  if (comment === undefined || policy === undefined) {
    throw new FormatError('UNTRUSTED_KEY', `no signature by a key trusted for list ${listId}`);
  }
  if (mismatch) throw new FormatError('COMMENT_MISMATCH', 'the signatures carry different trusted comments');
  if (counted.length < policy.threshold) {
    throw new FormatError(
      'THRESHOLD_NOT_MET',
      `${counted.length} of the ${policy.threshold} signatures required for list ${listId}`,
    );
  }
  return Object.freeze({ trustedComment: comment, keyIds: Object.freeze(counted) });
}

/**
 * The name of a signature file for `fileName` (SPEC.md 3): `X.minisig` without a key id, `X.<KEYID>.minisig`
 * with one (16 upper-case hex digits, else MALFORMED).
 */
export function signatureFileName(fileName: string, keyId?: string): string {
  if (keyId === undefined) return `${fileName}.minisig`;
  if (!KEY_ID_PATTERN.test(keyId)) throw new FormatError('MALFORMED', 'a key id is 16 upper-case hex digits');
  return `${fileName}.${keyId}.minisig`;
}

/**
 * The inverse of {@link signatureFileName}: the signed file's name and the key id (undefined for `X.minisig`), or
 * undefined when `name` does not end in `.minisig`. A `X.<16 upper-case hex>.minisig` name always reads as a
 * further signature of X.
 */
export function parseSignatureFileName(name: string): { fileName: string; keyId: string | undefined } | undefined {
  const m = /^(.+?)(?:\.([0-9A-F]{16}))?\.minisig$/.exec(name);
  if (m === null || m[1] === undefined) return undefined;
  return { fileName: m[1], keyId: m[2] };
}
