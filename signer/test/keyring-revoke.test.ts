// Keyrings end to end with the built CLI (SPEC.md 5), continued: thresholds raised and lowered, a stolen signing
// key revoked by a new keyring, an expired keyring.
import { join } from 'node:path';

import t from 'tap';

import { NOW, T0, cli, iso } from './helpers.ts';
import {
  DAY,
  indexKeyring,
  init,
  next,
  ok,
  publishKeyring,
  publishSerial,
  pubs,
  setup,
  signDraft,
  verifyRoots,
} from './keyring-helpers.ts';

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
