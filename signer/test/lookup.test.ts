// `check`'s own walk agrees with the daemon's matcher (ListMatcher of @hashwall/format) on random lists and names,
// so the details an auditor is shown match what a daemon does. A fixed number of random lists (fast-check).
import fc from 'fast-check';
import t from 'tap';

import { ListKey, ListMatcher, entriesFromPairs, type Kind } from '@hashwall/format';

import { lookupName } from '../dist/lookup.js';

// Labels and suffixes chosen so that names collide often and public suffixes (ICANN and private) occur.
const LABELS = ['a', 'b', 'www', 'x-y', 'c_d'];
const SUFFIXES = ['example', 'example.com', 'co.uk', 'github.io', 'test', 'com'];

const name = fc
  .tuple(fc.array(fc.constantFrom(...LABELS), { maxLength: 3 }), fc.constantFrom(...SUFFIXES))
  .map(([labels, suffix]) => [...labels, suffix].join('.'));

t.test('the walk gives the same verdict as the daemon matcher', async (t) => {
  const key = new ListKey('demo-2026a', new Uint8Array(32).fill(0x0b)).hashKey();
  let runs = 0;
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(name, fc.constantFrom<Kind>('D', 'H', 'P', 'U')), {
        selector: ([n]) => n,
        maxLength: 25,
      }),
      fc.array(name, { minLength: 1, maxLength: 20 }),
      (listed, queries) => {
        runs++;
        const entries = entriesFromPairs(listed.map(([n, kind]) => [key.hashHex(n), kind] as const));
        const matcher = new ListMatcher('demo', key, entries.hashes, entries.kinds);
        for (const q of queries) {
          let ours: ReturnType<typeof lookupName>['verdict'];
          try {
            ours = lookupName(entries, key, q).verdict;
          } catch (err) {
            // A name that cannot be listed (a single label): the daemon gives no verdict either.
            if ((err as { code?: string }).code !== 'INVALID_NAME') throw err;
          }
          const theirs = matcher.verdict(q);
          const a = ours ? `${ours.kind} ${ours.name}` : 'none';
          const b = theirs ? `${theirs.kind} ${q.slice(theirs.matchStart)}` : 'none';
          if (a !== b) throw new Error(`${q}: check says ${a}, the matcher ${b}`);
        }
      },
    ),
    { numRuns: 2000 },
  );
  t.ok(runs > 0, `${runs} random lists`);
});
