/**
 * Hostile clients against the real query path on 127.0.0.1: a fuzzing flood (random and mutated queries, UDP and
 * TCP, bounded in time and count) after which a good query is answered and nothing is left in flight; slow,
 * silent and half-open TCP connections held to tcp.maxConnections and closed when idle while UDP and new TCP
 * clients are served; a flood from one /24 rate-limited while a client of another prefix gets every answer.
 */
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';

import fc from 'fast-check';
import t from 'tap';

import { TYPE, decode, query, rcodeOf, tcpAsk, udpAsk } from '../../daemon/test/helpers/client.ts';
import { startTestDaemon } from '../../daemon/test/helpers/daemon.ts';
import { judgeAs, runLoad, sleep } from './helpers.ts';

const FUZZ_MS = Number(process.env.HASHWALL_FUZZ_MS ?? 4000);
const FUZZ_MAX = 30_000;

/** Bytes of a query that fast-check mutates: a real query with EDNS, DO and a cookie. */
const BASE = query('www.example.test', TYPE.A, { edns: { do: true, options: [{ code: 10, data: Buffer.alloc(8) }] } });

const hostileBytes = fc.oneof(
  fc.uint8Array({ maxLength: 600, size: 'max' }),
  fc
    .array(fc.tuple(fc.nat(BASE.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })
    .map((edits) => {
      const b = Buffer.from(BASE);
      for (const [at, v] of edits) b[at] = v;
      return new Uint8Array(b);
    }),
  // Truncations and extensions of a good query.
  fc
    .tuple(fc.nat(BASE.length), fc.uint8Array({ maxLength: 40 }))
    .map(([cut, tail]) => new Uint8Array(Buffer.concat([BASE.subarray(0, cut), tail]))),
);

t.test('a fuzzing flood over UDP and TCP, then a good query is answered and nothing is left in flight', async (t) => {
  const d = await startTestDaemon({ config: { cache: { maxEntries: 1000 } } });
  t.teardown(() => d.close());
  const samples = fc.sample(hostileBytes, { numRuns: FUZZ_MAX, seed: 20261122 });
  const udp = createSocket('udp4');
  let answers = 0;
  let bad = 0;
  udp.on('message', (m) => {
    answers++;
    if (m.length > 1232 || (m[2]! & 0x80) === 0) bad++;
  });
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const t0 = performance.now();
  let sent = 0;
  // UDP: 500 datagrams per 10 ms tick, until the time or the samples run out.
  while (sent < samples.length / 2 && performance.now() - t0 < FUZZ_MS / 2) {
    for (let i = 0; i < 500 && sent < samples.length; i++) udp.send(samples[sent++]!, d.port, '127.0.0.1');
    await sleep(10);
  }
  // TCP: the rest as frames on a few connections (a frame length the bytes may not fill ends that connection).
  let framed = 0;
  while (sent < samples.length && performance.now() - t0 < FUZZ_MS) {
    const batch = samples.slice(sent, sent + 200).map((b) => Buffer.from(b));
    sent += batch.length;
    framed += batch.length;
    await tcpAsk(d.port, batch, { timeoutMs: 300, expect: batch.length });
  }
  await sleep(300);
  udp.close();
  t.comment(`${sent} hostile messages (${framed} over TCP), ${answers} UDP answers`);
  t.ok(sent > 1000, 'the flood ran');
  t.equal(bad, 0, 'every UDP answer is a response within 1232 octets');
  const ok = await udpAsk(d.port, query('a.example.test', TYPE.A, { id: 77 }), 2000);
  t.equal(decode(ok).answers[0]?.address, '192.0.2.1', 'a good query right after is answered');
  const overTcp = await tcpAsk(d.port, [query('a.example.test', TYPE.A, { id: 78 })]);
  t.equal(overTcp.length === 1 ? rcodeOf(overTcp[0]!) : -1, 0, 'and over TCP');
  for (let i = 0; i < 50 && d.daemon.inFlight() > 0; i++) await sleep(100);
  t.equal(d.daemon.inFlight(), 0, 'nothing left in flight');
});

t.test('slow, silent and half-open TCP connections are capped and closed when idle; others are served', async (t) => {
  const d = await startTestDaemon({ config: { tcp: { maxConnections: 20, idleTimeoutMs: 600 } } });
  t.teardown(() => d.close());
  const held: Socket[] = [];
  t.teardown(() => {
    for (const s of held) s.destroy();
  });
  /** For each connection closed: how long after its connect, ms. */
  const openFor: number[] = [];
  const open = (kind: 'silent' | 'partial' | 'trickle' | 'half-closed'): Promise<Socket> =>
    new Promise((resolve) => {
      const s = connect({ port: d.port, host: '127.0.0.1' });
      held.push(s);
      let connectedAt = performance.now();
      s.on('error', () => undefined);
      s.on('close', () => openFor.push(performance.now() - connectedAt));
      s.on('connect', () => {
        connectedAt = performance.now();
        if (kind === 'partial') s.write(Buffer.from([0, 40, 0x12, 0x34])); // a frame of 40 octets, 2 sent
        if (kind === 'trickle') {
          const q = query('a.example.test', TYPE.A);
          const frame = Buffer.concat([Buffer.from([0, q.length]), q]);
          let i = 0;
          const timer = setInterval(() => {
            if (s.destroyed || i >= frame.length) return clearInterval(timer);
            s.write(frame.subarray(i, i + 1));
            i++;
          }, 100);
        }
        if (kind === 'half-closed') s.end();
        resolve(s);
      });
    });
  const kinds = ['silent', 'partial', 'trickle', 'half-closed'] as const;
  for (let i = 0; i < 60; i++) await open(kinds[i % kinds.length]!);
  // The gate (dns/stream.ts) closes connections beyond maxConnections at once; the half-closed ones end at once too.
  // "At once": before the idle timeout (600 ms from its start) could have closed them, however long the 60 connects
  // took.
  const early = (): number => openFor.filter((x) => x < 500).length;
  for (let i = 0; i < 50 && early() < 40; i++) await sleep(100);
  t.ok(early() >= 40, `connections beyond the cap (and half-closed ones) closed at once (${early()} of 60)`);
  // Meanwhile UDP is served.
  const u = await udpAsk(d.port, query('a.example.test', TYPE.A, { id: 5 }), 2000);
  t.equal(u === null ? -1 : rcodeOf(u), 0, 'UDP served while the connection slots are held');
  // After the idle timeout the silent and partial ones are gone; a new TCP client is served.
  const stillOpen = (): number => held.filter((s) => !s.destroyed && !s.closed).length;
  for (let i = 0; i < 100 && stillOpen() > 15; i++) await sleep(100);
  const open2 = stillOpen();
  t.ok(open2 <= 15, `idle connections closed after tcp.idleTimeoutMs (${open2} still open: trickling ones)`);
  const answers = await tcpAsk(d.port, [query('a.example.test', TYPE.A, { id: 6 })], { timeoutMs: 2000 });
  t.equal(answers.length, 1, 'a new TCP client is answered');
  for (const s of held) s.destroy();
  await sleep(200);
  const again = await tcpAsk(d.port, [query('a.example.test', TYPE.A, { id: 7 })], { timeoutMs: 2000 });
  t.equal(again.length, 1, 'and once the slow clients are gone, too');
});

t.test('a flood from one /24 is rate-limited; a client in another prefix gets every answer', async (t) => {
  const d = await startTestDaemon({
    // No slip: every query over the rate is dropped here (the slip's TC answers: daemon/test/server.test.ts).
    config: { access: { rateLimitQps: 200, rateLimitBurst: 100, rateLimitIpv4Prefix: 24, rateLimitSlip: 0 } },
  });
  t.teardown(() => d.close());
  const name = 'a.example.test';
  const judge = judgeAs(name, { rcode: 0, address: '192.0.2.1' });
  const [flood, good] = await Promise.all([
    runLoad({
      port: d.port,
      qps: 4000,
      durationMs: 2000,
      bindAddress: '127.0.0.2',
      timeoutMs: 1000,
      next: () => ({ name, judge }),
    }),
    runLoad({
      port: d.port,
      qps: 100,
      durationMs: 2000,
      bindAddress: '127.0.5.9',
      sockets: 1,
      timeoutMs: 1000,
      next: () => ({ name, judge }),
    }),
  ]);
  t.comment(`flood: ${flood.sent} sent, ${flood.answered} answered; other prefix: ${good.sent} sent, ${good.answered}`);
  t.equal(good.lost, 0, 'the other prefix got every answer');
  t.equal(good.wrong + flood.wrong, 0, 'no wrong answer');
  // 2 s at 200 q/s plus the burst of 100, with slack for timing.
  t.ok(flood.answered <= 200 * 2.5 + 100, `the flood was limited (${flood.answered} of ${flood.sent} answered)`);
  t.ok(flood.answered >= 200, 'but not cut off');
  t.ok(d.events.rateLimitedQueries.udp >= flood.sent - flood.answered - 10, 'the dropped queries were counted');
});
