// Hostile inputs for the URL canonicalizer: each is refused with INVALID_NAME or gives the documented
// canonical output; nothing else may be thrown and nothing may take long.
import fc from 'fast-check';
import t from 'tap';

import { cpuMsOf } from '../../test/helpers/cpu.ts';
import { FormatError } from '../dist/errors.js';
import { MAX_URL_LENGTH, canonicalUrl, urlExpressions } from '../dist/url.js';

/** True when canonicalUrl refuses `input` with INVALID_NAME; any other error propagates and fails the test. */
function refused(input: string): boolean {
  try {
    canonicalUrl(input);
    return false;
  } catch (err) {
    if (err instanceof FormatError && err.code === 'INVALID_NAME') return true;
    throw err;
  }
}

t.test('refuses URLs over 4096 characters, at once', async (t) => {
  t.equal(MAX_URL_LENGTH, 4096);
  const base = 'http://a.example/';
  const atCap = base + 'x'.repeat(MAX_URL_LENGTH - base.length);
  t.equal(canonicalUrl(atCap), atCap.slice('http://'.length), 'exactly 4096 characters is fine');
  t.ok(refused(atCap + 'x'), 'one more is refused');
  const huge = base + '%25'.repeat(5_000_000);
  const { value, ms } = cpuMsOf(() => refused(huge));
  t.ok(value, 'fifteen million characters');
  t.ok(ms < 100, `refused before any work (${ms.toFixed(1)} ms of CPU, under 100)`);
});

t.test('the worst unescaping case under the cap stays fast', async (t) => {
  const base = 'http://a.example/';
  const nested = base + '%' + '25'.repeat((MAX_URL_LENGTH - base.length - 3) / 2) + '41';
  t.ok(nested.length <= MAX_URL_LENGTH);
  const many = 'http://' + 'a.'.repeat(100) + 'example/' + '%2e%2e/'.repeat(300) + '?' + '%25'.repeat(300);
  const { value, ms } = cpuMsOf(() => [canonicalUrl(nested), canonicalUrl(many)] as const);
  t.equal(value[0], 'a.example/A', 'every %25 collapses, then %41 is A');
  t.equal(value[1].length > 0, true);
  t.ok(ms < 200, `${ms.toFixed(1)} ms of CPU, under 200`);
});

t.test('NUL and control characters are escaped in the path and query, refused in the host', async (t) => {
  t.equal(canonicalUrl('http://a.example/a\u0000b?c\u0000d'), 'a.example/a%00b?c%00d');
  t.equal(canonicalUrl('http://a.example/%00'), 'a.example/%00');
  t.equal(canonicalUrl('http://a.example/\u0001\u001f\u007f'), 'a.example/%01%1F%7F');
  t.equal(canonicalUrl('http://a.example/a\tb\rc\nd'), 'a.example/abcd', 'tab, CR and LF are removed');
  t.equal(canonicalUrl('http://a.example/%09%0d%0a'), 'a.example/%09%0D%0A', 'their escapes are kept');
  t.equal(canonicalUrl('\u0000\u0001 http://a.example/ \u0000'), 'a.example/', 'surrounding controls are stripped');
  t.equal(canonicalUrl('ht\ttp://a.ex\nample/'), 'a.example/', 'even inside the scheme and host');
  for (const c of ['\u0000', '\u0001', '\u001f', ' ', '\u007f', '\u0085', '\u00a0', '%00', '%20', '%0a']) {
    t.ok(refused(`http://a${c}b.example/`), `host with ${JSON.stringify(c)}`);
  }
});

t.test('every byte is escaped exactly when Safe Browsing says so', async (t) => {
  let input = 'http://a.example/x';
  let expected = 'a.example/x';
  for (let b = 0; b < 256; b++) {
    if (b === 0x2f || b === 0x3f || b === 0x2e) continue; // separators and dots have their own tests
    const hex = b.toString(16).toUpperCase().padStart(2, '0');
    input += '%' + hex.toLowerCase();
    expected += b <= 0x20 || b >= 0x7f || b === 0x23 || b === 0x25 ? '%' + hex : String.fromCharCode(b);
  }
  t.equal(canonicalUrl(input), expected);
});

