// Keyrings refused (SPEC.md 5), in the manner of TUF's key rotation tests: each served by a real HTTP server from
// the release directory of a maintainer who runs the real signer, or put on the mirror by hand where the signer
// would refuse to write it. Every refusal has its own code, is logged as an alarm, counted in the list-update
// outcome metric, and the last good list stays in force: no keyring published (KEYRING_WITHHELD), a version signed
// by only the old or only the new roots (KEYRING_SIGNATURE), a skipped version (KEYRING_VERSION), an index naming a
// keyring the mirror withholds (KEYRING_WITHHELD), an index without `keyring:` (KEYRING_REQUIRED), an index under
// an older keyring (ROLLBACK), a revoked signing key still signing (UNTRUSTED_KEY), an expired keyring
// (KEYRING_EXPIRED).
import { rmSync } from 'node:fs';
import { join } from 'node:path';

import { generateListKey } from '@hashwall/format';
import t, { type Test } from 'tap';

import { Metrics } from '../dist/ops/metrics.js';
import { parseExposition, samplesOf } from './helpers/ops.ts';
import {
  Clock,
  DAY,
  ReleaseDir,
  ReleaseServer,
  harness,
  settingsWith,
  tempDir,
  verdictOf,
  within,
  type Harness,
} from './lists/helpers.ts';
import { Maintainer } from './lists/trust-helpers.ts';

const listKey = generateListKey('demo-2026a');
const ONE = ['one.example'];
const TWO = ['one.example', 'two.example'];

interface Ctx {
  readonly m: Maintainer;
  readonly h: Harness;
  readonly clock: Clock;
  readonly metrics: Metrics;
}

/** A maintainer with keyring 1 (root r0, signing key s0) and serial 1 in force in a daemon anchored on r0. */
async function inForce(t: Test, names: string[], validitySeconds?: number): Promise<Ctx> {
  const root = tempDir(t);
  const m = new Maintainer(join(root, 'release'), listKey, names);
  const server = await new ReleaseServer(new ReleaseDir(m.dir)).listen();
  t.teardown(() => server.close());
  await m.publishKeyring(m.draft(['r0'], 1, ['s0'], 1, validitySeconds), ['r0'], { roots: ['r0'], rootThreshold: 1 });
  await m.publish(1, ONE, ['s0']);
  const clock = new Clock();
  const anchored = { mirrors: [server.url], keys: [], rootKeys: m.pubs(['r0']), listKey };
  const h = harness(t, settingsWith(join(root, 'state'), [anchored]), clock);
  const metrics = new Metrics({ processMetrics: false });
  metrics.attachLists(h.registry);
  await within(h.registry.start());
  if ((await within(h.registry.pollNow('demo'))) !== 'updated') throw new Error('setup: serial 1');
  return { m, h, clock, metrics };
}

/** The poll is refused with `code`: an alarm in the log, counted by code, serial 1 still in force. */
async function refused(t: Test, c: Ctx, code: string, what: string): Promise<void> {
  t.equal(await within(c.h.registry.pollNow('demo')), 'rejected', what);
  t.equal(c.h.of('rejected').at(-1)?.code, code, `${what}: ${code}`);
  t.ok(
    c.h.log.lines.some((l) => l.level === 'error' && l.code === code),
    `${code} logged at error`,
  );
  t.match(c.h.registry.stats()[0], { enforced: true, serial: 1 }, 'the last good list stays in force');
  t.equal(verdictOf(c.h.registry.view(), 'one.example'), 'D:demo');
  const samples = samplesOf(parseExposition(await c.metrics.text()), 'hashwall_list_updates_total');
  t.ok((samples[`hashwall_list_updates_total{list="demo",outcome="${code}"}`] ?? 0) >= 1, `counted as ${code}`);
}

t.test('no keyring published: KEYRING_WITHHELD, and nothing is in force', async (t) => {
  const root = tempDir(t);
  const m = new Maintainer(join(root, 'release'), listKey, ['r0', 's0']);
  const server = await new ReleaseServer(new ReleaseDir(m.dir)).listen();
  t.teardown(() => server.close());
  await m.publish(1, ONE, ['s0']);
  const anchored = { mirrors: [server.url], keys: [], rootKeys: m.pubs(['r0']), listKey };
  const h = harness(t, settingsWith(join(root, 'state'), [anchored]), new Clock());
  await within(h.registry.start());
  t.equal(await within(h.registry.pollNow('demo')), 'rejected');
  t.equal(h.of('rejected').at(-1)?.code, 'KEYRING_WITHHELD');
  t.ok(
    h.log.lines.some((l) => l.alarm === true && l.code === 'KEYRING_WITHHELD'),
    'alarmed',
  );
  t.match(h.registry.stats()[0], { enforced: false, keyringVersion: null });
});

