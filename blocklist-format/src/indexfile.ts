/**
 * INDEX files (SPEC.md 2.3): `index.hwl`, the only mutable file of a release. It names the current FULL and
 * the deltas that lead to it, each with its size and SHA-256, and carries `seq`, which rises on every publish.
 */
import { FormatError } from './errors.js';
import {
  HeaderReader,
  checkValidity,
  formatTime,
  isHex64,
  isListId,
  malformed,
  parseInteger,
  parseListId,
  parseTime,
  splitHeader,
  writeHeader,
  type Extension,
} from './header.js';

/** SPEC.md 4: the index is fetched with a 64 KiB cap. */
export const MAX_INDEX_BYTES = 64 * 1024;
/** SPEC.md 2.3: expires - created <= 7 days. */
export const MAX_INDEX_VALIDITY_DAYS = 7;
/** SPEC.md 2.3: clients never poll more often than every 60 s, whatever `min-poll` says. */
export const MIN_POLL_FLOOR_SECONDS = 60;

export const INDEX_PATH = 'index.hwl';

export function fullPath(serial: number): string {
  return `full/${serial}.hwl`;
}

export function deltaPath(baseSerial: number, serial: number): string {
  return `delta/${baseSerial}-${serial}.hwld`;
}

export interface IndexHeader {
  readonly listId: string;
  readonly seq: number;
  readonly serial: number;
  readonly created: number;
  readonly expires: number;
  /** Seconds, as written; clients use max(minPoll, 60). */
  readonly minPoll: number;
  /** SPEC.md 2.3 and 5: the keyring version the signatures are checked under; absent for a list without one. */
  readonly keyring?: number;
  /** SPEC.md 2.3 and 6: this file's 0-based leaf index in the release log; absent for a list without a log. */
  readonly logIndex?: number;
  readonly extensions: readonly Extension[];
}

export interface IndexFileRef {
  readonly path: string;
  readonly size: number;
  /** SHA-256 of the whole file, 64 lower-case hex. */
  readonly sha256: string;
}

export interface IndexDeltaRef extends IndexFileRef {
  readonly baseSerial: number;
}

export interface IndexList {
  readonly header: IndexHeader;
  readonly full: IndexFileRef;
  /** Ascending by base serial, each base at most once, every base below `serial`. */
  readonly deltas: readonly IndexDeltaRef[];
}

function parseRef(path: string, size: string, sha: string, line: number): IndexFileRef {
  if (!isHex64(sha)) throw malformed(`index line ${line}: sha256 is not 64 lower-case hex digits`);
  return { path, size: parseInteger(size, `index line ${line} size`), sha256: sha };
}

/** Parses an INDEX strictly. The caller verifies its signatures over these same bytes first. */
export function parseIndex(bytes: Uint8Array): IndexList {
  if (bytes.length > MAX_INDEX_BYTES) throw new FormatError('TOO_LARGE', `index is over ${MAX_INDEX_BYTES} bytes`);
  const { fields, bodyStart } = splitHeader(bytes, 'HWL1 INDEX');
  const h = new HeaderReader(fields);
  const listId = parseListId(h.take('list-id'));
  const seq = parseInteger(h.take('seq'), 'seq');
  const serial = parseInteger(h.take('serial'), 'serial');
  const created = parseTime(h.take('created'), 'created');
  const expires = parseTime(h.take('expires'), 'expires');
  checkValidity(created, expires, MAX_INDEX_VALIDITY_DAYS);
  const minPoll = parseInteger(h.take('min-poll'), 'min-poll');
  // SPEC.md 2.3: the optional `keyring` then `log-index`, in that order, before any `x-` key.
  const keyring = h.peekIs('keyring') ? parseInteger(h.take('keyring'), 'keyring') : undefined;
  if (keyring === 0) throw malformed('keyring: versions start at 1');
  const logIndex = h.peekIs('log-index') ? parseInteger(h.take('log-index'), 'log-index') : undefined;
  const extensions = h.extensions();

  const body = Buffer.from(bytes.buffer, bytes.byteOffset + bodyStart, bytes.length - bodyStart).toString('latin1');
  if (body.length === 0 || !body.endsWith('\n')) throw malformed('index body is empty or lacks a final LF');
  const lines = body.slice(0, -1).split('\n');
  let full: IndexFileRef | undefined;
  const deltas: IndexDeltaRef[] = [];
  lines.forEach((line, n) => {
    const f = line.split(' ');
    if (n === 0) {
      if (f.length !== 4 || f[0] !== 'full') throw malformed('index line 1: not "full <path> <size> <sha256>"');
      if (f[1] !== fullPath(serial)) throw malformed(`index line 1: path is not ${fullPath(serial)}`);
      full = parseRef(f[1], f[2]!, f[3]!, 1);
      return;
    }
    if (f.length !== 5 || f[0] !== 'delta') {
      throw malformed(`index line ${n + 1}: not "delta <base> <path> <size> <sha256>"`);
    }
    const baseSerial = parseInteger(f[1]!, `index line ${n + 1} base`);
    if (baseSerial >= serial) throw malformed(`index line ${n + 1}: base is not below serial`);
    const prev = deltas[deltas.length - 1];
    if (prev && baseSerial <= prev.baseSerial) throw malformed(`index line ${n + 1}: bases not ascending or repeated`);
    if (f[2] !== deltaPath(baseSerial, serial)) {
      throw malformed(`index line ${n + 1}: path is not ${deltaPath(baseSerial, serial)}`);
    }
    deltas.push({ baseSerial, ...parseRef(f[2], f[3]!, f[4]!, n + 1) });
  });
  if (!full) throw malformed('index has no full line');
  const header: IndexHeader = {
    listId,
    seq,
    serial,
    created,
    expires,
    minPoll,
    ...(keyring === undefined ? {} : { keyring }),
    ...(logIndex === undefined ? {} : { logIndex }),
    extensions,
  };
  return { header, full, deltas };
}

