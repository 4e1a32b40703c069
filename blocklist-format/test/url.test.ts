import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import t from 'tap';

import { FormatError } from '../dist/errors.js';
import { canonicalHost, queryNameIsListable } from '../dist/names.js';
import { canonicalUrl, listableUrl, unescapeRepeatedly, urlExpressions } from '../dist/url.js';

interface CanonicalCase {
  input: string;
  output: string;
  from?: string;
  note?: string;
}
interface InvalidCase {
  input: string;
  rule: string;
  from?: string;
  note?: string;
}
interface ExpressionCase {
  input: string;
  expressions: string[];
  from?: string;
  note?: string;
}

const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../../fixtures/urls/${name}`, import.meta.url), 'utf8')) as T;

const canonical = fixture<{ cases: CanonicalCase[] }>('canonical.json').cases;
const invalid = fixture<{ code: string; cases: InvalidCase[] }>('invalid.json');
const expressions = fixture<{ cases: ExpressionCase[] }>('expressions.json').cases;

function orRefused<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FormatError && err.code === 'INVALID_NAME') return null;
    throw err;
  }
}

t.test('canonicalizes every fixture URL to its expected output', async (t) => {
  t.ok(canonical.length >= 70, 'the fixture has cases');
  t.ok(canonical.filter((c) => c.from?.startsWith('Safe Browsing v4')).length >= 25, 'with the Safe Browsing vectors');
  for (const c of canonical) t.equal(canonicalUrl(c.input), c.output, JSON.stringify(c.input));
});

t.test('a canonical URL is its own canonical form, with the same expressions', async (t) => {
  for (const c of canonical) {
    t.equal(canonicalUrl(c.output), c.output, c.output);
    t.same(urlExpressions(c.output), urlExpressions(c.input), `expressions of ${c.output}`);
  }
});

t.test('refuses every invalid fixture URL with INVALID_NAME', async (t) => {
  t.equal(invalid.code, 'INVALID_NAME');
  for (const c of invalid.cases) {
    t.throws(() => canonicalUrl(c.input), { code: 'INVALID_NAME' }, `${c.rule}: ${JSON.stringify(c.input)}`);
    t.throws(() => urlExpressions(c.input), { code: 'INVALID_NAME' });
    t.throws(() => listableUrl(c.input), { code: 'INVALID_NAME' });
  }
});

t.test('gives a short reason that does not repeat the URL', async (t) => {
  for (const c of invalid.cases) {
    try {
      canonicalUrl(c.input);
      t.fail(`accepted ${JSON.stringify(c.input)}`);
    } catch (err) {
      const message = (err as Error).message;
      t.match(message, /^URL /, 'the reason starts with what it is about');
      t.ok(message.length < 120, 'the reason is short');
      if (c.input.length > 8) t.notOk(message.includes(c.input), 'the URL is not echoed');
    }
  }
});

t.test('gives the Safe Browsing expressions of every fixture URL, in order', async (t) => {
  for (const c of expressions) t.same(urlExpressions(c.input), c.expressions, c.input);
});

t.test('the Safe Browsing v4 examples give exactly the documented sets', async (t) => {
  const sorted = (a: string[]): string[] => [...a].sort();
  t.same(
    sorted(urlExpressions('http://a.b.c/1/2.html?param=1')),
    sorted([
      'a.b.c/1/2.html?param=1',
      'a.b.c/1/2.html',
      'a.b.c/',
      'a.b.c/1/',
      'b.c/1/2.html?param=1',
      'b.c/1/2.html',
      'b.c/',
      'b.c/1/',
    ]),
  );
  t.same(
    sorted(urlExpressions('http://a.b.c.d.e.f.g/1.html')),
    sorted([
      'a.b.c.d.e.f.g/1.html',
      'a.b.c.d.e.f.g/',
      'c.d.e.f.g/1.html',
      'c.d.e.f.g/',
      'd.e.f.g/1.html',
      'd.e.f.g/',
      'e.f.g/1.html',
      'e.f.g/',
      'f.g/1.html',
      'f.g/',
    ]),
  );
  t.same(urlExpressions('http://1.2.3.4/1/'), ['1.2.3.4/1/', '1.2.3.4/']);
});

t.test('listableUrl refuses URLs on public suffixes and keeps the rest', async (t) => {
  t.equal(listableUrl('http://example.org/abuse/'), 'example.org/abuse/');
  t.equal(listableUrl('http://192.0.2.1/x'), '192.0.2.1/x', 'an IPv4 host is not a public suffix');
  t.equal(listableUrl('https://user.github.io/x'), 'user.github.io/x');
  t.throws(() => listableUrl('https://github.io/x'), { code: 'INVALID_NAME' });
  t.throws(() => listableUrl('http://co.uk/'), { code: 'INVALID_NAME' });
  t.equal(canonicalUrl('http://co.uk/'), 'co.uk/', 'canonicalUrl itself does not consult the list');
});

t.test('an expression always contains "/", so it never equals a host name', async (t) => {
  for (const c of [...canonical, ...expressions]) {
    for (const e of urlExpressions(c.input)) {
      t.ok(e.includes('/'), e);
      t.equal(
        orRefused(() => canonicalHost(e)),
        null,
        'not a host name',
      );
    }
  }
});

t.test('unescapeRepeatedly reaches the fixed point of repeated single passes', async (t) => {
  const once = (s: string): string =>
    s.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  const naive = (s: string): string => {
    for (;;) {
      const next = once(s);
      if (next === s) return s;
      s = next;
    }
  };
  t.equal(unescapeRepeatedly('%%%25%32%35asd%%'), '%%%asd%%');
  t.equal(unescapeRepeatedly('%2525252525252525'), '%');
  t.equal(unescapeRepeatedly('%%32%35'), '%');
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom('%', '2', '5', 'a', 'F', '3', '7', 'g', '/', '\u00ff'), maxLength: 40 }),
      (s) => unescapeRepeatedly(s) === naive(s),
    ),
    { numRuns: 250_000 },
  );
});

// URL-shaped inputs built from the parts that canonicalization cares about.
const urlChar = fc.constantFrom(
  ...'aAzZ09-_.~/?#%:@!$&;=+'.split(''),
  '%2e',
  '%2E',
  '%2f',
  '%3F',
  '%23',
  '%25',
  '%00',
  '%20',
  '%c3%a9',
  '%ff',
  '..',
  './',
  '../',
  '//',
  '\t',
  '\n',
  ' ',
  '\u0000',
  'é',
  'ü',
  '\u3002',
  '\uff0e',
);
const hostPart = fc.oneof(
  fc.constantFrom(
    'a.example',
    'WWW.Example.COM',
    'Bücher.example',
    '192.0.2.1',
    '3221225985',
    '0xc0.0.2.1',
    '...a..example.',
  ),
  fc.constantFrom('[::ffff:192.0.2.1]', '[2001:db8::1]', 'host', 'a%2eexample', 'a%2Eb.example', 'x.y.z.a.b.c.example'),
  fc.stringMatching(/^[a-z0-9]{1,6}(\.[a-z0-9]{1,6}){1,7}$/),
);
const urlLike = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('', 'http://', 'https://', 'HTTP://', '//', 'ftp://'),
      fc.constantFrom('', 'user@', 'u:p@'),
      hostPart,
      fc.constantFrom('', ':80', ':', ':65536'),
      fc.string({ unit: urlChar, maxLength: 24 }),
    )
    .map(
      ([scheme, user, host, port, rest]) => `${scheme}${user}${host}${port}${rest.startsWith('/') ? '' : '/'}${rest}`,
    ),
  fc.string({ unit: urlChar, maxLength: 40 }),
);

t.test('canonicalUrl is idempotent and its expressions are well formed (property)', async (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(urlLike, (input) => {
      const out = orRefused(() => canonicalUrl(input));
      if (out === null) return true;
      accepted++;
      const exprs = urlExpressions(input);
      const hosts = new Set(exprs.map((e) => e.slice(0, e.indexOf('/'))));
      const paths = new Set(exprs.map((e) => e.slice(e.indexOf('/'))));
      const host = out.slice(0, out.indexOf('/'));
      return (
        canonicalUrl(out) === out &&
        exprs[0] === out &&
        new Set(exprs).size === exprs.length &&
        exprs.length <= 30 &&
        hosts.size <= 5 &&
        paths.size <= 6 &&
        exprs.every((e) => e.includes('/') && /^[\x21-\x7e]+$/.test(e)) &&
        (/^\d+\.\d+\.\d+\.\d+$/.test(host) || queryNameIsListable(host))
      );
    }),
    { numRuns: 14_000 },
  );
  t.ok(accepted > 100, `the generator produced valid URLs (${accepted})`);
});
