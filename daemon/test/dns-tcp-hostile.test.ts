/**
 * TCP clients that hold connections: the frame deadline and the cap per client prefix (dns/stream.ts). Time moves
 * on a ManualClock, so nothing here depends on how busy the machine is. The load of 2,000 trickling connections is
 * dns-tcp-hostile.slow.test.ts (the reliability suite).
 */
import { connect } from 'node:net';

import t from 'tap';

import { ManualClock } from '../dist/util/clock.js';
import { TYPE, decode, hostile, query, tcpAsk } from './helpers/client.ts';
import { startTestDaemon, until } from './helpers/daemon.ts';

const FRAME_MS = 2000;

t.test('a frame finished before its deadline is answered; one that is not closes the connection', async (t) => {
  const clock = new ManualClock();
  const d = await startTestDaemon({ clock, config: { tcp: { frameTimeoutMs: FRAME_MS } } });
  t.teardown(() => d.close());
  const s = connect({ port: d.port, host: '127.0.0.1' });
  t.teardown(() => s.destroy());
  s.on('error', () => undefined);
  let closed = false;
  s.on('close', () => (closed = true));
  const got: Buffer[] = [];
  s.on('data', (c: Buffer) => got.push(c));
  await new Promise<void>((resolve) => s.on('connect', resolve));
  const q = query('a.example.test', TYPE.A, { id: 77 });
  const frame = Buffer.concat([Buffer.from([0, q.length]), q]);
  // The daemon's other timers (the upstream tries') are on the same clock: a new one is the frame's deadline.
  let before = clock.pending;
  s.write(frame.subarray(0, 1));
  await until(() => clock.pending > before, 'the deadline armed at the first octet');
  clock.advance(FRAME_MS - 1);
  s.write(frame.subarray(1));
  await until(() => got.length > 0, 'the answer');
  t.equal(Buffer.concat(got).readUInt16BE(2), 77, 'answered: the frame was whole in time');
  t.notOk(closed);
  before = clock.pending;
  s.write(frame.subarray(0, 3));
  await until(() => clock.pending > before, 'the next frame has its own deadline');
  clock.advance(FRAME_MS);
  await until(() => closed, 'closed at the deadline');
  t.equal(d.events.connectionsTimedOut['frame-timeout'], 1);
});

t.test('connections per client prefix are capped; other prefixes still get in', async (t) => {
  const d = await startTestDaemon({ config: { tcp: { maxConnectionsPerPrefix: 2, idleTimeoutMs: 600_000 } } });
  t.teardown(() => d.close());
  const mine = await Promise.all([1, 2, 3].map((i) => hostile(d.port, `127.0.20.${i}`)));
  t.teardown(() => mine.forEach((h) => h.socket.destroy()));
  await until(() => d.events.connectionsRefused['prefix-limit'] === 1, 'the third from 127.0.20.0/24 refused');
  await until(() => mine.filter((h) => h.closed).length === 1, 'and closed');
  const [a] = await tcpAsk(d.port, [query('a.example.test', TYPE.A)]);
  t.equal(decode(a ?? null).answers[0]?.address, '192.0.2.1', 'a client of another prefix is served');
  await until(() => d.events.connectionsOpen === 2, 'the two of 127.0.20.0/24 still open, the other one closed');
  t.equal(d.events.connectionsRefused['prefix-limit'], 1);
});
