/**
 * Errors with stable codes. Callers and tests branch on `code`, never on the message text. Every code starts with
 * `LOG_`, so that a client that also reports list-format codes (a daemon's refusal metric) never confuses the two;
 * each is documented in README.md ("Error codes").
 */
export const TLOG_ERROR_CODES = [
  /** Bytes that do not follow their format: a note, checkpoint, tile, entry bundle, path, proof or request. */
  'LOG_MALFORMED',
  /** More bytes, lines or signatures than a cap allows. */
  'LOG_TOO_LARGE',
  /** A verifier or signer key (vkey, skey) that cannot be used. */
  'LOG_KEY_INVALID',
  /** A signature line by a known key that does not verify: the whole note is refused (signed-note). */
  'LOG_SIGNATURE_INVALID',
  /** No valid signature by the log's key. */
  'LOG_UNTRUSTED_KEY',
  /** A checkpoint whose origin line is not the log's. */
  'LOG_ORIGIN_MISMATCH',
  /** Fewer distinct configured witnesses cosigned the checkpoint than the threshold. */
  'LOG_WITNESS_THRESHOLD',
  /** An inclusion or consistency proof that does not verify, or that cannot be made for the sizes given. */
  'LOG_PROOF_INVALID',
  /** The leaf is not in the tree: its index is past the tree size, or it is not the leaf at that index. */
  'LOG_NOT_INCLUDED',
  /** A checkpoint smaller than one already accepted from the same log. */
  'LOG_ROLLBACK',
  /** Two checkpoints signed by the log that cannot both be true: the log showed different trees (evidence kept). */
  'LOG_SPLIT_VIEW',
  /** Tiles or entry bundles that do not hash to the checkpoint's root: a damaged or lying mirror. */
  'LOG_TILE_MISMATCH',
  /** A tile, bundle or checkpoint could not be fetched (absent, HTTP status, network, timeout). */
  'LOG_FETCH_FAILED',
  /** A witness refused a checkpoint or could not be reached (tlog-witness add-checkpoint). */
  'LOG_WITNESS_FAILED',
] as const;

export type TlogErrorCode = (typeof TLOG_ERROR_CODES)[number];

/** Two signed notes that cannot both be true, as a client or witness keeps them. */
export interface SplitViewEvidence {
  /** The checkpoint accepted earlier (exact note bytes). */
  readonly earlier: Uint8Array;
  /** The checkpoint that contradicts it (exact note bytes). */
  readonly later: Uint8Array;
  /** Why they cannot both be true. */
  readonly reason: string;
}

export class TlogError extends Error {
  override readonly name = 'TlogError';
  readonly code: TlogErrorCode;
  /** For LOG_SPLIT_VIEW: the two notes. */
  readonly evidence?: SplitViewEvidence;

  constructor(code: TlogErrorCode, message: string, options?: { cause?: unknown; evidence?: SplitViewEvidence }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.evidence) this.evidence = options.evidence;
  }
}

/** True when `err` is a TlogError, optionally with the given code. */
export function isTlogError(err: unknown, code?: TlogErrorCode): err is TlogError {
  return err instanceof TlogError && (code === undefined || err.code === code);
}

export function malformed(message: string): TlogError {
  return new TlogError('LOG_MALFORMED', message);
}
