/**
 * tlog-witness `add-checkpoint`: the request body (an old size line, consistency proof lines, a blank line, then
 * the checkpoint), the 409 body (the witness's size) and the 200 body (cosignature lines). Shared by the witness
 * (hashwall-witness) and the log's client (the signer), so both speak exactly one reading of the specification.
 */
import { decodeBase64, encodeBase64, parseDecimal, utf8Bytes } from './encoding.js';
import { TlogError, malformed } from './errors.js';
import { HASH_BYTES, type Hash } from './merkle.js';
import { parseNote, type NoteSignature } from './note.js';

/** tlog-witness: the client MUST NOT send more than 63 consistency proof lines. */
export const MAX_PROOF_LINES = 63;
/** tlog-witness: the 409 answer's content type. */
export const SIZE_CONTENT_TYPE = 'text/x.tlog.size';
/** tlog-witness: the path under the witness's submission prefix. */
export const ADD_CHECKPOINT_PATH = 'add-checkpoint';

export interface AddCheckpointRequest {
  /** The size of the checkpoint the client believes the witness holds (0 when it holds none). */
  readonly oldSize: number;
  /** RFC 6962 2.1.2 consistency proof from `oldSize` to the checkpoint's size. */
  readonly proof: readonly Hash[];
  /** The checkpoint: a signed note, as the log serves it. */
  readonly checkpoint: Uint8Array;
}

export function formatAddCheckpoint(req: AddCheckpointRequest): Uint8Array {
  if (!(Number.isSafeInteger(req.oldSize) && req.oldSize >= 0)) throw new RangeError(`bad old size ${req.oldSize}`);
  if (req.proof.length > MAX_PROOF_LINES) throw new RangeError('more than 63 consistency proof lines');
  const head = utf8Bytes(`old ${req.oldSize}\n${req.proof.map((h) => `${encodeBase64(h)}\n`).join('')}\n`);
  const out = new Uint8Array(head.byteLength + req.checkpoint.byteLength);
  out.set(head);
  out.set(req.checkpoint, head.byteLength);
  return out;
}

/**
 * Parses an add-checkpoint body strictly: LOG_MALFORMED for anything else (the witness answers 400). The
 * checkpoint part is returned as bytes, parsed and verified by the caller.
 */
export function parseAddCheckpoint(body: Uint8Array): AddCheckpointRequest {
  const lineEnd = (from: number): number => {
    const i = body.indexOf(0x0a, from);
    if (i < 0) throw malformed('add-checkpoint: a line does not end in a newline');
    return i;
  };
  const ascii = (from: number, to: number): string => Buffer.from(body.subarray(from, to)).toString('latin1');
  let at = 0;
  let end = lineEnd(at);
  const first = ascii(at, end);
  if (!first.startsWith('old ')) throw malformed('add-checkpoint: the first line is "old <size>"');
  const oldSize = parseDecimal(first.slice(4), 'add-checkpoint old size');
  const proof: Hash[] = [];
  for (;;) {
    at = end + 1;
    end = lineEnd(at);
    if (end === at) break;
    if (proof.length === MAX_PROOF_LINES) throw malformed('add-checkpoint: more than 63 consistency proof lines');
    const h = decodeBase64(ascii(at, end));
    if (h === undefined || h.byteLength !== HASH_BYTES) throw malformed('add-checkpoint: a proof line is not a hash');
    proof.push(h);
  }
  const checkpoint = body.subarray(end + 1);
  if (checkpoint.byteLength === 0) throw malformed('add-checkpoint: no checkpoint after the blank line');
  return { oldSize, proof, checkpoint };
}

/** The 409 body: the size of the latest cosigned checkpoint and a newline. */
export function formatSizeBody(size: number): string {
  return `${size}\n`;
}

export function parseSizeBody(body: Uint8Array): number {
  const text = Buffer.from(body).toString('latin1');
  if (!text.endsWith('\n')) throw malformed('a tlog size body ends in a newline');
  return parseDecimal(text.slice(0, -1), 'tlog size');
}

/**
 * The 200 body: one or more note signature lines. Parsed as the signature block of a note, so every line must be
 * `— <name> <base64>` with a final newline (tlog-witness: a client may append it to the checkpoint).
 */
export function parseCosignatureLines(body: Uint8Array): NoteSignature[] {
  const text = Buffer.from(body).toString('latin1');
  if (body.byteLength === 0 || text.startsWith('\n') || text.includes('\n\n')) {
    throw malformed('add-checkpoint answer: not a block of signature lines');
  }
  // A one-line text, a blank line, then the body: parseNote applies every rule of a signature line to it.
  const note = new Uint8Array(3 + body.byteLength);
  note.set([0x78, 0x0a, 0x0a]);
  note.set(body, 3);
  try {
    return [...parseNote(note, { maxBytes: note.byteLength }).signatures];
  } catch (err) {
    if (err instanceof TlogError) throw new TlogError(err.code, `add-checkpoint answer: ${err.message}`);
    throw err;
  }
}
