// Builders for codec tests: random but reproducible lists.
import { createHash } from 'node:crypto';

import type { Entries } from '../dist/entries.js';
import { entriesFromPairs } from '../dist/entries.js';
import type { FullHeader, FullList } from '../dist/full.js';
import { makeFull } from '../dist/full.js';

export const T0 = Date.UTC(2026, 10, 22, 6, 0, 0) / 1000;

export function header(serial: number, extra: Partial<FullHeader> = {}): FullHeader {
  return {
    listId: 'demo',
    serial,
    created: T0,
    expires: T0 + 7 * 86400,
    hashKey: { mode: 'licensed', id: 'demo-2026a' },
    extensions: [],
    ...extra,
  };
}

/** A deterministic hash for a small integer: the SHA-256 of its decimal form. */
export function hashOf(n: number): string {
  return createHash('sha256').update(String(n)).digest('hex');
}

const KINDS = ['D', 'H', 'U', 'P'] as const;

/** A list whose entries are the hashes of the given ids with the given kinds (index into D, H, U, P). */
export function listOf(
  serial: number,
  ids: Iterable<readonly [number, number]>,
  extra: Partial<FullHeader> = {},
): FullList {
  const pairs = [...ids].map(([id, kind]) => [hashOf(id), KINDS[kind % 4]!] as const);
  return makeFull(header(serial, extra), entriesFromPairs(pairs));
}

export function entryMap(e: Entries): Map<string, number> {
  const m = new Map<string, number>();
  for (let n = 0; n < e.count; n++) {
    m.set(Buffer.from(e.hashes.subarray(n * 32, n * 32 + 32)).toString('hex'), e.kinds[n]!);
  }
  return m;
}
