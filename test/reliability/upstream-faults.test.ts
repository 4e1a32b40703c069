/**
 * Upstream faults under load: a silent upstream, garbage, answers with wrong IDs, a truncation loop (TC over UDP
 * and over TCP), a TCP retry that never answers, and answers slower than the timeout. Each runs 400 q/s of queries:
 * half for a name whose cached answer has expired (serve-stale on), half for names never seen, over 0.8 s. Every answer must
 * be the stale answer (with its A record) or SERVFAIL: never another rcode, never another address. Upstream
 * queries in flight never pass upstream.maxInFlight, and nothing is left in flight after the try deadlines.
 */
import t from 'tap';

import { TYPE, query, udpAsk } from '../../daemon/test/helpers/client.ts';
import { startTestDaemon } from '../../daemon/test/helpers/daemon.ts';
import type { Behaviour } from '../../daemon/test/helpers/upstream.ts';
import { firstA, runLoad, sleep } from './helpers.ts';

const MAX_IN_FLIGHT = 64;

t.test('every upstream fault ends in the stale answer or SERVFAIL, with bounded state', async (t) => {
  const d = await startTestDaemon({
    config: {
      upstream: {
        timeoutMs: 150,
        tcpTimeoutMs: 300,
        maxTries: 2,
        maxInFlight: MAX_IN_FLIGHT,
        probe: { intervalMs: 300 },
      },
      cache: { serveStale: true },
    },
  });
  t.teardown(() => d.close());
  const up = d.upstreams[0]!;
  // Prime the cache: short.example.test has a TTL of 2 s, so it is stale 2 s later.
  const primed = await udpAsk(d.port, query('short.example.test', TYPE.A), 2000);
  t.equal(primed === null ? null : firstA(primed), '192.0.2.3', 'primed');
  await sleep(2300);

  const faults: (Behaviour | 'tc-loop')[] = ['silent', 'garbage', 'wrong-id', 'tc-loop', 'tc-silent-tcp', 'slow'];
  const goodAnswer = up.answer.bind(up);
  let unique = 0;
  for (const fault of faults) {
    up.delayMs = 600; // 'slow': four times the try timeout
    if (fault === 'tc-loop') {
      // TC over UDP, and over TCP too: the daemon must not go round.
      up.behaviour = 'tc';
      up.answer = (msg, q) => {
        const out = goodAnswer(msg, q);
        const qEnd = 12 + (msg.indexOf(0, 12) - 12) + 5;
        const cut = Buffer.from(out.subarray(0, qEnd));
        cut[2]! |= 0x02;
        cut.writeUInt16BE(0, 6);
        cut.writeUInt16BE(0, 8);
        cut.writeUInt16BE(0, 10);
        return cut;
      };
    } else {
      up.behaviour = fault;
      up.answer = goodAnswer;
    }
    const before = { ...d.events.bySource };
    const r = await runLoad({
      port: d.port,
      qps: 400,
      durationMs: 800,
      // every try ends within maxTries x (timeoutMs + tcpTimeoutMs) = 900 ms
      timeoutMs: 1300,
      next: (i) => {
        const name = i % 2 === 0 ? 'short.example.test' : `never${unique++}.example.test`;
        return {
          name,
          judge: (a) => {
            const rc = a[3]! & 15;
            if (rc === 2) return null;
            if (name === 'short.example.test' && rc === 0 && firstA(a) === '192.0.2.3') return null;
            return `${fault}: ${name} got rcode ${rc} ${firstA(a) ?? ''}`;
          },
        };
      },
    });
    for (let i = 0; i < 20 && d.daemon.inFlight() > 0; i++) await sleep(100);
    const stale = d.events.bySource.stale - before.stale;
    t.equal(r.wrong, 0, `${fault}: no wrong answer ${r.wrongSamples.slice(0, 3).join('; ')}`);
    t.equal(r.lost, 0, `${fault}: every query answered (${r.sent} sent, ${stale} stale answers)`);
    t.ok(stale > 0, `${fault}: the expired answer was served stale`);
    t.equal(d.daemon.inFlight(), 0, `${fault}: nothing left in flight`);
  }
  t.ok(
    d.events.inFlightMax <= MAX_IN_FLIGHT,
    `upstream queries in flight never above maxInFlight (${d.events.inFlightMax})`,
  );
  // The upstream comes back: fresh answers again.
  up.behaviour = 'normal';
  up.answer = goodAnswer;
  // Once the health probe (every 300 ms) finds it answering: asked again until then (a SERVFAIL is never cached),
  // for at most 10 s.
  let back: string | null = null;
  for (let i = 0; i < 50 && back !== '192.0.2.1'; i++) {
    if (i > 0) await sleep(200);
    const a = await udpAsk(d.port, query('a.example.test', TYPE.A), 2000);
    back = a === null ? null : firstA(a);
  }
  t.equal(back, '192.0.2.1', 'a healthy upstream answers again');
});

t.test('a silent upstream under a burst: SERVFAIL beyond maxInFlight at once, memory bounded', async (t) => {
  const d = await startTestDaemon({
    config: { upstream: { timeoutMs: 300, maxTries: 1, maxInFlight: MAX_IN_FLIGHT } },
  });
  t.teardown(() => d.close());
  d.upstreams[0]!.behaviour = 'silent';
  const rssBefore = process.memoryUsage().rss;
  let n = 0;
  const r = await runLoad({
    port: d.port,
    qps: 3000,
    durationMs: 1500,
    timeoutMs: 1500,
    next: () => {
      const name = `burst${n++}.example.test`;
      return { name, judge: (a) => ((a[3]! & 15) === 2 ? null : `${name}: rcode ${a[3]! & 15}`) };
    },
  });
  for (let i = 0; i < 30 && d.daemon.inFlight() > 0; i++) await sleep(100);
  const grew = (process.memoryUsage().rss - rssBefore) / 1048576;
  t.comment(
    `${r.sent} queries, ${r.answered} SERVFAIL, in flight at most ${d.events.inFlightMax}; RSS +${grew.toFixed(1)} MiB`,
  );
  t.equal(r.wrong, 0, 'only SERVFAIL');
  t.equal(r.lost, 0, 'every query answered');
  t.ok(d.events.inFlightMax <= MAX_IN_FLIGHT, 'upstream queries in flight bounded by maxInFlight');
  t.equal(d.daemon.inFlight(), 0, 'nothing left in flight');
  t.ok(grew < 64, 'no unbounded memory');
});
