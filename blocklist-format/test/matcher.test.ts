import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import t from 'tap';

import { entriesFromPairs } from '../dist/entries.js';
import { HashKey } from '../dist/hash.js';
import { KIND_D, KIND_H, KIND_P, type Kind } from '../dist/kinds.js';
import {
  KEPT_HASH_BYTES,
  ListMatcher,
  MatcherSet,
  matcherTransferList,
  prepareMatcher,
  testedSuffixes,
  type Verdict,
} from '../dist/matcher.js';
import { queryNameIsListable } from '../dist/names.js';

interface VerdictCase {
  query: string;
  verdict: { kind: string; listId: string; matched: string } | null;
  note: string;
}
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/hash/verdicts.json', import.meta.url), 'utf8')) as {
  key: string;
  lists: { id: string; entries: [string, Kind][] }[];
  cases: VerdictCase[];
};

const KEY = new HashKey(Buffer.from(fixture.key, 'hex'));

/** A matcher whose entries are h(name) for the given names (as a signer would hash them; no checks here). */
function build(listId: string, entries: readonly (readonly [string, Kind])[], key = KEY): ListMatcher {
  const e = entriesFromPairs(entries.map(([name, kind]) => [key.hashHex(name), kind] as const));
  return new ListMatcher(listId, key, e.hashes, e.kinds);
}

/** The verdict as `{kind, listId, matched}`, `matched` being the (folded) name whose hash matched. */
function described(name: string, v: Verdict | null): { kind: string; listId: string; matched: string } | null {
  if (v === null) return null;
  const norm = name.toLowerCase().replace(/\.$/, '');
  return { kind: v.kind, listId: v.listId, matched: norm.slice(v.matchStart) };
}

t.test('gives every verdict of the shared fixture, string and bytes variants alike', async (t) => {
  const set = new MatcherSet(fixture.lists.map((l) => build(l.id, l.entries)));
  t.ok(fixture.cases.length >= 30);
  for (const c of fixture.cases) {
    t.same(described(c.query, set.verdict(c.query)), c.verdict, `${c.note}: ${c.query.slice(0, 50)}`);
    const bytes = Buffer.from(`xx${c.query}yy`, 'latin1');
    const v = set.verdictBytes(bytes, 2, bytes.length - 2);
    const shifted = v && { ...v, matchStart: v.matchStart - 2 };
    t.same(described(c.query, shifted), c.verdict, `bytes: ${c.query.slice(0, 50)}`);
  }
});

t.test('D covers the name and every name below it, and nothing beside it', async (t) => {
  const m = build('demo', [['example.test', 'D']]);
  t.same(m.verdict('example.test'), { kind: 'D', listId: 'demo', matchStart: 0 });
  t.same(m.verdict('www.example.test'), { kind: 'D', listId: 'demo', matchStart: 4 });
  t.same(m.verdict('a.b.c.d.example.test'), { kind: 'D', listId: 'demo', matchStart: 8 });
  for (const miss of ['xexample.test', 'example.test.test', 'example.tes', 'test', 'other.test']) {
    t.equal(m.verdict(miss), null, miss);
  }
});

t.test('H matches the exact name only', async (t) => {
  const m = build('demo', [['host.example.test', 'H']]);
  t.same(m.verdict('host.example.test'), { kind: 'H', listId: 'demo', matchStart: 0 });
  t.equal(m.verdict('www.host.example.test'), null, 'not below');
  t.equal(m.verdict('example.test'), null, 'not above');
});

t.test('P steers the exact name only and takes precedence over a D parent in its own list', async (t) => {
  const m = build('demo', [
    ['p.example.test', 'P'],
    ['example.test', 'D'],
  ]);
  t.same(m.verdict('p.example.test'), { kind: 'P', listId: 'demo', matchStart: 0 }, 'longest match: P');
  t.same(m.verdict('www.p.example.test'), { kind: 'D', listId: 'demo', matchStart: 6 }, 'P is exact; D below');
  const onlyP = build('demo', [['p.example.test', 'P']]);
  t.equal(onlyP.verdict('www.p.example.test'), null, 'nothing below a P');
  t.equal(onlyP.verdict('example.test'), null, 'nothing above a P');
});

