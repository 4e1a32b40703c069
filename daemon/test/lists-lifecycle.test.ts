// The list sync over time: expiry (on-expired keep and drop), the stale-index alarm, the start policies, a state
// directory that is corrupt or half-written (the kill -9 loops are lists-crash.slow.test.ts), reload, several lists, shutdown and the
// worker's deadline, and the schedule.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { generateKeyPair, generateListKey } from '@hashwall/format';
import t from 'tap';

import { backoffMs, nextPollDelayMs, type Scheduler } from '../dist/lists/sync.js';
import { ManualClock } from '../dist/util/clock.js';
import { until } from './helpers/daemon.ts';
import { askDns, expectEnforced } from './lists/enforced.ts';
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
  withDns,
} from './lists/helpers.ts';

const listKey = generateListKey('demo-2026a');
const ONE = ['blocked.example', 'bad.test'];
const TWO = ['blocked.example', 'worse.test'];

type TestLike = { teardown(fn: () => unknown): void };

/** Lets the promise callbacks and I/O callbacks that are ready run (after a ManualClock moved). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function release(t: TestLike) {
  const root = tempDir(t);
  return { root, rel: new ReleaseDir(join(root, 'release')), stateDir: join(root, 'state'), clock: new Clock() };
}

t.test('on-expired keep: past its expiry the list stays in force, with the stale and expired alarms', async (t) => {
  const { rel, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE, { expires: T0 + 2 * DAY }), { expires: T0 + DAY });
  const h = await withDns(
    t,
    harness(t, settingsWith(stateDir, [{ mirrors: [rel.url], keys: [rel.key], listKey }]), clock),
  );
  await h.registry.start();
  t.equal(await h.registry.pollNow('demo'), 'updated');
  const gen = h.registry.view().generation;
  clock.now = T0 + 3 * DAY;
  t.equal(await h.registry.pollNow('demo'), 'rejected');
  t.equal(h.of('rejected').at(-1)?.code, 'EXPIRED', 'the mirror still serves the old index');
  t.match(h.of('stale'), [{ listId: 'demo', stale: true, indexExpires: T0 + DAY }]);
  t.match(h.of('expired'), [{ listId: 'demo', expires: T0 + 2 * DAY, action: 'keep' }]);
  t.equal(h.registry.view().generation, gen, 'no swap');
  await expectEnforced(t, h, { blocked: ONE, passed: [] });
  t.match(h.registry.stats()[0], { enforced: true, stale: true, expired: true });
  h.registry.evaluate();
  t.equal(h.of('expired').length, 1, 'one alarm per expiry, not one per check');
});

t.test('on-expired drop: the list leaves the view, and comes back with a newer one', async (t) => {
  const { rel, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE, { expires: T0 + 2 * DAY }), { expires: T0 + DAY });
  const settings = settingsWith(stateDir, [{ mirrors: [rel.url], keys: [rel.key], listKey, onExpired: 'drop' }]);
  const h = await withDns(t, harness(t, settings, clock));
  await h.registry.start();
  await h.registry.pollNow('demo');
  clock.now = T0 + 2 * DAY - 1; // SPEC.md 4.5: the 300 s skew widens what a poll accepts, not what is in force
  h.registry.evaluate();
  t.equal(h.of('expired').length, 0, 'in force until its expires');
  t.equal(h.registry.view().matchers.length, 1);
  clock.now = T0 + 2 * DAY;
  h.registry.evaluate();
  t.match(h.of('expired'), [{ action: 'drop' }], 'expired at its expires exactly');
  t.same(h.registry.view().matchers, []);
  await expectEnforced(t, h, { blocked: [], passed: ONE });
  t.match(h.registry.stats()[0], { enforced: false, expired: true, entries: 0 });
  t.ok(h.log.lines.some((l) => l.level === 'error' && String(l.msg).includes('dropped')));

  const now = clock.now;
  rel.publish(fullOf(listKey, 2, TWO, { created: now, expires: now + 7 * DAY }), { created: now, expires: now + DAY });
  t.equal(await h.registry.pollNow('demo'), 'updated');
  await expectEnforced(t, h, { blocked: TWO, passed: ['bad.test'] });
  t.match(h.registry.stats()[0], { enforced: true, expired: false, stale: false });
});

t.test('a stored list already expired under onExpired drop is no list at start', async (t) => {
  const { rel, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE, { expires: T0 + 2 * DAY }), { expires: T0 + DAY });
  const first = harness(t, settingsWith(stateDir, [{ mirrors: [rel.url], keys: [rel.key], listKey }]), clock);
  await first.registry.start();
  t.equal(await first.registry.pollNow('demo'), 'updated');
  await first.registry.close();

  clock.now = T0 + 3 * DAY;
  const offline = { mirrors: ['file:///nonexistent/'], keys: [rel.key], listKey, onExpired: 'drop' };
  const h = harness(t, settingsWith(stateDir, [{ ...offline, onStartWithoutList: 'refuse' }]), clock);
  await within(h.registry.start());
  t.match(h.of('loaded'), [{ serial: 1 }], 'the store opens');
  t.match(h.of('expired'), [{ action: 'drop' }]);
  t.same(h.registry.view().matchers, [], 'but the list is not in force');
  t.equal(h.registry.view().refuseAll, true, 'so onStartWithoutList applies');
  t.equal(h.of('swap').length, 0, 'no view ever held the expired list');
});

t.test('a stale index raises the alarm and keeps the list; a heartbeat clears it', async (t) => {
  const { rel, stateDir, clock } = release(t);
  const one = fullOf(listKey, 1, ONE);
  rel.publish(one, { expires: T0 + DAY });
  const h = harness(t, settingsWith(stateDir, [{ mirrors: [rel.url], keys: [rel.key], listKey }]), clock);
  await h.registry.start();
  await h.registry.pollNow('demo');
  clock.now = T0 + DAY - 1;
  h.registry.evaluate();
  t.equal(h.of('stale').length, 0, 'fresh until its expires, the 300 s skew notwithstanding');
  clock.now = T0 + DAY;
  h.registry.evaluate();
  t.match(h.of('stale'), [{ stale: true }], 'stale at its expires exactly');
  t.equal(h.of('expired').length, 0);
  await expectEnforced(t, h, { blocked: ONE, passed: [] });
  rel.publish(one, { created: clock.now, expires: clock.now + DAY });
  t.equal(await h.registry.pollNow('demo'), 'heartbeat');
  t.match(h.of('stale'), [{ stale: true }, { stale: false }]);
  t.equal(h.registry.stats()[0]!.stale, false);
});

t.test('refuse: every query is refused until a valid list arrives', async (t) => {
  const { rel, stateDir, clock } = release(t);
  const settings = settingsWith(stateDir, [
    { mirrors: [rel.url], keys: [rel.key], listKey, onStartWithoutList: 'refuse' },
  ]);
  const h = await withDns(t, harness(t, settings, clock));
  t.equal(h.registry.view().refuseAll, true, 'refusing from the first view');
  await within(h.registry.start());
  t.equal(await h.registry.pollNow('demo'), 'rejected', 'nothing published yet');
  t.equal(h.registry.view().refuseAll, true);
  t.equal(await askDns(h.dns!.port, 'a.example.test'), 'refused', 'over DNS: REFUSED');
  rel.publish(fullOf(listKey, 1, ONE));
  t.equal(await h.registry.pollNow('demo'), 'updated');
  t.equal(h.registry.view().refuseAll, false);
  await expectEnforced(t, h, { blocked: ONE, passed: ['a.example.test'] });
  t.equal(h.of('swap').length, 1, 'one swap: the list in, the refusal off');
});

t.test('wait: start waits for the first list, bounded by startWaitMs, then serves without it loudly', async (t) => {
  const { rel, stateDir, clock } = release(t);
  const settings = settingsWith(stateDir, [
    { mirrors: [rel.url], keys: [rel.key], listKey, onStartWithoutList: 'wait', startWaitMs: 400 },
  ]);
  const timers = new ManualClock();
  const h = harness(t, settings, clock, { timing: { timers } });
  let started = false;
  const starting = h.registry.start().then(() => (started = true));
  // The first poll found nothing and set its retry; the wait for a list is on the same clock.
  await until(() => h.of('round-failed').length === 1 && timers.pending === 2, 'the first poll refused');
  timers.advance(399);
  await settle();
  t.equal(started, false, 'waited: start has not resolved before startWaitMs');
  timers.advance(1);
  await within(starting);
  t.match(h.of('start-timeout'), [{ listId: 'demo', waitedMs: 400 }]);
  t.ok(h.log.lines.some((l) => l.level === 'error' && String(l.msg).includes('WITHOUT this list')));
  t.same(h.registry.view(), { generation: 0, matchers: [], refuseAll: false });

  // With a release to fetch, start resolves with the list in force.
  rel.publish(fullOf(listKey, 1, ONE));
  const waiting = { mirrors: [rel.url], keys: [rel.key], listKey, onStartWithoutList: 'wait', startWaitMs: 5000 };
  const h2 = harness(t, settingsWith(join(stateDir, 'b'), [waiting]), clock);
  await within(h2.registry.start());
  t.equal(verdictOf(h2.registry.view(), 'blocked.example'), 'D:demo', 'in force when start resolves');
  t.equal(h2.of('start-timeout').length, 0);
});

t.test('serve-unfiltered: start does not wait for a slow mirror', async (t) => {
  const { rel, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const server = await new ReleaseServer(rel).listen();
  t.teardown(() => server.close());
  server.routes.set('index.hwl', () => undefined); // never answers
  const settings = settingsWith(stateDir, [{ mirrors: [server.url], keys: [rel.key], listKey, totalTimeoutMs: 20000 }]);
  const h = harness(t, settings, clock);
  await within(h.registry.start());
  const s = h.registry.stats()[0]!;
  t.ok(s.lastAttemptAt !== null, 'the first poll has started');
  t.same(
    s.outcomes,
    { updated: 0, heartbeat: 0, unchanged: 0, 'not-modified': 0, held: 0, rejected: 0 },
    'and not ended',
  );
  t.same(h.registry.view(), { generation: 0, matchers: [], refuseAll: false }, 'serving unfiltered meanwhile');
});

t.test('a corrupt state directory is logged, counted and ignored', async (t) => {
  const { rel, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const settings = settingsWith(stateDir, [{ mirrors: [rel.url], keys: [rel.key], listKey }]);
  const dir = join(stateDir, 'demo');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'state.json'), '{"listId":"demo","serial":');
  const h = harness(t, settings, clock);
  await h.registry.start();
  t.match(h.of('store-unusable'), [{ listId: 'demo', code: 'MALFORMED' }]);
  t.equal(h.registry.stats()[0]!.storeUnusable, 1);
  t.equal(await h.registry.pollNow('demo'), 'updated', 'then fetched as by a new client');
  await expectEnforced(t, h, { blocked: ONE, passed: [] });
  await h.registry.close();

  // A tampered stored index, then a stored list no longer signed by a trusted key.
  const stored = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { seq: number };
  const indexFile = join(dir, `index-${stored.seq}.hwl`);
  const good = readFileSync(indexFile);
  const bad = Buffer.from(good);
  bad[40] = bad[40]! ^ 1;
  writeFileSync(indexFile, bad);
  const h2 = harness(t, settings, clock);
  await h2.registry.start();
  t.match(h2.of('store-unusable'), [{ code: 'SIGNATURE_INVALID' }]);
  await h2.registry.close();
  writeFileSync(indexFile, good);
  const other = settingsWith(stateDir, [{ mirrors: [rel.url], keys: [generateKeyPair()], listKey }]);
  const h3 = harness(t, other, clock);
  await h3.registry.start();
  t.match(h3.of('store-unusable'), [{ code: 'UNTRUSTED_KEY' }]);
  t.same(h3.registry.view().matchers, []);
});

t.test('a store whose files are lost still bounds what a fresh poll accepts', async (t) => {
  const { rel, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const old = rel.snapshot();
  rel.publish(fullOf(listKey, 2, TWO));
  const settings = settingsWith(stateDir, [{ mirrors: [rel.url], keys: [rel.key], listKey }]);
  const h = harness(t, settings, clock);
  await h.registry.start();
  t.equal(await h.registry.pollNow('demo'), 'updated');
  await h.registry.close();
  const dir = join(stateDir, 'demo');
  writeFileSync(join(dir, 'full-2.hwl'), readFileSync(join(dir, 'full-2.hwl')).subarray(0, 100));

  rel.restore(old); // the mirror now serves serial 1
  const h2 = harness(t, settings, clock);
  await h2.registry.start();
  t.match(h2.of('store-unusable'), [{ code: 'DIGEST_MISMATCH' }]);
  t.equal(await h2.registry.pollNow('demo'), 'rejected');
  t.equal(h2.of('rejected').at(-1)?.code, 'ROLLBACK', 'serial 1 is below the recorded serial 2');
  t.same(h2.registry.view().matchers, []);

  rel.publish(fullOf(listKey, 2, TWO), { seq: 2 });
  t.equal(await h2.registry.pollNow('demo'), 'updated', 'the recorded serial itself is accepted again');
  await expectEnforced(t, h2, { blocked: TWO, passed: ['bad.test'] });
});

t.test('reload keeps unchanged lists, adds, restarts and removes the others', async (t) => {
  const { rel, root, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const key2 = generateListKey('second-2026a');
  const rel2 = new ReleaseDir(join(root, 'second'));
  rel2.publish(fullOf(key2, 7, ['worse.test', 'blocked.example'], { listId: 'second' }));
  const demo = { mirrors: [rel.url], keys: [rel.key], listKey };
  const second = { id: 'second', mirrors: [rel2.url], keys: [rel2.key], listKey: key2 };
  const h = harness(t, settingsWith(stateDir, [demo]), clock);
  await h.registry.start();
  await h.registry.pollNow('demo');
  const before = h.registry.view();

  await within(h.registry.reload(settingsWith(stateDir, [demo])));
  t.equal(h.registry.view(), before, 'an unchanged list: the same view, no swap');
  t.equal(h.registry.stats()[0]!.outcomes.updated, 1, 'and the same sync');

  await within(h.registry.reload(settingsWith(stateDir, [demo, second])));
  t.equal(await h.registry.pollNow('second'), 'updated');
  const v = h.registry.view();
  t.same(
    v.matchers.map((m) => m.listId),
    ['demo', 'second'],
    'configuration order',
  );
  t.equal(v.matchers[0], before.matchers[0], 'demo untouched');
  t.equal(verdictOf(v, 'blocked.example'), 'D:demo', 'on both lists: the first in configuration order names it');
  t.equal(verdictOf(v, 'worse.test'), 'D:second');

  // demo changes (its schedule): restarted from its state directory; demo is in every view on the way.
  const views: string[][] = [];
  h.registry.on('swap', (x) => views.push(x.matchers.map((m) => m.listId)));
  await within(h.registry.reload(settingsWith(stateDir, [{ ...demo, jitterSeconds: 5 }, second])));
  t.ok(views.length >= 1 && views.every((ids) => ids.includes('demo')), 'demo never left the view');
  t.not(h.registry.view().matchers[0], before.matchers[0], 'a new matcher from the store');
  t.match(h.registry.stats()[0], { origin: 'store', serial: 1 });

  await within(h.registry.reload(settingsWith(stateDir, [second])));
  t.same(
    h.registry.view().matchers.map((m) => m.listId),
    ['second'],
  );
  t.equal(verdictOf(h.registry.view(), 'bad.test'), null);
  await t.rejects(h.registry.pollNow('demo'), RangeError);
});

t.test('close cuts a download in flight and returns promptly', async (t) => {
  const { rel, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const server = await new ReleaseServer(rel).listen();
  t.teardown(() => server.close());
  let cut = false;
  server.routes.set('index.hwl', (_q, res) => res.on('close', () => (cut = true)));
  const settings = settingsWith(stateDir, [{ mirrors: [server.url], keys: [rel.key], listKey, totalTimeoutMs: 60000 }]);
  const h = harness(t, settings, clock, { inlineCore: false });
  await h.registry.start();
  const polling = h.registry.pollNow('demo');
  await until(() => server.count('index.hwl') === 1, 'the download under way');
  // Well before the download's own 60 s timeout, whatever the machine's load.
  await within(h.registry.close());
  await until(() => cut, 'the download cut');
  t.ok(cut, 'closed with the download cut, not waited for');
  t.equal(await within(polling), 'rejected');
});

t.test('a worker past its deadline is replaced and re-opened from the state directory', async (t) => {
  const { rel, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const server = await new ReleaseServer(rel).listen();
  t.teardown(() => server.close());
  const settings = settingsWith(stateDir, [{ mirrors: [server.url], keys: [rel.key], listKey, totalTimeoutMs: 60000 }]);
  const timers = new ManualClock();
  const h = harness(t, settings, clock, { inlineCore: false, timing: { pollDeadlineMs: 500, timers } });
  await h.registry.start();
  t.equal(await h.registry.pollNow('demo'), 'updated');
  server.routes.set('index.hwl', () => undefined);
  const stuck = h.registry.pollNow('demo');
  await until(() => server.count('index.hwl') === 2, 'the stuck poll under way');
  timers.advance(499);
  await settle();
  t.equal(h.of('rejected').length, 0, 'not before pollDeadlineMs');
  timers.advance(1);
  t.equal(await within(stuck), 'rejected');
  t.equal(h.of('rejected').at(-1)?.code, 'WORKER_FAILED');
  await expectEnforced(t, h, { blocked: ONE, passed: [] });
  server.routes.delete('index.hwl');
  rel.publish(fullOf(listKey, 2, TWO));
  t.equal(await within(h.registry.pollNow('demo')), 'updated');
  t.match(h.of('updated').at(-1), { serial: 2, via: 'delta' }, 'the new worker re-opened serial 1 as the base');
});

t.test('the canary: a list that does not block it raises an event', async (t) => {
  const { rel, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE));
  const h = harness(
    t,
    settingsWith(stateDir, [{ mirrors: [rel.url], keys: [rel.key], listKey, canary: 'canary.example' }]),
    clock,
  );
  await h.registry.start();
  await h.registry.pollNow('demo');
  t.match(h.of('canary-missing'), [{ listId: 'demo', serial: 1 }]);
  rel.publish(fullOf(listKey, 2, [...ONE, 'canary.example']));
  await h.registry.pollNow('demo');
  t.equal(h.of('canary-missing').length, 1, 'no event once the canary is listed');
});

t.test('the schedule: jitter, min-poll and backoff', async (t) => {
  t.equal(nextPollDelayMs({ sinceLastAttemptMs: undefined, minIntervalMs: 900_000, jitterMs: 1234 }), 1234);
  t.equal(nextPollDelayMs({ sinceLastAttemptMs: 300_000, minIntervalMs: 900_000, jitterMs: 1000 }), 600_000);
  t.equal(nextPollDelayMs({ sinceLastAttemptMs: 1_000_000, minIntervalMs: 900_000, jitterMs: 5000 }), 5000);
  t.equal(backoffMs(1, 30_000, 3_600_000, 0), 30_000);
  t.equal(backoffMs(3, 30_000, 3_600_000, 0), 120_000);
  t.equal(backoffMs(3, 30_000, 3_600_000, 0.5), 135_000, 'spread by up to a quarter');
  t.equal(backoffMs(40, 30_000, 3_600_000, 0.5), 3_600_000, 'capped');

  // The cron ticks and the timers by hand: a tick is what node-cron calls at each time the schedule names.
  const manual = () => {
    const timers = new ManualClock();
    const ticks: (() => void)[] = [];
    const schedule: Scheduler = (_expression, _name, tick) => {
      ticks.push(tick);
      return { stop: () => ticks.splice(0) };
    };
    /** One second later, the cron's tick, and the timer it set if that is due at once. */
    const second = (): void => {
      timers.advance(1000);
      for (const tick of ticks) tick();
      timers.advance(0);
    };
    return { timing: { minPollFloorSeconds: 1, timers, schedule }, timers, second };
  };
  const polls = (h: ReturnType<typeof harness>): number => {
    const o = h.registry.stats()[0]!.outcomes;
    return o.updated + o.unchanged + o['not-modified'];
  };

  const { rel, stateDir, clock } = release(t);
  rel.publish(fullOf(listKey, 1, ONE), { minPoll: 1 });
  const every = { mirrors: [rel.url], keys: [rel.key], listKey, schedule: '* * * * * *' };
  const a = manual();
  const h = harness(t, settingsWith(stateDir, [every]), clock, { timing: a.timing });
  await h.registry.start();
  await until(() => polls(h) === 1, 'the first poll');
  a.second();
  await until(() => polls(h) === 2, 'the poll of the next tick');
  a.second();
  await until(() => polls(h) === 3, 'and of the one after');
  t.ok(polls(h) >= 2, `cron polled: ${JSON.stringify(h.registry.stats()[0]!.outcomes)}`);
  await h.registry.close();

  // The index's min-poll holds whatever the cron says.
  const slow = release(t);
  slow.rel.publish(fullOf(listKey, 1, ONE), { minPoll: 3600 });
  const b = manual();
  const h2 = harness(
    t,
    settingsWith(slow.stateDir, [{ ...every, mirrors: [slow.rel.url], keys: [slow.rel.key] }]),
    slow.clock,
    { timing: b.timing },
  );
  await h2.registry.start();
  await until(() => polls(h2) === 1, 'the first poll');
  b.second();
  await settle();
  const o = h2.registry.stats()[0]!;
  t.equal(o.outcomes.updated + o.outcomes.unchanged + o.outcomes['not-modified'], 1, 'only the first poll');
  t.equal(o.minPollSeconds, 3600);
  b.timers.advance(3_598_999);
  await settle();
  t.equal(polls(h2), 1, 'not before min-poll');
  b.timers.advance(1);
  await until(() => polls(h2) === 2, 'the poll once min-poll has passed');
  await h2.registry.close();

  // Failures back off (retryMinMs 1000, then 2000) instead of waiting for the cron.
  const down = release(t);
  const c = manual();
  const h3 = harness(
    t,
    settingsWith(down.stateDir, [{ ...every, schedule: '0 0 1 1 *', mirrors: [down.rel.url], keys: [down.rel.key] }]),
    down.clock,
    { timing: c.timing },
  );
  await h3.registry.start();
  await until(() => h3.of('round-failed').length === 1, 'the first round failed');
  const first = h3.of('round-failed')[0]!.retryInMs;
  c.timers.advance(first - 1);
  await settle();
  t.equal(h3.of('round-failed').length, 1, 'no retry before its time');
  c.timers.advance(1);
  await until(() => h3.of('round-failed').length === 2, 'the retry failed too');
  const rounds = h3.of('round-failed');
  t.ok(rounds.length >= 2, `${rounds.length} rounds failed`);
  t.ok(rounds[0]!.retryInMs >= 1000 && rounds[0]!.retryInMs <= 1250, `first retry in ${rounds[0]!.retryInMs} ms`);
  t.ok(rounds[1]!.retryInMs >= 2000, `then ${rounds[1]!.retryInMs} ms`);
});
