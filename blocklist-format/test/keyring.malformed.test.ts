// Hostile inputs for the KEYRING parser (SPEC.md 5): each must be refused with its code, never another error.
import fc from 'fast-check';
import t, { type Test } from 'tap';

import { FormatError } from '../dist/errors.js';
import { MAX_KEYRING_BYTES, parseKeyring, serializeKeyring } from '../dist/keyring.js';
import { publicKeyToString } from '../dist/minisign.js';
import { KEYS, keyringOf, SIGNERS } from './keyring-helpers.ts';

// Three roots, two signing keys: version 2, 2 of 3 roots, 1 of 2 signing keys.
const GOOD = serializeKeyring(
  keyringOf(2, [KEYS[0]!, KEYS[1]!, KEYS[2]!], 2, { signKeys: [SIGNERS[0]!, SIGNERS[1]!] }),
).toString('latin1');
const [HEAD, BODY] = GOOD.split('\n\n') as [string, string];
const LINES = BODY.trimEnd().split('\n');
const ROOTS = LINES.filter((l) => l.startsWith('root '));
const SIGNS = LINES.filter((l) => l.startsWith('sign '));
const key = (i: number): string => publicKeyToString(KEYS[i]!.publicKey);

const withHeader = (f: (lines: string[]) => string[]): string => `${f(HEAD.split('\n')).join('\n')}\n\n${BODY}`;
const withBody = (lines: string[]): string => `${HEAD}\n\n${lines.join('\n')}\n`;
const setField = (key: string, value: string): string =>
  withHeader((ls) => ls.map((l) => (l.startsWith(`${key}: `) ? `${key}: ${value}` : l)));

function refuses(t: Test, text: string | Uint8Array, code: string, name: string): void {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  t.throws(() => parseKeyring(bytes), { code }, name);
}

t.test('the well-formed keyring parses (the mutations below start from it)', async (t) => {
  const k = parseKeyring(Buffer.from(GOOD, 'latin1'));
  t.equal(k.roots.length, 3);
  t.equal(k.signKeys.length, 2);
});

t.test('header: order, presence, values', async (t) => {
  refuses(t, GOOD.replace('HWL1 KEYRING', 'HWL1 INDEX'), 'MALFORMED', 'another magic line');
  refuses(t, `\ufeff${GOOD}`, 'MALFORMED', 'a BOM');
  refuses(
    t,
    withHeader((ls) => [ls[0]!, ls[2]!, ls[1]!, ...ls.slice(3)]),
    'MALFORMED',
    'version before list-id',
  );
  refuses(
    t,
    withHeader((ls) => ls.filter((l) => !l.startsWith('sign-threshold'))),
    'MALFORMED',
    'no sign-threshold',
  );
  refuses(
    t,
    withHeader((ls) => [...ls, 'sign-threshold: 1']),
    'MALFORMED',
    'a repeated key',
  );
  refuses(
    t,
    withHeader((ls) => [...ls, 'serial: 3']),
    'MALFORMED',
    'an unknown key',
  );
  refuses(
    t,
    withHeader((ls) => [...ls, 'x-note: fine', 'x-note: twice']),
    'MALFORMED',
    'a repeated x- key',
  );
  refuses(t, setField('list-id', 'Demo'), 'MALFORMED', 'a list-id in upper case');
  refuses(t, setField('version', '0'), 'MALFORMED', 'version 0 (the anchor is never a file)');
  refuses(t, setField('version', '02'), 'MALFORMED', 'a leading zero');
  refuses(t, setField('version', '9007199254740992'), 'MALFORMED', 'over 2^53-1');
  refuses(t, setField('version', '-1'), 'MALFORMED', 'negative');
  refuses(t, setField('created', '2026-12-02 00:00:00Z'), 'MALFORMED', 'a time with a space');
  refuses(t, setField('created', '2026-02-30T00:00:00Z'), 'MALFORMED', 'an impossible date');
  refuses(t, setField('expires', '2026-12-01T00:00:00Z'), 'MALFORMED', 'expires before created');
  refuses(t, setField('expires', '2026-12-03T00:00:00Z'), 'MALFORMED', 'expires equal to created');
  refuses(t, setField('expires', '2028-01-07T00:00:01Z'), 'MALFORMED', 'more than 400 days');
  refuses(t, setField('root-threshold', '0'), 'MALFORMED', 'root-threshold 0');
  refuses(t, setField('root-threshold', '4'), 'MALFORMED', 'root-threshold above the 3 roots');
  refuses(t, setField('sign-threshold', '3'), 'MALFORMED', 'sign-threshold above the 2 signing keys');
  refuses(t, setField('sign-threshold', '1 '), 'MALFORMED', 'a trailing space');
  refuses(t, GOOD.replace('version: 2', 'version:2'), 'MALFORMED', 'no space after the colon');
  refuses(t, GOOD.replace(/\n/g, '\r\n'), 'MALFORMED', 'CRLF line ends');
  refuses(t, GOOD.replace('\n\n', '\n'), 'MALFORMED', 'no empty line after the header');
});

