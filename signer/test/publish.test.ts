// publish with the built CLI: refusals (lower serial, expired, wrong list, lost index, lock), delta bases,
// pruning, and an empty list.
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { applyDelta, parseDelta, parseFull, parseIndex, serializeFull } from '@hashwall/format';

import {
  NOW,
  T0,
  buildFull,
  cli,
  dataFiles,
  files,
  fixtureKey,
  iso,
  publishSerials,
  tempDir,
  vectorListKey,
  world,
  writeSource,
} from './helpers.ts';

t.test('refuses a serial that does not increase, and leaves the release as it was', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [5]);
  const before = files(w.rel).map((f) => [f, readFileSync(join(w.rel, f)).toString('base64')]);
  for (const serial of [4, 5]) {
    const full = await buildFull(t, w.dir, w.source, w.listKey, serial, join(w.dir, `low${serial}.hwl`));
    const r = await cli(['publish', full, '--dir', w.rel, '--key', w.alice.key, '--now', NOW]);
    t.equal(r.code, 1, `serial ${serial} refused`);
    t.match(r.stderr, /ROLLBACK: serial \d+ does not increase over the published serial 5/);
  }
  const explicitSeq = await cli([
    'publish',
    await buildFull(t, w.dir, w.source, w.listKey, 6, join(w.dir, 'f6.hwl')),
    '--dir',
    w.rel,
    '--key',
    w.alice.key,
    '--seq',
    '1',
    '--now',
    NOW,
  ]);
  t.equal(explicitSeq.code, 1, 'a seq that does not increase is refused too');
  t.match(explicitSeq.stderr, /ROLLBACK: seq 1/);
  t.same(
    files(w.rel).map((f) => [f, readFileSync(join(w.rel, f)).toString('base64')]),
    before,
    'no file changed, none added',
  );
});

t.test('publish --prune keeps only what the new index needs', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1, 2, 3]);
  const full = await buildFull(t, w.dir, w.source, w.listKey, 4, join(w.dir, 'f4.hwl'));
  const r = await cli([
    'publish',
    full,
    '--dir',
    w.rel,
    '--key',
    w.alice.key,
    '--deltas',
    '1',
    '--prune',
    '--now',
    NOW,
  ]);
  t.equal(r.code, 0, r.stderr);
  t.same(dataFiles(w.rel), ['delta/3-4.hwld', 'full/3.hwl', 'full/4.hwl', 'index.hwl']);
  t.same(
    files(w.rel).filter((f) => f.endsWith('.minisig')),
    ['delta/3-4.hwld.minisig', 'full/3.hwl.minisig', 'full/4.hwl.minisig', 'index.hwl.minisig'],
  );
  t.equal((await cli(['verify', w.rel, '--pub', w.alice.pub, '--now', NOW])).code, 0);
});

t.test('publish keeps deltas from the N latest FULLs present', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const index = parseIndex(readFileSync(join(w.rel, 'index.hwl')));
  t.same(
    index.deltas.map((d) => d.baseSerial),
    [2, 3, 4, 5, 6, 7, 8],
    'the default is 7',
  );
  // Every delta the CLI wrote (1+2+...+7+7 of them) rebuilds its target FULL byte for byte.
  const deltas = readdirSync(join(w.rel, 'delta')).filter((n) => n.endsWith('.hwld'));
  t.equal(deltas.length, 1 + 2 + 3 + 4 + 5 + 6 + 7 + 7);
  for (const name of deltas) {
    const delta = parseDelta(readFileSync(join(w.rel, 'delta', name)));
    const base = parseFull(readFileSync(join(w.rel, 'full', `${delta.header.baseSerial}.hwl`)));
    const target = readFileSync(join(w.rel, 'full', `${delta.header.serial}.hwl`));
    t.ok(serializeFull(applyDelta(base, delta)).equals(target), `${name} rebuilds its FULL`);
  }
  const full = await buildFull(t, w.dir, w.source, w.listKey, 10, join(w.dir, 'f10.hwl'));
  const r = await cli(['publish', full, '--dir', w.rel, '--key', w.alice.key, '--deltas', '0', '--now', NOW]);
  t.equal(r.code, 0, r.stderr);
  t.same(parseIndex(readFileSync(join(w.rel, 'index.hwl'))).deltas, [], '--deltas 0: none');
});

