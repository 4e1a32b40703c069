/**
 * Hostile clients of the encrypted listeners: DoT sessions and DoH connections get what plain TCP gets (stream.ts):
 * the access list and the caps when the TCP connection is accepted, before any TLS handshake; a handshake that does
 * not finish, and a DoT frame that trickles, closed at tcp.frameTimeoutMs; the connection metrics by transport. Time
 * moves on a ManualClock.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

import t, { type Test } from 'tap';

import { Metrics } from '../dist/ops/metrics.js';
import { ManualClock } from '../dist/util/clock.js';
import { TYPE, query, rcodeOf } from './helpers/client.ts';
import { startTestDaemon, until, type TestDaemon } from './helpers/daemon.ts';
import { parseExposition, sampleKey, startOpsDaemon } from './helpers/ops.ts';
import { DotClient, TLS_NAME, makePki, pem, type TestPki } from './helpers/tls.ts';

const FRAME_MS = 2000;
const pki: TestPki = await makePki();
t.teardown(() => pki.remove());

const tlsConfig = { certFile: pki.leaf.cert, keyFile: pki.leaf.key };

async function daemon(t: Test, clock: ManualClock, tcp: Record<string, unknown> = {}): Promise<TestDaemon> {
  const d = await startTestDaemon({
    clock,
    config: {
      // 127.0.31.0/24 is outside.
      access: { allow: ['127.0.0.1/32', '127.0.30.0/24'] },
      tcp: { idleTimeoutMs: 600_000, frameTimeoutMs: FRAME_MS, ...tcp },
      dot: { listen: ['127.0.0.1:0'] },
      doh: { listen: ['127.0.0.1:0'] },
      tls: tlsConfig,
    },
  });
  t.teardown(() => d.close());
  return d;
}

/** A TLS client from `localAddress`: whether its handshake finished before the server closed the connection. */
function handshakes(port: number, localAddress: string): Promise<boolean> {
  return new Promise((resolve) => {
    const tcp = connect({ port, host: '127.0.0.1', localAddress });
    tcp.on('error', () => undefined);
    const s = tlsConnect({ socket: tcp, ca: pem(pki.ca), servername: TLS_NAME });
    s.setTimeout(10_000, () => s.destroy());
    let secure = false;
    s.on('secureConnect', () => {
      secure = true;
      s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(secure));
    tcp.on('close', () => resolve(secure));
  });
}

/** A plain TCP connection from `localAddress` that never sends a byte; `closed` once the server closes it. */
function silent(port: number, localAddress: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('close', () => resolve({ socket, closed }));
  });
}

t.test(
  'the access list closes a DoT or DoH connection from outside it when accepted, before the handshake',
  async (t) => {
    const d = await daemon(t, new ManualClock());
    const [dot, doh] = [d.daemon.addresses.dot[0]!.port, d.daemon.addresses.doh[0]!.port];
    t.notOk(await handshakes(dot, '127.0.31.1'), 'DoT from outside: closed, no handshake');
    t.notOk(await handshakes(doh, '127.0.31.1'), 'DoH from outside: closed, no handshake');
    t.equal(d.events.connectionsRefused.acl, 2);
    t.ok(await handshakes(dot, '127.0.30.1'), 'from inside: the handshake is done');
    await until(() => d.events.connectionsOpen === 0, 'the DoT session closed');
    t.ok(await handshakes(doh, '127.0.30.1'), 'and over DoH');
    await until(() => d.events.connectionsOpen === 0, 'nothing left open');
  },
);

