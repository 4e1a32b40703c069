// The guard against over-blocking on the daemon's side (lists/hold.ts), end to end: the maintainer runs the real
// signer's command line, whose own gate refuses a list that blocks a popular name until `--override` lets it
// through; a real HTTP server serves the release; the daemon's list sync HOLDS that list (the last one stays in
// force, an alarm, the held metric and held.json say so); the operator releases it with the real
// `hashwalld release-held`, after which it is applied with the popular name still not blocked, in the list sync,
// after a restart and in a DNS worker's lists; a later list that still lists it is not held again; a list that
// blocks a name of the operator's own critical names file is held too.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { TOP_SITES_URL } from '@hashwall/format';
import t, { type Test } from 'tap';

import { FollowerLists } from '../dist/cluster/follower.js';
import { settingsFrom } from '../dist/config/load.js';
import { Metrics } from '../dist/ops/metrics.js';
import { createLogger } from '../dist/util/log.js';
import { MAIN } from './helpers/child.ts';
import { parseExposition } from './helpers/ops.ts';
import {
  Clock,
  LogSink,
  ReleaseDir,
  ReleaseServer,
  harness,
  rawSettings,
  tempDir,
  verdictOf,
  within,
} from './lists/helpers.ts';
import { NOW_ISO, runNode } from './lists/trust-helpers.ts';
import { cli as signer } from '../../signer/test/helpers.ts';

const NOW = NOW_ISO;
const run = runNode;

/** The first name of the bundled popular list, read at run time (the repository holds reserved names only). */
function popular(): { name: string; line: number } {
  const lines = readFileSync(fileURLToPath(TOP_SITES_URL), 'utf8').split('\n');
  const i = lines.findIndex((l) => l !== '' && !l.startsWith('#'));
  return { name: lines[i]!, line: i + 1 };
}

interface World {
  readonly dir: string;
  readonly rel: string;
  readonly key: string;
  readonly listKey: string;
  readonly critical: string;
  readonly config: string;
  readonly settings: ReturnType<typeof settingsFrom>;
  /** hashwall-signer build + publish of `serial` blocking `names`, with `extra` options for both. */
  publish(t: Test, serial: number, names: string[], extra?: string[]): Promise<void>;
}

async function world(t: Test, mirror: (rel: string) => Promise<string>): Promise<World> {
  const dir = tempDir(t);
  const rel = join(dir, 'release');
  const key = join(dir, 'maint');
  const listKey = join(dir, 'demo.listkey');
  for (const args of [
    ['keygen', '--out', key, '--no-password'],
    ['keygen', '--list-key', '--id', 'demo-2026a', '--out', listKey],
  ]) {
    const r = await signer(args);
    t.equal(r.code, 0, r.stderr);
  }
  const critical = join(dir, 'critical.txt');
  writeFileSync(critical, "# the operator's own critical names\nbank.example\n");
  const url = await mirror(rel);
  const raw = rawSettings(join(dir, 'state'), [
    { mirrors: [url], keys: [], keyFiles: [`${key}.pub`], hashKeyFile: listKey },
  ]);
  const config = join(dir, 'hashwalld.json.yaml');
  writeFileSync(config, JSON.stringify({ ...raw, guard: { namesFiles: [critical] } }));
  const settings = settingsFrom({ ...raw, guard: { namesFiles: [critical] } }, dir);
  return {
    dir,
    rel,
    key,
    listKey,
    critical,
    config,
    settings,
    async publish(t, serial, names, extra = []) {
      const source = join(dir, `source-${serial}.txt`);
      writeFileSync(source, names.map((n) => `domain ${n}\n`).join(''));
      const full = join(dir, `f${serial}.hwl`);
      const common = ['--list-key', listKey, ...extra];
      const b = await signer(
        ['build', source, '--list-id', 'demo', '--serial', String(serial)].concat([
          '--created',
          NOW,
          '--out',
          full,
          ...common,
        ]),
      );
      t.equal(b.code, 0, `build ${serial}: ${b.stderr}`);
      const p = await signer(['publish', full, '--dir', rel, '--key', `${key}.key`, '--now', NOW, ...common]);
      t.equal(p.code, 0, `publish ${serial}: ${p.stderr}`);
    },
  };
}