/** The one byte form of an INDEX. */
export function serializeIndex(index: IndexList): Buffer {
  const x = index.header;
  if (!isListId(x.listId)) throw new RangeError(`bad list-id ${x.listId}`);
  checkValidity(x.created, x.expires, MAX_INDEX_VALIDITY_DAYS);
  for (const n of [x.seq, x.serial, x.minPoll, x.keyring ?? 1, x.logIndex ?? 0])
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('bad integer');
  if (x.keyring === 0) throw new RangeError('keyring versions start at 1');
  const head = writeHeader(
    'HWL1 INDEX',
    [
      ['list-id', x.listId],
      ['seq', String(x.seq)],
      ['serial', String(x.serial)],
      ['created', formatTime(x.created)],
      ['expires', formatTime(x.expires)],
      ['min-poll', String(x.minPoll)],
      ...(x.keyring === undefined ? [] : [['keyring', String(x.keyring)] as const]),
      ...(x.logIndex === undefined ? [] : [['log-index', String(x.logIndex)] as const]),
    ],
    x.extensions,
  );
  const ref = (r: IndexFileRef): string => {
    if (!isHex64(r.sha256) || !Number.isSafeInteger(r.size) || r.size < 0) throw new RangeError('bad file reference');
    return `${r.path} ${r.size} ${r.sha256}`;
  };
  if (index.full.path !== fullPath(x.serial)) throw new RangeError('full path does not match serial');
  let body = `full ${ref(index.full)}\n`;
  let last = -1;
  for (const d of index.deltas) {
    if (d.baseSerial <= last || d.baseSerial >= x.serial || d.path !== deltaPath(d.baseSerial, x.serial)) {
      throw new RangeError('deltas must be ascending, below serial, at their canonical paths');
    }
    last = d.baseSerial;
    body += `delta ${d.baseSerial} ${ref(d)}\n`;
  }
  const out = Buffer.from(head + body, 'latin1');
  if (out.length > MAX_INDEX_BYTES) throw new RangeError('index over 64 KiB');
  return out;
}

/** SPEC.md 3: the exact trusted comment of each file type. */
export function fullTrustedComment(h: { listId: string; serial: number; expires: number }): string {
  return `hwl1 type=full list=${h.listId} serial=${h.serial} expires=${formatTime(h.expires)}`;
}

export function deltaTrustedComment(h: {
  listId: string;
  baseSerial: number;
  serial: number;
  expires: number;
}): string {
  return `hwl1 type=delta list=${h.listId} base=${h.baseSerial} serial=${h.serial} expires=${formatTime(h.expires)}`;
}

export function indexTrustedComment(h: { listId: string; seq: number; serial: number; expires: number }): string {
  return `hwl1 type=index list=${h.listId} seq=${h.seq} serial=${h.serial} expires=${formatTime(h.expires)}`;
}

/** Whether `s` is a valid list-id (re-exported for config validation). */
export { isListId };
