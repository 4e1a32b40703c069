// Hostile and malformed source lists: every bad line is reported as SOURCE:LINE: CODE, all in one run, and
// nothing is written.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { ListKey } from '@hashwall/format';

import { buildFromSource, parseSource } from '../dist/source.js';
import { SIGNER_FIXTURES, T0, cli, iso, tempDir, vectorListKey, writeSource } from './helpers.ts';

interface Case {
  readonly name: string;
  readonly text?: string;
  readonly hex?: string;
  readonly code: string;
}

const { cases } = JSON.parse(readFileSync(join(SIGNER_FIXTURES, 'source-malformed.json'), 'utf8')) as {
  cases: Case[];
};

function lineBytes(c: Case): Buffer {
  return c.hex !== undefined ? Buffer.from(c.hex, 'hex') : Buffer.from(c.text!, 'utf8');
}

const KEY = new ListKey('demo-2026a', new Uint8Array(32).fill(0x0b));

t.test('refuses each malformed line with its code, and names the line', async (t) => {
  for (const c of cases) {
    // The bad line sits between two good ones, at line 2.
    const bytes = Buffer.concat([
      Buffer.from('domain good.example\n'),
      lineBytes(c),
      Buffer.from('\nhost ok.example\n'),
    ]);
    const { entries, errors } = parseSource(bytes);
    t.same(
      errors.map((e) => [e.line, e.code]),
      [[2, c.code]],
      c.name,
    );
    t.equal(entries.length, 2, `${c.name}: the good lines still parse`);
  }
});

t.test('never repeats the bad entry in an error message', async (t) => {
  for (const c of cases) {
    if (c.text === undefined) continue;
    const { errors } = parseSource(Buffer.from(c.text));
    const value = c.text.split(/[ \t]+/)[1];
    if (value === undefined || value.length < 4) continue;
    t.notMatch(errors[0]?.message ?? '', value, `${c.name}: the message does not hold the entry`);
  }
});

t.test('reports every error of a file in one run as SOURCE:LINE: CODE and writes nothing', async (t) => {
  const dir = tempDir(t);
  const lines: Buffer[] = [Buffer.from('# a source with one bad line per case, a good line after each')];
  const expected: string[] = [];
  for (const c of cases) {
    lines.push(lineBytes(c));
    expected.push(`bad.txt:${lines.length}: ${c.code}: `);
    lines.push(Buffer.from('domain fine.example'));
  }
  const source = writeSource(dir, 'bad.txt', Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])));
  const out = join(dir, 'out.hwl');
  const r = await cli(
    ['build', 'bad.txt', '--list-key', vectorListKey(dir), '--list-id', 'demo', '--serial', '1', '--out', out],
    { cwd: dir },
  );
  t.equal(r.code, 2, 'exit 2: input error');
  const errorLines = r.stderr.split('\n').filter((l) => /^bad\.txt:\d+: /.test(l));
  t.equal(errorLines.length, cases.length, 'one error line per bad line');
  expected.forEach((prefix, i) => t.ok(errorLines[i]?.startsWith(prefix), `${cases[i]!.name}: ${prefix}`));
  t.match(r.stderr, /SOURCE_INVALID: \d+ error\(s\) in bad\.txt; nothing written/);
  t.notOk(existsSync(out), 'no FULL was written');
  t.ok(source);
});

t.test('refuses a byte order mark, and still checks the rest of the file', async (t) => {
  const { errors, entries } = parseSource(Buffer.from('\ufeffdomain a.example\nhost bad..example\n'));
  t.same(
    errors.map((e) => [e.line, e.code]),
    [
      [1, 'MALFORMED'],
      [2, 'INVALID_NAME'],
    ],
  );
  t.equal(entries.length, 1);
});

t.test('refuses a source over the cap before parsing it', async (t) => {
  const big = { length: 256 * 1024 * 1024 + 1 } as unknown as Uint8Array;
  t.throws(() => parseSource(big), { code: 'TOO_LARGE' });
});

t.test('a build with errors returns them and no FULL', async (t) => {
  const r = buildFromSource(Buffer.from('domain com\n'), {
    listId: 'demo',
    serial: 1,
    created: T0,
    expires: T0 + 86400,
    key: KEY,
  });
  t.equal(r.full, undefined);
  t.equal(r.bytes, undefined);
  t.same(
    r.errors.map((e) => e.code),
    ['INVALID_NAME'],
  );
});

t.test('build refuses bad options with USAGE before reading the source', async (t) => {
  const dir = tempDir(t);
  const key = vectorListKey(dir);
  writeSource(dir, 's.txt', 'domain a.example\n');
  const base = ['build', 's.txt', '--list-key', key, '--out', 'o.hwl'];
  const cases: [string, string[]][] = [
    ['a bad list-id', ['--list-id', 'Demo', '--serial', '1']],
    ['a missing serial', ['--list-id', 'demo']],
    ['a serial with a leading zero', ['--list-id', 'demo', '--serial', '01']],
    ['a validity over 31 days', ['--list-id', 'demo', '--serial', '1', '--validity-days', '32']],
    [
      'expires more than 31 days after created',
      ['--list-id', 'demo', '--serial', '1', '--created', iso(T0), '--expires', iso(T0 + 31 * 86400 + 1)],
    ],
    ['a bad time', ['--list-id', 'demo', '--serial', '1', '--created', '2026-11-22 06:00']],
    ['an unknown option', ['--list-id', 'demo', '--serial', '1', '--frobnicate']],
  ];
  for (const [name, extra] of cases) {
    const r = await cli([...base, ...extra], { cwd: dir });
    t.equal(r.code, 2, name);
    t.match(r.stderr, /USAGE: /, name);
    t.notOk(existsSync(join(dir, 'o.hwl')), `${name}: nothing written`);
  }
});
