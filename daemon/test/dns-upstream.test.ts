/** The upstream pool on its own: IDs, source ports, sockets, closing with tries in flight. */
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import t, { type Test } from 'tap';

import { CountingEvents } from '../dist/dns/events.js';
import { Job, UpstreamPool, type UpstreamOwner, type UpstreamSettings } from '../dist/dns/upstream.js';
import type { ResponseInfo } from '../dist/dns/wire.js';
import { ManualClock, type Clock } from '../dist/util/clock.js';
import { createLogger } from '../dist/util/log.js';
import { TYPE, query } from './helpers/client.ts';
import { until } from './helpers/daemon.ts';
import { TestUpstream } from './helpers/upstream.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const logger = createLogger({ level: 'error' }, new Writable({ write: (_c, _e, cb) => cb() }));

class Owner implements UpstreamOwner<number> {
  answers: Buffer[] = [];
  failures = 0;
  waiting: (() => void) | null = null;
  upstreamAnswer(_job: Job<number>, msg: Buffer, _info: ResponseInfo): void {
    this.answers.push(Buffer.from(msg));
    this.waiting?.();
  }
  upstreamFailed(_job?: Job<number>): void {
    this.failures++;
    this.waiting?.();
  }
  next(timeoutMs = 2000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiting = () => {
        clearTimeout(timer);
        this.waiting = null;
        resolve();
      };
    });
  }
}

/** A pool over `up` with one try per query and the test's timeouts, `extra` settings on top, on `clock`. */
function poolFor(
  up: TestUpstream,
  owner: Owner,
  extra: Partial<UpstreamSettings> = {},
  clock?: Clock,
): UpstreamPool<number> {
  return new UpstreamPool<number>(
    {
      upstreams: [up.address],
      timeoutMs: 5000,
      tcpTimeoutMs: 500,
      maxTries: 1,
      failureThreshold: 3,
      recoveryThreshold: 2,
      probe: { name: '.', type: 'NS', intervalMs: 3_600_000 },
      ...extra,
    },
    owner,
    new CountingEvents(),
    logger,
    clock,
  );
}

/** The upstream form of a query: RD, AD, the question, an OPT (the query path builds these). */
function job(name: string): Job<number> {
  const q = query(name, TYPE.A, { edns: {} });
  q[3] = 0x20;
  return new Job<number>(name, q, q.length - 11);
}

const N = 300;

t.test(`a fresh random source port and ID for each of ${N} upstream queries (RFC 5452 10)`, async (t) => {
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const owner = new Owner();
  const pool = poolFor(up, owner, { timeoutMs: 2000 });
  t.teardown(() => pool.close());
  for (let i = 0; i < N; i++) {
    const done = owner.next();
    pool.start(job('a.example.test'));
    await done;
  }
  t.equal(owner.answers.length, N);
  const ids = new Set(up.queries.map((q) => q.raw.readUInt16BE(0)));
  const ports = new Set(up.queries.map((q) => q.from));
  // Drawn from 64,512 ports, 300 tries repeat a port about 0.7 times on average (birthday bound).
  t.ok(ports.size >= N - 6, `a port per query (${ports.size} distinct of ${N})`);
  t.ok(ids.size >= N - 6, `IDs are random (${ids.size} distinct of ${N})`);
  const outsideEphemeral = up.queries.filter((q) => q.from < 32768 || q.from > 60999).length;
  t.ok(
    outsideEphemeral > N / 4,
    `ports from all of 1024-65535, not the kernel's ephemeral range (${outsideEphemeral} of ${N} outside it)`,
  );
  t.ok(
    up.queries.every((q) => q.from >= 1024),
    'never a well-known port',
  );
  t.equal(pool.sockets, 0, 'each socket closed when its try ended');
  t.equal(pool.inFlight, 0);
});

