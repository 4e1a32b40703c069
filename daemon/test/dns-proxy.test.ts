/**
 * PROXY protocol v2 on the listeners (real sockets on 127.0.0.1): from a trusted front end the query path sees the
 * client the header names (the access list, the rate limit, the logs, the metrics); a header from anyone else is
 * dropped; a missing one is dropped or served as the front end's, as configured; over UDP one header per datagram,
 * over TCP and DoT once per connection, whose client is then judged as a connection's is when accepted (the access
 * list, the cap per prefix). Untrusted senders are another loopback address (127.0.0.2).
 */
import { createSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';

import t, { type Test } from 'tap';

import { Metrics } from '../dist/ops/metrics.js';
import { ManualClock } from '../dist/util/clock.js';
import { TYPE, idOf, optOf, query, rcodeOf } from './helpers/client.ts';
import { startTestDaemon, until, type TestDaemon, type TestDaemonOptions } from './helpers/daemon.ts';
import { proxyHeader } from './helpers/proxy.ts';
import { DotClient, makePki } from './helpers/tls.ts';
import { HANG_MS } from '../../test/helpers/within.ts';

const FRONT = '127.0.0.1';
const OTHER = '127.0.0.2';

async function daemon(t: Test, proxy: Record<string, unknown> = {}, o: TestDaemonOptions = {}): Promise<TestDaemon> {
  const d = await startTestDaemon({
    ...o,
    config: {
      // Clients in 10.0.0.0/8 may query; the front end (loopback) too, for its own LOCAL queries.
      access: { allow: ['10.0.0.0/8', '127.0.0.0/8'] },
      proxyProtocol: { trusted: [`${FRONT}/32`], ...proxy },
      ...o.config,
    },
  });
  t.teardown(() => d.close());
  return d;
}

/** Sends one datagram from `from` and waits for an answer; null once `settled()` holds with none come. */
function udpFrom(port: number, from: string, msg: Buffer, settled: () => boolean): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    let done = false;
    const finish = (v: Buffer | null): void => {
      if (done) return;
      done = true;
      clearInterval(poll);
      clearTimeout(limit);
      s.close();
      resolve(v);
    };
    s.on('message', (m) => finish(m));
    s.on('error', (err) => reject(err));
    // Not answered: the event that says the datagram was dealt with has happened, and a moment for a send.
    const poll = setInterval(() => {
      if (settled()) setImmediate(() => finish(null));
    }, 5);
    const limit = setTimeout(() => finish(null), 5000);
    s.bind(0, from, () => s.send(msg, port, '127.0.0.1'));
  });
}

const edeOf = (m: Buffer): number[] =>
  (optOf(m)?.options ?? []).filter((o) => o.code === 15).map((o) => o.data.readUInt16BE(0));
const proxied = (d: TestDaemon, k: string): number => d.events.proxyHeaders.get(k) ?? 0;

t.test('UDP: the access list sees the client the header names, and the answer goes to the front end', async (t) => {
  const d = await daemon(
    t,
    {},
    { level: 'debug', config: { logging: { level: 'debug', debugClientAddresses: true } } },
  );
  const q = query('a.example.test', TYPE.A, { id: 11 });
  const ok = await udpFrom(
    d.port,
    FRONT,
    Buffer.concat([proxyHeader({ src: '10.1.2.3', transport: 'dgram' }), q]),
    () => false,
  );
  t.equal(idOf(ok!), 11);
  t.equal(rcodeOf(ok!), 0, 'a client inside access.allow: answered, to the front end');
  const outside = query('a.example.test', TYPE.A, { id: 12, edns: {} });
  const refused = await udpFrom(
    d.port,
    FRONT,
    Buffer.concat([proxyHeader({ src: '192.0.2.9' }), outside]),
    () => false,
  );
  t.equal(rcodeOf(refused!), 5, 'a client outside it (the front end is inside): REFUSED');
  t.same(edeOf(refused!), [18], 'EDE 18 Prohibited');
  t.equal(d.events.aclRefusedQueries.udp, 1);
  const v6 = await udpFrom(d.port, FRONT, Buffer.concat([proxyHeader({ src: '2001:db8::5' }), q]), () => false);
  t.equal(rcodeOf(v6!), 5, 'an IPv6 client from an IPv4 front end, outside the list: REFUSED');
  t.equal(proxied(d, 'udp proxied'), 3, 'three headers, one per datagram');
  const lines = d.logs.filter((l) => l.msg === 'query').map((l) => l.client);
  t.same(lines, ['10.1.2.3', '192.0.2.9', '2001:db8::5'], 'the debug lines name the real clients');
});

