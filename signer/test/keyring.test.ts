// Keyrings end to end with the built CLI (SPEC.md 5), in the manner of TUF's key rotation tests: root holders sign
// drafts on their own, `keyring publish` admits a version only when the daemon's walk accepts it, `publish` and
// `heartbeat` sign under the current keyring, and `verify --root` walks the chain from the anchor as a daemon does,
// from the directory and over a real HTTP server.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { parseIndex } from '@hashwall/format';

import { NOW, T0, buildFull, cli, iso, minisign, staticServer, world, type World } from './helpers.ts';

const DAY = 86400;
const CREATED = iso(T0 - DAY);

interface Ring extends World {
  /** name -> key file path without extension (keygen --out). */
  k(name: string): string;
}

async function setup(t: Test, names: string[]): Promise<Ring> {
  const w = world(t);
  for (const n of names) {
    const r = await cli(['keygen', '--out', join(w.dir, n), '--no-password']);
    t.equal(r.code, 0, r.stderr);
  }
  return { ...w, k: (n: string) => join(w.dir, n) };
}

async function ok(t: Test, args: string[], what = args.slice(0, 2).join(' ')): Promise<string> {
  const r = await cli(args);
  t.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

/** A draft signed by the given roots (each as a root holder on their own machine would). */
async function signDraft(t: Test, w: Ring, draft: string, roots: string[]): Promise<void> {
  for (const r of roots) await ok(t, ['keyring', 'sign', draft, '--key', `${w.k(r)}.key`], `keyring sign by ${r}`);
}

const pubs = (w: Ring, flag: string, names: string[]): string[] => names.flatMap((n) => [flag, `${w.k(n)}.pub`]);

async function init(t: Test, w: Ring, roots: string[], rt: number, signers: string[], st = 1): Promise<void> {
  const draft = join(w.dir, 'draft-1.hwk');
  const args = ['keyring', 'init', '--list-id', 'demo', ...pubs(w, '--root', roots), '--root-threshold', String(rt)];
  await ok(t, [
    ...args,
    ...pubs(w, '--sign', signers),
    '--sign-threshold',
    String(st),
    '--out',
    draft,
    '--created',
    CREATED,
  ]);
  await signDraft(t, w, draft, roots.slice(0, rt));
  await ok(t, ['keyring', 'publish', draft, '--dir', w.rel, '--now', NOW]);
}

/** Makes the next version's draft; returns its path. */
async function next(t: Test, w: Ring, version: number, extra: string[]): Promise<string> {
  const draft = join(w.dir, `draft-${version}.hwk`);
  await ok(t, ['keyring', 'next', '--dir', w.rel, '--out', draft, '--created', CREATED, ...extra]);
  return draft;
}

async function publishKeyring(draft: string, w: Ring) {
  return cli(['keyring', 'publish', draft, '--dir', w.rel, '--now', NOW]);
}

async function publishSerial(t: Test, w: Ring, serial: number, keys: string[]) {
  const full = await buildFull(t, w.dir, w.source, w.listKey, serial, join(w.dir, `f${serial}.hwl`));
  return cli(['publish', full, '--dir', w.rel, ...keys.flatMap((k) => ['--key', `${w.k(k)}.key`]), '--now', NOW]);
}

async function verifyRoots(w: Ring, roots: string[], threshold = 1, location = w.rel) {
  return cli(['verify', location, ...pubs(w, '--root', roots), '--root-threshold', String(threshold), '--now', NOW]);
}

const indexKeyring = (w: Ring): number | undefined => parseIndex(readFileSync(join(w.rel, 'index.hwl'))).header.keyring;

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

t.test('a threshold raised and lowered: 1 of 2 to 2 of 2 to 1 of 2', async (t) => {
  const w = await setup(t, ['r0', 'r1', 's0']);
  await init(t, w, ['r0', 'r1'], 1, ['s0']);
  const up = await next(t, w, 2, ['--root-threshold', '2']);
  await signDraft(t, w, up, ['r0']);
  t.equal((await publishKeyring(up, w)).code, 1, 'the raised threshold needs both');
  await signDraft(t, w, up, ['r1']);
  t.equal((await publishKeyring(up, w)).code, 0);
  const down = await next(t, w, 3, ['--root-threshold', '1']);
  await signDraft(t, w, down, ['r1']);
  t.equal((await publishKeyring(down, w)).code, 1, 'lowering it needs the old threshold: two');
  await signDraft(t, w, down, ['r0']);
  t.equal((await publishKeyring(down, w)).code, 0);
  t.equal((await publishSerial(t, w, 1, ['s0'])).code, 0);
  t.equal((await verifyRoots(w, ['r0', 'r1'])).code, 0);
});

t.test('a stolen signing key revoked by a new keyring: refused by publish, heartbeat and verify', async (t) => {
  const w = await setup(t, ['root', 'stolen', 'fresh']);
  await init(t, w, ['root'], 1, ['stolen']);
  t.equal((await publishSerial(t, w, 1, ['stolen'])).code, 0);
  const d2 = await next(t, w, 2, [...pubs(w, '--sign', ['fresh'])]);
  await signDraft(t, w, d2, ['root']);
  t.equal((await publishKeyring(d2, w)).code, 0);
  // Until the maintainer re-signs, the index on the mirror is the stolen key's, naming keyring 1: refused.
  const stale = await verifyRoots(w, ['root']);
  t.equal(stale.code, 1);
  t.match(stale.stdout, /FAIL .*UNTRUSTED_KEY/);
  const thief = await publishSerial(t, w, 2, ['stolen']);
  t.equal(thief.code, 1);
  t.match(thief.stderr, /UNTRUSTED_KEY: key [0-9A-F]{16} is not a signing key of keyring 2/);
  const hb = await cli(['heartbeat', '--dir', w.rel, '--key', `${w.k('stolen')}.key`, '--now', NOW]);
  t.equal(hb.code, 1);
  // The maintainer's heartbeat with the fresh key: the same serial, the index now under keyring 2.
  const good = await cli(['heartbeat', '--dir', w.rel, '--key', `${w.k('fresh')}.key`, '--now', NOW]);
  t.equal(good.code, 0, good.stderr);
  t.equal(indexKeyring(w), 2);
  const v = await verifyRoots(w, ['root']);
  t.equal(v.code, 1, 'the FULL is still signed by the stolen key only');
  // Re-publishing a new serial with the fresh key signs everything the index names.
  t.equal((await publishSerial(t, w, 2, ['fresh'])).code, 0);
  const after = await cli(['verify', w.rel, '--root', `${w.k('root')}.pub`, '--now', NOW]);
  t.match(after.stdout, /ok +keyring\/2\.hwk/);
  t.match(after.stdout, /ok +full\/2\.hwl/);
  // The delta's base, FULL 1, carries only the revoked key's signature: a daemon that holds it applies the delta
  // (itself signed by the fresh key), but verify cannot vouch for the base any more.
  t.match(after.stdout, /FAIL +delta\/1-2\.hwld: UNTRUSTED_KEY/);
});

t.test('an expired keyring: publish refuses (KEYRING_EXPIRED), verify too', async (t) => {
  const w = await setup(t, ['root', 's0']);
  const draft = join(w.dir, 'd1.hwk');
  await ok(t, [
    'keyring',
    'init',
    '--list-id',
    'demo',
    '--root',
    `${w.k('root')}.pub`,
    '--root-threshold',
    '1',
    '--sign',
    `${w.k('s0')}.pub`,
    '--sign-threshold',
    '1',
    '--out',
    draft,
    '--created',
    iso(T0 - 2 * DAY),
    '--validity-days',
    '1',
  ]);
  await signDraft(t, w, draft, ['root']);
  await ok(t, ['keyring', 'publish', draft, '--dir', w.rel, '--now', NOW]);
  const p = await publishSerial(t, w, 1, ['s0']);
  t.equal(p.code, 1);
  t.match(p.stderr, /KEYRING_EXPIRED/);
});
