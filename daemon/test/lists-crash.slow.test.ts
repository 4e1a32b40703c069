// Crash loops (the reliability suite): a list sync or a whole daemon killed with SIGKILL while it commits a new list,
// again and again; every restart serves one of the lists committed, never a mix or nothing.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { generateListKey, sha256Hex } from '@hashwall/format';
import t from 'tap';

import { expectEnforced } from './lists/enforced.ts';
import {
  Clock,
  DAY,
  ReleaseDir,
  fullOf,
  harness,
  rawSettings,
  settingsWith,
  spoolsIn,
  tempDir,
  killDuring,
  verdictOf,
  within,
  withDns,
} from './lists/helpers.ts';

const listKey = generateListKey('demo-2026a');

type TestLike = { teardown(fn: () => unknown): void };

function release(t: TestLike) {
  const root = tempDir(t);
  return { root, rel: new ReleaseDir(join(root, 'release')), stateDir: join(root, 'state'), clock: new Clock() };
}

t.test('kill -9 during commits: every restart serves one of the committed lists', async (t) => {
  const { rel, root, stateDir, clock } = release(t);
  const names = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i}.example`);
  const a = fullOf(listKey, 1, names(20000, 'a'));
  const b = fullOf(listKey, 2, names(20000, 'b'));
  const inputs = join(root, 'inputs');
  mkdirSync(inputs);
  for (const [tag, full, seq] of [
    ['a', a, 1],
    ['b', b, 2],
  ] as const) {
    const files = rel.publish(full, { seq, bases: [] });
    const index = files.get('index.hwl')!;
    const fullBytes = files.get(`full/${full.header.serial}.hwl`)!;
    writeFileSync(join(inputs, `${tag}.index`), index);
    writeFileSync(join(inputs, `${tag}.sig`), files.get('index.hwl.minisig')!);
    writeFileSync(join(inputs, `${tag}.full`), fullBytes);
    const state = {
      listId: 'demo',
      serial: full.header.serial,
      seq,
      bodySha256: full.bodySha256,
      fullSha256: sha256Hex(fullBytes),
    };
    writeFileSync(join(inputs, `${tag}.state.json`), JSON.stringify(state));
  }
  const settings = settingsWith(stateDir, [{ mirrors: ['file:///nonexistent/'], keys: [rel.key], listKey }]);
  const seen = new Set<number>();
  for (let i = 0; i < 4; i++) {
    const how = await killDuring(['store', stateDir, inputs], 'ready', 30 + 37 * i);
    t.match(how, /^SIGKILL/, `run ${i} was killed`);
    const h = harness(t, settings, clock);
    await within(h.registry.start());
    t.equal(h.of('store-unusable').length, 0, `run ${i}: the store opens`);
    const serial = h.registry.stats()[0]!.serial;
    t.ok(serial === 1 || serial === 2, `run ${i}: serial ${serial} in force`);
    seen.add(serial!);
    const tag = serial === 1 ? 'a' : 'b';
    t.equal(verdictOf(h.registry.view(), `${tag}123.example`), 'D:demo');
    t.equal(verdictOf(h.registry.view(), `${tag === 'a' ? 'b' : 'a'}123.example`), null);
    t.same(spoolsIn(stateDir), [], `run ${i}: a spool the kill left is swept at the start`);
    await h.registry.close();
  }
  t.comment(`serials seen after the kills: ${[...seen].join(', ')}`);
});

t.test('kill -9 of a daemon while it commits a new list: the restart serves the last good one', async (t) => {
  const { rel, stateDir, clock } = release(t);
  const now = Math.floor(Date.now() / 1000);
  const win = { created: now - 60, expires: now + 6 * DAY };
  const big = (serial: number) =>
    fullOf(
      listKey,
      serial,
      Array.from({ length: 60000 }, (_, i) => `s${serial}n${i}.example`),
      win,
    );
  rel.publish(big(1), win);
  const raw = rawSettings(stateDir, [{ mirrors: [rel.url], keys: [rel.key], listKey }]);
  // First run: serial 1 committed.
  const h = harness(t, settingsWith(stateDir, [{ mirrors: [rel.url], keys: [rel.key], listKey }]), new Clock(now));
  await h.registry.start();
  t.equal(await h.registry.pollNow('demo'), 'updated');
  await h.registry.close();
  rel.publish(big(2), { ...win, bases: [] });
  const settingsFile = join(stateDir, '..', 'settings.json');
  writeFileSync(settingsFile, JSON.stringify(raw));
  for (const delay of [5, 100]) {
    const how = await killDuring(['daemon', settingsFile], 'polling', delay);
    t.match(how, /^SIGKILL/);
    const h2 = await withDns(
      t,
      harness(t, settingsWith(stateDir, [{ mirrors: ['file:///nonexistent/'], keys: [rel.key], listKey }]), clock),
    );
    await within(h2.registry.start());
    t.equal(h2.of('store-unusable').length, 0, `killed ${delay} ms in: the store opens`);
    const serial = h2.registry.stats()[0]!.serial!;
    t.ok(serial === 1 || serial === 2, `killed ${delay} ms in: serial ${serial}`);
    await expectEnforced(t, h2, { blocked: [`s${serial}n7.example`], passed: [`s${3 - serial}n7.example`] });
    t.same(spoolsIn(stateDir), [], `killed ${delay} ms in: a spool the kill left is swept at the start`);
    await h2.registry.close();
  }
  rmSync(settingsFile);
});
