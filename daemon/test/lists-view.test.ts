// What the list sync (registry.ts, sync.ts) and a DNS worker's lists (cluster/follower.ts) share, lists/view.ts:
// publishing the view, telling a changed list configuration on reload, a list's trust for the thread that verifies
// it, the hash key of a list, and the time rules on what is in force. Both holders' own tests (lists*.test.ts,
// test/reliability/workers.test.ts) run them end to end.
import { join } from 'node:path';

import { CLOCK_SKEW_SECONDS, HashKey, generateKeyPair, generateListKey } from '@hashwall/format';
import { NoteSecretKey } from '@hashwall/tlog';
import t from 'tap';

import type { ListView } from '../dist/types/lists.js';
import {
  ViewPublisher,
  dropped,
  hashKeyFor,
  listFingerprint,
  listTrust,
  pastExpiry,
  refusing,
} from '../dist/lists/view.js';
import { demoMatcher, matcherFor } from './helpers/lists.ts';
import { T0, rawSettings, settingsWith, tempDir } from './lists/helpers.ts';
import { settingsFrom } from '../dist/config/load.js';

const listKey = generateListKey('demo-2026a');
const alice = generateKeyPair();
const bob = generateKeyPair();
const LOG_VKEY = NoteSecretKey.generate('lists.example/demo').vkey;

t.test('the view: a new frozen generation only when what the lists contribute changed', async (t) => {
  const swaps: ListView[] = [];
  const p = new ViewPublisher(true, (v) => swaps.push(v));
  t.same(p.view, { generation: 0, matchers: [], refuseAll: true }, 'generation 0, refusing from the first view');
  t.ok(Object.isFrozen(p.view) && Object.isFrozen(p.view.matchers));
  const a = demoMatcher('a');
  const b = matcherFor('b', [['b.test', 'D']]);
  t.equal(p.publish([a], false), true, 'a list in and the refusal off: one swap');
  t.equal(p.view.generation, 1);
  t.same(p.view.matchers, [a]);
  t.equal(p.view.refuseAll, false);
  t.equal(p.publish([a], false), false, 'the same matcher: no swap');
  const kept = p.view;
  const list = [a, b];
  t.equal(p.publish(list, false), true, 'one list more');
  list.pop();
  t.same(p.view.matchers, [a, b], 'the view keeps its own copy of the list');
  t.ok(Object.isFrozen(p.view) && Object.isFrozen(p.view.matchers));
  t.equal(p.publish([b, a], false), true, 'another order is another view (the first list names a block)');
  t.equal(p.publish([b, a], true), true, 'refuseAll alone');
  t.equal(p.publish([b, matcherFor('a', [['a.test', 'D']])], true), true, 'a new matcher for a list');
  t.equal(p.publish([], true), true, 'every list out');
  t.same(
    swaps.map((v) => v.generation),
    [1, 2, 3, 4, 5, 6],
    'each swap told once, in order',
  );
  t.equal(swaps[0], kept, 'the view told is the view in force');
  t.equal(swaps.at(-1), p.view);
});

t.test("a list's fingerprint changes with anything that configures it, and only then", async (t) => {
  const dir = tempDir(t);
  const stateDir = join(dir, 'state');
  const base = { mirrors: ['https://lists.example/demo/'], keys: [alice], listKey };
  const fp = (extra: Record<string, unknown> = {}, state = stateDir, top: Record<string, unknown> = {}): string => {
    const settings = settingsWith(state, [{ ...base, ...extra }], top);
    return listFingerprint(settings.lists[0]!, state, settings.guard);
  };
  t.equal(fp(), fp(), 'the same settings loaded twice: the same list');
  t.equal(fp(), fp({}, stateDir, { workers: 2 }), 'other keys');
  t.not(fp({}, stateDir, { guard: { maxChangeCount: 5 } }), fp(), 'the guard set');
  t.not(fp({}, stateDir, { blocking: { allowlist: ['ok.example'] } }), fp(), 'the allowlist, a guard set too');
  const changes: [string, Record<string, unknown>, string?][] = [
    ['a mirror', { mirrors: ['https://lists.example/demo/', 'https://mirror.example/demo/'] }],
    ['the trusted keys', { keys: [alice, bob] }],
    ['the threshold', { keys: [alice, bob], threshold: 2 }],
    ['the hash key', { listKey: generateListKey('demo-2026a') }],
    ['a timing', { totalTimeoutMs: 1600 }],
    ['the expiry action', { onExpired: 'drop' }],
    ['the state directory', {}, join(dir, 'elsewhere')],
    ['a release log', { log: { key: LOG_VKEY } }],
  ];
  for (const [what, extra, state] of changes) t.not(fp(extra, state), fp(), what);
});