t.test('UDP: the rate limit counts per real client prefix, not per front end', async (t) => {
  const d = await daemon(
    t,
    {},
    { clock: new ManualClock(), config: { access: { allow: ['10.0.0.0/8'], rateLimitQps: 1, rateLimitBurst: 1 } } },
  );
  const ask = (src: string, id: number): Promise<Buffer | null> => {
    const before = d.events.rateLimitedQueries.udp;
    return udpFrom(
      d.port,
      FRONT,
      Buffer.concat([proxyHeader({ src }), query('a.example.test', TYPE.A, { id })]),
      () => d.events.rateLimitedQueries.udp > before,
    );
  };
  t.ok(await ask('10.0.0.1', 1), 'client A: its burst');
  t.equal(await ask('10.0.0.2', 2), null, 'A again (same /24): over its rate, dropped');
  t.ok(await ask('10.0.1.1', 3), 'client B, another /24, through the same front end: served');
  const slipped = await ask('10.0.0.3', 4);
  t.ok(slipped !== null && (slipped[2]! & 0x02) !== 0, "A's next query over the rate slips: TC, to the front end");
  t.equal(d.events.rateLimitedQueries.slipped, 1);
});

t.test("UDP: access.outside's REFUSED limit counts per real client prefix, not per front end", async (t) => {
  const d = await daemon(
    t,
    {},
    {
      clock: new ManualClock(),
      config: { access: { allow: ['10.0.0.0/8', '127.0.0.0/8'], refusedRateLimitQps: 1, refusedRateLimitBurst: 1 } },
    },
  );
  const ask = (src: string): Promise<Buffer | null> => {
    const before = d.events.aclRefusedQueries.udp;
    return udpFrom(
      d.port,
      FRONT,
      Buffer.concat([proxyHeader({ src }), query('a.example.test', TYPE.A)]),
      () => d.events.aclRefusedQueries.udp > before,
    );
  };
  t.equal(rcodeOf((await ask('192.0.2.1'))!), 5, 'a client outside access.allow: REFUSED');
  t.equal(await ask('192.0.2.2'), null, 'its prefix again: over the REFUSED limit, dropped');
  t.equal(rcodeOf((await ask('198.51.100.1'))!), 5, 'another prefix, through the same front end: REFUSED');
  t.equal(d.events.aclRefusedQueries.dropped, 1);
});

t.test('UDP: a header from an untrusted sender is dropped; its plain queries are served', async (t) => {
  const d = await daemon(t);
  const q = query('a.example.test', TYPE.A);
  const spoof = await udpFrom(
    d.port,
    OTHER,
    Buffer.concat([proxyHeader({ src: '10.9.9.9' }), q]),
    () => proxied(d, 'udp untrusted') === 1,
  );
  t.equal(spoof, null, 'no answer');
  t.equal(d.events.queries.udp, 0, 'the query path never saw it');
  t.ok(await udpFrom(d.port, OTHER, q, () => false), 'a plain query from the same sender: answered');
});

t.test('UDP: from the front end, a missing header is dropped (requireHeader) or served as its own', async (t) => {
  const strict = await daemon(t);
  const q = query('a.example.test', TYPE.A);
  t.equal(await udpFrom(strict.port, FRONT, q, () => proxied(strict, 'udp missing') === 1), null, 'dropped');
  t.equal(strict.events.queries.udp, 0);
  const lax = await daemon(t, { requireHeader: false });
  t.ok(await udpFrom(lax.port, FRONT, q, () => false), 'requireHeader: false: served as the front end');
  t.equal(proxied(lax, 'udp missing'), 1, 'and counted as missing');
  const local = await udpFrom(strict.port, FRONT, Buffer.concat([proxyHeader({ cmd: 'local' }), q]), () => false);
  t.equal(rcodeOf(local!), 0, 'LOCAL (a health check): the front end itself');
  t.equal(proxied(strict, 'udp local'), 1);
  const bad = Buffer.concat([proxyHeader(), q]);
  bad[12] = 0x31; // version 3
  t.equal(
    await udpFrom(strict.port, FRONT, bad, () => proxied(strict, 'udp malformed') === 1),
    null,
    'malformed: dropped',
  );
  const cut = proxyHeader().subarray(0, 20);
  t.equal(
    await udpFrom(strict.port, FRONT, cut, () => proxied(strict, 'udp malformed') === 2),
    null,
    'cut short: dropped',
  );
});