t.test('the longest match decides', async (t) => {
  const m = build('demo', [
    ['example.test', 'D'],
    ['sub.example.test', 'D'],
    ['www.sub.example.test', 'H'],
  ]);
  t.same(m.verdict('a.sub.example.test'), { kind: 'D', listId: 'demo', matchStart: 2 }, 'the deeper D');
  t.same(m.verdict('www.sub.example.test'), { kind: 'H', listId: 'demo', matchStart: 0 }, 'H before both D');
  t.same(m.verdict('a.www.sub.example.test'), { kind: 'D', listId: 'demo', matchStart: 6 }, 'H not on a parent');
});

t.test('D entries on public suffixes are inert (com, github.io, co.uk)', async (t) => {
  const m = build('demo', [
    ['com', 'D'],
    ['github.io', 'D'],
    ['co.uk', 'D'],
    ['example.co.uk', 'D'],
  ]);
  for (const name of ['example.com', 'www.example.com', 'com', 'a.github.io', 'github.io', 'co.uk', 'x.co.uk']) {
    t.equal(m.verdict(name), null, name);
  }
  t.same(m.verdict('www.example.co.uk'), { kind: 'D', listId: 'demo', matchStart: 4 }, 'a registrable name works');
  const hp = build('demo', [
    ['github.io', 'H'],
    ['co.uk', 'P'],
  ]);
  t.equal(hp.verdict('github.io'), null, 'H on a public suffix is inert too');
  t.equal(hp.verdict('co.uk'), null, 'and P');
});

t.test('never tests a single-label name', async (t) => {
  t.same(testedSuffixes('test'), []);
  t.same(testedSuffixes('a.b.test'), ['a.b.test', 'b.test']);
  t.same(testedSuffixes('localhost.'), []);
  const m = build('demo', [['intranet', 'D']]);
  t.equal(m.verdict('intranet'), null);
  t.equal(m.verdict('intranet.'), null);
  t.equal(m.verdict('host.intranet'), null);
});

t.test('skips suffixes that could not be listed, and still tests shorter ones', async (t) => {
  const m = build('demo', [
    ['example.test', 'D'],
    ['-bad.example.test', 'H'],
    ['bad-.example.test', 'H'],
    ['bad!.example.test', 'H'],
    ['BAD.example.test', 'H'],
    ['x'.repeat(64) + '.example.test', 'H'],
  ]);
  const cases: [string, number][] = [
    ['-bad.example.test', 5],
    ['bad-.example.test', 5],
    ['bad!.example.test', 5],
    ['ü.example.test', 2],
    ['a b.example.test', 4],
    ['x'.repeat(64) + '.example.test', 65],
    ['a..example.test', 3],
    ['.example.test', 1],
  ];
  for (const [name, start] of cases) {
    t.same(m.verdict(name), { kind: 'D', listId: 'demo', matchStart: start }, JSON.stringify(name));
  }
  t.same(m.verdict('BAD.example.test'), { kind: 'D', listId: 'demo', matchStart: 4 }, 'folded to bad.example.test');
  t.same(testedSuffixes('-bad.example.test'), ['example.test']);
  t.same(testedSuffixes('a.b!c.d.example.test'), ['d.example.test', 'example.test']);
});

t.test('tests no suffix of a name whose last label is numeric (an IPv4 form)', async (t) => {
  const m = build('demo', [
    ['1.2.3.4', 'D'],
    ['example.123', 'D'],
    ['example.0x1f', 'D'],
    ['example.0x', 'D'],
    ['example.1a', 'D'],
  ]);
  for (const name of ['1.2.3.4', 'a.1.2.3.4', 'example.123', 'www.example.123', 'example.0x1f', 'example.0x']) {
    t.equal(m.verdict(name), null, name);
    t.same(testedSuffixes(name), [], `${name}: nothing tested`);
  }
  t.same(m.verdict('example.1a'), { kind: 'D', listId: 'demo', matchStart: 0 }, 'a label with a letter is no number');
});

t.test('respects the 253-octet limit per suffix', async (t) => {
  const tail = 'example.test';
  const m = build('demo', [[tail, 'D']]);
  // A name of exactly 253 octets is tested whole; 254 is not, but its suffixes are.
  const l63 = 'a'.repeat(63);
  const n253 = `${l63}.${l63}.${l63}.${'b'.repeat(60 - tail.length)}.${tail}`;
  t.equal(n253.length, 253);
  t.equal(testedSuffixes(n253)[0], n253);
  t.equal(testedSuffixes(`c${n253}`)[0], n253.slice(64), 'the 254-octet name is skipped');
  const huge = 'a.'.repeat(100_000) + tail;
  t.same(m.verdict(huge), { kind: 'D', listId: 'demo', matchStart: huge.length - tail.length });
  const hugeBytes = Buffer.from(huge);
  t.same(m.verdictBytes(hugeBytes, 0, hugeBytes.length), {
    kind: 'D',
    listId: 'demo',
    matchStart: huge.length - tail.length,
  });
  t.ok(testedSuffixes(huge).every((s) => s.length <= 253));
  t.same(testedSuffixes('x'.repeat(1000) + '.example.test'), ['example.test'], 'a truncated first label is skipped');
});