t.test('exactly 400 days is allowed', async (t) => {
  const created = Date.parse('2026-12-02T00:00:00Z') / 1000;
  const text = setField('expires', new Date((created + 400 * 86400) * 1000).toISOString().replace('.000Z', 'Z'));
  t.equal(parseKeyring(Buffer.from(text, 'latin1')).header.expires - created, 400 * 86400);
});

t.test('body: groups, order, counts, keys', async (t) => {
  refuses(t, `${HEAD}\n\n`, 'MALFORMED', 'an empty body');
  refuses(t, GOOD.slice(0, -1), 'MALFORMED', 'no final LF');
  refuses(t, `${GOOD}\n`, 'MALFORMED', 'an empty line at the end');
  refuses(t, withBody([...SIGNS, ...ROOTS]), 'MALFORMED', 'signing keys before the roots');
  refuses(t, withBody([ROOTS[0]!, SIGNS[0]!, ROOTS[1]!, ROOTS[2]!, SIGNS[1]!]), 'MALFORMED', 'groups mixed');
  refuses(t, withBody([ROOTS[1]!, ROOTS[0]!, ROOTS[2]!, ...SIGNS]), 'MALFORMED', 'roots not sorted');
  refuses(t, withBody([...ROOTS, SIGNS[1]!, SIGNS[0]!]), 'MALFORMED', 'signing keys not sorted');
  refuses(t, withBody([...ROOTS, ROOTS[2]!, ...SIGNS]), 'MALFORMED', 'a root twice');
  refuses(
    t,
    setField('root-threshold', '1').replace(BODY, [...ROOTS, `sign ${key(0)}`].join('\n') + '\n'),
    'MALFORMED',
    'a root that is also a signing key',
  );
  refuses(t, withBody([...SIGNS]), 'MALFORMED', 'no root line');
  refuses(t, setField('sign-threshold', '1').replace(BODY, ROOTS.join('\n') + '\n'), 'MALFORMED', 'no sign line');
  const nine = KEYS.slice(0, 9)
    .map((k) => `root ${publicKeyToString(k.publicKey)}`)
    .sort();
  refuses(t, withBody([...nine, ...SIGNS]), 'MALFORMED', 'nine roots');
  refuses(t, withBody([...ROOTS, ...SIGNS.map((l) => l.replace('sign ', 'signer '))]), 'MALFORMED', 'a bad role');
  refuses(t, withBody([...ROOTS, ...SIGNS.map((l) => l.replace('sign ', 'sign  '))]), 'KEY_INVALID', 'two spaces');
  refuses(t, withBody([...ROOTS, ...SIGNS.map((l) => `${l} `)]), 'KEY_INVALID', 'a trailing space');
  refuses(t, withBody([...ROOTS, ...SIGNS.map((l) => l.slice(0, -1))]), 'KEY_INVALID', 'a key cut short');
  refuses(t, withBody([...ROOTS, SIGNS[0]!.replace('sign RW', 'sign Rw'), SIGNS[1]!]), 'KEY_INVALID', 'not Ed');
  refuses(t, withBody([...ROOTS, ...SIGNS, 'sign']), 'MALFORMED', 'a role without a key');
  refuses(t, withBody([...ROOTS, ...SIGNS, '# comment']), 'MALFORMED', 'a comment line');
  // A key id repeated with other key bytes: the rule is by key id (SPEC.md 5).
  const twin = Buffer.from(key(1), 'base64');
  Buffer.from(key(0), 'base64').copy(twin, 2, 2, 10);
  const lines = [...ROOTS.filter((l) => l !== `root ${key(0)}` && l !== `root ${key(1)}`), `root ${key(0)}`];
  lines.push(`root ${twin.toString('base64')}`);
  refuses(t, withBody([...lines.sort(), ...SIGNS]), 'MALFORMED', 'two keys with one key id');
  // A character outside standard base64 (a 56-character key has no padding and no unused bits), and a small-order
  // key, are refused as in .pub files.
  const last = key(2);
  const body = ROOTS.map((l) => (l.endsWith(last) ? `root ${last.slice(0, -1)}_` : l)).sort();
  refuses(t, withBody([...body, ...SIGNS]), 'KEY_INVALID', 'base64url, not base64');
  const smallOrder = Buffer.concat([Buffer.from('Ed'), Buffer.alloc(8, 7), Buffer.alloc(32)]).toString('base64');
  refuses(t, withBody([...ROOTS, `sign ${smallOrder}`, SIGNS[0]!].sort(byRole)), 'KEY_INVALID', 'a small-order key');
});

