/**
 * The publisher side of SPEC.md 3 and 4: the files of a release (FULL, deltas, index) and their signatures, as
 * bytes. Writing them to disk (atomically, index last) is the signer's job; this computes what to write.
 */
import { computeDelta, parseDelta, serializeDelta } from './delta.js';
import { parseFull, serializeFull, sha256Hex, type FullList } from './full.js';
import {
  INDEX_PATH,
  deltaPath,
  deltaTrustedComment,
  fullPath,
  fullTrustedComment,
  indexTrustedComment,
  parseIndex,
  serializeIndex,
  type IndexList,
} from './indexfile.js';
import type { MinisignSecretKey } from './minisign/secret-key.js';
import { sign } from './minisign/signature.js';
import { signatureFileName } from './minisign/threshold.js';
import type { Extension } from './header.js';

/**
 * Signature files for one file: the first signer writes `X.minisig`, every further one `X.<KEYID>.minisig`
 * (SPEC.md 3). Returns file name to text.
 */
export function signatures(
  path: string,
  bytes: Uint8Array,
  trustedComment: string,
  signers: readonly MinisignSecretKey[],
): Map<string, string> {
  if (signers.length === 0) throw new RangeError('at least one signing key is needed');
  const out = new Map<string, string>();
  signers.forEach((key, i) => {
    out.set(signatureFileName(path, i === 0 ? undefined : key.keyId), sign(bytes, key, trustedComment));
  });
  return out;
}

/** The trusted comment a release file must carry, read from its own header (for adding a signature later). */
export function trustedCommentOf(path: string, bytes: Uint8Array): string {
  if (path === INDEX_PATH || path.endsWith(`/${INDEX_PATH}`)) return indexTrustedComment(parseIndex(bytes).header);
  if (path.endsWith('.hwld')) return deltaTrustedComment(parseDelta(bytes).header);
  if (path.endsWith('.hwl')) return fullTrustedComment(parseFull(bytes, { maxBytes: 256 * 1024 * 1024 }).header);
  throw new RangeError(`not a release file: ${path}`);
}

export interface IndexInput {
  readonly listId: string;
  readonly seq: number;
  readonly serial: number;
  readonly created: number;
  readonly expires: number;
  readonly minPoll: number;
  readonly fullBytes: Uint8Array;
  readonly deltas: readonly { readonly baseSerial: number; readonly bytes: Uint8Array }[];
  /** SPEC.md 5.3: the keyring version the signatures are made under, for a list anchored on root keys. */
  readonly keyring?: number;
  readonly extensions?: readonly Extension[];
}

/** An index naming the FULL and the deltas, with sizes and digests computed from their bytes. */
export function buildIndex(input: IndexInput): { index: IndexList; bytes: Buffer } {
  const index: IndexList = {
    header: {
      listId: input.listId,
      seq: input.seq,
      serial: input.serial,
      created: input.created,
      expires: input.expires,
      minPoll: input.minPoll,
      ...(input.keyring === undefined ? {} : { keyring: input.keyring }),
      extensions: input.extensions ?? [],
    },
    full: { path: fullPath(input.serial), size: input.fullBytes.length, sha256: sha256Hex(input.fullBytes) },
    deltas: [...input.deltas]
      .sort((a, b) => a.baseSerial - b.baseSerial)
      .map((d) => ({
        baseSerial: d.baseSerial,
        path: deltaPath(d.baseSerial, input.serial),
        size: d.bytes.length,
        sha256: sha256Hex(d.bytes),
      })),
  };
  return { index, bytes: serializeIndex(index) };
}

export interface ReleaseInput {
  /** The new FULL. */
  readonly full: FullList;
  /** Earlier FULLs of the same list to write deltas from (each below the new serial). */
  readonly bases: readonly FullList[];
  readonly seq: number;
  /** Index validity (at most 7 days). */
  readonly created: number;
  readonly expires: number;
  readonly minPoll: number;
  readonly signers: readonly MinisignSecretKey[];
  /** SPEC.md 5.3: the index's `keyring:` line, for a list anchored on root keys. */
  readonly keyring?: number;
  /** `x-` keys of the index (a recorded override, say). */
  readonly indexExtensions?: readonly Extension[];
}

/** Every file of a release, with signatures: path to bytes. The index comes last in iteration order. */
export function buildRelease(input: ReleaseInput): { files: Map<string, Uint8Array>; index: IndexList } {
  const files = new Map<string, Uint8Array>();
  const add = (path: string, bytes: Uint8Array, comment: string): void => {
    files.set(path, bytes);
    for (const [name, text] of signatures(path, bytes, comment, input.signers)) files.set(name, Buffer.from(text));
  };
  const h = input.full.header;
  const fullBytes = serializeFull(input.full);
  add(fullPath(h.serial), fullBytes, fullTrustedComment(h));
  const deltas: { baseSerial: number; bytes: Uint8Array }[] = [];
  for (const base of input.bases) {
    const delta = computeDelta(base, input.full);
    const bytes = serializeDelta(delta);
    add(deltaPath(base.header.serial, h.serial), bytes, deltaTrustedComment(delta.header));
    deltas.push({ baseSerial: base.header.serial, bytes });
  }
  const { index, bytes } = buildIndex({
    listId: h.listId,
    seq: input.seq,
    serial: h.serial,
    created: input.created,
    expires: input.expires,
    minPoll: input.minPoll,
    fullBytes,
    deltas,
    ...(input.keyring === undefined ? {} : { keyring: input.keyring }),
    ...(input.indexExtensions === undefined ? {} : { extensions: input.indexExtensions }),
  });
  add(INDEX_PATH, bytes, indexTrustedComment(index.header));
  return { files, index };
}