t.test('refuses lone surrogates anywhere', async (t) => {
  for (const input of [
    'http://a.example/\ud800',
    'http://a.example/?\udc00',
    'http://\ud800a.example/',
    '\udfffhttp://a.example/',
  ]) {
    t.ok(refused(input), JSON.stringify(input));
  }
  t.equal(canonicalUrl('http://a.example/\ud83d\udca9'), 'a.example/%F0%9F%92%A9', 'a proper pair is UTF-8');
});

t.test('keeps stray percent signs as %25', async (t) => {
  t.equal(canonicalUrl('http://a.example/%'), 'a.example/%25');
  t.equal(canonicalUrl('http://a.example/a%'), 'a.example/a%25');
  t.equal(canonicalUrl('http://a.example/%2'), 'a.example/%252');
  t.equal(canonicalUrl('http://a.example/%zz'), 'a.example/%25zz');
  t.equal(canonicalUrl('http://a.example/%G0%0G'), 'a.example/%25G0%250G');
  t.equal(canonicalUrl('http://a.example/?%'), 'a.example/?%25');
  t.equal(canonicalUrl('http://a.example/%%%'), 'a.example/%25%25%25');
  t.ok(refused('http://a.example%/'), 'a "%" in the host');
  t.ok(refused('http://%/'), 'a host of "%"');
});

t.test('".." never climbs above the root', async (t) => {
  t.equal(canonicalUrl('http://a.example/../../../../etc/passwd'), 'a.example/etc/passwd');
  t.equal(canonicalUrl('http://a.example/%2e%2e/%2E%2E/%2e%2e%2fetc'), 'a.example/etc');
  t.equal(canonicalUrl('http://a.example/.%2e/x/..'), 'a.example/');
  t.equal(canonicalUrl('http://a.example/..'), 'a.example/');
  t.equal(canonicalUrl('http://a.example/.'), 'a.example/');
  t.equal(canonicalUrl('http://a.example/...'), 'a.example/...', 'three dots are an ordinary segment');
  t.equal(canonicalUrl('http://a.example/..a/a../.a'), 'a.example/..a/a../.a');
  t.equal(canonicalUrl('http://a.example/' + '../'.repeat(1000) + 'x'), 'a.example/x');
  t.equal(canonicalUrl('http://a.example/x?/../..'), 'a.example/x?/../..', 'the query is not normalized');
});

t.test('collapses dots in URL hosts, including Unicode dots, and refuses hosts made only of dots', async (t) => {
  t.equal(canonicalUrl('http://' + '.'.repeat(1000) + 'a.example' + '.'.repeat(1000) + '/'), 'a.example/');
  t.equal(canonicalUrl('http://a' + '.'.repeat(500) + 'example/'), 'a.example/');
  t.equal(canonicalUrl('http://a\u3002\u3002example\uff0e/'), 'a.example/');
  t.equal(canonicalUrl('http://a%2e%2e%2eexample/'), 'a.example/', 'escaped dots too');
  t.equal(canonicalUrl('http://a\uff61example/'), 'a.example/');
  for (const host of ['.', '...', '\u3002', '%2e', '.\u3002.']) t.ok(refused(`http://${host}/`), JSON.stringify(host));
});

