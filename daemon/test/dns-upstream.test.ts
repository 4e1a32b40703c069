/** The upstream pool on its own: IDs, source ports, socket rotation, closing with tries in flight. */
import { Writable } from 'node:stream';

import t from 'tap';

import { CountingEvents } from '../dist/dns/events.js';
import { Job, UpstreamPool, type UpstreamOwner } from '../dist/dns/upstream.js';
import type { ResponseInfo } from '../dist/dns/wire.js';
import { createLogger } from '../dist/util/log.js';
import { TYPE, query } from './helpers/client.ts';
import { TestUpstream } from './helpers/upstream.ts';

const logger = createLogger({ level: 'error' }, new Writable({ write: (_c, _e, cb) => cb() }));

class Owner implements UpstreamOwner<number> {
  answers: Buffer[] = [];
  failures = 0;
  waiting: (() => void) | null = null;
  upstreamAnswer(_job: Job<number>, msg: Buffer, _info: ResponseInfo): void {
    this.answers.push(Buffer.from(msg));
    this.waiting?.();
  }
  upstreamFailed(): void {
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

/** The upstream form of a query: RD, AD, the question, an OPT (the query path builds these). */
function job(name: string): Job<number> {
  const q = query(name, TYPE.A, { edns: {} });
  q[3] = 0x20;
  return new Job<number>(name, q, q.length - 11);
}

t.test('random IDs, and sockets rotated to fresh ports after triesPerSocket tries', async (t) => {
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const owner = new Owner();
  const pool = new UpstreamPool<number>(
    {
      upstreams: [up.address],
      timeoutMs: 500,
      tcpTimeoutMs: 500,
      maxTries: 1,
      failureThreshold: 3,
      recoveryThreshold: 2,
      probe: { name: '.', type: 'NS', intervalMs: 3_600_000 },
      triesPerSocket: 3,
    },
    owner,
    new CountingEvents(),
    logger,
  );
  t.teardown(() => pool.close());
  for (let i = 0; i < 40; i++) {
    const done = owner.next();
    pool.start(job('a.example.test'));
    await done;
  }
  t.equal(owner.answers.length, 40);
  const ids = new Set(up.queries.map((q) => q.raw.readUInt16BE(0)));
  const ports = new Set(up.queries.map((q) => q.from));
  t.ok(ids.size >= 38, `IDs are random (${ids.size} distinct of 40)`);
  t.ok(ports.size >= 12, `source ports move (${ports.size} distinct)`);
  t.ok(pool.sockets <= 5, `retired sockets are closed once idle (${pool.sockets} open)`);
  t.equal(pool.inFlight, 0);
});

t.test('closing the pool fails the tries in flight', async (t) => {
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  up.behaviour = 'silent';
  const owner = new Owner();
  const pool = new UpstreamPool<number>(
    {
      upstreams: [up.address],
      timeoutMs: 5000,
      tcpTimeoutMs: 500,
      maxTries: 1,
      failureThreshold: 3,
      recoveryThreshold: 2,
      probe: { name: '.', type: 'NS', intervalMs: 3_600_000 },
    },
    owner,
    new CountingEvents(),
    logger,
  );
  pool.start(job('a.example.test'));
  pool.start(job('mx.example.test'));
  t.equal(pool.inFlight, 2);
  pool.close();
  t.equal(owner.failures, 2);
  t.equal(pool.inFlight, 0);
  t.equal(pool.sockets, 0);
});
