// Keyrings end to end with the built CLI (SPEC.md 5), in the manner of TUF's key rotation tests: root holders sign
// drafts on their own, `keyring publish` admits a version only when the daemon's walk accepts it, `publish` and
// `heartbeat` sign under the current keyring, and `verify --root` walks the chain from the anchor as a daemon does,
// from the directory and over a real HTTP server.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { cli, minisign, staticServer } from './helpers.ts';
import {
  indexKeyring,
  init,
  next,
  publishKeyring,
  publishSerial,
  pubs,
  setup,
  signDraft,
  verifyRoots,
} from './keyring-helpers.ts';

t.test('a first keyring from root public keys; publish signs under it; verify --root walks to it', async (t) => {
  const w = await setup(t, ['root1', 'sign1']);
  await init(t, w, ['root1'], 1, ['sign1']);
  t.ok(existsSync(join(w.rel, 'keyring/1.hwk')));
  const p = await publishSerial(t, w, 1, ['sign1']);
  t.equal(p.code, 0, p.stderr);
  t.equal(indexKeyring(w), 1, 'the index names keyring 1');
  const v = await verifyRoots(w, ['root1']);
  t.equal(v.code, 0, v.stdout + v.stderr);
  t.match(v.stdout, /ok +keyring\/1\.hwk/);
  // The keyring verifies with the stock tool too.
  const pub = readFileSync(`${w.k('root1')}.pub`, 'utf8').split('\n')[1]!;
  const m = await minisign(['-V', '-H', '-m', join(w.rel, 'keyring/1.hwk'), '-P', pub]);
  t.equal(m.code, 0, m.stderr);
  t.match(m.stdout, 'Trusted comment: hwl1 type=keyring list=demo version=1 expires=');
  // Over HTTP, as a daemon fetches it.
  const url = await staticServer(t, w.rel);
  const h = await verifyRoots(w, ['root1'], 1, url);
  t.equal(h.code, 0, h.stdout + h.stderr);
  // Under the wrong roots nothing verifies.
  const wrong = await verifyRoots(w, ['sign1']);
  t.equal(wrong.code, 1);
  t.match(wrong.stdout, /FAIL +keyring\/1\.hwk: KEYRING_SIGNATURE/);
});

t.test('1 of 1 to 2 of 3 and back to 1 of 1, each version signed by old and new roots', async (t) => {
  const w = await setup(t, ['r0', 'r1', 'r2', 'r3', 's0']);
  await init(t, w, ['r0'], 1, ['s0']);
  const d2 = await next(t, w, 2, [...pubs(w, '--root', ['r0', 'r1', 'r2']), '--root-threshold', '2']);
  await signDraft(t, w, d2, ['r0']);
  const early = await publishKeyring(d2, w);
  t.equal(early.code, 1, 'one of the two new roots is not enough');
  t.match(early.stderr, /KEYRING_SIGNATURE/);
  t.notOk(existsSync(join(w.rel, 'keyring/2.hwk')), 'nothing written');
  await signDraft(t, w, d2, ['r1']);
  t.equal((await publishKeyring(d2, w)).code, 0);
  const d3 = await next(t, w, 3, [...pubs(w, '--root', ['r3']), '--root-threshold', '1']);
  await signDraft(t, w, d3, ['r1', 'r2', 'r3']);
  t.equal((await publishKeyring(d3, w)).code, 0);
  t.equal((await publishSerial(t, w, 1, ['s0'])).code, 0);
  t.equal(indexKeyring(w), 3);
  const v = await verifyRoots(w, ['r0']);
  t.equal(v.code, 0, v.stdout);
  t.match(v.stdout, /keyring\/1\.hwk[\s\S]*keyring\/2\.hwk[\s\S]*keyring\/3\.hwk/);
});

t.test('refused: a version signed only by the old roots, or only by the new ones', async (t) => {
  const w = await setup(t, ['r0', 'r1', 's0']);
  await init(t, w, ['r0'], 1, ['s0']);
  const d2 = await next(t, w, 2, [...pubs(w, '--root', ['r1']), '--root-threshold', '1']);
  await signDraft(t, w, d2, ['r0']);
  const oldOnly = await publishKeyring(d2, w);
  t.equal(oldOnly.code, 1);
  t.match(oldOnly.stderr, /KEYRING_SIGNATURE: not signed by 1 of the 1 roots of itself/);
  const d2b = await next(t, w, 2, [...pubs(w, '--root', ['r1']), '--root-threshold', '1']);
  t.equal(d2b, d2);
  for (const f of [`${d2}.minisig`]) t.notOk(existsSync(f));
  // A fresh draft, signed by the new root only.
  await signDraft(t, w, d2, ['r1']);
  const both = await publishKeyring(d2, w);
  t.equal(both.code, 0, 'with both it passes (the earlier signature by r0 is still next to the draft)');
});

t.test('refused: a version published twice (a replay) and a threshold the draft cannot meet', async (t) => {
  const w = await setup(t, ['r0', 'r1', 's0']);
  await init(t, w, ['r0'], 1, ['s0']);
  const d2 = await next(t, w, 2, ['--root-threshold', '1', ...pubs(w, '--root', ['r0', 'r1'])]);
  await signDraft(t, w, d2, ['r0']);
  t.equal((await publishKeyring(d2, w)).code, 0);
  const again = await publishKeyring(d2, w);
  t.equal(again.code, 1);
  t.match(again.stderr, /KEYRING_VERSION/);
  const bad = await cli(['keyring', 'next', '--dir', w.rel, '--out', join(w.dir, 'x.hwk'), '--root-threshold', '3']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /USAGE: keyring: root-threshold must be from 1 to 2/);
});
