// A streaming release source and a spool in memory, for the tests of the streamed FULL path (stream.test.ts).
import { FormatError } from '../dist/errors.js';
import type { FullFile, FullSpool } from '../dist/spool.js';
import type { ChunkSink, StreamOptions, StreamResult } from '../dist/source.js';
import { MemorySource } from './release-helpers.ts';

/** Chunk lengths to cut a file of `total` bytes into, from a rule. */
export type Chunker = (total: number) => number[];

export const fixedChunks =
  (size: number): Chunker =>
  (total) =>
    Array.from({ length: Math.ceil(total / size) }, (_, i) => Math.min(size, total - i * size));

/** Chunks of the lengths given, cycled (each at least 1 byte). */
export const cycledChunks =
  (sizes: readonly number[]): Chunker =>
  (total) => {
    const out: number[] = [];
    for (let at = 0, i = 0; at < total; i++) {
      const n = Math.min(Math.max(1, sizes[i % sizes.length]!), total - at);
      out.push(n);
      at += n;
    }
    return out;
  };

/**
 * MemorySource with `stream`: the file is cut by `chunker`, each chunk copied into one reused buffer (a chunk is
 * only valid during the call, as with a real source), counted against the caps before it is delivered.
 */
export class StreamingSource extends MemorySource {
  chunker: Chunker = fixedChunks(4096);
  readonly streamed: string[] = [];

  async stream(path: string, options: StreamOptions, onChunk: ChunkSink): Promise<StreamResult> {
    this.fetched.push(path);
    this.streamed.push(path);
    const body = this.files.get(path);
    if (body === undefined) return { status: 'absent' };
    const sizes = this.chunker(body.length);
    const scratch = new Uint8Array(Math.max(1, ...sizes));
    let total = 0;
    for (const n of sizes) {
      const chunk = body.subarray(total, total + n);
      total += n;
      if (options.exactSize !== undefined && total > options.exactSize) {
        throw new FormatError('SIZE_MISMATCH', `${path}: past ${options.exactSize}`);
      }
      if (total > options.maxBytes) throw new FormatError('TOO_LARGE', `${path} over the cap`);
      scratch.set(chunk);
      await onChunk(scratch.subarray(0, n));
      scratch.fill(0xee); // what a reused buffer would hold next
    }
    if (options.exactSize !== undefined && total !== options.exactSize) {
      throw new FormatError('SIZE_MISMATCH', `${path}: ${total} bytes, expected ${options.exactSize}`);
    }
    return { status: 'ok', size: total };
  }
}

/** A spool in memory. `maxRead` caps what one read returns (short reads, as a file may give). */
export class MemorySpool implements FullSpool {
  private buf = new Uint8Array(1024);
  length = 0;
  writes = 0;
  constructor(readonly maxRead = Infinity) {}

  write(chunk: Uint8Array): void {
    this.writes++;
    if (this.length + chunk.length > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + chunk.length));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    this.buf.set(chunk, this.length);
    this.length += chunk.length;
  }

  read(position: number, into: Uint8Array): number {
    const n = Math.max(0, Math.min(into.length, this.length - position, this.maxRead));
    into.set(this.buf.subarray(position, position + n));
    return n;
  }

  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

/** A FullFile over bytes, with short reads of at most `maxRead` bytes, and a hook run before every read. */
export function fileOf(bytes: Uint8Array, maxRead = Infinity, beforeRead?: (reads: number) => void): FullFile {
  let reads = 0;
  return {
    size: bytes.length,
    read(position, into) {
      beforeRead?.(reads++);
      const n = Math.max(0, Math.min(into.length, bytes.length - position, maxRead));
      into.set(bytes.subarray(position, position + n));
      return n;
    },
  };
}
