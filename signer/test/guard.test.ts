// Gates against over-blocking with the built CLI: popular names (the bundled list and the maintainer's own file,
// compared canonically, parents included) and the change since the last release, each refused with its code
// unless overridden, the override recorded in the release; and a withdrawal, which is an ordinary delta.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import t, { type Test } from 'tap';

import { TOP_SITES_URL, parseDelta, parseFull, parseIndex } from '@hashwall/format';

import { NOW, buildArgs, cli, publishSerials, world, writeSource, type World } from './helpers.ts';

const TOP_SITES = fileURLToPath(TOP_SITES_URL);

async function build(w: World, source: string, out: string, extra: string[] = [], serial = 1) {
  return cli([...buildArgs(source, w.listKey, serial, out), ...extra]);
}

function guardFile(w: World, lines: string): string {
  const path = join(w.dir, 'guard.txt');
  writeFileSync(path, `# names we never block\n${lines}`);
  return path;
}

t.test('build refuses a list that blocks a guard name, itself or below a listed parent', async (t) => {
  const w = world(t);
  const guard = guardFile(w, 'Popular.Example.\nwww.shop.example\nexact.example\nsite.example\n');
  const cases: [string, string, string][] = [
    ['domain popular.example\n', 'guard.txt:2', 'D entry on the name'],
    ['domain shop.example\n', 'guard.txt:3', 'D entry on a parent'],
    ['host exact.example\n', 'guard.txt:4', 'H entry on the name'],
    ['url http://site.example/\n', 'guard.txt:5', 'U entry on the whole site'],
  ];
  for (const [line, where, how] of cases) {
    const src = writeSource(w.dir, 's.txt', `domain fine.example\n${line}`);
    const r = await build(w, src, join(w.dir, 'f.hwl'), ['--guard-names', guard]);
    t.equal(r.code, 1, line);
    t.match(r.stderr, 'GUARD_POPULAR: the list blocks 1 popular name(s): ');
    t.match(r.stderr, `/${where} (${how})`);
    t.notMatch(r.stderr, /popular\.example|shop\.example|exact\.example|site\.example/, 'no listed name is printed');
  }
  // What blocks nothing popular passes: an H entry on a parent, a URL below the site (a P entry steers, never
  // blocks), a name beside a guard name.
  const ok = writeSource(
    w.dir,
    's.txt',
    'host shop.example\nurl http://site.example/abuse/page\ndomain other-popular.example\n',
  );
  const r = await build(w, ok, join(w.dir, 'f.hwl'), ['--guard-names', guard]);
  t.equal(r.code, 0, r.stderr);
});

t.test('the bundled popular list is checked without any option', async (t) => {
  const w = world(t);
  // The first name of the bundled list, read at run time (the repository's fixtures hold reserved names only).
  const first = readFileSync(TOP_SITES, 'utf8')
    .split('\n')
    .findIndex((l) => l !== '' && !l.startsWith('#'));
  const name = readFileSync(TOP_SITES, 'utf8').split('\n')[first]!;
  const parent = name.split('.').slice(-2).join('.');
  const src = writeSource(w.dir, 's.txt', `domain ${parent}\n`);
  const r = await build(w, src, join(w.dir, 'f.hwl'));
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`GUARD_POPULAR: .*top-sites\\.txt:${first + 1} \\(D entry`));
  t.notMatch(r.stderr, parent);
});

t.test('--override builds anyway and records the reason in the FULL; publish checks again', async (t) => {
  const w = world(t);
  const guard = guardFile(w, 'popular.example\n');
  const src = writeSource(w.dir, 's.txt', 'domain popular.example\ndomain fine.example\n');
  const out = join(w.dir, 'f.hwl');
  const r = await build(w, src, out, ['--guard-names', guard, '--override', 'court order 2026-17 names it']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /warning: overridden \(court order 2026-17 names it\): GUARD_POPULAR/);
  t.same(parseFull(readFileSync(out)).header.extensions, [['x-override', 'court order 2026-17 names it']]);
  // publish with the list key runs the gate again, and needs its own override, recorded in the index.
  const base = ['publish', out, '--dir', w.rel, '--key', w.alice.key, '--now', NOW, '--list-key', w.listKey];
  const refused = await cli([...base, '--guard-names', guard]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /GUARD_POPULAR/);
  const p = await cli([...base, '--guard-names', guard, '--override', 'court order 2026-17 names it']);
  t.equal(p.code, 0, p.stderr);
  t.same(parseIndex(readFileSync(join(w.rel, 'index.hwl'))).header.extensions, [
    ['x-override', 'court order 2026-17 names it'],
  ]);
  const v = await cli(['verify', w.rel, '--pub', w.alice.pub, '--now', NOW]);
  t.equal(v.code, 0, v.stdout);
  const bad = await build(w, src, out, ['--override', 'tab\there']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /USAGE: --override/);
});

