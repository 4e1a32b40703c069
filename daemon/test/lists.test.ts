// The list sync end to end at the registry level: a release on disk, served over real HTTP on 127.0.0.1 and as
// file://, fetched, verified, committed and swapped in; the delta path, the FULL fallback, heartbeats, conditional
// GETs, the state directory across restarts, and what is logged.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { generateListKey } from '@hashwall/format';
import t from 'tap';

import {
  Clock,
  ReleaseDir,
  ReleaseServer,
  fullOf,
  harness,
  settingsWith,
  spoolsIn,
  tempDir,
  verdictOf,
  within,
  withDns,
} from './lists/helpers.ts';
import { expectEnforced } from './lists/enforced.ts';

const listKey = generateListKey('demo-2026a');
const ONE = ['blocked.example', 'bad.test'];
const TWO = ['blocked.example', 'worse.test', 'another.example'];

type TestLike = { teardown(fn: () => unknown): void };

async function setup(t: TestLike, extra: Record<string, unknown> = {}) {
  const root = tempDir(t);
  const rel = new ReleaseDir(join(root, 'release'));
  const server = await new ReleaseServer(rel).listen();
  t.teardown(() => server.close());
  const clock = new Clock();
  const stateDir = join(root, 'state');
  const settings = settingsWith(stateDir, [{ mirrors: [server.url], keys: [rel.key], listKey, ...extra }]);
  return { root, rel, server, clock, stateDir, settings };
}