t.test('a version signed by only the old roots, or only the new: KEYRING_SIGNATURE', async (t) => {
  const c = await inForce(t, ['r0', 'r1', 's0']);
  await c.m.publish(2, TWO, ['s0']);
  const next = c.m.draft(['r1'], 1, ['s0']);
  c.m.writeKeyringRaw(next, ['r0']);
  await refused(t, c, 'KEYRING_SIGNATURE', 'signed by the old root alone');
  c.m.writeKeyringRaw(next, ['r1']);
  await refused(t, c, 'KEYRING_SIGNATURE', 'signed by the new root alone');
  t.match(c.h.registry.stats()[0], { keyringVersion: 1 }, 'the stored keyring stays');
  c.m.writeKeyringRaw(next, ['r0', 'r1']);
  await c.m.publish(3, TWO, ['s0']);
  t.equal(await within(c.h.registry.pollNow('demo')), 'updated', 'signed by both: accepted');
  t.match(c.h.registry.stats()[0], { keyringVersion: 2, serial: 3 });
});

t.test('a skipped version: KEYRING_VERSION; an index under a withheld keyring: KEYRING_WITHHELD', async (t) => {
  const c = await inForce(t, ['r0', 's0', 's1']);
  // Version 3, made and signed as the next one would be, filed as keyring/2.hwk.
  const v2 = c.m.draft(['r0'], 1, ['s1']);
  const v3 = { ...v2, header: { ...v2.header, version: 3 } };
  c.m.writeKeyringRaw(v3, ['r0'], 2);
  await refused(t, c, 'KEYRING_VERSION', 'keyring/2.hwk holding version 3');
  // The mirror serves no keyring 2 at all, and an index signed under keyring 2's keys.
  c.m.publishRaw(2, TWO, ['s1'], 5, 2);
  await c.m.publishKeyring(c.m.draft(['r0'], 1, ['s1']), ['r0']).then(
    () => t.fail('the signer refuses a version 2 over a version 3 file'),
    () => undefined,
  );
  rmSync(join(c.m.dir, 'keyring', '2.hwk'));
  await refused(t, c, 'KEYRING_WITHHELD', 'the index names keyring 2, the mirror serves only 1');
});

t.test('an index without keyring: KEYRING_REQUIRED; under an older keyring: ROLLBACK', async (t) => {
  const c = await inForce(t, ['r0', 's0']);
  c.m.publishRaw(2, TWO, ['s0'], 5);
  await refused(t, c, 'KEYRING_REQUIRED', 'an index that names no keyring');
  // Keyring 2 keeps s0 (a new expiry only); an index by s0 that still names keyring 1 is older than the keyring.
  await c.m.publishKeyring(c.m.draft(['r0'], 1, ['s0']), ['r0']);
  c.m.publishRaw(2, TWO, ['s0'], 6, 1);
  await refused(t, c, 'ROLLBACK', 'an index under keyring 1 after keyring 2');
});

t.test('a revoked signing key still signing: UNTRUSTED_KEY', async (t) => {
  const c = await inForce(t, ['r0', 's0', 's1']);
  // Keyring 2 revokes s0 (stolen); the thief signs an index naming keyring 2 with it.
  await c.m.publishKeyring(c.m.draft(['r0'], 1, ['s1']), ['r0']);
  c.m.publishRaw(2, ['one.example', 'www.bank.example'], ['s0'], 9, 2);
  await refused(t, c, 'UNTRUSTED_KEY', 'an index by the revoked key');
  t.equal(verdictOf(c.h.registry.view(), 'www.bank.example'), null, "the thief's list is not in force");
  // The maintainer publishes with the new key: accepted.
  await c.m.publish(3, TWO, ['s1']);
  t.equal(await within(c.h.registry.pollNow('demo')), 'updated');
  t.match(c.h.registry.stats()[0], { keyringVersion: 2, serial: 3 });
});

t.test('an expired keyring: KEYRING_EXPIRED, no index accepted under it', async (t) => {
  const c = await inForce(t, ['r0', 's0'], 10 * DAY);
  await c.m.publish(2, TWO, ['s0']);
  // Keyring 1 was created at T0 - 1 day: it expires at T0 + 9 days, exactly (no skew for an expiry a client holds).
  const expires = c.m.keyrings[0]!.header.expires;
  t.equal(c.h.registry.stats()[0]!.keyringExpires, expires);
  c.clock.now = expires;
  await refused(t, c, 'KEYRING_EXPIRED', 'at its expiry');
  t.ok(
    c.h.log.lines.some((l) => l.code === 'KEYRING_EXPIRED' && String(l.msg).includes('next keyring')),
    'the log line says what to do',
  );
});
