// Building a FULL from a source: canonical names, the SPEC.md 1.3 vectors, precedence of kinds, P entries,
// warnings, public mode and determinism.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { ListKey, entryPairs, parseFull } from '@hashwall/format';

import { buildFromSource, hashSource, parseSource } from '../dist/source.js';
import { SIGNER_FIXTURES, T0, cli, iso, tempDir, vectorListKey, writeSource } from './helpers.ts';

interface Sample {
  listKeyHex: string;
  entries: [string, string][];
  formatVectors: Record<string, string>;
  counts: Record<string, number>;
  warningLines: number[];
}

const SAMPLE_PATH = join(SIGNER_FIXTURES, 'sample-source.txt');
const sample = JSON.parse(readFileSync(join(SIGNER_FIXTURES, 'sample-source.json'), 'utf8')) as Sample;
const KEY = new ListKey('demo-2026a', Buffer.from(sample.listKeyHex, 'hex'));
const OPTIONS = { listId: 'demo', serial: 2026112201, created: T0, expires: T0 + 7 * 86400, key: KEY };

/** HMAC-SHA-256 with node:crypto, independent of the format library's midstate code. */
function hmac(keyHex: string, s: string): string {
  return createHmac('sha256', Buffer.from(keyHex, 'hex')).update(s, 'utf8').digest('hex');
}

function pairsOf(text: string, key = KEY): [string, string][] {
  const { entries, errors } = parseSource(Buffer.from(text));
  if (errors.length) throw new Error(JSON.stringify(errors));
  return [...entryPairs(hashSource(entries, key).entries)];
}

function h(s: string): string {
  return hmac(sample.listKeyHex, s);
}

t.test('builds the sample source into exactly the expected entries', async (t) => {
  const r = buildFromSource(readFileSync(SAMPLE_PATH), OPTIONS);
  t.same(r.errors, []);
  const got = [...entryPairs(r.full!.entries)];
  const want = sample.entries.map(([s, kind]) => [hmac(sample.listKeyHex, s), kind]).sort();
  t.same(got, want, 'every canonical string hashed with HMAC-SHA-256, with its kind');
  t.same(r.counts, sample.counts);
  t.same(
    r.warnings.map((w) => w.line),
    sample.warningLines,
  );
});

t.test('matches the SPEC.md 1.3 vectors', async (t) => {
  const r = buildFromSource(readFileSync(SAMPLE_PATH), OPTIONS);
  const map = new Map([...entryPairs(r.full!.entries)]);
  for (const [s, hex] of Object.entries(sample.formatVectors)) {
    t.ok(map.has(hex), `${s} hashes to ${hex}`);
    t.equal(hmac(sample.listKeyHex, s), hex, 'the vector itself');
  }
});

t.test('is deterministic: the same source, key and times give the same bytes', async (t) => {
  const a = buildFromSource(readFileSync(SAMPLE_PATH), OPTIONS).bytes!;
  const reordered = readFileSync(SAMPLE_PATH, 'utf8').split('\n').reverse().join('\n');
  const b = buildFromSource(Buffer.from(reordered), OPTIONS).bytes!;
  t.ok(a.equals(b), 'line order does not matter');
  const dir = tempDir(t);
  const key = vectorListKey(dir);
  const args = (out: string): string[] => [
    'build',
    SAMPLE_PATH,
    '--list-key',
    key,
    '--list-id',
    'demo',
    '--serial',
    '2026112201',
    '--created',
    iso(T0),
    '--validity-days',
    '7',
    '--out',
    join(dir, out),
  ];
  const r1 = await cli(args('a.hwl'));
  const r2 = await cli(args('b.hwl'));
  t.equal(r1.code, 0, r1.stderr);
  t.equal(r2.code, 0, r2.stderr);
  const fa = readFileSync(join(dir, 'a.hwl'));
  t.ok(fa.equals(readFileSync(join(dir, 'b.hwl'))), 'two CLI runs give the same file');
  t.ok(fa.equals(a), 'the CLI writes what the module builds');
  const full = parseFull(fa);
  t.equal(full.header.serial, 2026112201);
  t.equal(full.header.expires, T0 + 7 * 86400);
  t.same(full.header.hashKey, { mode: 'licensed', id: 'demo-2026a' });
  t.match(r1.stdout, /13 entries \(D 3, H 3, U 5, P 2\)/);
  t.match(r1.stderr, /sample-source\.txt:21: warning: /);
  t.match(r1.stderr, /sample-source\.txt:23: warning: /);
});

