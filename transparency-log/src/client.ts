/**
 * The client side of FORMAT.md 6: whether an index (any leaf) is in a log whose checkpoint the log signed and
 * enough witnesses cosigned, consistently with the checkpoint the client accepted before. Pure logic over a
 * `TileReader`; the caller fetches (with caps and timeouts) and stores the checkpoint this returns with its state.
 */
import { MAX_CHECKPOINT_BYTES, openCheckpoint, type OpenedCheckpoint } from './checkpoint.js';
import { TlogError, isTlogError } from './errors.js';
import type { NoteVerifier } from './keys.js';
import { leafHash, sameHash, verifyConsistency, verifyInclusion } from './merkle.js';
import { TileHashReader, type TileReader } from './tiles.js';

/** tlog-tiles: the checkpoint's path under the log's prefix. */
export const CHECKPOINT_PATH = 'checkpoint';

/** What a client is configured with for one log (FORMAT.md 6). */
export interface LogTrust {
  /** The checkpoint origin line, e.g. `lists.example/demo`. */
  readonly origin: string;
  /** The log's Ed25519 note key. */
  readonly logKey: NoteVerifier;
  /** The witnesses' cosigner keys (type 0x04). */
  readonly witnesses: readonly NoteVerifier[];
  /** Distinct witnesses that must have cosigned a checkpoint. */
  readonly witnessThreshold: number;
}

/** Reads and opens `checkpoint` (at most 16 KiB) under the log's trust: signatures, origin, witness threshold. */
export async function fetchCheckpoint(reader: TileReader, trust: LogTrust): Promise<OpenedCheckpoint> {
  const bytes = await reader.read(CHECKPOINT_PATH, MAX_CHECKPOINT_BYTES);
  if (bytes === undefined) throw new TlogError('LOG_FETCH_FAILED', `${CHECKPOINT_PATH}: not found`);
  return openCheckpoint(bytes, {
    origin: trust.origin,
    logKeys: [trust.logKey],
    witnesses: trust.witnesses,
    witnessThreshold: trust.witnessThreshold,
  });
}

export interface LeafCheck {
  readonly reader: TileReader;
  readonly trust: LogTrust;
  /** The exact bytes the log must hold (a published index.hwl). */
  readonly leaf: Uint8Array;
  /** The leaf's 0-based index (the index's `log-index`). */
  readonly leafIndex: number;
  /** The checkpoint accepted before (its note bytes, as this function returned them), if any. */
  readonly stored?: Uint8Array;
}

/**
 * FORMAT.md 6, in order: fetches `checkpoint` and opens it (the log's signature, the origin, at least the
 * threshold of distinct configured witness cosignatures); requires `leafIndex < size`; checks that the checkpoint
 * is consistent with the stored one (never smaller; equal sizes with equal roots; a consistency proof from tiles
 * otherwise); checks that `leaf` is the leaf at `leafIndex` (an inclusion proof from tiles). Returns the opened
 * checkpoint, whose `bytes` the caller stores with its state once it commits.
 *
 * Refusals are TlogErrors: LOG_FETCH_FAILED, LOG_MALFORMED, LOG_TOO_LARGE, LOG_SIGNATURE_INVALID,
 * LOG_UNTRUSTED_KEY, LOG_ORIGIN_MISMATCH, LOG_WITNESS_THRESHOLD, LOG_NOT_INCLUDED, LOG_ROLLBACK, LOG_TILE_MISMATCH
 * (the mirror's tiles do not hash to the signed root) and LOG_SPLIT_VIEW, whose `evidence` holds both signed
 * checkpoints (keep them: they prove the log showed two different histories).
 */
export async function checkLeafInLog(check: LeafCheck): Promise<OpenedCheckpoint> {
  const { reader, trust } = check;
  const opened = await fetchCheckpoint(reader, trust);
  const cp = opened.checkpoint;
  if (!(Number.isSafeInteger(check.leafIndex) && check.leafIndex >= 0 && check.leafIndex < cp.size)) {
    throw new TlogError('LOG_NOT_INCLUDED', `leaf ${check.leafIndex} is not in the checkpoint of size ${cp.size}`);
  }
  const tiles = new TileHashReader(reader, cp.size);
  if (check.stored !== undefined) await checkGrowth(tiles, trust, check.stored, opened);
  const proof = await tiles.inclusionProof(check.leafIndex);
  try {
    verifyInclusion(check.leafIndex, cp.size, leafHash(check.leaf), proof, cp.root);
  } catch (err) {
    if (!isTlogError(err, 'LOG_PROOF_INVALID')) throw err;
    await requireTilesMatch(tiles, opened);
    throw new TlogError('LOG_NOT_INCLUDED', `the leaf at ${check.leafIndex} is not these bytes`);
  }
  return opened;
}

/** LOG_TILE_MISMATCH unless the tiles hash to the checkpoint's root. */
async function requireTilesMatch(tiles: TileHashReader, opened: OpenedCheckpoint): Promise<void> {
  if (!sameHash(await tiles.root(), opened.checkpoint.root)) {
    throw new TlogError('LOG_TILE_MISMATCH', `the tiles do not hash to the root of size ${opened.checkpoint.size}`);
  }
}

/** The new checkpoint must extend the stored one (FORMAT.md 6: consistent, never smaller). */
async function checkGrowth(
  tiles: TileHashReader,
  trust: LogTrust,
  storedBytes: Uint8Array,
  opened: OpenedCheckpoint,
): Promise<void> {
  const stored = openCheckpoint(storedBytes, { origin: trust.origin, logKeys: [trust.logKey] }).checkpoint;
  const cp = opened.checkpoint;
  const evidence = (reason: string): TlogError =>
    new TlogError('LOG_SPLIT_VIEW', `two signed checkpoints that cannot both be true: ${reason}`, {
      evidence: { earlier: storedBytes, later: opened.bytes, reason },
    });
  if (cp.size < stored.size) {
    throw new TlogError('LOG_ROLLBACK', `the checkpoint's size ${cp.size} is below the accepted ${stored.size}`);
  }
  if (cp.size === stored.size) {
    if (!sameHash(cp.root, stored.root)) throw evidence(`size ${cp.size} with two different roots`);
    return;
  }
  const proof = await tiles.consistencyProof(stored.size);
  try {
    verifyConsistency(stored.size, cp.size, stored.root, cp.root, proof);
  } catch (err) {
    if (!isTlogError(err, 'LOG_PROOF_INVALID')) throw err;
    // Tiles that give the new root are the new tree's; if they give another root for the old size, the log
    // signed an old tree that is no prefix of its new one.
    await requireTilesMatch(tiles, opened);
    if (!sameHash(await tiles.root(stored.size), stored.root)) {
      throw evidence(`the tree of size ${cp.size} does not extend the accepted tree of size ${stored.size}`);
    }
    throw err;
  }
}