/** A TCP connection from `from`: writes `chunks` one by one and collects framed answers until `expect` or close. */
function tcpFrom(
  port: number,
  from: string,
  chunks: Buffer[],
  expect: number,
): Promise<{ answers: Buffer[]; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = netConnect({ port, host: '127.0.0.1', localAddress: from });
    const answers: Buffer[] = [];
    let buf = Buffer.alloc(0);
    let closed = false;
    const done = (): void => {
      clearTimeout(limit);
      s.destroy();
      resolve({ answers, closed });
    };
    // It ends at the close or the answers expected; the bound is only a net for a hang.
    const limit = setTimeout(done, HANG_MS);
    s.on('connect', () => {
      for (const c of chunks) s.write(c);
    });
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        answers.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (answers.length >= expect) done();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      closed = true;
      done();
    });
  });
}

const frame = (m: Buffer): Buffer => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]);

t.test('TCP: one header per connection, then pipelined queries, all as the named client', async (t) => {
  const d = await daemon(t);
  const qs = [1, 2, 3].map((id) => frame(query('a.example.test', TYPE.A, { id })));
  const h = proxyHeader({ src: '10.4.5.6' });
  // The header split across writes, the first frame glued to its end.
  const r = await tcpFrom(
    d.port,
    FRONT,
    [h.subarray(0, 5), h.subarray(5, 20), Buffer.concat([h.subarray(20), qs[0]!]), qs[1]!, qs[2]!],
    3,
  );
  t.same(r.answers.map(idOf).sort(), [1, 2, 3]);
  t.ok(r.answers.every((a) => rcodeOf(a) === 0));
  t.equal(proxied(d, 'tcp proxied'), 1, 'one header for the connection');
  const out = await tcpFrom(
    d.port,
    FRONT,
    [proxyHeader({ src: '192.0.2.1' }), frame(query('a.example.test', TYPE.A))],
    1,
  );
  t.same([out.answers.length, out.closed], [0, true], 'a client outside access.allow: closed, as when accepted');
  t.equal(d.events.connectionsRefused.acl, 1, 'and counted');
  t.equal(d.events.queries.tcp, 3, 'its query never reached the query path');
});

t.test('TCP: the cap per client prefix counts the clients the headers name, not the front end', async (t) => {
  const d = await daemon(t, {}, { config: { tcp: { maxConnectionsPerPrefix: 2 } } });
  const q = frame(query('a.example.test', TYPE.A));
  const held: Socket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  // Two connections from the front end for clients of 10.7.0.0/24, held open: that prefix is full.
  for (const src of ['10.7.0.1', '10.7.0.2']) {
    const s = netConnect({ port: d.port, host: '127.0.0.1', localAddress: FRONT });
    s.on('error', () => undefined);
    s.write(proxyHeader({ src }));
    held.push(s);
  }
  await until(() => proxied(d, 'tcp proxied') === 2, 'both headers read');
  const third = await tcpFrom(d.port, FRONT, [proxyHeader({ src: '10.7.0.3' }), q], 1);
  t.same([third.answers.length, third.closed], [0, true], 'a third client of 10.7.0.0/24: closed');
  t.equal(d.events.connectionsRefused['prefix-limit'], 1, 'by the cap per prefix');
  const other = await tcpFrom(d.port, FRONT, [proxyHeader({ src: '10.8.0.1' }), q], 1);
  t.equal(other.answers.length, 1, 'a client of another prefix, through the same front end: served');
});

t.test(
  'TCP: an untrusted header, a missing or malformed one, and a header too slow close the connection',
  async (t) => {
    const clock = new ManualClock();
    const d = await daemon(t, {}, { clock, config: { tcp: { frameTimeoutMs: 500 } } });
    const q = frame(query('a.example.test', TYPE.A));
    const spoof = await tcpFrom(d.port, OTHER, [proxyHeader(), q], 1);
    t.same([spoof.answers.length, spoof.closed], [0, true], 'untrusted sender with a header: closed');
    t.equal(proxied(d, 'tcp untrusted'), 1);
    const plain = await tcpFrom(d.port, OTHER, [q], 1);
    t.equal(plain.answers.length, 1, 'its plain queries are answered');
    const missing = await tcpFrom(d.port, FRONT, [q], 1);
    t.same([missing.answers.length, missing.closed], [0, true], 'front end without a header: closed');
    t.equal(proxied(d, 'tcp missing'), 1);
    const bad = proxyHeader();
    bad[13] = 0x51;
    const malformed = await tcpFrom(d.port, FRONT, [bad, q], 1);
    t.same([malformed.answers.length, malformed.closed], [0, true], 'a malformed header: closed');
    t.equal(proxied(d, 'tcp malformed'), 1);
    // The clock has other timers (upstream health): the header's deadline is the one the slow header adds, once the
    // connections before it have closed and cancelled theirs.
    await until(() => d.events.connectionsOpen === 0, 'the connections before closed');
    const before = clock.pending;
    const slowly = tcpFrom(d.port, FRONT, [proxyHeader().subarray(0, 10)], 1);
    await until(() => clock.pending > before, 'the header begun and its deadline armed');
    clock.advance(500);
    const slow = await slowly;
    t.same([slow.answers.length, slow.closed], [0, true], 'a header not whole within tcp.frameTimeoutMs: closed');
    t.equal(d.events.connectionsTimedOut['frame-timeout'], 1, 'by the frame deadline');
    t.equal(d.events.queries.tcp, 1, 'only the plain query reached the query path');
    const lax = await daemon(t, { requireHeader: false });
    t.equal((await tcpFrom(lax.port, FRONT, [q], 1)).answers.length, 1, 'requireHeader: false: served');
  },
);