t.test("a list's trust as plain data for the thread that verifies it", async (t) => {
  const stateDir = tempDir(t);
  const settings = settingsWith(stateDir, [{ mirrors: ['file:///srv/x/'], keys: [alice, bob], listKey }]);
  const licensed = settings.lists[0]!;
  const trust = listTrust(licensed, stateDir, settings.guard);
  t.same(
    { ...trust, keys: trust.keys.map((k) => k.keyId), guard: { ...trust.guard, names: trust.guard.names.length } },
    {
      listId: 'demo',
      stateDir,
      keys: [alice.publicKey.keyId, bob.publicKey.keyId],
      threshold: 1,
      hashKeyIds: ['demo-2026a'],
      listKeyHex: listKey.keyHex(),
      maxListBytes: licensed.config.maxListBytes,
      guard: {
        names: settings.guard.names.length,
        from: settings.guard.names.map((g) => g.from),
        maxChangePercent: 25,
        maxChangeCount: 100,
      },
    },
  );
  t.ok(settings.guard.names.length > 400, 'the bundled popular names by default');
  const k = trust.keys[0]!;
  t.same(Buffer.from(k.key), Buffer.from(alice.publicKey.key), 'the key bytes');
  t.same(Buffer.from(k.keyNum), Buffer.from(alice.publicKey.keyNum));
  t.equal(Object.getPrototypeOf(k.key), Uint8Array.prototype, 'plain Uint8Arrays (structured clone keeps them)');
  t.not(k.key.buffer, alice.publicKey.key.buffer, 'copies: the thread cannot touch the configured keys');
  const raw = rawSettings(stateDir, [{ mirrors: ['file:///srv/x/'], keys: [alice] }]);
  const publicSettings = settingsFrom(raw, stateDir);
  const publicMode = publicSettings.lists[0]!;
  t.same(listTrust(publicMode, stateDir, publicSettings.guard).hashKeyIds, [], 'no hash key: public-mode lists only');
});

t.test('the hash key: from the header in public mode, the configured one when licensed', async (t) => {
  const pub = new Uint8Array(32).fill(7);
  const key = hashKeyFor({ mode: 'public', key: Buffer.from(pub).toString('hex') }, undefined);
  t.equal(key.hashHex('blocked.example'), new HashKey(pub).hashHex('blocked.example'));
  t.equal(
    hashKeyFor({ mode: 'licensed', id: 'demo-2026a' }, listKey).hashHex('blocked.example'),
    listKey.hashKey().hashHex('blocked.example'),
  );
  t.throws(() => hashKeyFor({ mode: 'licensed', id: 'other' }, listKey), /no configured hash key "other"/);
  t.throws(() => hashKeyFor({ mode: 'licensed', id: 'demo-2026a' }, undefined), /no configured hash key/);
});

t.test('the time rules (SPEC.md 4.5): past expiry at expires exactly; drop and refuse by configuration', async (t) => {
  const expires = T0 + 86400;
  t.equal(pastExpiry(expires - CLOCK_SKEW_SECONDS, expires), false, 'the poll skew does not bring it forward');
  t.equal(pastExpiry(expires - 1, expires), false, 'in force until the last second');
  t.equal(pastExpiry(expires, expires), true, 'stale or expired at expires exactly');
  t.equal(pastExpiry(expires + 1, expires), true);
  const stateDir = tempDir(t);
  const config = (extra: Record<string, unknown>) =>
    settingsWith(stateDir, [{ mirrors: ['file:///srv/x/'], keys: [alice], listKey, ...extra }]).lists[0]!.config;
  const keep = config({ onExpired: 'keep' });
  const drop = config({ onExpired: 'drop' });
  t.equal(dropped(keep, expires + 1, expires), false, 'onExpired: keep keeps an expired list in force');
  t.equal(dropped(drop, expires - 1, expires), false, 'drop: in force until then');
  t.equal(dropped(drop, expires, expires), true, 'drop: out from then');
  t.equal(refusing(config({ onStartWithoutList: 'refuse' }), false), true, 'refuse: until a first list');
  t.equal(refusing(config({ onStartWithoutList: 'refuse' }), true), false);
  t.equal(refusing(config({ onStartWithoutList: 'wait' }), false), false);
  t.equal(refusing(config({ onStartWithoutList: 'serve-unfiltered' }), false), false);
});
