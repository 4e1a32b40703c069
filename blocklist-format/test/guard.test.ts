// Guards against over-blocking (guard.ts, and exemptNames in matcher.ts): guard names parsed canonically from a
// file, the bundled top-sites list, change counts as a delta counts them (in memory and over files read in
// pieces, which must agree), and a list's parts without the entries that block a guard name.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import fc from 'fast-check';
import t from 'tap';

import { entriesFromPairs, type Entries } from '../dist/entries.js';
import { FormatError } from '../dist/errors.js';
import { makeFull, serializeFull } from '../dist/full.js';
import { TOP_SITES_URL, changeAllowance, changeCounts, changeCountsFrom, parseGuardNames } from '../dist/guard.js';
import { HashKey } from '../dist/hash.js';
import { ListMatcher, exemptNames, matcherTransferList, prepareMatcher } from '../dist/matcher.js';
import { bytesFile, type FullFile } from '../dist/spool.js';

const key = new HashKey(new Uint8Array(32).fill(0x0b));

function entries(pairs: readonly (readonly [string, 'D' | 'H' | 'U' | 'P'])[]): Entries {
  return entriesFromPairs(pairs.map(([name, kind]) => [key.hashHex(name), kind] as const));
}

/** A FULL file over bytes, read back by position (as a spool or a stored file is). */
function fileOf(e: Entries, serial: number): FullFile {
  const bytes = serializeFull(
    makeFull(
      {
        listId: 'demo',
        serial,
        created: 1_800_000_000,
        expires: 1_800_086_400,
        hashKey: { mode: 'licensed', id: 'demo-2026a' },
        extensions: [],
      },
      e,
    ),
  );
  return bytesFile(bytes);
}

t.test('guard names: one canonical name a line, comments and blanks ignored, a bad line named', async (t) => {
  const names = parseGuardNames('# critical\n\nWWW.Bank.Example.\n  Bücher.example  \n', 'critical.txt');
  t.same(names, [
    { name: 'www.bank.example', from: 'critical.txt:3' },
    { name: 'xn--bcher-kva.example', from: 'critical.txt:4' },
  ]);
  let err: unknown;
  try {
    parseGuardNames('ok.example\nnot a name\n', 'critical.txt');
  } catch (e) {
    err = e;
  }
  if (!(err instanceof FormatError)) throw new Error('no FormatError');
  t.equal(err.code, 'INVALID_NAME');
  t.match(err.message, /^critical\.txt:2: not a host name/);
});

t.test('the bundled top-sites list parses: ~500 canonical names, no reserved name', async (t) => {
  const names = parseGuardNames(readFileSync(fileURLToPath(TOP_SITES_URL), 'utf8'), 'top-sites.txt');
  t.ok(names.length > 400 && names.length <= 500, `${names.length} names`);
  t.notOk(
    names.some((n) => /(^|\.)(example|test|invalid|localhost)$/.test(n.name)),
    'reserved names left out',
  );
  t.equal(new Set(names.map((n) => n.name)).size, names.length, 'each once');
});

t.test('change counts: additions and removals, a changed kind one of each; the allowance', async (t) => {
  const a = entries([
    ['a.example', 'D'],
    ['b.example', 'D'],
    ['c.example', 'H'],
  ]);
  const b = entries([
    ['b.example', 'D'],
    ['c.example', 'D'],
    ['d.example', 'D'],
    ['e.example', 'U'],
  ]);
  t.same(changeCounts(a, b), { added: 3, removed: 2 });
  t.same(changeCountsFrom(fileOf(a, 1), fileOf(b, 2)), { added: 3, removed: 2 }, 'the same over files');
  t.same(changeCounts(a, a), { added: 0, removed: 0 });
  t.same(changeCountsFrom(fileOf(b, 1), fileOf(entries([]), 2)), { added: 0, removed: 4 }, 'to an empty list');
  t.equal(changeAllowance(1000, 25, 100), 250, 'the share of a large list');
  t.equal(changeAllowance(40, 25, 100), 100, 'the count for a small one');
});

t.test('change counts over files agree with the arrays (bounded property, across piece boundaries)', async (t) => {
  const name = fc.integer({ min: 0, max: 40_000 }).map((n) => `n${n}.example`);
  const list = fc.uniqueArray(fc.tuple(name, fc.constantFrom('D' as const, 'H' as const, 'U' as const)), {
    selector: ([n]) => n,
    maxLength: 40_000,
  });
  fc.assert(
    fc.property(list, list, (x, y) => {
      const a = entries(x);
      const b = entries(y);
      t.same(changeCountsFrom(fileOf(a, 1), fileOf(b, 2)), changeCounts(a, b));
    }),
    { numRuns: 100 },
  );
});

t.test('exemptNames leaves out exactly the entries that block a guard name', async (t) => {
  const e = entries([
    ['shop.example', 'D'], // blocks the guard www.shop.example through its parent
    ['evil.shop.example', 'H'],
    ['bank.example', 'H'], // blocks the guard bank.example itself
    ['steered.example', 'P'], // a steer is no block
    ['com', 'D'], // a public suffix: inert
    ['other.example', 'D'],
  ]);
  const parts = prepareMatcher(e.hashes, e.kinds);
  const guards = ['www.shop.example', 'bank.example', 'steered.example', 'example.com', 'free.example'];
  const r = exemptNames(parts, key, guards);
  t.same(r.blocked, [0, 1], 'the names the list blocked, by index');
  t.equal(r.entries, 2, 'two entries left out');
  const m = new ListMatcher('demo', key, r.parts);
  for (const g of guards) t.equal(m.verdict(g)?.kind === 'D' || m.verdict(g)?.kind === 'H', false, `${g} passes`);
  t.equal(m.verdict('evil.shop.example')?.kind, 'H', 'an entry below a left-out D still blocks');
  t.equal(m.verdict('x.other.example')?.kind, 'D', 'the rest of the list is untouched');
  t.equal(m.verdict('steered.example')?.kind, 'P', 'the steer stays');
  t.equal(m.size, parts.size - 2);
  t.same(m.counts, { ...parts.counts, D: parts.counts.D - 1, H: parts.counts.H - 1 });
  t.equal(exemptNames(parts, key, ['free.example']).parts, parts, 'nothing blocked: the same parts');
  t.ok(
    matcherTransferList(r.parts).every((b) => b instanceof ArrayBuffer),
    'new parts transfer as parts do',
  );
});

t.test('exemptNames: nested D entries on a guard name all go; the same result with any order', async (t) => {
  const e = entries([
    ['a.b.example', 'D'],
    ['b.example', 'D'],
  ]);
  const parts = prepareMatcher(e.hashes, e.kinds);
  const r = exemptNames(parts, key, ['x.a.b.example']);
  t.same(r.blocked, [0]);
  t.equal(r.entries, 2, 'both D entries block it: both go');
  t.equal(new ListMatcher('demo', key, r.parts).verdict('x.a.b.example'), null);
  const again = exemptNames(parts, key, ['b.example', 'x.a.b.example']);
  t.same(again.blocked, [0, 1]);
  t.equal(again.entries, 2);
});