t.test('DoT: the header is the first bytes inside the session (as dnsdist sends it to a DoT backend)', async (t) => {
  const pki = await makePki();
  t.teardown(() => pki.remove());
  const d = await daemon(
    t,
    {},
    {
      config: { dot: { listen: ['127.0.0.1:0'] }, tls: { certFile: pki.leaf.cert, keyFile: pki.leaf.key } },
    },
  );
  const c = await DotClient.connect(d.daemon.addresses.dot[0]!.port, { ca: pki.ca });
  t.teardown(() => c.close());
  c.socket.write(proxyHeader({ src: '10.9.8.7' }));
  const a = await c.ask(query('a.example.test', TYPE.A, { id: 5 }));
  t.equal(rcodeOf(a!), 0, 'the named client is inside access.allow: answered');
  t.equal(proxied(d, 'dot proxied'), 1);
  const out = await DotClient.connect(d.daemon.addresses.dot[0]!.port, { ca: pki.ca });
  t.teardown(() => out.close());
  out.socket.write(proxyHeader({ src: '192.0.2.44' }));
  t.equal(await out.ask(query('a.example.test', TYPE.A, { id: 6 })), null, 'one outside it: closed, no answer');
  t.equal(proxied(d, 'dot proxied'), 2);
  t.equal(d.events.connectionsRefused.acl, 1, 'refused as a connection from outside access.allow');
  t.equal(d.events.queries.dot, 1, 'its query never reached the query path');
});

t.test('hashwall_proxy_headers_total counts by transport and outcome, once a header is seen', async (t) => {
  const m = new Metrics({ processMetrics: false });
  t.notMatch(await m.registry.metrics(), /hashwall_proxy_headers_total/, 'absent while the protocol is unused');
  m.proxyHeader('udp', 'proxied');
  m.proxyHeader('udp', 'proxied');
  m.proxyHeader('tcp', 'untrusted');
  const text = await m.registry.metrics();
  t.match(text, /^hashwall_proxy_headers_total\{transport="udp",outcome="proxied"\} 2$/m);
  t.match(text, /^hashwall_proxy_headers_total\{transport="tcp",outcome="untrusted"\} 1$/m);
  t.match(text, /^hashwall_proxy_headers_total\{transport="dot",outcome="malformed"\} 0$/m);
});

t.test('a reload turns the protocol on and off for the listeners that stay', async (t) => {
  const d = await startTestDaemon({ config: { access: { allow: ['10.0.0.0/8', '127.0.0.0/8'] } } });
  t.teardown(() => d.close());
  const q = query('a.example.test', TYPE.A);
  t.ok(await udpFrom(d.port, FRONT, q, () => false), 'off: a plain query from 127.0.0.1 is served');
  const { settingsFrom } = await import('../dist/config/load.js');
  const on = settingsFrom(
    { ...JSON.parse(JSON.stringify(d.settings.config)), proxyProtocol: { trusted: ['127.0.0.1/32'] } },
    '/',
  );
  await d.daemon.reload(on);
  await until(() => true, 'reloaded');
  t.equal(await udpFrom(d.port, FRONT, q, () => proxied(d, 'udp missing') === 1), null, 'on: now it needs a header');
  const a = await udpFrom(d.port, FRONT, Buffer.concat([proxyHeader({ src: '192.0.2.3' }), q]), () => false);
  t.equal(rcodeOf(a!), 5, 'and its header is believed');
});