t.test('sockets are bound ahead of need, each used for one try, and closed with the pool', async (t) => {
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const owner = new Owner();
  const pool = poolFor(up, owner, { timeoutMs: 2000 });
  t.teardown(() => pool.close());
  t.equal(pool.spareSockets, 0, 'none before the first try');
  const done = owner.next();
  pool.start(job('a.example.test'));
  await done;
  await new Promise<void>((resolve) => setImmediate(resolve));
  const spares = pool.spareSockets;
  t.ok(spares > 0, `spares bound after the first try (${spares})`);
  // Two tries in flight at once take two different spares: a socket is never shared while maxSockets allows.
  up.behaviour = 'slow';
  up.delayMs = 50;
  pool.start(job('mx.example.test'));
  pool.start(job('txt.example.test'));
  t.equal(pool.sockets, 2, 'a socket per try');
  t.equal(pool.spareSockets, spares - 2, 'both from the spares');
  while (owner.answers.length < 3) await owner.next(5000);
  const ports = up.queries.map((q) => q.from);
  t.equal(new Set(ports).size, 3, `a port per try (${ports.join(' ')})`);
  pool.close();
  t.equal(pool.sockets, 0);
  t.equal(pool.spareSockets, 0, 'the spares closed with the pool');
});

t.test('at maxSockets, further tries share an open socket; their IDs tell them apart', async (t) => {
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  up.behaviour = 'slow';
  up.delayMs = 100;
  const owner = new Owner();
  const pool = poolFor(up, owner, { maxSockets: 2 });
  t.teardown(() => pool.close());
  for (const n of ['a', 'mx', 'txt', 'alias', 'short']) pool.start(job(`${n}.example.test`));
  t.equal(pool.sockets, 2, 'two sockets for five tries');
  while (owner.answers.length < 5) await owner.next(5000);
  t.equal(owner.answers.length, 5, 'every try answered');
  t.equal(pool.sockets, 0);
});

t.test('a finished job keeps neither its waiters nor its last error answer', async (t) => {
  // The maps that hold jobs while they run churn with every question, and a table V8 dropped may still point at a
  // finished job until a full collection: it must hold nothing more (bench/README.md, "What keeps them").
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const seen: { waiters: number; lastRcode: boolean }[] = [];
  const owner = new (class extends Owner {
    override upstreamAnswer(j: Job<number>, msg: Buffer, info: ResponseInfo): void {
      seen.push({ waiters: j.waiters.length, lastRcode: j.lastRcodeAnswer !== null });
      super.upstreamAnswer(j, msg, info);
    }
    override upstreamFailed(j: Job<number>): void {
      seen.push({ waiters: j.waiters.length, lastRcode: j.lastRcodeAnswer !== null });
      super.upstreamFailed(j);
    }
  })();
  const pool = poolFor(up, owner, { timeoutMs: 2000 });
  t.teardown(() => pool.close());
  const answered = job('a.example.test');
  answered.waiters.push(1, 2);
  let done = owner.next();
  pool.start(answered);
  await done;
  up.behaviour = 'servfail';
  const failed = job('mx.example.test');
  failed.waiters.push(3);
  done = owner.next();
  pool.start(failed);
  await done;
  t.same(
    seen,
    [
      { waiters: 2, lastRcode: false },
      { waiters: 1, lastRcode: true },
    ],
    'the owner saw the waiters and the SERVFAIL while the jobs ended',
  );
  t.same([answered.waiters.length, failed.waiters.length], [0, 0], 'then the jobs let go of their waiters');
  t.equal(failed.lastRcodeAnswer, null, 'and of the SERVFAIL');
});

t.test(
  'a job that moves on to its next try leaves the deadline FIFO: nothing keeps it once it has ended',
  async (t) => {
    // The first upstream answers SERVFAIL, the second answers: the job ends long before its first try's deadline (the
    // clock never moves). Left in the FIFO, that try's entry would keep the job alive until the deadline.
    const bad = await TestUpstream.start();
    const good = await TestUpstream.start();
    t.teardown(() => bad.close());
    t.teardown(() => good.close());
    bad.behaviour = 'servfail';
    const owner = new Owner();
    const pool = poolFor(
      bad,
      owner,
      { upstreams: [bad.address, good.address], maxTries: 2, failureThreshold: 1000 },
      new ManualClock(),
    );
    t.teardown(() => pool.close());
    // In a function of its own, so that only the pool could still hold the job afterwards.
    const started = (): WeakRef<Job<number>> => {
      const j = job('a.example.test');
      pool.start(j);
      return new WeakRef(j);
    };
    const ref = started();
    await until(() => owner.answers.length === 1, 'the answer from the second upstream');
    t.equal(bad.queries.length + good.queries.length, 2, 'one try each');
    t.equal(pool.inFlight, 0);
    await new Promise<void>((resolve) => setImmediate(resolve)); // weak targets are kept to the end of the job
    gc();
    t.equal(ref.deref(), undefined, "the ended job is collected before its first try's deadline");
  },
);