t.test('connections per client prefix are capped on DoT and DoH; a handshake not begun is closed', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, clock, { maxConnectionsPerPrefix: 2 });
  const dot = d.daemon.addresses.dot[0]!.port;
  const held = await Promise.all([1, 2, 3].map((i) => silent(dot, `127.0.30.${i}`)));
  t.teardown(() => held.forEach((h) => h.socket.destroy()));
  await until(() => d.events.connectionsRefused['prefix-limit'] === 1, 'the third from 127.0.30.0/24 refused');
  await until(() => d.events.connectionsOpen === 2, 'two held, waiting for a handshake');
  const c = await DotClient.connect(dot, { ca: pki.ca });
  t.teardown(() => c.close());
  t.equal(rcodeOf((await c.ask(query('a.example.test', TYPE.A)))!), 0, 'a client of another prefix is served');
  const doh = d.daemon.addresses.doh[0]!.port;
  const dohHeld = await Promise.all([1, 2, 3].map((i) => silent(doh, `127.0.30.${i}`)));
  t.teardown(() => dohHeld.forEach((h) => h.socket.destroy()));
  await until(() => d.events.connectionsRefused['prefix-limit'] === 2, 'the same cap on the DoH listener');

  // Nothing sent: a handshake's deadline is a frame's, on the daemon's clock, for DoT and DoH alike.
  clock.advance(FRAME_MS - 1);
  t.equal(d.events.connectionsTimedOut['handshake-timeout'], 0, 'not before the deadline');
  clock.advance(1);
  t.equal(
    d.events.connectionsTimedOut['handshake-timeout'],
    4,
    'both silent DoT connections closed at it, and both silent DoH ones',
  );
  await Promise.all([...held, ...dohHeld].map((h) => h.closed));
  t.equal(
    rcodeOf((await c.ask(query('a.example.test', TYPE.A)))!),
    0,
    'the session that finished its handshake goes on',
  );
});

t.test('a DoT frame that trickles is closed at its deadline, as over TCP', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, clock);
  const c = await DotClient.connect(d.daemon.addresses.dot[0]!.port, { ca: pki.ca });
  t.teardown(() => c.close());
  const q = query('a.example.test', TYPE.A, { id: 7 });
  const frame = Buffer.concat([Buffer.from([0, q.length]), q]);
  t.equal(rcodeOf((await c.ask(q))!), 0, 'a whole frame is answered');
  const before = clock.pending;
  c.socket.write(frame.subarray(0, 1));
  await until(() => clock.pending > before, 'the deadline armed at the first octet');
  clock.advance(FRAME_MS - 1);
  c.socket.write(frame.subarray(1, 3));
  await new Promise((r) => setTimeout(r, 100)); // let the trickled octets reach the daemon
  clock.advance(1);
  await c.closed;
  t.equal(d.events.connectionsTimedOut['frame-timeout'], 1, 'more octets did not move it');
  t.equal(d.events.queries.dot, 1, 'the trickled frame never reached the query path');
});

t.test('the connection metrics are labelled by transport', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const d = await startOpsDaemon({
    metrics,
    config: {
      access: { allow: ['127.0.0.1/32'] },
      dot: { listen: ['127.0.0.1:0'] },
      doh: { listen: ['127.0.0.1:0'] },
      tls: tlsConfig,
    },
  });
  t.teardown(() => d.close());
  const c = await DotClient.connect(d.daemon.addresses.dot[0]!.port, { ca: pki.ca });
  t.teardown(() => c.close());
  t.equal(rcodeOf((await c.ask(query('a.example.test', TYPE.A)))!), 0);
  t.notOk(await handshakes(d.daemon.addresses.doh[0]!.port, '127.0.0.2'), 'DoH from outside: closed');
  const s = parseExposition(await d.metrics.text());
  t.equal(s.get(sampleKey('hashwall_connections_open', { transport: 'dot' })), 1, 'one DoT session open');
  t.equal(s.get(sampleKey('hashwall_connections_refused_total', { transport: 'doh', reason: 'acl' })), 1);
  t.equal(s.get(sampleKey('hashwall_connections_refused_total', { transport: 'tcp', reason: 'acl' })), 0);
  t.equal(s.get(sampleKey('hashwall_queries_total', { transport: 'dot', qtype: 'A', rcode: 'NOERROR' })), 1);
});
