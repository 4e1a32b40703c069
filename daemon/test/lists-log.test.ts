// The release log (SPEC.md 6) end to end on loopback: a maintainer running the real signer's command line
// (publish and heartbeat with --log), two real hashwall-witness processes cosigning, a real HTTP server serving the
// release directory and its log, and the daemon's list sync accepting each index only in a checkpoint both
// witnesses cosigned, consistent with the one it stored (committed with the list state). Then a forked log (the
// same origin and key, other leaves), which both witnesses refuse to cosign, is served to the daemon: refused for
// want of cosignatures; and a daemon that trusts the log key alone sees a split view, keeps both checkpoints as
// evidence and raises its alarm and metric.
import { cpSync, existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { generateListKey, serializeFull, serializeListKey } from '@hashwall/format';
import t, { type Test } from 'tap';

import { newWitness, startWitness, type Started } from '../../witness/test/helpers.ts';
import { Metrics } from '../dist/ops/metrics.js';
import { parseExposition } from './helpers/ops.ts';
import {
  Clock,
  DAY,
  ReleaseDir,
  ReleaseServer,
  T0,
  fullOf,
  harness,
  settingsWith,
  tempDir,
  verdictOf,
  within,
  type Harness,
} from './lists/helpers.ts';
import { NOW_ISO } from './lists/trust-helpers.ts';
import { cli } from '../../signer/test/helpers.ts';

const ORIGIN = 'lists.example/demo';
const NOW = NOW_ISO;
const listKey = generateListKey('demo-2026a');
const signer = (args: string[]) => cli(args);

interface Witness {
  readonly dir: string;
  readonly vkey: string;
  /** The witness process; none in a world whose releases are published without the log. */
  readonly running?: Started;
}

interface World {
  readonly dir: string;
  readonly rel: string;
  readonly logVkey: string;
  readonly witnesses: Witness[];
  logConfig(threshold: number): string;
  publish(
    t: Test,
    serial: number,
    names: string[],
    dir: string,
    threshold?: number,
  ): Promise<{ code: number | null; stderr: string }>;
}

/** The maintainer's keys, the log's, and two witnesses: running unless `serve` is false (no release is logged). */
async function world(t: Test, serve = true): Promise<World> {
  const dir = tempDir(t);
  const rel = join(dir, 'release');
  for (const args of [
    ['keygen', '--out', join(dir, 'maint'), '--no-password'],
    ['keygen', '--log-key', '--origin', ORIGIN, '--out', join(dir, 'log')],
  ]) {
    const r = await signer(args);
    t.equal(r.code, 0, r.stderr);
  }
  writeFileSync(join(dir, 'demo.listkey'), serializeListKey(listKey), { mode: 0o600 });
  const logVkey = readFileSync(join(dir, 'log.vkey'), 'utf8').trim();
  const witnesses: Witness[] = [];
  for (const name of ['witness.example/w1', 'witness.example/w2']) {
    const made = await newWitness(t, name, [{ origin: ORIGIN, vkey: logVkey }]);
    witnesses.push({
      dir: made.dir,
      vkey: made.vkey,
      ...(serve ? { running: await startWitness(t, made.config) } : {}),
    });
  }
  const logConfig = (threshold: number): string => {
    const path = join(dir, `log-${threshold}.yaml`);
    const list = witnesses.map((w) => `  - url: ${w.running!.url}\n    key: ${w.vkey}\n`).join('');
    writeFileSync(path, `key: log.skey\nwitnesses:\n${list}threshold: ${threshold}\ntimeoutMs: 10000\n`);
    return path;
  };
  return {
    dir,
    rel,
    logVkey,
    witnesses,
    logConfig,
    async publish(t, serial, names, to, threshold = 2) {
      const full = join(dir, `f${serial}-${to === rel ? 'a' : 'b'}.hwl`);
      writeFileSync(full, serializeFull(fullOf(listKey, serial, names, { expires: T0 + 20 * DAY })));
      const args = ['publish', full, '--dir', to, '--key', join(dir, 'maint.key'), '--now', NOW];
      return signer([...args, '--log', logConfig(threshold), '--list-key', join(dir, 'demo.listkey')]);
    },
  };
}

/** A daemon's list sync with the log configured: `witnessThreshold` of the two witnesses. */
function daemon(t: Test, w: World, url: string, stateDir: string, witnessThreshold: number): Harness {
  const log = { key: w.logVkey, witnesses: w.witnesses.map((x) => x.vkey), witnessThreshold };
  const keyFile = join(w.dir, 'maint.pub');
  return harness(
    t,
    settingsWith(stateDir, [{ mirrors: [url], keys: [], keyFiles: [keyFile], listKey, log }]),
    new Clock(),
  );
}

t.test('an index is accepted only in a witnessed log; a fork is refused, a split view kept as evidence', async (t) => {
  const w = await world(t);
  t.equal((await w.publish(t, 1, ['one.example'], w.rel)).code, 0);
  const server = await new ReleaseServer(new ReleaseDir(w.rel)).listen();
  t.teardown(() => server.close());
  const stateA = join(w.dir, 'state-a');
  const stateB = join(w.dir, 'state-b');
  const a = daemon(t, w, server.url, stateA, 2);
  const b = daemon(t, w, server.url, stateB, 0);
  const metricsB = new Metrics({ processMetrics: false });
  metricsB.attachLists(b.registry);
  await within(a.registry.start());
  await within(b.registry.start());
  // start() polled already (this joins that poll or finds the index unchanged).
  await within(a.registry.pollNow('demo'));
  t.match(a.registry.stats()[0], { serial: 1, logSize: 1, outcomes: { updated: 1 } }, 'serial 1, leaf 0');
  const state = JSON.parse(readFileSync(join(stateA, 'demo', 'state.json'), 'utf8')) as Record<string, string>;
  t.ok(existsSync(join(stateA, 'demo', `checkpoint-${state.checkpointSha256}`)), 'the checkpoint committed with it');

  const hb = await signer(['heartbeat', '--dir', w.rel, '--key', join(w.dir, 'maint.key'), '--now', NOW]);
  t.equal(hb.code, 2, 'a heartbeat without --log is refused once the release has a log');
  t.match(hb.stderr, /USAGE/);
  const hb2 = await signer([
    'heartbeat',
    '--dir',
    w.rel,
    '--key',
    join(w.dir, 'maint.key'),
    '--now',
    NOW,
    '--log',
    w.logConfig(2),
  ]);
  t.equal(hb2.code, 0, hb2.stderr);
  t.equal(await within(a.registry.pollNow('demo')), 'heartbeat', 'a heartbeat is a leaf too');
  t.equal((await w.publish(t, 2, ['one.example', 'two.example'], w.rel)).code, 0);
  t.equal(await within(a.registry.pollNow('demo')), 'updated');
  t.match(a.registry.stats()[0], { serial: 2, logSize: 3 });

  // The fork starts from the log as it is now; the honest log grows by serial 3.
  const forkDir = join(w.dir, 'fork');
  cpSync(w.rel, forkDir, { recursive: true });
  t.equal((await w.publish(t, 3, ['one.example', 'two.example', 'three.example'], w.rel)).code, 0);
  t.equal(await within(a.registry.pollNow('demo')), 'updated');
  t.equal(await within(b.registry.pollNow('demo')), 'updated', 'b trusts the log key alone');
  t.match(b.registry.stats()[0], { serial: 3, logSize: 4 });

  // A fork: the same origin and key, other leaves. Both witnesses refuse it (and keep evidence of it).
  const fork = await w.publish(t, 3, ['one.example', 'two.example', 'www.bank.example'], forkDir);
  t.equal(fork.code, 1, 'the witnesses refuse to cosign the fork');
  t.match(fork.stderr, /LOG_WITNESS_FAILED: 0 of 2 witnesses cosigned.*HTTP 422/);
  for (const x of w.witnesses) {
    t.match(
      await x.running!.line((l) => l.outcome === 'fork', 'the fork'),
      { status: 422 },
      'each witness logs the fork',
    );
  }
  const forced = await w.publish(t, 4, ['one.example', 'two.example', 'www.bank.example'], forkDir, 0);
  t.equal(forced.code, 0, `published without cosignatures: ${forced.stderr}`);

  // The mirror serves the fork now.
  renameSync(w.rel, join(w.dir, 'honest'));
  renameSync(forkDir, w.rel);
  t.equal(await within(a.registry.pollNow('demo')), 'rejected');
  t.equal(a.of('rejected').at(-1)?.code, 'LOG_WITNESS_THRESHOLD', 'no witness cosigned its checkpoint');
  t.ok(
    a.log.lines.some((l) => l.alarm === true && l.code === 'LOG_WITNESS_THRESHOLD'),
    'an alarm',
  );
  t.equal(verdictOf(a.registry.view(), 'www.bank.example'), null, 'the forked list is not in force');
  t.match(a.registry.stats()[0], { serial: 3, logSize: 4 });

  t.equal(await within(b.registry.pollNow('demo')), 'rejected');
  t.equal(b.of('rejected').at(-1)?.code, 'LOG_SPLIT_VIEW');
  t.match(b.of('split-view'), [{ listId: 'demo', evidence: /evidence/ }]);
  const evidenceDir = join(stateB, 'demo', 'evidence');
  const kept = readdirSync(evidenceDir);
  t.equal(kept.length, 1, 'one split view kept');
  const pair = join(evidenceDir, kept[0]!);
  t.same(readdirSync(pair).sort(), ['earlier.note', 'later.note', 'reason.txt']);
  const stored = JSON.parse(readFileSync(join(stateB, 'demo', 'state.json'), 'utf8')) as Record<string, string>;
  t.same(
    readFileSync(join(pair, 'earlier.note')),
    readFileSync(join(stateB, 'demo', `checkpoint-${stored.checkpointSha256}`)),
    'the checkpoint it had accepted',
  );
  t.match(readFileSync(join(pair, 'later.note'), 'utf8'), /^lists\.example\/demo\n5\n/, "and the fork's");
  t.ok(
    b.log.lines.some((l) => l.alarm === true && String(l.msg).includes('split view')),
    'an alarm',
  );
  const s = parseExposition(await metricsB.text());
  t.equal(s.get('hashwall_list_split_views_total{list="demo"}'), 1);
  t.equal(s.get('hashwall_list_updates_total{list="demo",outcome="LOG_SPLIT_VIEW"}'), 1);
  t.equal(await within(b.registry.pollNow('demo')), 'rejected', 'the same fork again');
  t.equal(readdirSync(evidenceDir).length, 1, 'the same pair is kept once');
  t.equal(verdictOf(b.registry.view(), 'three.example'), 'D:demo', 'the honest serial 3 stays in force');
});

t.test('an index without log-index for a list with a log: LOG_INDEX_REQUIRED', async (t) => {
  // The daemon trusts the log and its witnesses; nothing is logged, so no witness need run.
  const w = await world(t, false);
  // A release without a log (published before the log was set up, or by a mirror that drops it).
  const plain = join(w.dir, 'plain');
  const full = join(w.dir, 'p1.hwl');
  writeFileSync(full, serializeFull(fullOf(listKey, 1, ['one.example'], { expires: T0 + 20 * DAY })));
  const p = await signer(['publish', full, '--dir', plain, '--key', join(w.dir, 'maint.key'), '--now', NOW]);
  t.equal(p.code, 0, p.stderr);
  const server = await new ReleaseServer(new ReleaseDir(plain)).listen();
  t.teardown(() => server.close());
  const h = daemon(t, w, server.url, join(w.dir, 'state'), 1);
  await within(h.registry.start());
  t.equal(await within(h.registry.pollNow('demo')), 'rejected');
  t.equal(h.of('rejected').at(-1)?.code, 'LOG_INDEX_REQUIRED');
  t.ok(
    h.log.lines.some((l) => l.alarm === true && l.code === 'LOG_INDEX_REQUIRED'),
    'an alarm',
  );
  t.match(h.registry.stats()[0], { enforced: false, rejections: { LOG_INDEX_REQUIRED: 1 } });
});
