// inspect, check, diff, --help and exit codes, through the built CLI.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { ListKey, entriesFromPairs, makeFull, serializeFull } from '@hashwall/format';

import { T0, buildFull, cli, publishSerials, tempDir, vectorListKey, world, writeSource } from './helpers.ts';

const COMMANDS = ['keygen', 'build', 'publish', 'heartbeat', 'sign', 'verify', 'inspect', 'check', 'diff'];

t.test('every command has --help, with its usage and the exit codes', async (t) => {
  for (const name of COMMANDS) {
    const r = await cli([name, '--help']);
    t.equal(r.code, 0, name);
    t.match(r.stdout, new RegExp(`^Usage: hashwall-signer ${name} `), `${name}: usage line`);
    t.match(r.stdout, /Exit codes: 0 ok; 1 verification failed or refused; 2 usage or input error; 3 I\/O error/);
  }
  const top = await cli(['--help']);
  t.equal(top.code, 0);
  for (const name of COMMANDS) t.match(top.stdout, new RegExp(`\\n  ${name} +`), `the overview lists ${name}`);
  t.equal((await cli([])).code, 2, 'no command: usage error');
  const unknown = await cli(['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /USAGE: unknown command "frobnicate"/);
  t.match((await cli(['--version'])).stdout, /^hashwall-signer \d+\.\d+\.\d+/);
  const badOption = await cli(['verify', 'x', '--pubkey', 'y']);
  t.equal(badOption.code, 2);
  t.match(badOption.stderr, /USAGE: verify: .*--pubkey/);
  const missing = await cli(['inspect', '/nonexistent/file.hwl']);
  t.equal(missing.code, 3, 'a file that cannot be read: I/O error');
  t.match(missing.stderr, /IO: cannot open file \/nonexistent\/file\.hwl: no such file or directory \(ENOENT\)/);
});

t.test('inspect shows the header, counts by kind and the signatures of each file type', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1, 2]);
  const full = await cli(['inspect', join(w.rel, 'full/2.hwl'), '--pub', w.alice.pub]);
  t.equal(full.code, 0, full.stderr);
  t.match(full.stdout, /HWL1 FULL/);
  t.match(full.stdout, /serial +2\n/);
  t.match(full.stdout, /hash-key-id +demo-2026a \(licensed\)/);
  t.match(full.stdout, /entries +15 \(D 5, H 3, U 5, P 2\)/);
  t.match(full.stdout, new RegExp(`2\\.hwl\\.minisig: key ${w.alice.keyId}, VALID`));
  t.match(full.stdout, /trusted comment matches the header/);

  const unverified = await cli(['inspect', join(w.rel, 'full/2.hwl')]);
  t.match(unverified.stdout, /not verified \(no --pub for this key\)/);

  const delta = await cli(['inspect', join(w.rel, 'delta/1-2.hwld')]);
  t.equal(delta.code, 0);
  t.match(delta.stdout, /HWL1 DELTA/);
  t.match(delta.stdout, /removals +0 \(D 0, H 0, U 0, P 0\)/);
  t.match(delta.stdout, /additions +1 \(D 1, H 0, U 0, P 0\)/);

  const index = await cli(['inspect', join(w.rel, 'index.hwl')]);
  t.match(index.stdout, /seq +2\n/);
  t.match(index.stdout, /full +full\/2\.hwl \d+ bytes sha256 [0-9a-f]{64}/);
  t.match(index.stdout, /delta +delta\/1-2\.hwld/);

  const sig = await cli(['inspect', join(w.rel, 'index.hwl.minisig')]);
  t.match(sig.stdout, new RegExp(`key id +${w.alice.keyId}`));
  t.match(sig.stdout, /trusted comment +hwl1 type=index list=demo seq=2 serial=2 /);
  t.match((await cli(['inspect', w.alice.pub])).stdout, new RegExp(`minisign public key ${w.alice.keyId}`));

  // A signature that does not match: exit 1 when its key is given.
  const path = join(w.rel, 'full/2.hwl.minisig');
  writeFileSync(path, readFileSync(join(w.rel, 'full/1.hwl.minisig')));
  const bad = await cli(['inspect', join(w.rel, 'full/2.hwl'), '--pub', w.alice.pub]);
  t.equal(bad.code, 1);
  t.match(bad.stdout, /INVALID \(SIGNATURE_INVALID\)/);
  t.match(bad.stdout, /DIFFERS from the header/);

  const other = await cli(['inspect', w.source]);
  t.equal(other.code, 2, 'not a file inspect knows');
});

