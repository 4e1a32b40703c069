import fc from 'fast-check';
import t from 'tap';

import { Lru } from '../dist/dns/lru.js';

t.test('evicts the least recently used entry when the entry bound is reached', async (t) => {
  const evicted: number[] = [];
  const lru = new Lru<number>(3, 1000, (v) => evicted.push(v));
  lru.set('a', 1, 1);
  lru.set('b', 2, 1);
  lru.set('c', 3, 1);
  t.equal(lru.get('a'), 1, 'a read makes a the most recently used');
  lru.set('d', 4, 1);
  t.same(evicted, [2]);
  t.equal(lru.get('b'), undefined);
  t.same(lru.keys(), ['c', 'a', 'd']);
  t.equal(lru.size, 3);
});

t.test('evicts by size, and never stores an entry larger than the size bound', async (t) => {
  const evicted: string[] = [];
  const lru = new Lru<string>(100, 10, (v) => evicted.push(v));
  lru.set('a', 'A', 4);
  lru.set('b', 'B', 4);
  lru.set('c', 'C', 4);
  t.same(evicted, ['A'], 'room is made before the new entry goes in');
  t.equal(lru.calculatedSize, 8);
  t.notOk(lru.set('big', 'BIG', 11));
  t.equal(lru.get('big'), undefined);
  lru.set('b', 'B2', 10);
  t.same(evicted, ['A', 'C'], 'a replaced entry that grew pushes out the others, not itself');
  t.equal(lru.get('b'), 'B2');
  t.equal(lru.calculatedSize, 10);
  t.notOk(lru.set('b', 'B3', 11), 'a replacement too large deletes the key');
  t.equal(lru.size, 0);
  t.equal(lru.calculatedSize, 0);
});

t.test('a replace, a delete and a clear are not evictions', async (t) => {
  let evictions = 0;
  const lru = new Lru<number>(2, 100, () => evictions++);
  lru.set('a', 1, 1);
  lru.set('a', 2, 1);
  t.ok(lru.delete('a'));
  t.notOk(lru.delete('a'));
  lru.set('b', 1, 1);
  lru.clear();
  t.equal(lru.size, 0);
  t.equal(lru.get('b'), undefined);
  lru.set('c', 3, 1);
  t.equal(lru.get('c'), 3, 'usable after a clear');
  t.equal(evictions, 0);
});

t.test('rejects bounds below 1', async (t) => {
  t.throws(() => new Lru(0, 10), RangeError);
  t.throws(() => new Lru(10, 0), RangeError);
});

t.test('behaves as a reference LRU model under random operations (bounded property)', async (t) => {
  type Op = { k: 'get' | 'set' | 'delete' | 'clear'; key: string; size: number };
  const op = fc.record({
    k: fc.constantFrom<Op['k']>('get', 'set', 'set', 'delete', 'clear'),
    key: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'),
    size: fc.integer({ min: 1, max: 12 }),
  });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 30 }),
      fc.array(op, { maxLength: 80 }),
      (maxEntries, maxSize, ops) => {
        const lru = new Lru<number>(maxEntries, maxSize);
        // The model: an array of [key, value, size], least recently used first.
        let model: [string, number, number][] = [];
        const total = (): number => model.reduce((s, e) => s + e[2], 0);
        ops.forEach((o, n) => {
          if (o.k === 'get') {
            const i = model.findIndex((e) => e[0] === o.key);
            const want = i < 0 ? undefined : model[i]![1];
            if (i >= 0) model.push(...model.splice(i, 1));
            if (lru.get(o.key) !== want) throw new Error(`get ${o.key}`);
          } else if (o.k === 'set') {
            const i = model.findIndex((e) => e[0] === o.key);
            if (o.size > maxSize) {
              if (i >= 0) model.splice(i, 1);
            } else if (i >= 0) {
              model.splice(i, 1);
              model.push([o.key, n, o.size]);
              while (total() > maxSize) model.shift();
            } else {
              while (model.length > 0 && (model.length >= maxEntries || total() + o.size > maxSize)) model.shift();
              model.push([o.key, n, o.size]);
            }
            lru.set(o.key, n, o.size);
          } else if (o.k === 'delete') {
            model = model.filter((e) => e[0] !== o.key);
            lru.delete(o.key);
          } else {
            model = [];
            lru.clear();
          }
          if (lru.keys().join() !== model.map((e) => e[0]).join()) throw new Error('order');
          if (lru.size !== model.length || lru.calculatedSize !== total()) throw new Error('size');
        });
        return true;
      },
    ),
    { interruptAfterTimeLimit: 2000, numRuns: 20000 },
  );
  t.pass('matches the model');
});

t.test('grows its slots up to the entry bound and reuses freed ones', async (t) => {
  const lru = new Lru<number>(1000, 1e9);
  for (let i = 0; i < 5000; i++) lru.set(`k${i}`, i, 1);
  t.equal(lru.size, 1000);
  t.equal(lru.get('k3999'), undefined);
  t.equal(lru.get('k4000'), 4000);
  t.equal(lru.get('k4999'), 4999);
  t.equal(lru.keys()[0], 'k4001');
});