t.test('combines lists: any block wins, ties go to configuration order, P only when nothing blocks', async (t) => {
  const first = build('first', [
    ['a.example.test', 'D'],
    ['steer.example.test', 'P'],
    ['both.example.test', 'P'],
  ]);
  const second = build('second', [
    ['x.a.example.test', 'D'],
    ['steer.example.test', 'D'],
    ['both.example.test', 'P'],
    ['b.example.test', 'H'],
  ]);
  const set = new MatcherSet([first, second]);
  t.same(set.verdict('y.x.a.example.test'), { kind: 'D', listId: 'first', matchStart: 4 }, 'first list wins a tie');
  t.same(
    new MatcherSet([second, first]).verdict('y.x.a.example.test'),
    { kind: 'D', listId: 'second', matchStart: 2 },
    'the order decides, not the match length',
  );
  t.same(set.verdict('steer.example.test'), { kind: 'D', listId: 'second', matchStart: 0 }, 'a block beats a P');
  t.same(set.verdict('both.example.test'), { kind: 'P', listId: 'first', matchStart: 0 }, 'the first P');
  t.same(set.verdict('b.example.test'), { kind: 'H', listId: 'second', matchStart: 0 });
  t.equal(set.verdict('c.example.test'), null);
  t.same(
    set.matchers.map((m) => m.listId),
    ['first', 'second'],
  );
});

t.test('lists hashed with different keys each hash with their own key', async (t) => {
  const other = new HashKey(randomBytes(32));
  const a = build('a', [['one.example.test', 'D']]);
  const b = build('b', [['two.example.test', 'D']], other);
  const set = new MatcherSet([a, b]);
  t.same(set.verdict('www.one.example.test'), { kind: 'D', listId: 'a', matchStart: 4 });
  t.same(set.verdict('www.two.example.test'), { kind: 'D', listId: 'b', matchStart: 4 });
  // The same entry read with the wrong key finds nothing.
  const wrongKey = new ListMatcher('c', KEY, other.hash('two.example.test'), new Uint8Array([KIND_D]));
  t.equal(wrongKey.verdict('two.example.test'), null);
});

t.test('an empty list and an empty set give no verdict', async (t) => {
  const empty = new ListMatcher('empty', KEY, new Uint8Array(0), new Uint8Array(0));
  t.equal(empty.size, 0);
  t.same(empty.counts, { D: 0, H: 0, U: 0, P: 0 });
  t.equal(empty.verdict('example.test'), null);
  t.equal(empty.lookup(new Int32Array(8)), 0);
  t.equal(new MatcherSet([]).verdict('www.example.test'), null);
  t.equal(new MatcherSet([empty]).verdictBytes(Buffer.from('www.example.test'), 0, 16), null);
});

t.test('keeps D, H and P, drops U, and counts every kind', async (t) => {
  const m = build('demo', [
    ['a.test', 'D'],
    ['b.test', 'H'],
    ['c.test', 'P'],
    ['d.test/x/', 'U'],
    ['d.test/y/', 'U'],
  ]);
  t.equal(m.size, 3);
  t.same(m.counts, { D: 1, H: 1, U: 2, P: 1 });
  const words = new Int32Array(8);
  const lookup = (s: string): number => {
    const b = Buffer.from(s);
    KEY.hashInto(b, 0, b.length, words);
    return m.lookup(words);
  };
  t.equal(lookup('a.test'), KIND_D);
  t.equal(lookup('b.test'), KIND_H);
  t.equal(lookup('c.test'), KIND_P);
  t.equal(lookup('d.test/x/'), 0, 'a U entry is not kept');
  const u32 = new Uint32Array(8);
  KEY.hashInto(Buffer.from('b.test'), 0, 6, u32);
  t.equal(m.lookup(u32), KIND_H, 'lookup takes Uint32Array words too');
});