t.test('a list that blocks a popular name is held, released by the operator, applied without it', async (t) => {
  let server: ReleaseServer | undefined;
  const w = await world(t, async (rel) => {
    server = await new ReleaseServer(new ReleaseDir(rel)).listen();
    t.teardown(() => server!.close());
    return server.url;
  });
  const top = popular();
  const parent = top.name.split('.').slice(-2).join('.');
  await w.publish(t, 1, ['one.example', 'two.example']);
  const clock = new Clock();
  const h = harness(t, w.settings, clock);
  const metrics = new Metrics({ processMetrics: false });
  metrics.attachLists(h.registry);
  await within(h.registry.start());
  t.equal(await within(h.registry.pollNow('demo')), 'updated', 'serial 1');

  // The signer refuses it (GUARD_POPULAR) unless overridden; the override is what lets a mistake through.
  writeFileSync(join(w.dir, 'x.txt'), `domain ${parent}\n`);
  const x = ['build', join(w.dir, 'x.txt'), '--list-id', 'demo', '--serial', '2', '--list-key', w.listKey];
  const refusedBuild = await signer([...x, '--out', join(w.dir, 'x.hwl')]);
  t.equal(refusedBuild.code, 1, "the signer's own gate");
  t.match(refusedBuild.stderr, /GUARD_POPULAR/);
  await w.publish(t, 2, ['one.example', 'two.example', parent], ['--override', 'a wrong file, for the test']);
  t.equal(await within(h.registry.pollNow('demo')), 'held', 'serial 2 is held, not applied');
  t.match(h.of('held'), [
    { listId: 'demo', serial: 2, reasons: { guardNames: 1, guardPlaces: [`top-sites.txt:${top.line}`] } },
  ]);
  t.match(h.registry.stats()[0], { serial: 1, heldSerial: 2, enforced: true, outcomes: { held: 1 } });
  t.equal(verdictOf(h.registry.view(), top.name), null, 'the popular name is not blocked');
  t.equal(verdictOf(h.registry.view(), 'one.example'), 'D:demo', 'the last list stays in force');
  const alarm = h.log.lines.find((l) => l.alarm === true && String(l.msg).includes('HELD'));
  t.ok(alarm, 'an alarm');
  t.match(String(alarm?.msg), /hashwalld release-held --list demo --serial 2/, 'saying what to do');
  t.notOk(
    h.log.raw.some((l) => l.includes(parent)),
    'no log line names the guard name or the entry: the guard file and line instead',
  );
  const s = parseExposition(await metrics.text());
  t.equal(s.get('hashwall_list_held{list="demo"}'), 1);
  t.equal(s.get('hashwall_list_updates_total{list="demo",outcome="held"}'), 1);
  const heldFile = join(w.settings.config.stateDir, 'demo', 'held.json');
  t.match(JSON.parse(readFileSync(heldFile, 'utf8')), { serial: 2, reasons: { guardNames: 1 } });
  t.equal(await within(h.registry.pollNow('demo')), 'held', 'held again at the next poll ...');
  t.equal(h.of('held').length, 1, '... without a second alarm');

  // The operator's release: the real command, run as the daemon's user would.
  const wrong = await run(MAIN, [
    'release-held',
    '--config',
    w.config,
    '--list',
    'demo',
    '--serial',
    '3',
    '--reason',
    'x',
  ]);
  t.equal(wrong.code, 1, 'a release names the held serial');
  t.match(wrong.stderr, /holds serial 2, not 3/);
  const args = ['release-held', '--config', w.config, '--list', 'demo', '--serial', '2'];
  const rel = await run(MAIN, [...args, '--reason', 'checked with the maintainer: ticket 4711']);
  t.equal(rel.code, 0, rel.stderr);
  t.match(JSON.parse(rel.stdout), {
    msg: 'held list released',
    serial: 2,
    reason: 'checked with the maintainer: ticket 4711',
  });
  t.match(rel.stderr, /SIGUSR1/, 'it says how to apply it now');
  t.ok(existsSync(join(w.settings.config.stateDir, 'demo', 'release.json')));

  t.equal(await within(h.registry.pollNow('demo')), 'updated', 'applied at the next poll');
  t.match(h.of('released'), [{ listId: 'demo', serial: 2, reason: 'checked with the maintainer: ticket 4711' }]);
  t.ok(
    h.log.lines.some((l) => l.releasedBy !== undefined && l.reason === 'checked with the maintainer: ticket 4711'),
    'who, what and when are logged',
  );
  t.match(h.registry.stats()[0], { serial: 2, heldSerial: null, exemptedEntries: 1 });
  t.equal(verdictOf(h.registry.view(), top.name), null, 'a released list still never blocks the guard name');
  t.equal(verdictOf(h.registry.view(), `mail.${parent}`), null, 'nor what its entry covered');
  t.equal(verdictOf(h.registry.view(), 'two.example'), 'D:demo');
  t.notOk(existsSync(heldFile), 'the hold is cleared');
  const after = parseExposition(await metrics.text());
  t.equal(after.get('hashwall_list_held{list="demo"}'), 0);
  t.equal(after.get('hashwall_list_guard_exempted_entries{list="demo"}'), 1);

  // A later list that still lists it: not held again (the guard name stays out); a new critical name: held.
  await w.publish(t, 3, ['one.example', 'two.example', 'three.example', parent], ['--override', 'still there']);
  t.equal(await within(h.registry.pollNow('demo')), 'updated', 'not held for a name already released');
  t.equal(verdictOf(h.registry.view(), top.name), null);
  t.equal(verdictOf(h.registry.view(), 'three.example'), 'D:demo');
  await w.publish(t, 4, ['one.example', 'bank.example', parent], ['--override', 'x']);
  t.equal(await within(h.registry.pollNow('demo')), 'held', "a name of the operator's file");
  t.match(h.of('held').at(-1), { serial: 4, reasons: { guardNames: 1, guardPlaces: [`${w.critical}:2`] } });
  t.equal(verdictOf(h.registry.view(), 'three.example'), 'D:demo', 'serial 3 stays in force');

  // The same list in a DNS worker's lists (read from the state directory) and after a restart.
  const follower = new FollowerLists(w.settings, { logger: createLogger({ level: 'error' }, new LogSink()) });
  await within(follower.readAll());
  t.equal(verdictOf(follower.view(), top.name), null, "a worker's lists leave the guard name out too");
  t.equal(verdictOf(follower.view(), 'three.example'), 'D:demo');
  await follower.close();
  await h.registry.close();
  const offline = rawSettings(w.settings.config.stateDir, [
    { mirrors: ['file:///nonexistent/'], keys: [], keyFiles: [`${w.key}.pub`], hashKeyFile: w.listKey },
  ]);
  const again = harness(t, settingsFrom({ ...offline, guard: { namesFiles: [w.critical] } }, w.dir), clock);
  await within(again.registry.start());
  t.match(again.of('loaded'), [{ serial: 3 }]);
  t.equal(verdictOf(again.registry.view(), top.name), null, 'and after a restart');
  t.match(again.registry.stats()[0], { exemptedEntries: 1 });
});
