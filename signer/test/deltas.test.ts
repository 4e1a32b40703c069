// Publishing serials 1..10 with random changes: every delta in the directory, applied to its base FULL, gives
// the target FULL byte for byte, and every release verifies as a daemon sees it. A fixed number of random histories
// (fast-check).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import fc from 'fast-check';
import t from 'tap';

import {
  ListKey,
  applyDelta,
  generateKeyPair,
  parseDelta,
  parseFull,
  parseIndex,
  serializeFull,
} from '@hashwall/format';

import { publish } from '../dist/commands/publish.js';
import { verifyRelease } from '../dist/commands/verify.js';
import { buildFromSource } from '../dist/source.js';
import { MEMORY_TMP } from '../../test/helpers/tmp.ts';
import { T0, tempDir } from './helpers.ts';

const KEY = new ListKey('demo-2026a', new Uint8Array(32).fill(0x0b));
const SIGNER = generateKeyPair();
const NOW = T0 + 3600;

type Keyword = 'domain' | 'host' | 'url';
const KEYWORDS: readonly Keyword[] = ['domain', 'host', 'url'];

/** One change: add (or re-kind) entry `id` with a keyword, or remove it. */
const change = fc.record({
  id: fc.nat({ max: 60 }),
  keyword: fc.constantFrom<Keyword | 'remove'>('domain', 'host', 'url', 'remove'),
});

function sourceText(state: ReadonlyMap<number, Keyword>): string {
  const lines: string[] = [];
  for (const [id, kw] of state) {
    // Distinct labels per id, so no entry lies below another's domain (that is covered in source.test.ts).
    lines.push(kw === 'url' ? `url http://n${id}.example/p/${id}` : `${kw} n${id}.example`);
  }
  return lines.join('\n') + '\n';
}

/** Random histories per run: what a quiet 2-core machine checked in the 10 s this test once had. */
const HISTORIES = 20;

t.test('every delta applied to its base gives the FULL byte for byte (serials 1..10, random changes)', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat({ max: 60 }), fc.constantFrom(...KEYWORDS)), { maxLength: 40 }),
      fc.array(fc.array(change, { maxLength: 12 }), { minLength: 9, maxLength: 9 }),
      async (initial, steps) => {
        runs++;
        // 200 publishes, each file fsynced: in memory where the machine allows (the bytes are what is checked).
        const dir = tempDir(t, 'hashwall-signer-', MEMORY_TMP);
        const state = new Map<number, Keyword>(initial);
        for (let serial = 1; serial <= 10; serial++) {
          if (serial > 1) {
            for (const c of steps[serial - 2]!) {
              if (c.keyword === 'remove') state.delete(c.id);
              else state.set(c.id, c.keyword);
            }
          }
          const built = buildFromSource(Buffer.from(sourceText(state)), {
            listId: 'demo',
            serial,
            created: T0 + serial,
            expires: T0 + 7 * 86400,
            key: KEY,
          });
          if (!built.bytes) throw new Error(JSON.stringify(built.errors));
          await publish({ dir, fullBytes: built.bytes, signers: [SIGNER], now: NOW, warn: () => undefined });
        }
        // Every delta ever written, against the FULLs in the directory.
        const deltas = readdirSync(join(dir, 'delta')).filter((n) => n.endsWith('.hwld'));
        // Serial s got deltas from min(s - 1, 7) earlier serials.
        const expected = Array.from({ length: 10 }, (_, i) => Math.min(i, 7)).reduce((a, b) => a + b, 0);
        if (deltas.length !== expected) throw new Error(`${deltas.length} deltas, expected ${expected}`);
        for (const name of deltas) {
          const delta = parseDelta(readFileSync(join(dir, 'delta', name)));
          const base = parseFull(readFileSync(join(dir, 'full', `${delta.header.baseSerial}.hwl`)));
          const target = readFileSync(join(dir, 'full', `${delta.header.serial}.hwl`));
          const rebuilt = serializeFull(applyDelta(base, delta));
          if (!rebuilt.equals(target)) throw new Error(`${name} does not rebuild full/${delta.header.serial}.hwl`);
        }
        const index = parseIndex(readFileSync(join(dir, 'index.hwl')));
        if (index.header.seq !== 10 || index.header.serial !== 10) throw new Error('index seq/serial');
        if (index.deltas.map((d) => d.baseSerial).join() !== '3,4,5,6,7,8,9') throw new Error('delta bases');
        const report = await verifyRelease({ location: dir, trusted: [SIGNER.publicKey], now: NOW });
        if (!report.ok) throw new Error(JSON.stringify(report.items));
      },
    ),
    // A fixed count, not a time limit: a busy machine checks as many histories as a quiet one.
    { numRuns: HISTORIES },
  );
  t.ok(runs >= HISTORIES, `${runs} random histories of 10 serials`);
});