/** An upstream that behaves so (closed with the test), and a pool with its owner, for the tests that close the pool. */
async function closing(
  t: Test,
  behaviour: TestUpstream['behaviour'],
): Promise<{ up: TestUpstream; owner: Owner; pool: UpstreamPool<number> }> {
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  up.behaviour = behaviour;
  const owner = new Owner();
  return { up, owner, pool: poolFor(up, owner) };
}

t.test('closing the pool fails the tries in flight', async (t) => {
  const { owner, pool } = await closing(t, 'silent');
  pool.start(job('a.example.test'));
  pool.start(job('mx.example.test'));
  t.equal(pool.inFlight, 2);
  pool.close();
  t.equal(owner.failures, 2);
  t.equal(pool.inFlight, 0);
  t.equal(pool.sockets, 0);
});

t.test('closing the pool fails a TCP try in flight at once, as it does the UDP ones', async (t) => {
  const { up, owner, pool } = await closing(t, 'tc-silent-tcp');
  pool.start(job('a.example.test'));
  await until(() => up.queries.some((q) => q.transport === 'tcp'), 'the TCP try after TC');
  t.equal(pool.inFlight, 1);
  pool.close();
  t.equal(owner.failures, 1, 'its client answered when the pool closes, not when the socket has gone');
  t.equal(pool.inFlight, 0);
});

t.test('each try times out at its own deadline; answered tries leave the deadline FIFO at once', async (t) => {
  // 100 tries (past the FIFO's first room of 64), one every 5 ms of a manual clock: every other one to a name the
  // upstream never answers. Each silent try must fail when its own deadline comes (its second try's, maxTries 2),
  // whatever the answered tries around it, and the pool must arm a timer per deadline that matters, not one per try.
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const owner = new Owner();
  const clock = new ManualClock();
  let armed = 0;
  const counting: Clock = {
    now: () => clock.now(),
    setTimeout: (fn, ms) => {
      armed++;
      return clock.setTimeout(fn, ms);
    },
    clearTimeout: (timer) => clock.clearTimeout(timer),
  };
  const pool = poolFor(up, owner, { timeoutMs: 1000, maxTries: 2, failureThreshold: 1000 }, counting);
  t.teardown(() => pool.close());
  const start = clock.now();
  const armedBefore = armed;
  for (let i = 0; i < 100; i++) {
    const silent = i % 2 === 1;
    const name = `${silent ? 's' : 'n'}${i}.example.test`;
    if (silent) up.byName.set(name, 'silent');
    pool.start(job(name));
    clock.advance(5);
  }
  await until(() => owner.answers.length === 50, 'the 50 answered tries');
  t.equal(pool.inFlight, 50, 'the silent ones still wait');
  // Silent try i started at start + 5i: its first deadline is start + 5i + 1000, its second 1000 later.
  clock.advance(start + 5 + 1000 - 1 - clock.now());
  t.equal(owner.failures, 0, 'no try ends before its deadline');
  t.equal(up.queries.length, 100, 'no second try yet');
  clock.advance(1);
  await until(() => up.queries.length === 101, 'the first silent try timed out at its deadline and was tried again');
  clock.advance(start + 5 + 2000 - 1 - clock.now());
  t.equal(owner.failures, 0, 'its second try has not ended before its own deadline');
  clock.advance(1);
  t.equal(owner.failures, 1, 'the first silent job failed at its second deadline');
  clock.advance(start + 5 * 99 + 2000 - clock.now());
  t.equal(owner.failures, 50, 'every silent job failed, each at its own deadline');
  t.equal(pool.inFlight, 0);
  await until(() => up.queries.length === 150, 'one second try per silent job');
  // A timer per silent try's deadline (two each) and a few more, not one per try answered.
  t.ok(armed - armedBefore <= 2 * 50 + 4, `timers armed: ${armed - armedBefore}`);
});
