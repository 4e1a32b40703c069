import t from 'tap';

import { foldQuestion, ParsedQuery, parseQuery } from '../dist/dns/wire.js';
import { StaticListProvider } from '../dist/lists/static.js';
import { Policy } from '../dist/policy/verdict.js';
import { BLOCK, PASS, STEER, type Decision } from '../dist/types/decision.js';
import { query } from './helpers/client.ts';
import { demoMatcher, matcherFor } from './helpers/lists.ts';

/** The decision for `name` through the query-path entry point (wire form, as the daemon calls it). */
function decide(policy: Policy, lists: StaticListProvider, name: string): Decision {
  const q = new ParsedQuery();
  parseQuery(query(name, 1), q);
  const key = Buffer.alloc(300);
  const n = foldQuestion(q, key, 0);
  return policy.decideWire(key.toString('latin1', 0, n), q.msg, 12, lists.view());
}

t.test('D covers the name and every name below it; H is exact', async (t) => {
  const lists = new StaticListProvider([demoMatcher()]);
  const p = new Policy({ allowlist: [], steer: false });
  t.has(decide(p, lists, 'blocked.test'), { action: BLOCK, listId: 'demo', kind: 'D' });
  t.has(decide(p, lists, 'a.b.c.blocked.test'), { action: BLOCK, listId: 'demo', kind: 'D' });
  t.has(decide(p, lists, 'WWW.Blocked.TEST'), { action: BLOCK, listId: 'demo', kind: 'D' }, 'case-insensitive');
  t.equal(decide(p, lists, 'notblocked.test').action, PASS);
  t.has(decide(p, lists, 'host.listed.test'), { action: BLOCK, listId: 'demo', kind: 'H' });
  t.equal(decide(p, lists, 'sub.host.listed.test').action, PASS, 'H does not cover subdomains');
  t.equal(decide(p, lists, 'listed.test').action, PASS, 'nor parents');
});

t.test('a name with a strange label still falls under a D entry above it', async (t) => {
  const lists = new StaticListProvider([demoMatcher()]);
  const p = new Policy({ allowlist: [], steer: false });
  t.equal(decide(p, lists, 'bad\u00e9label.blocked.test').action, BLOCK, 'a non-ASCII byte in the first label');
  t.equal(decide(p, lists, 'x y.blocked.test').action, BLOCK, 'a space in the first label');
});

t.test('P passes by default and steers when partial is steer; U never acts', async (t) => {
  const lists = new StaticListProvider([demoMatcher()]);
  t.equal(decide(new Policy({ allowlist: [], steer: false }), lists, 'partial.test').action, PASS);
  t.has(decide(new Policy({ allowlist: [], steer: true }), lists, 'partial.test'), {
    action: STEER,
    listId: 'demo',
    kind: 'P',
  });
  t.equal(decide(new Policy({ allowlist: [], steer: true }), lists, 'www.partial.test').action, PASS, 'P is exact');
});

t.test('the allowlist wins over every list, for the name and below it', async (t) => {
  const lists = new StaticListProvider([demoMatcher()]);
  const p = new Policy({ allowlist: ['allowed.test', 'www.blocked.test'], steer: false });
  t.equal(decide(p, lists, 'allowed.test').action, PASS);
  t.equal(decide(p, lists, 'ok.allowed.test').action, PASS);
  t.equal(decide(p, lists, 'www.blocked.test').action, PASS);
  t.equal(decide(p, lists, 'a.www.blocked.test').action, PASS);
  t.equal(decide(p, lists, 'cdn.blocked.test').action, BLOCK, 'siblings stay blocked');
  t.equal(p.decideName('ok.allowed.test', lists.view()).action, PASS, 'alias targets too');
});

t.test('several lists: a block beats a steer, the first configured list wins a tie', async (t) => {
  const a = matcherFor('first', [
    ['both.test', 'D'],
    ['steer.test', 'P'],
  ]);
  const b = matcherFor('second', [
    ['both.test', 'H'],
    ['steer.test', 'D'],
  ]);
  const lists = new StaticListProvider([a, b]);
  const p = new Policy({ allowlist: [], steer: true });
  t.has(decide(p, lists, 'both.test'), { action: BLOCK, listId: 'first', kind: 'D' });
  t.has(decide(p, lists, 'steer.test'), { action: BLOCK, listId: 'second', kind: 'D' });
});

t.test('decisions never outlive the list generation they were made under', async (t) => {
  const lists = new StaticListProvider([]);
  const p = new Policy({ allowlist: [], steer: false });
  t.equal(decide(p, lists, 'new.test').action, PASS);
  lists.set([matcherFor('later', [['new.test', 'D']])]);
  t.has(decide(p, lists, 'new.test'), { action: BLOCK, listId: 'later', kind: 'D' }, 'blocked on the next query');
  t.has(p.decideName('x.new.test', lists.view()), { action: BLOCK, listId: 'later', kind: 'D' });
  lists.set([]);
  t.equal(decide(p, lists, 'new.test').action, PASS, 'and unblocked once the entry is gone');
  t.equal(p.decideName('x.new.test', lists.view()).action, PASS);
});

t.test('a listed name is cached the second time it is decided, not the first (the doorkeeper)', async (t) => {
  const lists = new StaticListProvider([demoMatcher()]);
  const p = new Policy({ allowlist: [], steer: false });
  const first = decide(p, lists, 'blocked.test');
  const second = decide(p, lists, 'blocked.test');
  const third = decide(p, lists, 'blocked.test');
  for (const d of [first, second, third]) t.has(d, { action: BLOCK, listId: 'demo', kind: 'D' });
  t.not(first, second, 'the first decision is not kept');
  t.equal(third, second, 'the second is, and answers the third');
  t.equal(decide(p, lists, 'x1.blocked.test'), second, 'a name below the same entry shares the kept decision');
  t.equal(second.entry, first.entry, 'and the entry is the same');
  // Thousands of listed names asked once each, then one of them again: still decided right.
  const many = new StaticListProvider([
    matcherFor(
      'many',
      Array.from({ length: 3000 }, (_, i) => [`n${i}.test`, 'D'] as const),
    ),
  ]);
  const q = new Policy({ allowlist: [], steer: false });
  for (let i = 0; i < 3000; i++) t.equal(decide(q, many, `n${i}.test`).action, BLOCK);
  t.equal(decide(q, many, 'n7.test').action, BLOCK);
  t.equal(decide(q, many, 'n7.test'), decide(q, many, 'n7.test'), 'kept from the second time on');
  // An alias target (decideName) the same way.
  const r = new Policy({ allowlist: [], steer: false });
  const view = lists.view();
  const [a1, a2, a3] = [1, 2, 3].map(() => r.decideName('cdn.blocked.test', view));
  for (const d of [a1, a2, a3]) t.has(d, { action: BLOCK, listId: 'demo', kind: 'D' });
  t.not(a1, a2, 'an alias target decided once is not kept');
  t.equal(a3, a2, 'decided again, it is');
});

t.test('the decision cache is bounded', async (t) => {
  const lists = new StaticListProvider([demoMatcher()]);
  const p = new Policy({ allowlist: [], steer: false, maxCachedDecisions: 10 });
  for (let i = 0; i < 100; i++) t.equal(decide(p, lists, `n${i}.example.test`).action, PASS);
  t.equal(decide(p, lists, 'blocked.test').action, BLOCK, 'still right after the cache was emptied');
});
