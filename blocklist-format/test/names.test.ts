import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import t from 'tap';

import { FormatError } from '../dist/errors.js';
import { canonicalHost, listableHost, queryNameIsListable } from '../dist/names.js';

interface ValidName {
  input: string;
  output: string;
  publicSuffix?: boolean;
  note?: string;
}
interface InvalidName {
  input: string;
  rule: string;
  listable?: boolean;
  note?: string;
}

const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../../fixtures/names/${name}`, import.meta.url), 'utf8')) as T;

const valid = fixture<{ cases: ValidName[] }>('valid.json').cases;
const invalid = fixture<{ code: string; cases: InvalidName[] }>('invalid.json');

/** Runs `fn`; returns its result, or null when it threw FormatError INVALID_NAME. Anything else propagates. */
function orRefused<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FormatError && err.code === 'INVALID_NAME') return null;
    throw err;
  }
}

t.test('canonicalizes every valid fixture name to its expected output', async (t) => {
  t.ok(valid.length >= 30, 'the fixture has cases');
  for (const c of valid) {
    t.equal(canonicalHost(c.input), c.output, JSON.stringify(c.input));
  }
});

t.test('the SPEC.md 1.1 examples give the documented A-labels', async (t) => {
  t.equal(canonicalHost('Bücher.example'), 'xn--bcher-kva.example');
  t.equal(canonicalHost('faß.de'), 'xn--fa-hia.de');
  t.equal(canonicalHost('ＥＸＡＭＰＬＥ.com'), 'example.com');
  t.equal(canonicalHost('www.example.com'), 'www.example.com', 'www. is never stripped');
});

t.test('refuses every invalid fixture name with INVALID_NAME', async (t) => {
  t.equal(invalid.code, 'INVALID_NAME');
  t.ok(invalid.cases.length >= 40, 'the fixture has cases');
  for (const c of invalid.cases) {
    t.throws(() => canonicalHost(c.input), { code: 'INVALID_NAME' }, `${c.rule}: ${JSON.stringify(c.input)}`);
    t.throws(() => listableHost(c.input), { code: 'INVALID_NAME' }, `listableHost ${JSON.stringify(c.input)}`);
  }
});

t.test('gives a short reason that does not repeat the input', async (t) => {
  for (const c of invalid.cases) {
    try {
      canonicalHost(c.input);
      t.fail(`accepted ${JSON.stringify(c.input)}`);
    } catch (err) {
      t.type(err, FormatError);
      const message = (err as Error).message;
      t.ok(message.startsWith('host name '), 'the reason says what was wrong');
      t.ok(message.length < 120, 'the reason is short');
      if (c.input.length > 3) t.notOk(message.includes(c.input), 'the listed name is not echoed (it may be logged)');
    }
  }
});

t.test('listableHost refuses public suffixes and accepts everything else that is valid', async (t) => {
  for (const c of valid) {
    if (c.publicSuffix === true) {
      t.throws(() => listableHost(c.input), { code: 'INVALID_NAME' }, `public suffix ${c.output}`);
    } else {
      t.equal(listableHost(c.input), c.output, `listable ${c.output}`);
    }
  }
  t.ok(
    valid.some((c) => c.publicSuffix === true),
    'the fixture has public suffixes',
  );
});

t.test('canonicalHost itself does not consult the Public Suffix List', async (t) => {
  t.equal(canonicalHost('co.uk'), 'co.uk');
  t.equal(canonicalHost('github.io'), 'github.io');
});

t.test('queryNameIsListable accepts every canonical fixture name', async (t) => {
  for (const c of valid) t.ok(queryNameIsListable(c.output), c.output);
});

t.test('queryNameIsListable gives the fixture answer for invalid lower-case ASCII names', async (t) => {
  let checked = 0;
  for (const c of invalid.cases) {
    if (c.listable === undefined) continue;
    checked++;
    t.equal(queryNameIsListable(c.input), c.listable, JSON.stringify(c.input));
  }
  t.ok(checked >= 20, 'enough cases carry an answer');
});

t.test('queryNameIsListable applies rule 3 to query names', async (t) => {
  t.ok(queryNameIsListable('a.b'));
  t.ok(queryNameIsListable('_dmarc.example.com'));
  t.ok(queryNameIsListable('xn--bcher-kva.example'));
  t.notOk(queryNameIsListable('Example.com'), 'the caller lower-cases first (RFC 4343)');
  t.notOk(queryNameIsListable('example.com.'), 'the caller drops the root');
  t.notOk(queryNameIsListable('com'));
  t.notOk(queryNameIsListable(''));
  t.notOk(queryNameIsListable('1.2.3.4'));
  t.notOk(queryNameIsListable('4.3.2.1.in-addr.arpa.1'));
  t.ok(queryNameIsListable('4.3.2.1.in-addr.arpa'), 'reverse names end in a non-numeric label');
  t.notOk(queryNameIsListable('a'.repeat(64) + '.example'));
  t.ok(queryNameIsListable('a'.repeat(63) + '.example'));
  t.notOk(queryNameIsListable('a.b\u00e9'));
});

t.test('a U-label and its A-label get the same verdict', async (t) => {
  // Node releases differ on the RFC 5893 bidi rule (Node 24 refuses `٠.com`, Node 20 accepts it); whichever
  // verdict this Node gives, the A-label form must get the same one.
  for (const [u, a] of [
    ['\u0660.example', 'xn--8hb.example'],
    ['\u0661\u0662\u0663.example', 'xn--9hbcd.example'],
    ['1\u05d0.example', 'xn--1-0hc.example'],
    ['Bücher.example', 'xn--bcher-kva.example'],
  ] as const) {
    const fromU = orRefused(() => canonicalHost(u));
    const fromA = orRefused(() => canonicalHost(a));
    t.equal(fromU, fromA === null ? null : a, `${JSON.stringify(u)} and ${a}`);
    t.equal(fromA, fromU === null ? null : a);
  }
});

// Characters that exercise UTS #46 mapping, dots, IDNA validity and rule 3.
const nameChar = fc.constantFrom(
  ...'abcxyzABZ019-_.'.split(''),
  'ü',
  'ß',
  'ς',
  'Σ',
  '日',
  'é',
  'Ж',
  'ａ',
  'Ｚ',
  '１',
  '\u3002',
  '\uff0e',
  '\u00ad',
  '\u200d',
  '\u0301',
  '\u05d0',
  '\u0660',
  'x',
  'n',
  '%',
  ' ',
  '/',
  ':',
);
const nameLike = fc.oneof(
  fc.string({ unit: nameChar, maxLength: 40 }),
  fc
    .array(fc.stringMatching(/^[a-zA-Z0-9ü日](?:[a-z0-9_-]{0,8}[a-z0-9])?$/), { minLength: 1, maxLength: 6 })
    .map((labels) => labels.join('.')),
  fc.array(fc.constantFrom('xn--', 'a', 'b-', '-', '0', '9', 'x', 'kva', '.'), { maxLength: 8 }).map((p) => p.join('')),
  fc.string({ maxLength: 30 }),
);

t.test('canonicalHost is idempotent and its output is always listable (property)', async (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(nameLike, (input) => {
      const out = orRefused(() => canonicalHost(input));
      if (out === null) return true;
      accepted++;
      return canonicalHost(out) === out && queryNameIsListable(out) && /^[a-z0-9_.-]+$/.test(out) && out.length <= 253;
    }),
    { numRuns: 30_000 },
  );
  t.ok(accepted > 100, `the generator produced valid names (${accepted})`);
});

t.test('queryNameIsListable agrees with canonicalHost on ASCII lower-case names (property)', async (t) => {
  // For such names canonicalHost only adds the punycode check, so the two can only differ on xn-- labels.
  const lowerName = fc.string({ unit: fc.constantFrom(...'abz09-_.'.split('')), maxLength: 30 });
  fc.assert(
    fc.property(lowerName, (name) => {
      const canonical = orRefused(() => canonicalHost(name));
      const expected = canonical !== null && !name.endsWith('.');
      return queryNameIsListable(name) === expected;
    }),
    { numRuns: 50_000 },
  );
  t.pass('agreed');
});