t.test('check says whether and how names and URLs are listed, as the daemon walks them', async (t) => {
  const dir = tempDir(t);
  const key = vectorListKey(dir);
  const source = join(dir, 's.txt');
  writeFileSync(source, readFileSync(new URL('../../fixtures/signer/sample-source.txt', import.meta.url)));
  const full = await buildFull(t, dir, source, key, 1, join(dir, 'f.hwl'));
  const check = (...targets: string[]): ReturnType<typeof cli> =>
    cli(['check', '--full', full, '--list-key', key, ...targets]);

  const d = await check('deep.www.example.com');
  t.equal(d.code, 0);
  t.match(d.stdout, /deep\.www\.example\.com: blocked: D entry .* for example\.com/);
  const h = await check('Bücher.example');
  t.equal(h.code, 0);
  t.match(h.stdout, /xn--bcher-kva\.example: blocked: H entry \(this exact name\)/);
  const below = await check('sub.xn--bcher-kva.example');
  t.equal(below.code, 1, 'H matches only the exact name');
  t.match(below.stdout, /not listed for DNS\n.*also: H entry for xn--bcher-kva\.example, without effect/);
  const p = await check('photos.example.net');
  t.match(p.stdout, /photos\.example\.net: steered to a filtering proxy: P entry/);
  const url = await check('https://Photos.Example.NET/album/2?page=3#top');
  t.equal(url.code, 0);
  t.match(
    url.stdout,
    /photos\.example\.net\/album\/2\?page=3: URL listed \(U\) as photos\.example\.net\/album\/2\?page=3/,
  );
  t.match(url.stdout, /host photos\.example\.net: steered/);
  const prefix = await check('http://example.org/abuse/deeper/page.html');
  t.match(prefix.stdout, /URL listed \(U\) as example\.org\/abuse\//, 'a path-prefix expression matches');
  const blockedHost = await check('http://www.example.com/other');
  t.equal(blockedHost.code, 0, 'the URL is not listed, its host is blocked');
  t.match(blockedHost.stdout, /URL not listed/);
  t.match(blockedHost.stdout, /host www\.example\.com: blocked: D entry/);
  const ip = await check('http://192.0.2.7/gallery/x');
  t.match(ip.stdout, /URL listed \(U\) as 192\.0\.2\.7\/gallery\//);
  const miss = await check('unlisted.example', 'example.com');
  t.equal(miss.code, 1, 'one of two not listed');
  const invalid = await check('bad..example');
  t.equal(invalid.code, 2);
  t.match(invalid.stdout, /bad\.\.example: cannot be listed: INVALID_NAME/);

  const noKey = await cli(['check', '--full', full, 'example.com']);
  t.equal(noKey.code, 1);
  t.match(noKey.stderr, /UNKNOWN_HASH_KEY/);
  const otherKey = writeSource(dir, 'o.listkey', `hwl1-list-key\nhash-key-id: other\nhash-key: ${'0b'.repeat(32)}\n`);
  t.equal((await cli(['check', '--full', full, '--list-key', otherKey, 'example.com'])).code, 1, 'another key id');
});

t.test('check treats a match on a public suffix as inert, as the daemon does', async (t) => {
  const dir = tempDir(t);
  // A signed list could carry `D github.io` (the signer refuses to build one); it must never match.
  const key = new ListKey('public', Buffer.alloc(32, 7));
  const hk = key.hashKey();
  const list = makeFull(
    {
      listId: 'demo',
      serial: 1,
      created: T0,
      expires: T0 + 86400,
      hashKey: { mode: 'public', key: key.keyHex() },
      extensions: [],
    },
    entriesFromPairs([
      [hk.hashHex('github.io'), 'D'],
      [hk.hashHex('bad.github.io'), 'D'],
    ]),
  );
  const path = join(dir, 'f.hwl');
  writeFileSync(path, serializeFull(list));
  const r = await cli(['check', '--full', path, 'x.bad.github.io', 'other.github.io']);
  t.equal(r.code, 1, 'public mode needs no --list-key; other.github.io is not listed');
  t.match(r.stdout, /x\.bad\.github\.io: blocked: D entry .* for bad\.github\.io/);
  t.match(
    r.stdout,
    /other\.github\.io: not listed for DNS\n +also: D entry for github\.io, without effect: a public suffix/,
  );
});

t.test('diff counts removals and additions by kind', async (t) => {
  const dir = tempDir(t);
  const key = vectorListKey(dir);
  const a = await buildFull(
    t,
    dir,
    writeSource(dir, 'a.txt', 'domain a.example\nhost b.example\nurl http://c.example/x\n'),
    key,
    1,
    join(dir, 'a.hwl'),
  );
  const b = await buildFull(
    t,
    dir,
    writeSource(dir, 'b.txt', 'host a.example\nhost b.example\nhost d.example\n'),
    key,
    2,
    join(dir, 'b.hwl'),
  );
  const r = await cli(['diff', a, b]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /D +1 +0\n/);
  t.match(r.stdout, /H +0 +2\n/);
  t.match(r.stdout, /U +1 +0\n/);
  t.match(r.stdout, /P +1 +0\n/);
  t.match(r.stdout, /all +3 +2\n/);
  t.match(r.stdout, /1 hash\(es\) changed kind/);
  const reverse = await cli(['diff', b, a]);
  t.equal(reverse.code, 0);
  t.match(reverse.stderr, /B has a lower serial than A/);
  t.match(reverse.stdout, /all +2 +3\n/);
  const same = await cli(['diff', a, a]);
  t.match(same.stdout, /all +0 +0\n/);
  const c = await buildFull(t, dir, writeSource(dir, 'c.txt', 'domain z.example\n'), key, 1, join(dir, 'c.hwl'));
  const equivocation = await cli(['diff', a, c]);
  t.match(equivocation.stderr, /both are serial 1 with different bodies/);
  const other = join(dir, 'o.hwl');
  const built = await cli([
    'build',
    join(dir, 'c.txt'),
    '--list-key',
    key,
    '--list-id',
    'other',
    '--serial',
    '1',
    '--out',
    other,
  ]);
  t.equal(built.code, 0);
  const mismatch = await cli(['diff', a, other]);
  t.equal(mismatch.code, 1);
  t.match(mismatch.stderr, /LIST_MISMATCH/);
});

t.test('no error message or warning repeats a listed name', async (t) => {
  const dir = tempDir(t);
  const key = vectorListKey(dir);
  const secretish = 'confidential-entry.example';
  writeSource(
    dir,
    's.txt',
    `domain ${secretish}\nhost ${secretish}\nhost www.${secretish}\ndomain ${secretish} extra\nDOMAIN ${secretish}\n`,
  );
  const r = await cli(['build', 's.txt', '--list-key', key, '--list-id', 'demo', '--serial', '1', '--out', 'o.hwl'], {
    cwd: dir,
  });
  t.equal(r.code, 2);
  t.notMatch(r.stdout + r.stderr, 'confidential-entry');
  writeSource(dir, 's.txt', `domain ${secretish}\nhost ${secretish}\nhost www.${secretish}\n`);
  const ok = await cli(['build', 's.txt', '--list-key', key, '--list-id', 'demo', '--serial', '1', '--out', 'o.hwl'], {
    cwd: dir,
  });
  t.equal(ok.code, 0);
  t.match(ok.stderr, /s\.txt:2: warning: /);
  t.notMatch(ok.stdout + ok.stderr, 'confidential-entry');
});
