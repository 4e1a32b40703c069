/**
 * DNS over TLS (RFC 7858) against real TLS sockets on 127.0.0.1 with certificates the test makes: the query path
 * behind it, the RFC 7766 handling it shares with plain TCP (pipelining, answers out of order, idle timeout,
 * connection cap), ALPN, TLS versions, padding (RFC 8467), and new certificates on reload without dropping a
 * session. The upstream tries run on a ManualClock where the order of answers is checked.
 */
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

import t, { type Test } from 'tap';

import { settingsFrom } from '../dist/config/load.js';
import { ManualClock } from '../dist/util/clock.js';
import { TYPE, decode, idOf, optOf, query, rcodeOf, tcpAsk } from './helpers/client.ts';
import { startTestDaemon, until, type TestDaemon, type TestDaemonOptions } from './helpers/daemon.ts';
import { DotClient, makePki, pem, type TestPki } from './helpers/tls.ts';

const pki: TestPki = await makePki();
t.teardown(() => pki.remove());

const tlsConfig = (leaf = pki.leaf) => ({ certFile: leaf.cert, keyFile: leaf.key });

async function daemon(t: Test, o: TestDaemonOptions = {}): Promise<TestDaemon & { dot: number }> {
  const config = { dot: { listen: ['127.0.0.1:0'] }, tls: tlsConfig(), ...o.config };
  const d = await startTestDaemon({ ...o, config });
  t.teardown(() => d.close());
  return Object.assign(d, { dot: d.daemon.addresses.dot[0]!.port });
}

async function client(t: Test, port: number, o: Partial<Parameters<typeof DotClient.connect>[1]> = {}) {
  const c = await DotClient.connect(port, { ca: pki.ca, ...o });
  t.teardown(() => c.close());
  return c;
}

/** The EDE options of an answer as [code, text]. */
const edeOf = (m: Buffer): [number, string][] =>
  (optOf(m)?.options ?? [])
    .filter((o) => o.code === 15)
    .map((o) => [o.data.readUInt16BE(0), o.data.toString('utf8', 2)]);

t.test('DoT answers through the query path: forwarded, blocked with its EDE, counted as dot', async (t) => {
  const d = await daemon(t);
  const c = await client(t, d.dot);
  t.equal(c.socket.alpnProtocol, 'dot', 'ALPN dot (RFC 7858, IANA)');
  const a = await c.ask(query('a.example.test', TYPE.A, { id: 101, edns: {} }));
  t.equal(idOf(a!), 101);
  t.equal(rcodeOf(a!), 0);
  t.same(
    decode(a).answers.map((r) => (r as { address?: string }).address),
    ['192.0.2.1'],
  );
  const b = await c.ask(query('www.blocked.test', TYPE.A, { id: 102, edns: {} }));
  t.equal(rcodeOf(b!), 3, 'NXDOMAIN');
  t.same(edeOf(b!), [[16, 'list demo']], 'EDE 16 names the list');
  t.equal(d.events.queries.dot, 2, 'counted under transport dot');
  t.equal(d.events.queries.tcp, 0);
});

t.test(
  'padding (RFC 8467 4.1): DoT answers to EDNS queries in 468-octet blocks; none without EDNS or on TCP',
  async (t) => {
    const d = await daemon(t);
    const c = await client(t, d.dot);
    for (const [name, type] of [
      ['a.example.test', TYPE.A],
      ['www.blocked.test', TYPE.A],
      ['big.example.test', TYPE.TXT],
    ] as const) {
      const a = await c.ask(query(name, type, { edns: { size: 4096 } }));
      t.equal(a!.length % 468, 0, `${name}: ${a!.length} octets, a multiple of 468`);
      const pad = optOf(a!)!.options.filter((o) => o.code === 12);
      t.equal(pad.length, 1, 'one Padding option');
      t.ok(
        pad[0]!.data.every((x) => x === 0),
        'of zeros (RFC 7830 3)',
      );
      const padded = query(name, type, { edns: { size: 4096, options: [{ code: 12, data: Buffer.alloc(20) }] } });
      t.equal((await c.ask(padded))!.length % 468, 0, 'and when the query was padded too');
      const [plain] = await tcpAsk(d.port, [query(name, type, { edns: { size: 4096 } })]);
      t.notOk(
        optOf(plain!)!.options.some((o) => o.code === 12),
        'plain TCP: never padded',
      );
      t.equal(a!.length - plain!.length - 4 >= 0, true, 'the same answer with the option appended');
    }
    const noEdns = await c.ask(query('a.example.test', TYPE.A));
    t.equal(optOf(noEdns!), null, 'no OPT without EDNS, so no padding');
    const [tcpNoEdns] = await tcpAsk(d.port, [query('a.example.test', TYPE.A)]);
    t.same(noEdns, tcpNoEdns, 'byte for byte the plain TCP answer');
  },
);