async function grow(t: Test, w: World, serial: number, count: number, extra: string[] = []) {
  for (let i = 0; i < count; i++) appendFileSync(w.source, `domain grown-${serial}-${i}.example\n`);
  const out = join(w.dir, `g${serial}.hwl`);
  const b = await build(w, w.source, out, [], serial);
  t.equal(b.code, 0, b.stderr);
  return cli(['publish', out, '--dir', w.rel, '--key', w.alice.key, '--now', NOW, ...extra]);
}

t.test('publish refuses a list that grows or shrinks by more than the limits since the last release', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1]);
  const big = await grow(t, w, 2, 101);
  t.equal(big.code, 1, 'more than 100 entries added to a list of 14');
  t.match(big.stderr, /GUARD_CHANGE: the list adds 101 entries since serial 1 \(of 14\); at most 100 at once/);
  const allowed = await cli([
    'publish',
    join(w.dir, 'g2.hwl'),
    '--dir',
    w.rel,
    '--key',
    w.alice.key,
    '--now',
    NOW,
    '--max-change-count',
    '101',
  ]);
  t.equal(allowed.code, 0, allowed.stderr);
  // Now 115 entries; 25 % is 28, the count 100 is larger. A 10 % cap with a count of 5: 11 allowed.
  const pct = await grow(t, w, 3, 12, ['--max-change-percent', '10', '--max-change-count', '5']);
  t.equal(pct.code, 1);
  t.match(pct.stderr, /adds 12 entries since serial 2 \(of 115\); at most 11 at once/);
  // A wrong, nearly empty source: everything removed.
  writeFileSync(w.source, 'domain only.example\n');
  const out = join(w.dir, 'empty.hwl');
  t.equal((await build(w, w.source, out, [], 4)).code, 0);
  const shrink = await cli(['publish', out, '--dir', w.rel, '--key', w.alice.key, '--now', NOW]);
  t.equal(shrink.code, 1);
  t.match(shrink.stderr, /GUARD_CHANGE: the list removes 115 entries since serial 2/);
  // build compares with the release too when told where it goes.
  const atBuild = await build(w, w.source, out, ['--release', w.rel], 4);
  t.equal(atBuild.code, 1);
  t.match(atBuild.stderr, /GUARD_CHANGE/);
  const forced = await cli([
    'publish',
    out,
    '--dir',
    w.rel,
    '--key',
    w.alice.key,
    '--now',
    NOW,
    '--override',
    'list retired',
  ]);
  t.equal(forced.code, 0, forced.stderr);
  t.same(parseIndex(readFileSync(join(w.rel, 'index.hwl'))).header.extensions, [['x-override', 'list retired']]);
});

t.test('a withdrawal is an ordinary delta of removals, which verify accepts', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1, 2]);
  const lines = readFileSync(w.source, 'utf8').split('\n');
  writeFileSync(w.source, lines.filter((l) => l !== 'domain added-2.example').join('\n'));
  const out = join(w.dir, 'w3.hwl');
  t.equal((await build(w, w.source, out, [], 3)).code, 0);
  const p = await cli(['publish', out, '--dir', w.rel, '--key', w.alice.key, '--now', NOW]);
  t.equal(p.code, 0, p.stderr);
  const delta = parseDelta(readFileSync(join(w.rel, 'delta/2-3.hwld')));
  t.same([delta.removals.count, delta.additions.count], [1, 0], 'one removal, nothing added');
  t.equal(delta.header.entries, parseFull(readFileSync(out)).entries.count);
  const v = await cli(['verify', w.rel, '--pub', w.alice.pub, '--now', NOW]);
  t.equal(v.code, 0, v.stdout);
  t.match(v.stdout, /ok +delta\/2-3\.hwld: applies to full\/2\.hwl/);
});
