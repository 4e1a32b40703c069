// Shared helpers of the tlog tests: fixtures, an in-memory tile store, logs built entry by entry.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { LogAppender, type TileReader } from '../dist/index.js';

export const FIXTURES = fileURLToPath(new URL('../../fixtures/tlog/', import.meta.url));

export function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(`${FIXTURES}${name}`, 'utf8')) as T;
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

/** A TileReader over files in memory, counting reads; `maxBytes` is enforced as a real reader would. */
export class MemoryTiles implements TileReader {
  readonly files = new Map<string, Uint8Array>();
  reads = 0;

  async read(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
    this.reads++;
    const f = this.files.get(path);
    if (f !== undefined && f.byteLength > maxBytes) throw new Error(`${path}: over ${maxBytes}`);
    return f;
  }

  add(files: ReadonlyMap<string, Uint8Array>): this {
    for (const [p, b] of files) this.files.set(p, b);
    return this;
  }
}

/** The `i`-th entry of the test logs: distinct, of varying length. */
export function entry(i: number, salt = ''): Uint8Array {
  return utf8(`${salt}entry ${i}\n`.repeat(1 + (i % 3)));
}

/** A log of `size` entries grown one publish at a time (`steps` entries a step), every tile state kept. */
export function buildLog(size: number, salt = ''): { tiles: MemoryTiles; entries: Uint8Array[] } {
  const tiles = new MemoryTiles();
  const appender = LogAppender.empty();
  const entries: Uint8Array[] = [];
  for (let i = 0; i < size; i++) {
    const e = entry(i, salt);
    entries.push(e);
    appender.add(e);
  }
  tiles.add(appender.finish());
  return { tiles, entries };
}
