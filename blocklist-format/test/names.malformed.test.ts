// Hostile inputs for the host-name parser: each is refused with INVALID_NAME or gives the documented
// canonical output; nothing else may be thrown and nothing may take long.
import fc from 'fast-check';
import t from 'tap';

import { cpuMsOf } from '../../test/helpers/cpu.ts';
import { FormatError } from '../dist/errors.js';
import { MAX_HOST_INPUT_LENGTH, canonicalHost, listableHost, queryNameIsListable } from '../dist/names.js';

/** `fn()`, or null when it threw FormatError INVALID_NAME with a reason; anything else propagates. */
function orInvalidName<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FormatError && err.code === 'INVALID_NAME' && err.message.length > 0) return null;
    throw err;
  }
}

/** True when canonicalHost refuses `input` with INVALID_NAME; any other error propagates and fails the test. */
function refused(input: string): boolean {
  try {
    canonicalHost(input);
    return false;
  } catch (err) {
    if (err instanceof FormatError && err.code === 'INVALID_NAME') return true;
    throw err;
  }
}

t.test('refuses inputs over the length cap before mapping them', async (t) => {
  t.equal(MAX_HOST_INPUT_LENGTH, 1024);
  t.ok(refused('a'.repeat(MAX_HOST_INPUT_LENGTH + 1)), 'one past the cap');
  t.ok(refused('ü'.repeat(1_000_000)), 'a megabyte of U-label');
  t.ok(refused('.'.repeat(1_000_000)), 'a million dots');
  const ignorable = '\u00ad'.repeat(10_000_000);
  const { value, ms } = cpuMsOf(() => refused(ignorable));
  t.ok(value, 'ten million ignorable characters');
  t.ok(ms < 100, `refused without mapping (${ms.toFixed(1)} ms of CPU, under 100)`);
});

t.test('an input at the cap is mapped, and ignorable characters can bring it under 253 octets', async (t) => {
  const padded = 'a' + '\u00ad'.repeat(MAX_HOST_INPUT_LENGTH - 'a.example'.length) + '.example';
  t.equal(padded.length, MAX_HOST_INPUT_LENGTH);
  t.equal(canonicalHost(padded), 'a.example', 'soft hyphens are ignored by UTS #46');
});

t.test('refuses labels of 64 octets and names of 254 octets, also when they come from U-labels', async (t) => {
  t.ok(refused('a'.repeat(64) + '.example'), '64-octet label');
  t.ok(refused(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`), '254 octets');
  t.ok(
    refused(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}.`.toUpperCase() + '.'),
    '2 dots',
  );
  t.equal(
    canonicalHost(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}.`),
    `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`,
    '253 octets plus the root dot is fine',
  );
  // 'ä' x 57 is a 63-octet A-label; one more makes it 64.
  t.equal(canonicalHost('ä'.repeat(57) + '.example').split('.')[0]?.length, 63);
  t.ok(refused('ä'.repeat(58) + '.example'), 'a U-label whose A-label is 64 octets');
  t.ok(refused('ü.'.repeat(60) + 'example'), 'U-labels whose A-labels total more than 253 octets');
});

t.test('refuses NUL, control characters, spaces and percent-escapes anywhere', async (t) => {
  for (const c of ['\u0000', '\u0001', '\t', '\n', '\r', '\u000b', '\u001f', '\u007f', ' ', '\u0085', '\u00a0']) {
    const code = `U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    t.ok(refused(`exa${c}mple.com`), `${code} inside`);
    t.ok(refused(`${c}example.com`), `${code} leading`);
    t.ok(refused(`example.com${c}`), `${code} trailing`);
  }
  t.ok(refused('example.com%'), '% at the end');
  t.ok(refused('example.com%2'), 'truncated escape');
  t.ok(refused('example.%zzcom'), '%zz');
  t.ok(refused('example%2ecom'), 'an escaped dot is not decoded');
  t.ok(refused('%65xample.com'), 'an escaped letter is not decoded');
});

t.test('refuses lone surrogates, and accepts a proper pair', async (t) => {
  t.ok(refused('\ud800'), 'a lone high surrogate');
  t.ok(refused('a\udfff.example'), 'a lone low surrogate');
  t.ok(refused('\udc00\ud800.example'), 'a reversed pair');
  t.equal(canonicalHost('\ud83d\udca9.example'), 'xn--ls8h.example', 'a proper pair is one code point');
});

