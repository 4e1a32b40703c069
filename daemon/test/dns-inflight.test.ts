import fc from 'fast-check';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';

import t from 'tap';

import { InflightTable, type Keyed } from '../dist/dns/inflight.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

class J implements Keyed {
  readonly key: string;
  keyHash: number;
  constructor(key: string, keyHash: number) {
    this.key = key;
    this.keyHash = keyHash;
  }
}

t.test('finds, adds and deletes as a Map does under random operations (bounded property)', async (t) => {
  // Few hashes for many keys, and hashes near the top of the first room: long runs that wrap around its end, where
  // a delete's backward shift has to keep every entry reachable from its home.
  type Op = { k: 'add' | 'delete' | 'get'; key: number; extra: boolean };
  const op = fc.record({
    k: fc.constantFrom<Op['k']>('add', 'add', 'delete', 'get'),
    key: fc.integer({ min: 0, max: 199 }),
    extra: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 12 }), fc.array(op, { maxLength: 300 }), (spread, ops) => {
      const hashOf = (k: number): number => 60 + (k % spread) * 0x10001;
      const table = new InflightTable<J>();
      const model = new Map<string, J>();
      for (const o of ops) {
        const key = `q${o.key}`;
        const found = table.get(key, hashOf(o.key));
        if (found !== model.get(key)) throw new Error(`get ${key}`);
        if (o.k === 'add' && found === undefined) {
          const j = new J(key, hashOf(o.key));
          table.add(j);
          model.set(key, j);
        } else if (o.k === 'delete') {
          // Deleting a job the table does not hold (another for the same key, as the query path makes when one has
          // its waiters full) leaves the one it holds.
          const j = o.extra || found === undefined ? new J(key, hashOf(o.key)) : found;
          const gone = table.delete(j);
          if (gone !== (j === found)) throw new Error(`delete ${key}`);
          if (gone) model.delete(key);
        }
        if (table.size !== model.size) throw new Error('size');
        if (table.size * 2 > table.capacity) throw new Error('over half full');
      }
      for (const [key, j] of model) if (table.get(key, j.keyHash) !== j) throw new Error(`lost ${key}`);
      return true;
    }),
    { numRuns: 3000 },
  );
  t.pass('matches the Map');
});

t.test('a deleted job is not kept alive by the table, and the room only grows', async (t) => {
  const table = new InflightTable<J>();
  const refs: WeakRef<J>[] = [];
  let room = 0;
  // In a function of its own, so nothing but the table and the weak references holds the jobs after it.
  const fill = (): void => {
    const jobs = Array.from({ length: 1000 }, (_, i) => new J(`q${i}`, Math.imul(i, 0x9e3779b1)));
    for (const j of jobs) table.add(j);
    room = table.capacity;
    for (const j of jobs) if (table.get(j.key, j.keyHash) !== j) t.fail(`lost ${j.key}`);
    // Every other one goes, then the rest in reverse: deletes in both directions through the runs.
    for (let i = 0; i < jobs.length; i += 2) table.delete(jobs[i]!);
    for (let i = jobs.length - 1; i > 0; i -= 2) table.delete(jobs[i]!);
    for (const j of jobs) refs.push(new WeakRef(j));
  };
  fill();
  t.ok(room >= 2000, `room for 1,000 at most half full (${room})`);
  t.equal(table.size, 0);
  t.equal(table.capacity, room, 'not shrunk');
  await new Promise<void>((resolve) => setImmediate(resolve)); // weak targets are kept to the end of the job
  gc();
  t.equal(refs.filter((r) => r.deref() !== undefined).length, 0, 'every deleted job collected');
});
