// The guard's change cap (lists/hold.ts): a list that adds, or removes, more entries at once than the larger of
// guard.maxChangePercent and guard.maxChangeCount allow is held (counted as a delta counts them, from the list in
// force and the new one read back in pieces); a release names one exact list; a held list superseded by one within
// the cap is dropped; a first list that blocks a critical name is held with nothing in force. The maintainer
// publishes with the real signer's library (no gates: a maintainer who overrode them), served over HTTP.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { generateListKey } from '@hashwall/format';
import t, { type Test } from 'tap';

import { settingsFrom } from '../dist/config/load.js';
import { releaseHeld } from '../dist/ops/release.js';
import {
  Clock,
  ReleaseDir,
  ReleaseServer,
  harness,
  rawSettings,
  tempDir,
  verdictOf,
  within,
  type Harness,
} from './lists/helpers.ts';
import { Maintainer, NOW } from './lists/trust-helpers.ts';

const listKey = generateListKey('demo-2026a');
const names = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `${tag}${i}.example`);

async function setup(t: Test, guard: Record<string, unknown> = {}) {
  const root = tempDir(t);
  const m = new Maintainer(join(root, 'release'), listKey, ['s0']);
  const server = await new ReleaseServer(new ReleaseDir(m.dir)).listen();
  t.teardown(() => server.close());
  const critical = join(root, 'critical.txt');
  writeFileSync(critical, 'bank.example\n');
  const raw = {
    ...rawSettings(join(root, 'state'), [{ mirrors: [server.url], keys: [m.key('s0')], listKey }]),
    guard: { namesFiles: [critical], ...guard },
  };
  const config = join(root, 'hashwalld.yaml');
  writeFileSync(config, JSON.stringify(raw));
  const settings = settingsFrom(raw, root);
  const h = harness(t, settings, new Clock());
  return { m, h, config, stateDir: settings.config.stateDir };
}

/** `hashwalld release-held` in process, as the command runs it. */
function release(config: string, serial: number, reason: string): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = releaseHeld(
    ['--config', config, '--list', 'demo', '--serial', String(serial), '--reason', reason],
    { out: (l) => (out += l), err: (l) => (err += l), now: () => NOW, env: { SUDO_USER: 'alice' } },
    '/nonexistent',
  );
  return { code, out, err };
}

async function poll(h: Harness): Promise<string> {
  return within(h.registry.pollNow('demo'));
}

t.test('more additions than the cap at once: held; released: applied', async (t) => {
  const { m, h, config, stateDir } = await setup(t);
  await m.publish(1, names(40, 'a'), ['s0']);
  await within(h.registry.start());
  t.equal(await poll(h), 'updated');
  // 40 entries: the cap is max(100, 25 % of 40) = 100. 150 more is over it.
  await m.publish(2, [...names(40, 'a'), ...names(150, 'b')], ['s0']);
  t.equal(await poll(h), 'held');
  t.match(h.of('held').at(-1)?.reasons, {
    guardNames: 0,
    change: { fromSerial: 1, fromEntries: 40, added: 150, removed: 0, allowed: 100 },
  });
  t.equal(verdictOf(h.registry.view(), 'b0.example'), null, 'not applied');
  const r = release(config, 2, 'a new batch from the hotline, confirmed by phone');
  t.equal(r.code, 0, r.err);
  t.match(JSON.parse(r.out), { by: /\(sudo by alice\)$/, at: new Date(NOW * 1000).toISOString() });
  t.equal(await poll(h), 'updated');
  t.equal(verdictOf(h.registry.view(), 'b149.example'), 'D:demo');
  t.match(h.registry.stats()[0], { serial: 2, heldSerial: null, exemptedEntries: 0 });
  t.notOk(existsSync(join(stateDir, 'demo', 'release.json')), 'the release is used up');
  t.equal(release(config, 2, 'again').code, 1, 'nothing is held any more');
});

t.test('more removals than the cap: held; a newer list within the cap supersedes the held one', async (t) => {
  const { m, h, stateDir } = await setup(t, { maxChangeCount: 10, maxChangePercent: 10 });
  await m.publish(1, names(200, 'a'), ['s0']);
  await within(h.registry.start());
  t.equal(await poll(h), 'updated');
  // 200 entries, cap max(10, 20) = 20: an empty file in place of the list (the Denmark 2012 kind of mistake).
  await m.publish(2, names(5, 'a'), ['s0']);
  t.equal(await poll(h), 'held');
  t.match(h.of('held').at(-1)?.reasons, { change: { removed: 195, added: 0, allowed: 20 } });
  t.equal(verdictOf(h.registry.view(), 'a100.example'), 'D:demo', 'the last list stays in force');
  // The maintainer fixes it: serial 3 removes 15 and adds 5, within the cap.
  await m.publish(3, [...names(185, 'a'), ...names(5, 'c')], ['s0']);
  t.equal(await poll(h), 'updated', 'serial 3 passes, and the held serial 2 is forgotten');
  t.match(h.registry.stats()[0], { serial: 3, heldSerial: null });
  t.notOk(existsSync(join(stateDir, 'demo', 'held.json')));
});

t.test('a first list that blocks a critical name is held: nothing is in force until a release', async (t) => {
  const { m, h, config } = await setup(t);
  await m.publish(1, ['one.example', 'bank.example'], ['s0']);
  await within(h.registry.start());
  t.equal(await poll(h), 'held');
  t.match(h.registry.stats()[0], { enforced: false, heldSerial: 1 });
  t.match(h.of('held').at(-1)?.reasons, { guardNames: 1 });
  t.notOk('change' in (h.of('held').at(-1)?.reasons ?? {}), 'no list in force: no change to count');
  t.equal(release(config, 1, 'our critical name is on it: the rest applies').code, 0);
  t.equal(await poll(h), 'updated');
  t.equal(verdictOf(h.registry.view(), 'one.example'), 'D:demo');
  t.equal(verdictOf(h.registry.view(), 'www.bank.example'), null, 'the critical name stays out');
});
