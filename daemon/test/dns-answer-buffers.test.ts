// The query path renders answers into one buffer per answer length (dns/scratch.ts) and reuses it as soon as the
// send has let go of it. These tests would catch an answer sent after its buffer was rewritten for the next query:
// every answer must carry its own query's ID and question bytes (case included), never another's.
import { createSocket } from 'node:dgram';

import t, { type Test } from 'tap';

import { ScratchAnswers } from '../dist/dns/scratch.js';
import { startTestDaemon, type TestDaemon } from './helpers/daemon.ts';
import { TYPE, idOf, query, rcodeOf, tcpAsk, udpAsk } from './helpers/client.ts';

async function daemon(t: Test, config: Record<string, unknown> = {}): Promise<TestDaemon> {
  const d = await startTestDaemon({ config });
  t.teardown(() => d.close());
  return d;
}

/** `name` with the case of each letter from the bits of `n` (DNS 0x20 style): same length, other bytes. */
function mixedCase(name: string, n: number): string {
  let bit = 0;
  return [...name].map((c) => (/[a-z]/.test(c) && (n >> (bit++ % 16)) & 1 ? c.toUpperCase() : c)).join('');
}

/** Sends every message from one UDP socket at once and collects the answers (at most `timeoutMs`), by ID. */
function burst(port: number, msgs: Buffer[], timeoutMs = 3000): Promise<Map<number, Buffer>> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const got = new Map<number, Buffer>();
    const done = (): void => {
      clearTimeout(timer);
      s.close();
      resolve(got);
    };
    const timer = setTimeout(done, timeoutMs);
    s.on('message', (m) => {
      got.set(idOf(m), m);
      if (got.size >= msgs.length) done();
    });
    s.on('error', () => undefined);
    for (const m of msgs) s.send(m, port, '127.0.0.1');
  });
}

/** Checks that `answer` is the answer to `msg`: its ID, QR, its question bytes exactly. */
function answers(t: Test, answer: Buffer | undefined | null, msg: Buffer, what: string): boolean {
  const qEnd = 12 + (msg.indexOf(0, 12) - 12) + 1 + 4;
  const ok =
    answer !== undefined &&
    answer !== null &&
    idOf(answer) === idOf(msg) &&
    (answer[2]! & 0x80) !== 0 &&
    answer.subarray(12, qEnd).equals(msg.subarray(12, qEnd));
  if (!ok) t.fail(`${what}: the answer to query ${idOf(msg)} is not its own`);
  return ok;
}

t.test('a burst of same-length answers from the cache: each has its own ID and question case', async (t) => {
  const d = await daemon(t);
  const name = 'a.example.test';
  t.equal(rcodeOf((await udpAsk(d.port, query(name, TYPE.A)))!), 0, 'cached');
  const msgs: Buffer[] = [];
  for (let i = 0; i < 400; i++) {
    // Two answer lengths (with and without EDNS), interleaved.
    msgs.push(query(mixedCase(name, i * 7919), TYPE.A, { id: 1000 + i, ...(i % 2 === 0 ? { edns: {} } : {}) }));
  }
  const got = await burst(d.port, msgs);
  t.equal(got.size, msgs.length, 'every query answered');
  let good = 0;
  for (const m of msgs) if (answers(t, got.get(idOf(m)), m, 'cache')) good++;
  t.equal(good, msgs.length, 'every answer is its own query’s');
});

t.test('a burst of blocked names: each answer has its own ID and question case', async (t) => {
  const d = await daemon(t);
  const msgs: Buffer[] = [];
  for (let i = 0; i < 300; i++) msgs.push(query(mixedCase('www.blocked.test', i * 104729), TYPE.A, { id: 5000 + i }));
  const got = await burst(d.port, msgs);
  t.equal(got.size, msgs.length, 'every query answered');
  let good = 0;
  for (const m of msgs) if (answers(t, got.get(idOf(m)), m, 'blocked') && rcodeOf(got.get(idOf(m))!) === 3) good++;
  t.equal(good, msgs.length, 'every answer is its own NXDOMAIN');
});

t.test('clients waiting on one upstream question are answered in one loop: each gets its own', async (t) => {
  const d = await daemon(t, { upstream: { timeoutMs: 1000 } });
  const up = d.upstreams[0]!;
  up.behaviour = 'slow';
  up.delayMs = 150;
  const msgs = Array.from({ length: 12 }, (_, i) =>
    query(mixedCase('mx.example.test', i * 31), TYPE.MX, { id: 700 + i }),
  );
  // Each from its own socket: the answers are rendered one after the other into the same buffer length.
  const got = await Promise.all(msgs.map((m) => udpAsk(d.port, m)));
  t.equal(up.queries.length, 1, 'one upstream question');
  let good = 0;
  msgs.forEach((m, i) => {
    if (answers(t, got[i], m, 'coalesced')) good++;
  });
  t.equal(good, msgs.length, 'every waiter got its own answer');
});

t.test('pipelined TCP answers: each has its own ID and question', async (t) => {
  const d = await daemon(t);
  await udpAsk(d.port, query('a.example.test', TYPE.A));
  const msgs = Array.from({ length: 50 }, (_, i) =>
    query(i % 5 === 0 ? 'www.blocked.test' : mixedCase('a.example.test', i), TYPE.A, { id: 9000 + i }),
  );
  const got = await tcpAsk(d.port, msgs);
  const byId = new Map(got.map((a) => [idOf(a), a]));
  t.equal(byId.size, msgs.length, 'every query answered');
  let good = 0;
  for (const m of msgs) if (answers(t, byId.get(idOf(m)), m, 'tcp')) good++;
  t.equal(good, msgs.length);
});

t.test('ScratchAnswers: one buffer per length until it is released; long answers get their own', async (t) => {
  const s = new ScratchAnswers();
  const a = s.take(100);
  t.equal(a.length, 100);
  t.equal(s.take(100), a, 'the same buffer for the same length');
  t.not(s.take(101), a);
  s.release(a);
  const b = s.take(100);
  t.not(b, a, 'a released buffer is never handed out again');
  s.release(a);
  t.equal(s.take(100), b, 'releasing a buffer that is no longer the scratch changes nothing');
  const big = s.take(5000);
  t.equal(big.length, 5000);
  t.not(s.take(5000), big, 'beyond 4096 octets, a new buffer each time');
});
