import t from 'tap';

import { Doorkeeper } from '../dist/doorkeeper.js';

t.test('a key is let in the second time it is seen, and forgotten when the bits are cleared', async (t) => {
  const door = new Doorkeeper(1 << 10, 4);
  t.equal(door.seenBefore('a.example.test'), false, 'first sight');
  t.equal(door.seenBefore('a.example.test'), true, 'second sight');
  t.equal(door.seenBefore('a.example.test'), true, 'and after');
  // Two more new keys reach the reset (4 marked: a, b, c, d); every bit is then cleared.
  t.equal(door.seenBefore('b.example.test'), false);
  t.equal(door.seenBefore('c.example.test'), false);
  t.equal(door.seenBefore('d.example.test'), false);
  t.equal(door.seenBefore('a.example.test'), false, 'forgotten after the reset');
});

t.test('keys seen once each are rarely let in (a scanner cannot fill a memo behind it)', async (t) => {
  const door = new Doorkeeper();
  let admitted = 0;
  for (let i = 0; i < 100_000; i++)
    if (door.seenBefore(`r${i}-${(i * 2654435761) >>> 0}.scan.example.test`)) admitted++;
  t.ok(admitted < 100_000 * 0.063, `${admitted} of 100,000 new keys taken as seen`);
});

t.test('refuses a bit count that is not a power of two of at least 32, and a reset below 1', async (t) => {
  t.throws(() => new Doorkeeper(1000), RangeError);
  t.throws(() => new Doorkeeper(16), RangeError);
  t.doesNotThrow(() => new Doorkeeper(32));
  t.throws(() => new Doorkeeper(32, 0), RangeError, 'a reset of 0 would clear the bits at every key');
});