t.test('pipelined queries on one DoT session are answered out of order, each with its ID', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, { clock });
  d.upstreams[0]!.byName.set('slow.example.test', 'silent');
  const c = await client(t, d.dot);
  c.send([query('slow.example.test', TYPE.A, { id: 1 }), query('a.example.test', TYPE.A, { id: 2 })]);
  const first = await c.next();
  t.equal(idOf(first!), 2, 'the second query, answered first: the first is still waiting for its upstream');
  t.equal(rcodeOf(first!), 0);
  await until(() => d.upstreams[0]!.queries.some((q) => q.name === 'slow.example.test'), 'the slow query went up');
  clock.advance(1000);
  const second = await c.next();
  t.equal(idOf(second!), 1);
  t.equal(rcodeOf(second!), 2, 'SERVFAIL once its tries time out');
  const many = Array.from({ length: 50 }, (_, i) => query(`n${i}.example.test`, TYPE.A, { id: 1000 + i }));
  c.send(many);
  const ids = new Set<number>();
  for (let i = 0; i < 50; i++) ids.add(idOf((await c.next())!));
  t.equal(ids.size, 50, 'fifty pipelined queries, fifty answers, every ID once');
});

t.test('a pipelined burst the query path answers at once leaves in one TLS record, not one per answer', async (t) => {
  const d = await daemon(t);
  const c = await client(t, d.dot);
  // Cached first, so that every answer of the burst is given while its frames are read.
  t.equal(rcodeOf((await c.ask(query('a.example.test', TYPE.A, { id: 1 })))!), 0);
  const burst = Array.from({ length: 20 }, (_, i) =>
    query(i % 2 === 0 ? 'a.example.test' : 'www.blocked.test', TYPE.A, { id: 100 + i }),
  );
  let records = 0;
  c.socket.on('data', () => records++);
  // One write: one TLS record, so the server reads the twenty frames at once.
  c.send(burst);
  const ids = new Set<number>();
  for (let i = 0; i < burst.length; i++) ids.add(idOf((await c.next())!));
  t.equal(ids.size, 20, 'twenty answers, every ID once');
  t.equal(records, 1, 'all of them in one TLS record (one read on the client)');
});

t.test('a frame split across TLS records, and a frame of garbage, as over TCP', async (t) => {
  const d = await daemon(t);
  const c = await client(t, d.dot);
  const q = query('a.example.test', TYPE.A, { id: 7 });
  const framed = Buffer.concat([Buffer.from([0, q.length]), q]);
  c.socket.write(framed.subarray(0, 1));
  c.socket.write(framed.subarray(1, 9));
  c.socket.write(framed.subarray(9));
  t.equal(idOf((await c.next())!), 7);
  c.send([Buffer.from([1, 2, 3]), query('a.example.test', TYPE.A, { id: 8 })]);
  t.equal(idOf((await c.next())!), 8, 'the garbage frame is dropped, the next one answered');
  t.equal(d.events.malformedQueries.dot, 1, 'and counted as a malformed DoT query');
});