t.test('a FULL left by an interrupted publish of a skipped serial is never a delta base', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1]);
  // A publish of serial 2 that died after renaming its FULL, before its signature; the maintainer then moved on.
  const f2 = await buildFull(t, w.dir, w.source, w.listKey, 2, join(w.dir, 'f2.hwl'));
  writeFileSync(join(w.rel, 'full/2.hwl'), readFileSync(f2));
  const f3 = await buildFull(t, w.dir, w.source, w.listKey, 3, join(w.dir, 'f3.hwl'));
  const r = await cli(['publish', f3, '--dir', w.rel, '--key', w.alice.key, '--now', NOW]);
  t.equal(r.code, 0, r.stderr);
  t.same(
    parseIndex(readFileSync(join(w.rel, 'index.hwl'))).deltas.map((d) => d.baseSerial),
    [1],
    'only published serials are bases',
  );
  const v = await cli(['verify', w.rel, '--pub', w.alice.pub, '--now', NOW]);
  t.equal(v.code, 0, v.stdout);
});

t.test('publish refuses what a daemon would refuse, or what looks like the wrong directory', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1]);
  const f2 = await buildFull(t, w.dir, w.source, w.listKey, 2, join(w.dir, 'f2.hwl'));

  const expired = await cli(['publish', f2, '--dir', w.rel, '--key', w.alice.key, '--now', iso(T0 + 8 * 86400)]);
  t.equal(expired.code, 1);
  t.match(expired.stderr, /EXPIRED/);
  const early = await cli(['publish', f2, '--dir', w.rel, '--key', w.alice.key, '--now', iso(T0 - 3600)]);
  t.equal(early.code, 1);
  t.match(early.stderr, /NOT_YET_VALID/);

  const other = join(w.dir, 'other.hwl');
  const b = await cli([
    'build',
    w.source,
    '--list-key',
    w.listKey,
    '--list-id',
    'other',
    '--serial',
    '9',
    '--created',
    iso(T0),
    '--out',
    other,
  ]);
  t.equal(b.code, 0);
  const mismatch = await cli(['publish', other, '--dir', w.rel, '--key', w.alice.key, '--now', NOW]);
  t.equal(mismatch.code, 1);
  t.match(mismatch.stderr, /LIST_MISMATCH/);

  // FULLs but no index: the maintainer must say which seq comes next.
  const lost = join(w.dir, 'lost');
  await cli(['publish', f2, '--dir', lost, '--key', w.alice.key, '--now', NOW]);
  rmSync(join(lost, 'index.hwl'));
  const f3 = await buildFull(t, w.dir, w.source, w.listKey, 3, join(w.dir, 'f3.hwl'));
  const noSeq = await cli(['publish', f3, '--dir', lost, '--key', w.alice.key, '--now', NOW]);
  t.equal(noSeq.code, 2);
  t.match(noSeq.stderr, /--seq/);
  const withSeq = await cli(['publish', f3, '--dir', lost, '--key', w.alice.key, '--seq', '500', '--now', NOW]);
  t.equal(withSeq.code, 0, withSeq.stderr);
  t.equal(parseIndex(readFileSync(join(lost, 'index.hwl'))).header.seq, 500);

  const damaged = join(w.dir, 'damaged.hwl');
  writeFileSync(damaged, readFileSync(f2).toString().replace('entries: ', 'entries: 1'));
  const bad = await cli(['publish', damaged, '--dir', w.rel, '--key', w.alice.key, '--now', NOW]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /MALFORMED/);
});

t.test('a held lock refuses a second writer; a lock left by a dead process is taken over', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1]);
  const lock = join(w.rel, '.hashwall-signer.lock');
  writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), since: 'now' }));
  const held = await cli(['heartbeat', '--dir', w.rel, '--key', w.alice.key, '--now', NOW]);
  t.equal(held.code, 1);
  t.match(held.stderr, new RegExp(`LOCKED: process ${process.pid}`));
  // A pid that cannot be running (above the kernel's pid_max).
  writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), since: 'then' }));
  const stale = await cli(['heartbeat', '--dir', w.rel, '--key', w.alice.key, '--now', NOW]);
  t.equal(stale.code, 0, stale.stderr);
  t.match(stale.stderr, /taking over the lock/);
  t.notOk(existsSync(lock), 'released after use');
});

t.test('an empty list builds, publishes and verifies', async (t) => {
  const dir = tempDir(t);
  const key = vectorListKey(dir);
  const alice = fixtureKey(dir, 'alice');
  writeSource(dir, 'empty.txt', '# nothing listed yet\n');
  const full = await buildFull(t, dir, join(dir, 'empty.txt'), key, 1, join(dir, 'e.hwl'));
  const p = await cli(['publish', full, '--dir', join(dir, 'rel'), '--key', alice.key, '--now', NOW]);
  t.equal(p.code, 0, p.stderr);
  const v = await cli(['verify', join(dir, 'rel'), '--pub', alice.pub, '--now', NOW]);
  t.equal(v.code, 0, v.stdout);
  t.match(v.stdout, /full\/1\.hwl: 0 entries/);
});
