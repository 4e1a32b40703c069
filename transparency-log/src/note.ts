/**
 * signed-note: a text ending in a newline, a blank line, then one or more signature lines
 * `— <key name> <base64(key id || signature)>`. Parsing is strict (valid UTF-8, no control character but newline,
 * canonical base64, valid names, a final newline, nothing else); verification follows the specification's rules:
 * signatures by unknown keys are ignored, a signature by a known key must verify or the whole note is refused, and
 * a note without a verified signature by a key the caller needs is refused by the caller.
 */
import { decodeBase64, decodeNoteText, encodeBase64, isKeyName, utf8Bytes } from './encoding.js';
import { TlogError, malformed } from './errors.js';
import type { NoteVerifier } from './keys.js';

/** signed-note: verifiers must accept at least 16 signatures; this one accepts up to 100 (as Go's does). */
export const MAX_NOTE_SIGNATURES = 100;
/** The default cap on a whole note (a checkpoint is capped lower, tlog.ts). */
export const DEFAULT_MAX_NOTE_BYTES = 64 * 1024;

const EM_DASH = '\u2014';

export interface NoteSignature {
  readonly name: string;
  /** The uint32 key id (the first four bytes of the decoded signature, big-endian). */
  readonly keyId: number;
  /** The signature bytes after the key id. */
  readonly signature: Uint8Array;
}

export interface SignedNote {
  /** The note text, including its final newline: what every signature signs. */
  readonly text: string;
  readonly textBytes: Uint8Array;
  readonly signatures: readonly NoteSignature[];
}

/** One signature line, `— <name> <base64>` and a newline. */
export function signatureLine(name: string, keyId: number, signature: Uint8Array): string {
  if (!isKeyName(name)) throw malformed('a key name is non-empty, without spaces or "+"');
  const raw = new Uint8Array(4 + signature.byteLength);
  new DataView(raw.buffer).setUint32(0, keyId);
  raw.set(signature, 4);
  return `${EM_DASH} ${name} ${encodeBase64(raw)}\n`;
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(`${EM_DASH} `)) throw malformed('note: a signature line starts with an em dash and a space');
  const rest = line.slice(2);
  const space = rest.indexOf(' ');
  if (space < 0) throw malformed('note: a signature line is "— <name> <base64>"');
  const name = rest.slice(0, space);
  const raw = decodeBase64(rest.slice(space + 1));
  if (!isKeyName(name)) throw malformed('note: a key name is non-empty, without spaces or "+"');
  if (raw === undefined) throw malformed('note: a signature is not canonical base64');
  if (raw.byteLength < 5) throw malformed('note: a signature is a 4-byte key id and at least one byte');
  const keyId = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0);
  return { name, keyId, signature: raw.subarray(4) };
}

/** Parses a signed note strictly. Nothing is verified: use `verifyNote`. */
export function parseNote(bytes: Uint8Array, options: { maxBytes?: number } = {}): SignedNote {
  const max = options.maxBytes ?? DEFAULT_MAX_NOTE_BYTES;
  if (!(bytes instanceof Uint8Array)) throw malformed('note: expected bytes');
  if (bytes.byteLength > max) throw new TlogError('LOG_TOO_LARGE', `note: over ${max} bytes`);
  const all = decodeNoteText(bytes);
  if (all === undefined) throw malformed('note: not UTF-8 text without control characters (newline aside)');
  const split = all.lastIndexOf('\n\n');
  if (split < 0) throw malformed('note: no blank line before the signatures');
  const text = all.slice(0, split + 1);
  const sigs = all.slice(split + 2);
  if (sigs.length === 0 || !sigs.endsWith('\n'))
    throw malformed('note: signature lines must follow, each ending in a newline');
  const lines = sigs.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES)
    throw new TlogError('LOG_TOO_LARGE', `note: over ${MAX_NOTE_SIGNATURES} signatures`);
  const signatures = lines.map(parseSignatureLine);
  const textBytes = bytes.subarray(0, Buffer.byteLength(text, 'utf8'));
  return { text, textBytes, signatures };
}

/** The note's bytes: its text, a blank line, then each signature line. */
export function serializeNote(text: string, signatures: readonly NoteSignature[]): Uint8Array {
  if (!text.endsWith('\n') || decodeNoteText(utf8Bytes(text)) === undefined) {
    throw malformed('note: the text is UTF-8 without control characters and ends in a newline');
  }
  if (signatures.length === 0) throw malformed('note: at least one signature');
  return utf8Bytes(`${text}\n${signatures.map((s) => signatureLine(s.name, s.keyId, s.signature)).join('')}`);
}

/** A signature that verified, with the key that made it. */
export interface VerifiedSignature {
  readonly verifier: NoteVerifier;
  readonly signature: NoteSignature;
}

/**
 * Verifies every signature of a known key (same name and key id as one of `verifiers`). Returns one verified
 * signature per key (the first, when a key signed twice); unknown keys are ignored. Throws LOG_SIGNATURE_INVALID
 * when a known key's signature does not verify (signed-note: reject the whole note), and LOG_KEY_INVALID when two
 * verifiers share a name and key id (the note could not tell them apart).
 */
export function verifyNote(note: SignedNote, verifiers: readonly NoteVerifier[]): VerifiedSignature[] {
  const byId = new Map<string, NoteVerifier>();
  for (const v of verifiers) {
    const id = `${v.keyId}+${v.name}`;
    if (byId.has(id)) throw new TlogError('LOG_KEY_INVALID', `two keys named ${v.name} with one key id`);
    byId.set(id, v);
  }
  const out = new Map<NoteVerifier, VerifiedSignature>();
  for (const signature of note.signatures) {
    const verifier = byId.get(`${signature.keyId}+${signature.name}`);
    if (verifier === undefined) continue;
    if (!verifier.verify(note.textBytes, signature.signature)) {
      throw new TlogError('LOG_SIGNATURE_INVALID', `the signature of ${verifier.name} does not verify`);
    }
    if (!out.has(verifier)) out.set(verifier, { verifier, signature });
  }
  return [...out.values()];
}
