// Keyrings in the list sync (SPEC.md 5), in the manner of TUF's key rotation tests (test_updater_key_rotations):
// the maintainer runs the real signer (keyring init, next, sign, publish; publish), a real HTTP server serves the
// release directory, and the daemon's list sync, anchored on the first roots and never reconfigured, follows every
// rotation: 1 of 1 to 2 of 3 and back, a root threshold raised and lowered, two versions in one poll, and the
// keyring committed with the list state, re-opened at a restart under the keyring its index was verified under.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { generateListKey } from '@hashwall/format';
import t, { type Test } from 'tap';

import { FollowerLists } from '../dist/cluster/follower.js';
import { createLogger } from '../dist/util/log.js';
import {
  Clock,
  LogSink,
  ReleaseDir,
  ReleaseServer,
  harness,
  settingsWith,
  tempDir,
  verdictOf,
  within,
} from './lists/helpers.ts';
import { Maintainer } from './lists/trust-helpers.ts';

const listKey = generateListKey('demo-2026a');
const ONE = ['one.example'];
const TWO = ['one.example', 'two.example'];
const THREE = ['one.example', 'two.example', 'three.test'];

/** A maintainer with the given keys, a mirror serving its release directory, and a daemon anchored on `roots`. */
async function setup(t: Test, names: string[], roots: string[], rootThreshold = 1) {
  const root = tempDir(t);
  const m = new Maintainer(join(root, 'release'), listKey, names);
  const server = await new ReleaseServer(new ReleaseDir(m.dir)).listen();
  t.teardown(() => server.close());
  const stateDir = join(root, 'state');
  const anchored = { mirrors: [server.url], keys: [], rootKeys: m.pubs(roots), rootThreshold, listKey };
  const clock = new Clock();
  const h = harness(t, settingsWith(stateDir, [anchored]), clock);
  return { m, server, stateDir, clock, h, anchored };
}

t.test('1 of 1 to 2 of 3 and back to 1 of 1: the daemon follows with no config change', async (t) => {
  const { m, h, stateDir, clock, anchored } = await setup(t, ['r0', 'r1', 'r2', 'r3', 's0', 's1'], ['r0']);
  await m.publishKeyring(m.draft(['r0'], 1, ['s0']), ['r0'], { roots: ['r0'], rootThreshold: 1 });
  await m.publish(1, ONE, ['s0']);
  await within(h.registry.start());
  t.equal(await within(h.registry.pollNow('demo')), 'updated', 'serial 1 under keyring 1');
  t.match(h.registry.stats()[0], { keyringVersion: 1, serial: 1 });

  // Version 2: three roots, two of them must sign; the one old root's signature and two new ones.
  await m.publishKeyring(m.draft(['r0', 'r1', 'r2'], 2, ['s0']), ['r0', 'r1']);
  await m.publish(2, TWO, ['s0']);
  t.equal(await within(h.registry.pollNow('demo')), 'updated', 'serial 2 under keyring 2');
  t.match(h.registry.stats()[0], { keyringVersion: 2, serial: 2 });
  t.equal(verdictOf(h.registry.view(), 'two.example'), 'D:demo');

  // Version 3: back to one root (a new one) and a new signing key: two of version 2's roots and its own sign it.
  await m.publishKeyring(m.draft(['r3'], 1, ['s1']), ['r1', 'r2', 'r3']);
  await m.publish(3, THREE, ['s1']);
  t.equal(await within(h.registry.pollNow('demo')), 'updated', 'serial 3 under keyring 3');
  t.match(h.registry.stats()[0], { keyringVersion: 3, serial: 3 });
  t.equal(verdictOf(h.registry.view(), 'three.test'), 'D:demo');
  t.same(
    h.of('keyring').map((e) => e.version),
    [2, 3],
    'each rotation told once',
  );
  t.equal(h.of('rejected').length, 0, 'nothing refused on the way');

  // The keyring is in the state directory with the list: a restart with no mirror re-opens both.
  const state = JSON.parse(readFileSync(join(stateDir, 'demo', 'state.json'), 'utf8')) as Record<string, unknown>;
  t.match(state, { serial: 3, keyring: { version: 3, signatures: 3 } });
  t.notOk('indexKeyring' in state, 'the index is under the current keyring');
  t.ok(existsSync(join(stateDir, 'demo', 'keyring-3.hwk')));
  t.notOk(existsSync(join(stateDir, 'demo', 'keyring-2.hwk')), 'older keyrings swept');
  await h.registry.close();
  const offline = harness(t, settingsWith(stateDir, [{ ...anchored, mirrors: ['file:///nonexistent/'] }]), clock);
  await within(offline.registry.start());
  t.match(offline.of('loaded'), [{ serial: 3 }], 'the stored list re-opened under the stored keyring');
  t.equal(offline.of('store-unusable').length, 0);
  t.equal(verdictOf(offline.registry.view(), 'three.test'), 'D:demo');
  // A DNS worker (workers > 1) reads the same state directory with the same re-open.
  const follower = new FollowerLists(settingsWith(stateDir, [anchored]), {
    logger: createLogger({ level: 'error' }, new LogSink()),
  });
  await within(follower.readAll());
  t.equal(verdictOf(follower.view(), 'three.test'), 'D:demo', "a worker's lists: serial 3 under keyring 3");
  await follower.close();
});