t.test('refuses empty names, empty labels and dots in any form', async (t) => {
  for (const input of ['', '.', '..', '...', '.example.com', 'example..com', 'example.com..', '.'.repeat(300)]) {
    t.ok(refused(input), JSON.stringify(input));
  }
  for (const dot of ['\u3002', '\uff0e', '\uff61']) {
    t.ok(refused(`example${dot}${dot}com`), `two U+${dot.charCodeAt(0).toString(16)}`);
    t.ok(refused(`${dot}example.com`), `leading U+${dot.charCodeAt(0).toString(16)}`);
    t.ok(refused(`example.com${dot}${dot}`), `two trailing U+${dot.charCodeAt(0).toString(16)}`);
    t.equal(canonicalHost(`example${dot}com`), 'example.com', `U+${dot.charCodeAt(0).toString(16)} is a dot`);
  }
  t.equal(canonicalHost('a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.example'), 'a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.example');
  t.ok(refused('a.'.repeat(127) + 'example'), 'many labels past 253 octets');
  t.ok(canonicalHost('a.'.repeat(122) + 'example').length <= 253, 'many labels under 253 octets');
});

t.test('refuses every IPv4 and IPv6 form, however it is written', async (t) => {
  for (const input of [
    '127.0.0.1',
    '127.0.0.1.',
    '127.1',
    '127.0.1',
    '0x7f.1',
    '0x7F.0.0.1',
    '0177.0.0.1',
    '0177.1',
    '2130706433',
    '0x7f000001',
    '017700000001',
    '00000000000000000000127.0.0.1',
    '1.2.3.4.5',
    '256.0.0.1',
    '4294967296',
    '09.0.0.1',
    '０x７ｆ.１',
    '１２７。０。０。１',
    'example.0',
    'example.0x',
    'example.0X1',
    'example.08',
    '[::1]',
    '[::ffff:127.0.0.1]',
    '::ffff:7f00:1',
    '2001:db8::1',
    '[2001:db8::1]:53',
    'fe80::1%eth0',
  ]) {
    t.ok(refused(input), JSON.stringify(input));
  }
  t.equal(canonicalHost('127.0.0.1.example'), '127.0.0.1.example', 'an address as leading labels is a name');
  t.equal(canonicalHost('example.0x1g'), 'example.0x1g', 'not a hex number');
});

t.test('refuses broken, unmapped and ASCII-only A-labels', async (t) => {
  for (const input of [
    'xn--.example',
    'xn--a.example',
    'xn--zz.example',
    'xn--abc-.example',
    'xn--99999999999.example',
    'xn--ls8h-.example',
    'xn--wca.example',
    'xn--u-ccb.example',
    'xn--a-93t.example',
    'xn--' + 'a'.repeat(59) + '.example',
    'xn--xn--bcher-kva.example',
  ]) {
    t.ok(refused(input), input);
  }
});

t.test('never throws anything but INVALID_NAME on arbitrary strings (property)', async (t) => {
  const anyString = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: fc.constantFrom('\ud800', '\udc00', 'a', '.', '\u3002', 'x', 'n', '-', '0'), maxLength: 40 }),
  );
  let refused = 0;
  fc.assert(
    fc.property(anyString, (input) => {
      // The PSL lookup must not throw anything else either.
      orInvalidName(() => listableHost(input));
      const out = orInvalidName(() => canonicalHost(input));
      if (out === null) {
        refused++;
        return true;
      }
      return queryNameIsListable(out) && canonicalHost(out) === out;
    }),
    { numRuns: 20_000 },
  );
  t.ok(refused > 0, 'hostile strings were refused');
});

t.test('queryNameIsListable never throws and refuses what does not follow the rules (property)', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (name) => {
      const ok = queryNameIsListable(name);
      return !ok || (/^[a-z0-9_.-]+$/.test(name) && name.length <= 253 && name.includes('.'));
    }),
    // Many cases, each cheap: a random string that follows the rules but for one character is rare, and it is the
    // one that shows a rule gone lax.
    { numRuns: 700_000 },
  );
  t.notOk(queryNameIsListable('a'.repeat(10_000_000)), 'a huge name is refused at once');
});

t.test('a non-string input is refused with INVALID_NAME', async (t) => {
  const bads: unknown[] = [undefined, null, 42, {}, ['example.com']];
  for (const bad of bads) {
    t.throws(() => canonicalHost(bad as string), { code: 'INVALID_NAME' }, typeof bad);
  }
});