t.test('finds every entry and nothing else in a large random list', async (t) => {
  const n = 50_000;
  const names = Array.from({ length: n }, (_, i) => `n${i}.example.test`);
  const kinds: Kind[] = ['D', 'H', 'P'];
  const m = build(
    'big',
    names.map((s, i) => [s, kinds[i % 3]!] as const),
  );
  let found = 0;
  for (let i = 0; i < n; i++) {
    const v = m.verdict(names[i]!);
    if (v !== null && v.kind === kinds[i % 3] && v.matchStart === 0) found++;
  }
  t.equal(found, n, 'every name');
  let misses = 0;
  for (let i = 0; i < 20_000; i++) if (m.verdict(`m${i}.example.test`) === null) misses++;
  t.equal(misses, 20_000, 'no other name');
  t.ok(m.byteLength / m.size < 24, `${(m.byteLength / m.size).toFixed(1)} bytes per entry`);
});

t.test('decides on the first KEPT_HASH_BYTES (16) bytes of a hash, every one of them', async (t) => {
  t.equal(KEPT_HASH_BYTES, 16);
  const hash = KEY.hash('kept.example.test');
  const m = new ListMatcher('kept', KEY, hash, new Uint8Array([KIND_D]));
  const words = new Int32Array(8);
  KEY.hashInto(Buffer.from('kept.example.test'), 0, 17, words);
  t.equal(m.lookup(words), KIND_D, 'the hash itself');
  // The words as hashInto writes them: big-endian words of the hash bytes.
  for (let byte = 0; byte < 32; byte++) {
    const flipped = Int32Array.from(words);
    flipped[byte >> 2] = flipped[byte >> 2]! ^ (1 << (24 - (byte & 3) * 8)); // the low bit of that byte
    const expected = byte < KEPT_HASH_BYTES ? 0 : KIND_D;
    if (m.lookup(flipped) !== expected) t.fail(`a bit of byte ${byte} changed: ${m.lookup(flipped)}`);
  }
  t.pass('a change in bytes 0-15 misses; bytes 16-31 are not held');
});

t.test('refuses entry arrays that are not a FULL body with MALFORMED', async (t) => {
  const two = entriesFromPairs([
    [KEY.hashHex('a.test'), 'D'],
    [KEY.hashHex('b.test'), 'D'],
  ]);
  const swapped = new Uint8Array(64);
  swapped.set(two.hashes.subarray(32), 0);
  swapped.set(two.hashes.subarray(0, 32), 32);
  t.throws(() => new ListMatcher('demo', KEY, swapped, two.kinds), { code: 'MALFORMED' }, 'descending');
  const dup = new Uint8Array(64);
  dup.set(two.hashes.subarray(0, 32), 0);
  dup.set(two.hashes.subarray(0, 32), 32);
  t.throws(() => new ListMatcher('demo', KEY, dup, two.kinds), { code: 'MALFORMED' }, 'a duplicate');
  t.throws(() => new ListMatcher('demo', KEY, two.hashes.subarray(0, 63), two.kinds), { code: 'MALFORMED' });
  t.throws(() => new ListMatcher('demo', KEY, two.hashes, new Uint8Array([KIND_D])), { code: 'MALFORMED' });
  t.throws(() => new ListMatcher('demo', KEY, two.hashes, new Uint8Array([KIND_D, 0x58])), { code: 'MALFORMED' });
  t.throws(() => new ListMatcher('Demo', KEY, two.hashes, two.kinds), { code: 'MALFORMED' }, 'a bad list-id');
});

t.test('copies its input: changing the arrays afterwards changes nothing', async (t) => {
  const e = entriesFromPairs([[KEY.hashHex('example.test'), 'D']]);
  const m = new ListMatcher('demo', KEY, e.hashes, e.kinds);
  e.hashes.fill(0);
  e.kinds.fill(KIND_H);
  t.same(m.verdict('www.example.test'), { kind: 'D', listId: 'demo', matchStart: 4 });
});

t.test('refuses a byte range out of bounds with RangeError', async (t) => {
  const m = build('demo', [['example.test', 'D']]);
  const b = Buffer.from('example.test');
  t.throws(() => m.verdictBytes(b, -1, 4), RangeError);
  t.throws(() => m.verdictBytes(b, 5, 4), RangeError);
  t.throws(() => m.verdictBytes(b, 0, 13), RangeError);
  t.throws(() => new MatcherSet([m]).verdictBytes(b, 0, 13), RangeError);
  t.equal(m.verdictBytes(b, 3, 3), null, 'an empty range');
});