t.test('a root threshold raised and lowered; two versions walked in one poll', async (t) => {
  const { m, h } = await setup(t, ['r0', 'r1', 's0'], ['r0', 'r1']);
  await m.publishKeyring(m.draft(['r0', 'r1'], 1, ['s0']), ['r0'], { roots: ['r0', 'r1'], rootThreshold: 1 });
  await m.publish(1, ONE, ['s0']);
  await within(h.registry.start());
  t.equal(await within(h.registry.pollNow('demo')), 'updated');
  // Raised to 2 of 2 (one of the old roots would do for the old threshold; both sign for the new one) ...
  await m.publishKeyring(m.draft(['r0', 'r1'], 2, ['s0']), ['r0', 'r1']);
  // ... and lowered back to 1 (two of version 2's roots must sign it, as version 2 asks).
  await m.publishKeyring(m.draft(['r0', 'r1'], 1, ['s0']), ['r0', 'r1']);
  await m.publish(2, TWO, ['s0']);
  t.equal(await within(h.registry.pollNow('demo')), 'updated', 'one poll walks versions 2 and 3');
  t.match(h.registry.stats()[0], { keyringVersion: 3, serial: 2 });
  t.same(
    h.of('keyring').map((e) => e.version),
    [3],
  );
});

t.test(
  'a keyring accepted before its index: committed at once; a restart re-opens the index under its own',
  async (t) => {
    const { m, h, stateDir, clock, anchored } = await setup(t, ['r0', 's0', 's1'], ['r0']);
    await m.publishKeyring(m.draft(['r0'], 1, ['s0']), ['r0'], { roots: ['r0'], rootThreshold: 1 });
    await m.publish(1, ONE, ['s0']);
    await within(h.registry.start());
    t.equal(await within(h.registry.pollNow('demo')), 'updated');
    // The mirror has keyring 2 (s0 replaced by s1) but still the index signed under keyring 1.
    await m.publishKeyring(m.draft(['r0'], 1, ['s1']), ['r0']);
    t.equal(await within(h.registry.pollNow('demo')), 'not-modified', 'the index did not change (304)');
    t.match(h.registry.stats()[0], { keyringVersion: 2, serial: 1, enforced: true }, 'but the walk took keyring 2');
    const state = JSON.parse(readFileSync(join(stateDir, 'demo', 'state.json'), 'utf8')) as Record<string, unknown>;
    t.match(state, { serial: 1, keyring: { version: 2 }, indexKeyring: { version: 1 } }, 'committed with the state');

    await h.registry.close();
    const again = harness(t, settingsWith(stateDir, [anchored]), clock);
    await within(again.registry.start());
    t.match(again.of('loaded'), [{ serial: 1 }], 'the stored index re-opened under keyring 1, the one it was under');
    t.equal(again.of('store-unusable').length, 0);
    t.match(again.registry.stats()[0], { keyringVersion: 2 }, 'and the walk goes on from keyring 2');
    const follower = new FollowerLists(settingsWith(stateDir, [anchored]), {
      logger: createLogger({ level: 'error' }, new LogSink()),
    });
    await within(follower.readAll());
    t.equal(verdictOf(follower.view(), 'one.example'), 'D:demo', "a worker's lists re-open it the same way");
    await follower.close();
    // A fresh worker fetches the index whole: signed by s0, which keyring 2 no longer lists, it is refused now.
    t.equal(await within(again.registry.pollNow('demo')), 'rejected');
    t.equal(again.of('rejected').at(-1)?.code, 'UNTRUSTED_KEY', 'an index by a key keyring 2 dropped');
    t.ok(
      again.log.lines.some((l) => l.alarm === true && l.code === 'UNTRUSTED_KEY'),
      'alarmed',
    );
    t.match(again.registry.stats()[0], { serial: 1, enforced: true }, 'the last list stays in force');
    await m.publish(2, TWO, ['s1']);
    t.equal(await within(again.registry.pollNow('demo')), 'updated');
    const after = JSON.parse(readFileSync(join(stateDir, 'demo', 'state.json'), 'utf8')) as Record<string, unknown>;
    t.match(after, { serial: 2, keyring: { version: 2 } });
    t.notOk('indexKeyring' in after);
    t.notOk(existsSync(join(stateDir, 'demo', 'keyring-1.hwk')), 'keyring 1 swept once nothing points to it');
  },
);