function byRole(a: string, b: string): number {
  const ra = a.startsWith('root') ? 0 : 1;
  const rb = b.startsWith('root') ? 0 : 1;
  return ra - rb || (a < b ? -1 : a > b ? 1 : 0);
}

t.test('the 16 KiB cap is checked before anything else', async (t) => {
  refuses(t, Buffer.alloc(MAX_KEYRING_BYTES + 1, 0x41), 'TOO_LARGE', 'one byte over, not even a keyring');
  // x- keys can fill a header to its 4 KiB cap, no further.
  const x = Array.from({ length: 60 }, (_, i) => `x-k${i}: ${'v'.repeat(60)}`);
  refuses(
    t,
    withHeader((ls) => [...ls, ...x]),
    'TOO_LARGE',
    'a header over 4 KiB',
  );
});

t.test('random bytes and random edits are refused with a FormatError code, never another error', async (t) => {
  const codes = new Set<string>();
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 600, size: 'max' }),
        fc.tuple(fc.nat(GOOD.length - 1), fc.integer({ min: 0, max: 255 })).map(([at, b]) => {
          const bytes = Buffer.from(GOOD, 'latin1');
          bytes[at] = b;
          return bytes;
        }),
        fc.nat(GOOD.length - 1).map((at) => Buffer.from(GOOD.slice(0, at) + GOOD.slice(at + 1), 'latin1')),
      ),
      (bytes) => {
        try {
          const k = parseKeyring(bytes);
          // An edit that still parses must be a keyring in its one byte form.
          return Buffer.compare(serializeKeyring(k), bytes) === 0;
        } catch (err) {
          if (!(err instanceof FormatError)) return false;
          codes.add(err.code);
          return ['MALFORMED', 'KEY_INVALID', 'TOO_LARGE'].includes(err.code);
        }
      },
    ),
    { numRuns: 3000 },
  );
  t.ok(codes.has('MALFORMED') && codes.has('KEY_INVALID'), `codes seen: ${[...codes].join(', ')}`);
});
