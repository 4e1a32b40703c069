/**
 * tlog-checkpoint: a signed note whose text is the log's origin, its size and its root hash (base64), then
 * optional extension lines; signed by the log (Ed25519, signed-note) and cosigned by witnesses (tlog-cosignature,
 * cosignature/v1). `openCheckpoint` is what a client runs: signatures first, then the text, then the origin and
 * the witness threshold.
 */
import { decodeBase64, encodeBase64, parseDecimal } from './encoding.js';
import { TlogError, malformed } from './errors.js';
import { cosignatureTimestamp, type Cosigner, type NoteSigner, type NoteVerifier } from './keys.js';
import { HASH_BYTES, type Hash } from './merkle.js';
import { parseNote, serializeNote, verifyNote, type NoteSignature, type SignedNote } from './note.js';

/** FORMAT.md 6: a client reads at most 16 KiB of `log/checkpoint`. */
export const MAX_CHECKPOINT_BYTES = 16 * 1024;

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Hash;
  /** Extension lines (tlog-checkpoint: opaque, optional, not recommended). */
  readonly extensions: readonly string[];
}

/** tlog-checkpoint "Note text": at least three non-empty lines, each ending in a newline. */
export function parseCheckpointText(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw malformed('checkpoint: the text ends in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw malformed('checkpoint: origin, size and root hash lines are required');
  if (lines.some((l) => l.length === 0)) throw malformed('checkpoint: no line may be empty');
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  const size = parseDecimal(sizeLine, 'checkpoint size');
  const root = decodeBase64(rootLine);
  if (root === undefined || root.byteLength !== HASH_BYTES) {
    throw malformed('checkpoint: the root hash is not the base64 of 32 bytes');
  }
  return { origin, size, root, extensions };
}

export function formatCheckpointText(cp: Checkpoint): string {
  const lines = [cp.origin, String(cp.size), encodeBase64(cp.root), ...cp.extensions];
  if (lines.some((l) => l.length === 0 || l.includes('\n')))
    throw malformed('checkpoint: a line is empty or holds a newline');
  const text = `${lines.join('\n')}\n`;
  parseCheckpointText(text);
  return text;
}

/** Signs a checkpoint with the log's key(s): the note's bytes. */
export function signCheckpoint(cp: Checkpoint, signers: readonly NoteSigner[]): Uint8Array {
  const text = formatCheckpointText(cp);
  const bytes = Buffer.from(text, 'utf8');
  return serializeNote(
    text,
    signers.map((s) => ({ name: s.name, keyId: s.keyId, signature: s.sign(bytes) })),
  );
}

/** tlog-cosignature: a witness's cosignature over a checkpoint's text at `timestamp`, as a note signature. */
export function cosignCheckpoint(note: SignedNote, cosigner: Cosigner, timestamp: number): NoteSignature {
  return { name: cosigner.name, keyId: cosigner.keyId, signature: cosigner.cosign(note.textBytes, timestamp) };
}

/**
 * The note with more signature lines appended (a witness's cosignatures), dropping lines already present and
 * earlier lines by the same key (name and key id) as an added one.
 */
export function addSignatures(note: SignedNote, added: readonly NoteSignature[]): Uint8Array {
  const same = (a: NoteSignature, b: NoteSignature): boolean => a.name === b.name && a.keyId === b.keyId;
  const kept = note.signatures.filter((s) => !added.some((a) => same(a, s)));
  return serializeNote(note.text, [...kept, ...added]);
}

export interface CheckpointPolicy {
  /** The log's origin line; a checkpoint for another origin is refused (LOG_ORIGIN_MISMATCH). */
  readonly origin?: string;
  /** The log's keys (Ed25519 note keys); at least one must have signed (LOG_UNTRUSTED_KEY). */
  readonly logKeys: readonly NoteVerifier[];
  /** Witness cosigner keys (type 0x04). */
  readonly witnesses?: readonly NoteVerifier[];
  /** Distinct witnesses that must have cosigned (default 0). */
  readonly witnessThreshold?: number;
  /** Cap on the note (default 16 KiB, FORMAT.md 6). */
  readonly maxBytes?: number;
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: SignedNote;
  /** The note's exact bytes. */
  readonly bytes: Uint8Array;
  /** The configured witnesses whose cosignature verified, with the time each gave. */
  readonly cosignatures: readonly { readonly witness: NoteVerifier; readonly timestamp: number }[];
}

/**
 * Opens a checkpoint as a client must: verifies every signature by a configured key over the raw text (any bad
 * one refuses the note), requires the log's signature, then parses the text and checks the origin and the
 * number of distinct witnesses that cosigned.
 */
export function openCheckpoint(bytes: Uint8Array, policy: CheckpointPolicy): OpenedCheckpoint {
  const note = parseNote(bytes, { maxBytes: policy.maxBytes ?? MAX_CHECKPOINT_BYTES });
  const witnesses = policy.witnesses ?? [];
  const verified = verifyNote(note, [...policy.logKeys, ...witnesses]);
  if (!verified.some((v) => policy.logKeys.includes(v.verifier))) {
    throw new TlogError('LOG_UNTRUSTED_KEY', 'the checkpoint carries no valid signature by the log key');
  }
  const checkpoint = parseCheckpointText(note.text);
  if (policy.origin !== undefined && checkpoint.origin !== policy.origin) {
    throw new TlogError('LOG_ORIGIN_MISMATCH', `the checkpoint is for another log than ${policy.origin}`);
  }
  const cosignatures = verified
    .filter((v) => witnesses.includes(v.verifier))
    .map((v) => ({ witness: v.verifier, timestamp: cosignatureTimestamp(v.signature.signature)! }));
  const threshold = policy.witnessThreshold ?? 0;
  if (cosignatures.length < threshold) {
    throw new TlogError(
      'LOG_WITNESS_THRESHOLD',
      `${cosignatures.length} of the configured witnesses cosigned the checkpoint; ${threshold} needed`,
    );
  }
  return { checkpoint, note, bytes, cosignatures };
}