t.test('TLS 1.2 and 1.3 are accepted, 1.1 is not; tls.minVersion TLSv1.3 refuses 1.2', async (t) => {
  const d = await daemon(t);
  const v12 = await client(t, d.dot, { maxVersion: 'TLSv1.2' });
  t.equal(v12.socket.getProtocol(), 'TLSv1.2');
  t.equal(rcodeOf((await v12.ask(query('a.example.test', TYPE.A)))!), 0);
  const v13 = await client(t, d.dot);
  t.equal(v13.socket.getProtocol(), 'TLSv1.3');
  const old = { ca: pki.ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' } as const;
  await t.rejects(
    DotClient.connect(d.dot, old),
    { code: /ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION|ECONNRESET/ },
    'TLS 1.1 refused by the server',
  );
  const strict = await daemon(t, { config: { tls: { ...tlsConfig(), minVersion: 'TLSv1.3' } } });
  await t.rejects(DotClient.connect(strict.dot, { ca: pki.ca, maxVersion: 'TLSv1.2' }), 'TLS 1.2 refused');
  t.ok(await client(t, strict.dot), 'TLS 1.3 accepted');
});

t.test('a client that speaks plain DNS to the DoT port gets nothing and is closed', async (t) => {
  const d = await daemon(t);
  const s = netConnect({ port: d.dot, host: '127.0.0.1' });
  t.teardown(() => s.destroy());
  const got: Buffer[] = [];
  s.on('data', (c: Buffer) => got.push(c));
  s.on('error', () => undefined);
  const q = query('a.example.test', TYPE.A);
  s.write(Buffer.concat([Buffer.from([0, q.length]), q]));
  await new Promise<void>((resolve) => s.once('close', () => resolve()));
  t.notOk(Buffer.concat(got).includes(Buffer.from('example')), 'no DNS answer in clear');
  t.equal(d.events.queries.dot + d.events.queries.tcp, 0);
});

t.test('an idle DoT session is closed after tcp.idleTimeoutMs; tcp.maxConnections caps sessions', async (t) => {
  const d = await daemon(t, { config: { tcp: { idleTimeoutMs: 200, maxConnections: 2 } } });
  const idle = await client(t, d.dot);
  t.equal(rcodeOf((await idle.ask(query('a.example.test', TYPE.A)))!), 0);
  await idle.closed;
  t.pass('closed once idle');
  const a = await client(t, d.dot);
  const b = await client(t, d.dot);
  t.ok(await a.ask(query('a.example.test', TYPE.A)));
  t.ok(await b.ask(query('a.example.test', TYPE.A)));
  // The third is accepted by the kernel and closed by the server before any handshake.
  const third = tlsConnect({ host: '127.0.0.1', port: d.dot, ca: pem(pki.ca), servername: 'dns.hashwall.test' });
  let handshake = false;
  third.on('secureConnect', () => (handshake = true));
  third.on('error', () => undefined);
  await new Promise<void>((resolve) => third.once('close', () => resolve()));
  t.notOk(handshake, 'a third session at the cap: closed before any handshake');
  t.equal(d.events.connectionsRefused.limit, 1, 'counted as refused at the cap');
});

t.test('a reload reads the new certificate: new sessions get it, an open one keeps answering', async (t) => {
  const d = await daemon(t);
  const old = await client(t, d.dot);
  t.equal(old.socket.getPeerCertificate().fingerprint256, pki.leaf.fingerprint256);
  const next = await pki.issue('renewed');
  const raw = { ...d.settings.config, tls: { ...d.settings.config.tls, ...tlsConfig(next) } };
  await d.daemon.reload(settingsFrom(JSON.parse(JSON.stringify(raw)), '/'));
  const fresh = await client(t, d.dot);
  t.equal(fresh.socket.getPeerCertificate().fingerprint256, next.fingerprint256, 'a new session: the new certificate');
  t.equal(rcodeOf((await old.ask(query('a.example.test', TYPE.A)))!), 0, 'the session opened before still answers');
  t.equal(d.daemon.addresses.dot[0]!.port, d.dot, 'the same listener');
});

t.test('close() drains DoT: a query in flight is answered, then the session ends', async (t) => {
  const clock = new ManualClock();
  const d = await startTestDaemon({
    clock,
    config: { dot: { listen: ['127.0.0.1:0'] }, tls: tlsConfig(), shutdown: { drainTimeoutMs: 5000 } },
  });
  d.upstreams[0]!.byName.set('slow.example.test', 'silent');
  const c = await DotClient.connect(d.daemon.addresses.dot[0]!.port, { ca: pki.ca });
  c.send([query('slow.example.test', TYPE.A, { id: 9 })]);
  await until(() => d.daemon.inFlight() === 1, 'the query is in flight');
  const closing = d.close();
  clock.advance(1000);
  const a = await c.next();
  t.equal(idOf(a!), 9, 'answered while draining');
  await c.closed;
  await closing;
  t.equal(d.daemon.inFlight(), 0);
});

t.test('config: dot needs a certificate and key that belong together', async (t) => {
  const other = await pki.issue('other');
  const bad = (tls: Record<string, string>): string[] => {
    try {
      settingsFrom({ dot: { listen: ['127.0.0.1:853'] }, tls }, '/');
      return [];
    } catch (err) {
      return [...((err as { problems?: string[] }).problems ?? [])];
    }
  };
  t.match(bad({}), ['tls.certFile: dot or doh listens: a certificate chain (PEM) is needed', /^tls.keyFile/]);
  t.match(bad({ certFile: pki.leaf.cert, keyFile: other.key }), [/^tls.certFile: the certificate and key cannot/]);
  t.match(bad({ certFile: '/nonexistent.pem', keyFile: pki.leaf.key }), [/^tls.certFile: cannot read/]);
  t.same(bad(tlsConfig()), [], 'a matching pair is accepted');
  t.match(
    (() => {
      try {
        settingsFrom({ listen: ['127.0.0.1:853'], dot: { listen: ['127.0.0.1'] }, tls: tlsConfig() }, '/');
        return [];
      } catch (err) {
        return (err as { problems: string[] }).problems;
      }
    })(),
    [/^dot.listen.0: 127.0.0.1 is already used by listen/],
    'DoT on a port plain TCP has (853 by default)',
  );
});