t.test('normalizes every IPv4 form and refuses the invalid ones', async (t) => {
  const ip = '192.0.2.235';
  for (const form of [
    '192.0.2.235',
    '3221226219',
    '0xc00002eb',
    '0XC00002EB',
    '030000001353',
    '0xc0.0x0.0x2.0xeb',
    '0300.0.02.0353',
    '192.0.747',
    '192.747',
    '0xc0.0.0x2eb',
    '0000000300.0.2.235',
    '0x00000000c0.0.2.235',
    '192.0.2.235.',
    '.192.0.2.235',
    '192..0.2.235',
    '%31%39%32%2e%30%2e%32%2e%32%33%35',
    '１９２．０．２．２３５',
    '[::ffff:192.0.2.235]',
    '[::ffff:c000:2eb]',
    '[0:0:0:0:0:ffff:192.0.2.235]',
    '[64:ff9b::192.0.2.235]',
  ]) {
    t.same(urlExpressions(`http://${form}/a/b`), [`${ip}/a/b`, `${ip}/`, `${ip}/a/`], form);
  }
  for (const form of [
    '256.0.0.1',
    '192.0.2.256',
    '192.0.65536',
    '192.16777216',
    '4294967296',
    '0x100000000',
    '1.2.3.4.5',
    '08.1.1.1',
    '0x.0xg.1.1',
    '99999999999999999999999',
    '[::1]',
    '[2001:db8::c000:2eb]',
    '[::192.0.2.235]',
    '[::ffff:192.0.2.256]',
    '[::ffff:192.0.2.235',
  ]) {
    t.ok(refused(`http://${form}/`), form);
  }
  t.equal(canonicalUrl('http://0x.example/'), '0x.example/', 'a numeric label that is not the last is a name');
  t.equal(canonicalUrl('http://1.2.3.0x/'), '1.2.3.0/', 'a bare "0x" is the number 0 (WHATWG)');
});

t.test('refuses long labels and names, accepts the longest valid ones', async (t) => {
  const n253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
  t.equal(canonicalUrl(`http://${n253}/`), `${n253}/`);
  t.ok(refused(`http://${n253}d/`), '254 octets');
  t.ok(refused(`http://${'a'.repeat(64)}.example/`), 'a 64-octet label');
  t.ok(refused(`http://${'ä'.repeat(58)}.example/`), 'a U-label whose A-label is 64 octets');
  t.equal(urlExpressions(`http://${n253}/`).length, 3, 'four labels: the host and two suffixes');
});

t.test('refuses broken authorities', async (t) => {
  for (const input of [
    'http://a.example:65536/',
    'http://a.example:123456/',
    'http://a.example:0x50/',
    'http://a.example: 80/',
    'http://a.example:80:80/',
    'http://[::1/',
    'http://[/',
    'http://]/',
    'http://@/',
    'http://user@/',
    'http://:80/',
    'http:',
    'http:/a.example/',
    'https:a.example',
    'ws://a.example/',
    'data:text/html,hi',
    'http://a.example%40b.example/',
    'http://a.example%3a80/',
    'http://a.example%2f/',
    'http://a.example%5c/',
  ]) {
    t.ok(refused(input), JSON.stringify(input));
  }
  t.equal(canonicalUrl('http://a:b@c:d@a.example:0/'), 'a.example/', 'the last "@" ends the userinfo');
  t.equal(canonicalUrl('HtTpS://A.EXAMPLE'), 'a.example/');
});

t.test('never throws anything but INVALID_NAME on arbitrary strings (property)', async (t) => {
  const anyString = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 120, size: 'max' }),
    fc.string({ unit: 'grapheme', maxLength: 60 }),
    fc.string({ unit: 'binary', maxLength: 60 }).map((s) => `http://a.example/${s}`),
    fc
      .string({
        unit: fc.constantFrom('%', '2', '5', 'e', 'E', 'f', 'F', '3', '.', '/', '?', '#', '[', ']', ':', '@', '\ud800'),
        maxLength: 60,
      })
      .map((s) => `http://${s}`),
  );
  let refusedCount = 0;
  fc.assert(
    fc.property(anyString, (input) => {
      try {
        const out = canonicalUrl(input);
        const exprs = urlExpressions(input);
        return canonicalUrl(out) === out && exprs[0] === out && exprs.every((e) => e.includes('/'));
      } catch (err) {
        refusedCount++;
        return err instanceof FormatError && err.code === 'INVALID_NAME' && err.message.startsWith('URL ');
      }
    }),
    { numRuns: 13_000 },
  );
  t.ok(refusedCount > 0, 'hostile strings were refused');
});

t.test('a non-string input is refused with INVALID_NAME', async (t) => {
  const bads: unknown[] = [undefined, null, 42, {}, ['http://a.example/']];
  for (const bad of bads) {
    t.throws(() => canonicalUrl(bad as string), { code: 'INVALID_NAME' }, typeof bad);
    t.throws(() => urlExpressions(bad as string), { code: 'INVALID_NAME' });
  }
});
