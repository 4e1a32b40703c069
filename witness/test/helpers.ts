// Shared helpers of the witness tests: temp dirs, logs (the tlog tests' TestLog), add-checkpoint bodies.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { MemoryTiles, entry } from '../../transparency-log/test/helpers.ts';
import { ORIGIN, TestLog } from '../../transparency-log/test/log-helpers.ts';
import { TileHashReader, formatAddCheckpoint, parseLogKey, type Hash } from '@hashwall/tlog';
import type { Test } from 'tap';

export { ORIGIN, TestLog, entry };

export function tempDir(t: Test, prefix = 'hashwall-witness-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The consistency proof from `oldSize` to the log's current size, read from its tiles. */
export async function proofFrom(log: TestLog, oldSize: number, size = log.entries.length): Promise<Hash[]> {
  const tiles = new MemoryTiles();
  for (const [p, b] of log.files) if (p.startsWith('log/')) tiles.files.set(p.slice(4), b);
  return oldSize === 0 ? [] : new TileHashReader(tiles, size).consistencyProof(oldSize);
}

/** An add-checkpoint body for the log's checkpoint of `size` (the latest by default), from `oldSize`. */
export async function body(log: TestLog, oldSize: number, size = log.entries.length): Promise<Uint8Array> {
  const checkpoint = log.checkpoints.get(size);
  if (checkpoint === undefined) throw new Error(`no checkpoint of size ${size}`);
  return formatAddCheckpoint({ oldSize, proof: await proofFrom(log, oldSize, size), checkpoint });
}

/** The witness's view of a log: its origin and key. */
export function logsOf(...logs: TestLog[]): Map<string, { origin: string; keys: ReturnType<typeof parseLogKey>[] }> {
  return new Map(logs.map((l) => [ORIGIN, { origin: ORIGIN, keys: [parseLogKey(l.key.vkey)] }]));
}