// Random names over a small alphabet that hits every rule-3 edge: hyphens at label ends, '_', bad characters,
// upper case, empty labels, long labels, numeric last labels, a trailing dot.
const label = fc.oneof(
  fc.stringMatching(/^[a-z0-9_-]{1,8}$/),
  fc.constantFrom('example', 'test', 'com', 'co', 'uk', 'github', 'io', '0x1f', '123', 'A', '', 'a!b', 'ü', '-'),
  fc.stringMatching(/^[a-z]{60,66}$/),
);
const name = fc
  .tuple(fc.array(label, { minLength: 0, maxLength: 7 }), fc.boolean())
  .map(([labels, dot]) => labels.join('.') + (dot ? '.' : ''));

t.test('tests exactly the suffixes that queryNameIsListable accepts (property)', async (t) => {
  fc.assert(
    fc.property(name, (s) => {
      const norm = s.replace(/\.$/, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
      const labels = norm.split('.');
      const want: string[] = [];
      for (let i = 0; i < labels.length - 1; i++) {
        const suffix = labels.slice(i).join('.');
        if (queryNameIsListable(suffix)) want.push(suffix);
      }
      const got = testedSuffixes(s);
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${s}: ${got.join(' ')} != ${want.join(' ')}`);
    }),
    { numRuns: 20_000 },
  );
  t.pass('no counterexample');
});

t.test('the bytes variant agrees with the string variant on random names (property)', async (t) => {
  // A list with a D, H and P entry for many names the generator makes, so hits happen.
  const entries = new Map<string, Kind>();
  const sample = fc.sample(name, { numRuns: 3000, seed: 42 });
  sample.forEach((s, i) => {
    for (const suffix of testedSuffixes(s)) entries.set(suffix, (['D', 'H', 'P'] as const)[i % 3]!);
  });
  const set = new MatcherSet([build('one', [...entries].slice(0, 2000)), build('two', [...entries].slice(1500))]);
  let hits = 0;
  fc.assert(
    fc.property(fc.oneof(name, fc.constantFrom(...sample)), fc.nat(5), (s, pad) => {
      const v = set.verdict(s);
      const bytes = Buffer.concat([Buffer.alloc(pad, 0x2e), Buffer.from(s, 'latin1'), Buffer.alloc(pad, 0x41)]);
      const w = set.verdictBytes(bytes, pad, pad + Buffer.byteLength(s, 'latin1'));
      if (v !== null) hits++;
      const shifted = w && { ...w, matchStart: w.matchStart - pad };
      if (JSON.stringify(v) !== JSON.stringify(shifted)) throw new Error(`${s}: ${JSON.stringify([v, w])}`);
    }),
    { numRuns: 20_000 },
  );
  t.ok(hits > 100, `${hits} hits among the runs`);
});

t.test('never throws on arbitrary strings and bytes (property)', async (t) => {
  const m = build('demo', [['example.test', 'D']]);
  fc.assert(
    fc.property(
      fc.string({ unit: 'binary', maxLength: 600, size: 'max' }),
      fc.uint8Array({ maxLength: 600, size: 'max' }),
      (s, b) => {
        const v = m.verdict(s);
        const w = m.verdictBytes(b, 0, b.length);
        return (v === null || v.kind === 'D') && (w === null || w.kind === 'D');
      },
    ),
    { numRuns: 4_000 },
  );
  t.pass('no exception');
});

t.test('parts built by prepareMatcher cross a thread boundary and give the same verdicts', async (t) => {
  const key = new HashKey(new Uint8Array(32).fill(0x0b));
  const entries = entriesFromPairs([
    [key.hashHex('example.com'), 'D'],
    [key.hashHex('www.example.org'), 'H'],
    [key.hashHex('example.org/abuse/'), 'U'],
    [key.hashHex('host.example.net'), 'P'],
  ]);
  const built = prepareMatcher(entries.hashes, entries.kinds);
  const moved = structuredClone(built, { transfer: matcherTransferList(built) });
  t.equal(built.first.byteLength, 0, 'the buffers were transferred, not copied');
  const m = new ListMatcher('demo', key, moved);
  t.same(m.counts, { D: 1, H: 1, U: 1, P: 1 });
  t.equal(m.size, 3);
  t.equal(m.verdict('a.example.com')?.kind, 'D');
  t.equal(m.verdict('www.example.org')?.kind, 'H');
  t.equal(m.verdict('host.example.net')?.kind, 'P');
  t.equal(m.verdict('example.net'), null);
  t.throws(() => new ListMatcher('demo', key, { ...moved, size: 4 }), { code: 'MALFORMED' });
  t.throws(() => new ListMatcher('demo', key, { ...moved, shift: 3 }), { code: 'MALFORMED' });
});

/** A hash key that counts the HMACs it computes (the matcher's only costly step). */
class CountingKey extends HashKey {
  calls = 0;
  override hashInto(bytes: Uint8Array, start: number, end: number, out: Uint32Array | Int32Array | Uint8Array): void {
    this.calls++;
    super.hashInto(bytes, start, end, out);
  }
}

t.test('a parent found clear twice is remembered: names below it cost one HMAC per list', async (t) => {
  const key = new CountingKey(Buffer.from(fixture.key, 'hex'));
  const m = build(
    'demo',
    [
      ['bad.example.test', 'D'],
      ['host.cdn.example.test', 'H'],
    ],
    key,
  );
  const set = new MatcherSet([m]);
  const hashes = (name: string): number => {
    const before = key.calls;
    set.verdict(name);
    return key.calls - before;
  };
  t.equal(hashes('a1.cdn.example.test'), 3, 'first walk: the name, cdn.example.test, example.test');
  t.equal(set.clearParents, 0, 'seen once: not remembered yet');
  t.equal(hashes('a2.cdn.example.test'), 3, 'second walk finds the parent clear again');
  t.equal(set.clearParents, 1);
  t.equal(hashes('a3.cdn.example.test'), 1, 'the name itself only');
  t.same(set.verdict('host.cdn.example.test'), { kind: 'H', listId: 'demo', matchStart: 0 }, 'the name itself still');
  t.equal(set.verdict('x.host.cdn.example.test'), null, 'an H entry covers nothing below it');
  // A parent with a D entry at it or above is never remembered.
  for (let i = 0; i < 3; i++) t.same(set.verdict(`w${i}.x.bad.example.test`)?.kind, 'D');
  t.equal(set.clearParents, 1, 'x.bad.example.test is not clear');
  t.equal(hashes('w9.x.bad.example.test'), 3, 'and costs the whole walk');
  t.equal(new MatcherSet([m], { clearParents: 0 }).clearParents, 0);
});

t.test('the memo of clear parents never changes a verdict (property, against a set without it)', async (t) => {
  // Parents a few labels deep, D entries at some levels, H and P at some names; names asked again and again.
  const parents = fc.sample(fc.array(fc.stringMatching(/^[a-e]{1,2}$/), { minLength: 1, maxLength: 3 }), {
    numRuns: 60,
    seed: 7,
  });
  const names = parents.map((p) => [...p, 'example', 'test'].join('.'));
  const entries = new Map<string, Kind>();
  names.forEach((n, i) => {
    if (i % 4 === 0) entries.set(n, 'D');
    if (i % 5 === 1) entries.set(`h.${n}`, 'H');
    if (i % 7 === 2) entries.set(`p.${n}`, 'P');
  });
  const lists = [build('one', [...entries].slice(0, 30)), build('two', [...entries].slice(20))];
  const memo = new MatcherSet(lists, { clearParents: 16 }); // small: emptied many times over the run
  const plain = new MatcherSet(lists, { clearParents: 0 });
  const query = fc.tuple(fc.constantFrom('h', 'p', 'x', 'www', 'A.b', ''), fc.constantFrom(...names), fc.boolean());
  let hits = 0;
  fc.assert(
    fc.property(fc.array(query, { minLength: 1, maxLength: 40, size: 'max' }), (qs) => {
      for (const [head, parent, dot] of qs) {
        const s = (head === '' ? parent : `${head}.${parent}`) + (dot ? '.' : '');
        const want = JSON.stringify(plain.verdict(s));
        if (want !== 'null') hits++;
        const got = JSON.stringify(memo.verdict(s));
        const bytes = Buffer.from(s, 'latin1');
        const gotBytes = JSON.stringify(memo.verdictBytes(bytes, 0, bytes.length));
        if (got !== want || gotBytes !== want) throw new Error(`${s}: ${got} / ${gotBytes} != ${want}`);
      }
    }),
    { numRuns: 2000, seed: 11 },
  );
  t.ok(hits > 1000, `${hits} verdicts among the queries`);
  t.ok(memo.clearParents > 0, 'the memo was used');
});
