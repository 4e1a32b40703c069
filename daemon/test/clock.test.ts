// The clock the query path takes (util/clock.ts): the manual one the tests move runs timers in order, each at its
// own time, and the system one is the process's.
import t from 'tap';

import { ManualClock, systemClock } from '../dist/util/clock.js';

t.test('a manual clock runs the timers that come due, in order, each at its time', async (t) => {
  const c = new ManualClock(1000);
  const ran: [string, number][] = [];
  c.setTimeout(() => ran.push(['b', c.now()]), 200);
  c.setTimeout(() => ran.push(['a', c.now()]), 100);
  const cancelled = c.setTimeout(() => ran.push(['x', c.now()]), 150);
  c.setTimeout(() => ran.push(['a2', c.now()]), 100);
  c.clearTimeout(cancelled);
  t.equal(c.pending, 3);
  c.advance(99);
  t.same(ran, [], 'nothing before its time');
  t.equal(c.now(), 1099);
  c.advance(101);
  t.same(
    ran,
    [
      ['a', 1100],
      ['a2', 1100],
      ['b', 1200],
    ],
    'in order of time, then of setting; a cleared timer never runs',
  );
  t.equal(c.pending, 0);
});

t.test('a timer set by a timer runs within the same advance when it comes due', async (t) => {
  const c = new ManualClock(0);
  const ran: number[] = [];
  c.setTimeout(() => {
    ran.push(c.now());
    c.setTimeout(() => ran.push(c.now()), 50);
    c.setTimeout(() => ran.push(c.now()), 500);
  }, 100);
  c.advance(200);
  t.same(ran, [100, 150]);
  t.equal(c.now(), 200);
  c.advance(400);
  t.same(ran, [100, 150, 600]);
});

t.test('the system clock is monotonic milliseconds and Node timers', async (t) => {
  const a = systemClock.now();
  await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5));
  t.ok(systemClock.now() >= a, 'never goes back');
  let ran = false;
  const timer = systemClock.setTimeout(() => (ran = true), 1);
  systemClock.clearTimeout(timer);
  await new Promise((r) => setTimeout(r, 20));
  t.equal(ran, false, 'a cleared timer never runs');
});