t.test('D beats H for the same name, with a warning naming both lines', async (t) => {
  for (const text of ['host dup.example\ndomain dup.example\n', 'domain dup.example\nhost dup.example\n']) {
    const { entries } = parseSource(Buffer.from(text));
    const r = hashSource(entries, KEY);
    t.same([...entryPairs(r.entries)], [[h('dup.example'), 'D']]);
    t.equal(r.warnings.length, 1);
    t.match(r.warnings[0]!.message, /line 1.*line 2|line 2.*line 1/);
  }
});

t.test('keeps one entry for duplicates after canonicalization, and warns', async (t) => {
  const { entries } = parseSource(
    Buffer.from('domain Example.COM\ndomain example.com.\nurl http://a.example/x/../y\nurl http://A.example/y#frag\n'),
  );
  const r = hashSource(entries, KEY);
  t.same(r.counts, { D: 1, H: 0, U: 1, P: 1 });
  t.same(
    r.warnings.map((w) => w.line),
    [2, 4],
  );
});

t.test('derives one P per URL host, and none that would weaken a block', async (t) => {
  t.same(
    pairsOf('url http://a.example/1\nurl http://a.example/2\n').filter(([, k]) => k === 'P'),
    [[h('a.example'), 'P']],
    'one P for two URLs on one host',
  );
  t.same(
    pairsOf('host a.example\nurl http://a.example/1\n').filter(([, k]) => k === 'P'),
    [],
    'H beats P',
  );
  t.same(
    pairsOf('domain a.example\nurl http://a.example/1\n').filter(([, k]) => k === 'P'),
    [],
    'D beats P',
  );
  t.same(
    pairsOf('domain a.example\nurl http://deep.www.a.example/1\n').filter(([, k]) => k === 'P'),
    [],
    'no P below a listed domain (the walk would find the P first and steer instead of block)',
  );
  t.same(
    pairsOf('domain www.a.example\nurl http://a.example/1\n').filter(([, k]) => k === 'P'),
    [[h('a.example'), 'P']],
    'a P above a listed domain is fine: the longer name is tested first',
  );
  t.same(
    pairsOf('url http://192.0.2.9/x\nurl http://3221225993/y\n').filter(([, k]) => k === 'P'),
    [],
    'no P for IP-address hosts, whatever their notation',
  );
  t.same(
    pairsOf('url http://192.0.2.9/x\n').map(([, k]) => k),
    ['U'],
  );
});

t.test('warns about a name already covered by a listed domain but keeps it', async (t) => {
  const { entries } = parseSource(Buffer.from('domain a.example\nhost www.a.example\ndomain x.y.a.example\n'));
  const r = hashSource(entries, KEY);
  t.same(r.counts, { D: 2, H: 1, U: 0, P: 0 });
  t.same(
    r.warnings.map((w) => w.line),
    [2, 3],
  );
});

t.test('canonicalizes names and URLs before hashing (SPEC.md 1.1, 1.2)', async (t) => {
  t.same(pairsOf('host ＷＷＷ.Bücher.example.\n'), [[h('www.xn--bcher-kva.example'), 'H']]);
  t.same(pairsOf('domain faß.de\n'), [[h('xn--fa-hia.de'), 'D']]);
  const url = pairsOf('url HTTP://user:pw@Photos.Example.NET:8080/a/./b/../c//d?q=1#frag\n');
  t.same(
    url.find(([, k]) => k === 'U'),
    [h('photos.example.net/a/c/d?q=1'), 'U'],
  );
});

t.test('an empty source (only comments) gives an empty FULL', async (t) => {
  const r = buildFromSource(Buffer.from('# nothing yet\n\n'), OPTIONS);
  t.equal(r.full!.entries.count, 0);
  t.match(r.bytes!.toString(), /\nentries: 0\n/);
});

t.test('accepts a last line without a final LF', async (t) => {
  t.same(pairsOf('domain a.example'), [[h('a.example'), 'D']]);
});

t.test('public mode: a key with id "public" writes hash-key-id public and the key in the header', async (t) => {
  const dir = tempDir(t);
  const keyHex = '0c'.repeat(32);
  const keyFile = writeSource(dir, 'public.listkey', `hwl1-list-key\nhash-key-id: public\nhash-key: ${keyHex}\n`);
  writeSource(dir, 's.txt', 'domain a.example\n');
  const r = await cli(
    [
      'build',
      's.txt',
      '--list-key',
      keyFile,
      '--list-id',
      'open',
      '--serial',
      '7',
      '--created',
      iso(T0),
      '--out',
      'o.hwl',
    ],
    { cwd: dir },
  );
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /readable by group or others/, 'a key file with a wide mode is warned about');
  const full = parseFull(readFileSync(join(dir, 'o.hwl')));
  t.same(full.header.hashKey, { mode: 'public', key: keyHex });
  t.same([...entryPairs(full.entries)], [[hmac(keyHex, 'a.example'), 'D']]);
});