t.test('a first poll downloads the FULL, commits it and swaps it in', async (t) => {
  const { rel, server, clock, stateDir, settings } = await setup(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const h = harness(t, settings, clock);
  t.equal(h.registry.view().generation, 0);
  t.same(h.registry.view().matchers, []);
  await within(h.registry.start());
  t.equal(await within(h.registry.pollNow('demo')), 'updated');
  const v = h.registry.view();
  t.equal(v.generation, 1);
  t.equal(v.refuseAll, false);
  t.equal(verdictOf(v, 'blocked.example'), 'D:demo');
  t.equal(verdictOf(v, 'www.blocked.example'), 'D:demo', 'D covers names below it');
  t.equal(verdictOf(v, 'worse.test'), null);
  t.equal(server.count('full/1.hwl'), 1);
  const [u] = h.of('updated');
  t.match(u, { listId: 'demo', serial: 1, seq: 1, entries: 2, via: 'full', mirror: server.url });
  t.equal(h.of('swap').length, 1);
  const s = h.registry.stats()[0]!;
  t.match(s, { id: 'demo', enforced: true, origin: 'network', entries: 2, serial: 1, seq: 1, stale: false });
  t.equal(s.outcomes.updated, 1);
  t.equal(s.minPollSeconds, 900, 'min-poll from the index');
  t.equal(s.lastUpdateAt, clock.now);
  const state = JSON.parse(readFileSync(join(stateDir, 'demo', 'state.json'), 'utf8')) as Record<string, unknown>;
  t.match(state, { listId: 'demo', serial: 1, seq: 1, indexSignatures: 1 });
  t.same(readdirSync(join(stateDir, 'demo')).sort(), [
    'full-1.hwl',
    'index-1.hwl',
    'index-1.hwl.0.minisig',
    'state.json',
  ]);
  // Streamed into a spool and renamed into place: byte for byte the published file, and no spool left.
  t.equal(Buffer.compare(readFileSync(join(stateDir, 'demo', 'full-1.hwl')), rel.read('full/1.hwl')), 0);
});

t.test('the next serial comes through the delta; a broken delta falls back to the FULL', async (t) => {
  const { rel, server, clock, stateDir, settings } = await setup(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const h = harness(t, settings, clock);
  await h.registry.start();
  await h.registry.pollNow('demo');
  rel.publish(fullOf(listKey, 2, TWO));
  t.equal(await within(h.registry.pollNow('demo')), 'updated');
  t.equal(server.count('delta/1-2.hwld'), 1);
  t.equal(server.count('full/2.hwl'), 0, 'the FULL was not downloaded');
  t.match(h.of('updated')[1], { serial: 2, via: 'delta' });
  const v = h.registry.view();
  t.equal(verdictOf(v, 'worse.test'), 'D:demo');
  t.equal(verdictOf(v, 'bad.test'), null, 'removed by the delta');
  // Merged from the stored base into a spool and renamed into place: the published FULL, byte for byte.
  t.equal(Buffer.compare(readFileSync(join(stateDir, 'demo', 'full-2.hwl')), rel.read('full/2.hwl')), 0);
  t.notOk(existsSync(join(stateDir, 'demo', 'full-1.hwl')), 'the old FULL is swept after the commit');
  t.same(spoolsIn(stateDir), [], 'no spool left behind');

  rel.publish(fullOf(listKey, 3, ['third.example']));
  rel.tamper('delta/2-3.hwld');
  t.equal(await within(h.registry.pollNow('demo')), 'updated');
  t.match(h.of('updated')[2], { serial: 3, via: 'full' });
  t.match(h.of('delta-fallback'), [{ listId: 'demo', code: 'DIGEST_MISMATCH' }]);
  t.equal(h.registry.stats()[0]!.deltaFallbacks, 1);
  t.equal(verdictOf(h.registry.view(), 'third.example'), 'D:demo');
});

t.test('a stored base altered on disk fails the delta, which falls back to the FULL', async (t) => {
  const { rel, server, clock, stateDir, settings } = await setup(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const h = harness(t, settings, clock);
  await h.registry.start();
  await h.registry.pollNow('demo');
  // The same size, one hex digit of the last line changed: only its digest tells.
  const stored = join(stateDir, 'demo', 'full-1.hwl');
  const bytes = readFileSync(stored);
  const at = bytes.length - 4;
  bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30;
  writeFileSync(stored, bytes);
  rel.publish(fullOf(listKey, 2, TWO));
  t.equal(await within(h.registry.pollNow('demo')), 'updated');
  t.equal(server.count('delta/1-2.hwld'), 1);
  t.equal(server.count('full/2.hwl'), 1, 'the FULL was downloaded');
  t.match(h.of('updated')[1], { serial: 2, via: 'full' });
  t.match(h.of('delta-fallback'), [{ listId: 'demo', code: 'DIGEST_MISMATCH' }]);
  t.equal(Buffer.compare(readFileSync(join(stateDir, 'demo', 'full-2.hwl')), rel.read('full/2.hwl')), 0);
  t.same(spoolsIn(stateDir), [], "the failed delta's spool and the FULL's: none left");
  t.equal(verdictOf(h.registry.view(), 'worse.test'), 'D:demo');
});

t.test('a heartbeat raises seq without a swap; an unchanged index and a 304 change nothing', async (t) => {
  const { rel, server, clock, stateDir, settings } = await setup(t);
  const one = fullOf(listKey, 1, ONE);
  rel.publish(one);
  const h = harness(t, settings, clock);
  await h.registry.start();
  await h.registry.pollNow('demo');
  const gen = h.registry.view().generation;

  t.equal(await h.registry.pollNow('demo'), 'not-modified', 'the same index: the server answers 304');
  const index = rel.read('index.hwl');
  server.routes.set('index.hwl', (_q, res) => res.end(index)); // no ETag: a full answer with the same seq
  t.equal(await h.registry.pollNow('demo'), 'unchanged');
  server.routes.delete('index.hwl');

  rel.publish(one); // the same FULL, re-signed with the next seq
  t.equal(await h.registry.pollNow('demo'), 'heartbeat');
  t.equal(h.registry.view().generation, gen, 'no swap for a heartbeat');
  t.match(h.of('heartbeat'), [{ serial: 1, seq: 2 }]);
  const state = JSON.parse(readFileSync(join(stateDir, 'demo', 'state.json'), 'utf8')) as Record<string, unknown>;
  t.match(state, { serial: 1, seq: 2 });
  t.same(readdirSync(join(stateDir, 'demo')).sort(), [
    'full-1.hwl',
    'index-2.hwl',
    'index-2.hwl.0.minisig',
    'state.json',
  ]);
  t.match(h.registry.stats()[0]!.outcomes, { updated: 1, heartbeat: 1, unchanged: 1, 'not-modified': 1 });
  t.equal(server.count('full/1.hwl'), 1);
});

t.test('a restart serves the stored list before the network answers, then polls', async (t) => {
  const { rel, server, clock, settings } = await setup(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const a = harness(t, settings, clock);
  await a.registry.start();
  await a.registry.pollNow('demo');
  await a.registry.close();

  await server.close(); // no network at all now
  const b = await withDns(t, harness(t, settings, clock));
  await within(b.registry.start());
  await expectEnforced(t, b, { blocked: ONE, passed: ['a.example.test'] });
  t.match(b.of('loaded'), [{ listId: 'demo', serial: 1, seq: 1, entries: 2 }]);
  t.equal(await within(b.registry.pollNow('demo')), 'rejected');
  // The first poll (at start) or this one, or both: every one failed to connect.
  t.ok(b.of('rejected').length >= 1 && b.of('rejected').every((r) => r.code === 'FETCH_FAILED'));
  await expectEnforced(t, b, { blocked: ONE, passed: ['a.example.test'] });
  t.match(b.registry.stats()[0], { origin: 'store', enforced: true });
});

t.test('file:// mirrors work like HTTP ones, and a bad mirror is followed by a good one', async (t) => {
  const { rel, clock, stateDir } = await setup(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const settings = settingsWith(stateDir, [
    { mirrors: ['http://127.0.0.1:9/rel/', rel.url], keys: [rel.key], listKey },
  ]);
  const h = harness(t, settings, clock);
  await h.registry.start();
  t.equal(await within(h.registry.pollNow('demo')), 'updated');
  t.match(h.of('rejected'), [{ mirror: 'http://127.0.0.1:9/rel/', code: 'FETCH_FAILED' }]);
  t.match(h.of('updated'), [{ mirror: rel.url, serial: 1 }]);
  t.equal(h.registry.stats()[0]!.consecutiveFailures, 0, 'a round with one good mirror is a success');
});

t.test('logs say what happened without any list entry or hash', async (t) => {
  const { rel, clock, settings } = await setup(t);
  const one = fullOf(listKey, 1, ONE);
  rel.publish(one);
  const h = harness(t, settings, clock);
  await h.registry.start();
  await h.registry.pollNow('demo');
  rel.publish(fullOf(listKey, 2, TWO));
  rel.tamper('full/2.hwl', 200);
  rel.tamper('delta/1-2.hwld', 200);
  await h.registry.pollNow('demo');
  const text = h.log.raw.join('\n');
  for (const name of [...ONE, ...TWO]) {
    t.notOk(text.includes(name), `no plaintext name ${name}`);
    t.notOk(text.includes(listKey.hashKey().hashHex(name)), `no hash of ${name}`);
  }
  t.notOk(text.includes(listKey.keyHex()), 'no list key');
  t.ok(h.log.lines.some((l) => l.msg === 'list updated' && l.level === 'info' && l.list === 'demo'));
  t.ok(h.log.lines.some((l) => l.level === 'error' && l.alarm === true && l.code === 'DIGEST_MISMATCH'));
});

/** The nice value of every thread of this process, by thread id (Linux /proc). */
function threadNices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // the thread ended
    }
  }
  return out;
}

t.test(
  "the list's worker thread runs ten nice steps below the process, the query thread keeps its priority",
  { skip: process.platform === 'linux' ? false : 'per-thread nice is read from /proc' },
  async (t) => {
    const { clock, settings } = await setup(t);
    const base = threadNices().get(process.pid)!;
    const before = new Set(threadNices().keys());
    const h = harness(t, settings, clock, { inlineCore: false });
    // Nothing published: the worker opens an empty state and loads nothing, so it is kept (no idle exit).
    await within(h.registry.start(), "the registry's start");
    const lowered = [...threadNices()].filter(([tid, nice]) => !before.has(tid) && nice === Math.min(19, base + 10));
    t.equal(lowered.length, 1, 'one new thread, the worker, at the lower priority');
    t.equal(threadNices().get(process.pid), base, 'the main thread is untouched');
  },
);
