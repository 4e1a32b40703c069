/**
 * A FULL kept outside memory while it is checked: the caller's storage, seen through two small interfaces, so that
 * a 64 MiB file never has to be held whole (the library still touches no disk: the daemon implements them over a
 * temp file in its state directory). A downloaded FULL goes chunk by chunk into a {@link FullSpool} while its
 * SHA-256 and BLAKE2b-512 are computed; once its signatures hold over that prehash, it is read back in ~1 MiB
 * pieces (parseFullMatcherFrom in fullmatcher.ts). A stored FULL is read back the same way through a
 * {@link FullFile}.
 *
 * Both are synchronous, like the parse that reads them back: a caller with a large list runs the whole load off
 * its query thread (the daemon does it in a worker thread).
 */
import { createHash, type Hash } from 'node:crypto';

import { FormatError } from './errors.js';

/** A file of known size, read back by position (a stored FULL, or a spool once written). */
export interface FullFile {
  /** The file's length in bytes. */
  readonly size: number;
  /**
   * Copies up to `into.length` bytes from `position` into `into` and returns how many it copied: fewer only at the
   * end of the file. May throw (an I/O error ends the load; the caller's list stays in force).
   */
  read(position: number, into: Uint8Array): number;
}

/** Where a FULL being downloaded is written as it arrives, and read back from once it is verified. */
export interface FullSpool {
  /**
   * Appends the next bytes of the file. The chunk is only valid during the call (a source may reuse its buffer):
   * write it out or copy it. May throw (disk full): the poll then fails with that error.
   */
  write(chunk: Uint8Array): void;
  /** As {@link FullFile.read}, over the bytes written so far. */
  read(position: number, into: Uint8Array): number;
}

/** A FullFile over bytes held in memory (a FULL a source gave whole). */
export function bytesFile(bytes: Uint8Array): FullFile {
  return {
    size: bytes.length,
    read: (position, into) => {
      const n = Math.max(0, Math.min(into.length, bytes.length - position));
      into.set(bytes.subarray(position, position + n));
      return n;
    },
  };
}

/** Lines of body per piece read back: 16,384 lines of 67 bytes, ~1 MiB. */
export const PIECE_LINES = 16_384;

/** Bytes per piece read back (a multiple of a FULL's line length, so no line straddles two pieces). */
export const PIECE_BYTES = PIECE_LINES * 67;

/** Reads `length` bytes at `position`; the view returned is only valid until the next call. */
export type ReadAt = (position: number, length: number) => Uint8Array;

/**
 * A ReadAt over a FullFile through one reusable buffer of `pieceBytes`. A file that ends before `length` bytes
 * were read at `position` is not the file that was checked: DIGEST_MISMATCH.
 */
export function readAtOf(file: FullFile, pieceBytes = PIECE_BYTES): ReadAt {
  let buf = new Uint8Array(Math.min(pieceBytes, Math.max(file.size, 1)));
  return (position, length) => {
    if (length > buf.length) buf = new Uint8Array(length);
    const into = buf.subarray(0, length);
    let got = 0;
    while (got < length) {
      const n = file.read(position + got, into.subarray(got));
      if (n <= 0) break;
      got += n;
    }
    if (got !== length) {
      throw new FormatError('DIGEST_MISMATCH', `the FULL ended at byte ${position + got}, short of its ${file.size}`);
    }
    return into;
  };
}

/** The SHA-256 (hex) of a whole FullFile, read in pieces. */
export function fileSha256(file: FullFile, pieceBytes = PIECE_BYTES): string {
  const read = readAtOf(file, pieceBytes);
  const hash: Hash = createHash('sha256');
  for (let at = 0; at < file.size; at += pieceBytes) hash.update(read(at, Math.min(pieceBytes, file.size - at)));
  return hash.digest('hex');
}
