/**
 * The DoH listener's HTTP/2 layer (dns/h2/) against crafted frames on raw TLS sockets: each error RFC 9113 names gets
 * its GOAWAY or RST_STREAM code, the floods get ENHANCE_YOUR_CALM, and the daemon goes on serving other
 * connections. Against real peers too: nghttp2 (node:http2's client) with its header table and Huffman choices
 * varied and a flow-control window of a few octets, Debian's `nghttp` and `h2load`; many streams pipelined on one
 * connection, answered out of order.
 */
import { execFile } from 'node:child_process';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { promisify } from 'node:util';

import t, { type Test } from 'tap';

import { H2Connection, type H2Host, type H2Stream } from '../dist/dns/h2/connection.js';
import { HpackEncoder } from '../dist/dns/h2/hpack.js';
import { ManualClock } from '../dist/util/clock.js';
import { TYPE, decode, query, rcodeOf } from './helpers/client.ts';
import { startTestDaemon, until, type TestDaemon, type TestDaemonOptions } from './helpers/daemon.ts';
import {
  ACK,
  E,
  END_HEADERS,
  END_STREAM,
  PADDED,
  PREFACE,
  PRIORITY_FLAG,
  RawH2,
  T,
  frame,
  getFields,
  postFields,
  settings,
  u32,
} from './helpers/h2raw.ts';
import { DohClient, TLS_NAME, makePki, pem, type TestPki } from './helpers/tls.ts';
import { needTool } from '../../test/helpers/tools.ts';

const run = promisify(execFile);
const pki: TestPki = await makePki();
t.teardown(() => pki.remove());

async function daemon(t: Test, o: TestDaemonOptions = {}): Promise<TestDaemon & { doh: number }> {
  const c = o.config ?? {};
  const d = await startTestDaemon({
    ...o,
    config: {
      ...c,
      doh: { listen: ['127.0.0.1:0'], ...(c.doh as object) },
      tls: { certFile: pki.leaf.cert, keyFile: pki.leaf.key },
    },
  });
  t.teardown(() => d.close());
  return Object.assign(d, { doh: d.daemon.addresses.doh[0]!.port });
}

async function raw(t: Test, port: number, o: { preface?: boolean } = {}): Promise<RawH2> {
  const c = await RawH2.connect(port, pki.ca, o);
  t.teardown(() => c.close());
  return c;
}

const q = query('a.example.test', TYPE.A, { id: 0 });
/** Literals without indexing only: blocks that need no table state, for fresh connections. */
const enc = new HpackEncoder();

/** A client of its own gets an answer: the daemon serves on. */
async function servesOn(t: Test, port: number, other?: DohClient): Promise<void> {
  const c = other ?? (await DohClient.connect(port, pki.ca));
  try {
    const a = await c.get(q);
    t.equal(a.status, 200, 'another connection is served');
  } finally {
    if (other === undefined) c.close();
  }
}

t.test('the server preface: SETTINGS with our limits, then the ACK of the client SETTINGS', async (t) => {
  const d = await daemon(t, { config: { tcp: { maxInFlightPerConnection: 7 }, doh: { maxHeaderBytes: 3000 } } });
  const c = await raw(t, d.doh);
  const s = await c.next((f) => f.type === T.SETTINGS && f.flags === 0);
  const got = new Map<number, number>();
  for (let i = 0; i < s.payload.length; i += 6) got.set(s.payload.readUInt16BE(i), s.payload.readUInt32BE(i + 2));
  t.equal(got.get(3), 7, 'MAX_CONCURRENT_STREAMS = tcp.maxInFlightPerConnection');
  t.equal(got.get(6), 3000, 'MAX_HEADER_LIST_SIZE = doh.maxHeaderBytes');
  t.equal(got.get(4), 65535, 'INITIAL_WINDOW_SIZE');
  t.equal(got.get(5), 16384, 'MAX_FRAME_SIZE');
  await c.next((f) => f.type === T.SETTINGS && f.flags === ACK);
  c.write(c.headers(1, getFields(q)));
  const r = await c.response(1);
  t.equal(r.status, 200);
  t.equal(rcodeOf(r.body), 0);
  c.write(frame(T.PING, 0, 0, Buffer.from('12345678')));
  const pong = await c.next((f) => f.type === T.PING);
  t.equal(pong.flags, ACK, 'PING answered with ACK');
  t.equal(pong.payload.toString(), '12345678', 'and its payload');
});

/** Connection errors: [what, frames after the preface and SETTINGS, the GOAWAY code]. */
const connectionErrors: [string, () => Buffer[], number][] = [
  ['a frame over MAX_FRAME_SIZE', () => [frame(T.DATA, 0, 1, Buffer.alloc(16385))], E.FRAME_SIZE_ERROR],
  ['HEADERS on stream 0', () => [frame(T.HEADERS, END_HEADERS | END_STREAM, 0, Buffer.from([0x82]))], E.PROTOCOL_ERROR],
  [
    'HEADERS on an even stream',
    () => [frame(T.HEADERS, END_HEADERS | END_STREAM, 2, Buffer.from([0x82]))],
    E.PROTOCOL_ERROR,
  ],
  ['DATA on stream 0', () => [frame(T.DATA, 0, 0, Buffer.from('x'))], E.PROTOCOL_ERROR],
  ['DATA on an idle stream', () => [frame(T.DATA, 0, 5, Buffer.from('x'))], E.PROTOCOL_ERROR],
  ['RST_STREAM on an idle stream', () => [frame(T.RST_STREAM, 0, 5, u32(8))], E.PROTOCOL_ERROR],
  ['RST_STREAM of 3 octets', () => [frame(T.RST_STREAM, 0, 1, Buffer.alloc(3))], E.FRAME_SIZE_ERROR],
  ['WINDOW_UPDATE on an idle stream', () => [frame(T.WINDOW_UPDATE, 0, 5, u32(1))], E.PROTOCOL_ERROR],
  ['WINDOW_UPDATE of 0 on the connection', () => [frame(T.WINDOW_UPDATE, 0, 0, u32(0))], E.PROTOCOL_ERROR],
  ['WINDOW_UPDATE of 3 octets', () => [frame(T.WINDOW_UPDATE, 0, 0, Buffer.alloc(3))], E.FRAME_SIZE_ERROR],
  ['the connection window past 2^31-1', () => [frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff))], E.FLOW_CONTROL_ERROR],
  ['SETTINGS of 5 octets', () => [frame(T.SETTINGS, 0, 0, Buffer.alloc(5))], E.FRAME_SIZE_ERROR],
  ['SETTINGS on a stream', () => [frame(T.SETTINGS, 0, 1)], E.PROTOCOL_ERROR],
  ['a SETTINGS ACK with a payload', () => [frame(T.SETTINGS, ACK, 0, Buffer.alloc(6))], E.FRAME_SIZE_ERROR],
  ['INITIAL_WINDOW_SIZE past 2^31-1', () => [settings(4, 0x80000000)], E.FLOW_CONTROL_ERROR],
  ['MAX_FRAME_SIZE under 16384', () => [settings(5, 100)], E.PROTOCOL_ERROR],
  ['ENABLE_PUSH of 2', () => [settings(2, 2)], E.PROTOCOL_ERROR],
  ['PING of 7 octets', () => [frame(T.PING, 0, 0, Buffer.alloc(7))], E.FRAME_SIZE_ERROR],
  ['PING on a stream', () => [frame(T.PING, 0, 1, Buffer.alloc(8))], E.PROTOCOL_ERROR],
  ['PUSH_PROMISE from a client', () => [frame(T.PUSH_PROMISE, END_HEADERS, 1, Buffer.alloc(5))], E.PROTOCOL_ERROR],
  ['GOAWAY on a stream', () => [frame(T.GOAWAY, 0, 1, Buffer.alloc(8))], E.PROTOCOL_ERROR],
  ['PRIORITY on stream 0', () => [frame(T.PRIORITY, 0, 0, Buffer.alloc(5))], E.PROTOCOL_ERROR],
  [
    'HEADERS whose padding is as long as its payload',
    () => [frame(T.HEADERS, END_HEADERS | END_STREAM | PADDED, 1, Buffer.from([4, 0x82, 0x86, 0x84]))],
    E.PROTOCOL_ERROR,
  ],
  [
    'DATA whose padding is as long as its payload',
    () => [
      frame(T.HEADERS, END_HEADERS, 1, enc.encode(postFields())),
      frame(T.DATA, PADDED, 1, Buffer.from([2, 0, 0])),
      frame(T.DATA, PADDED, 1, Buffer.from([3, 0, 0])),
    ],
    E.PROTOCOL_ERROR,
  ],
  [
    'another frame inside a header block',
    () => [frame(T.HEADERS, 0, 1, Buffer.from([0x83])), frame(T.PING, 0, 0, Buffer.alloc(8))],
    E.PROTOCOL_ERROR,
  ],
  [
    'CONTINUATION of another stream',
    () => [frame(T.HEADERS, 0, 1, Buffer.from([0x83])), frame(T.CONTINUATION, END_HEADERS, 3, Buffer.from([0x86]))],
    E.PROTOCOL_ERROR,
  ],
  [
    'CONTINUATION without HEADERS',
    () => [frame(T.CONTINUATION, END_HEADERS, 1, Buffer.from([0x82]))],
    E.PROTOCOL_ERROR,
  ],
  ['HPACK: index 0', () => [frame(T.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from([0x80]))], E.COMPRESSION_ERROR],
  [
    'HPACK: an integer past 2^28',
    () => [frame(T.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from('ffffffffff7f', 'hex'))],
    E.COMPRESSION_ERROR,
  ],
  [
    'HPACK: Huffman with EOS',
    () => [frame(T.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from('00016184ffffffff', 'hex'))],
    E.COMPRESSION_ERROR,
  ],
  [
    'HPACK: a table size update past SETTINGS_HEADER_TABLE_SIZE',
    () => [frame(T.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from('3fe21f82', 'hex'))],
    E.COMPRESSION_ERROR,
  ],
];

t.test('each connection error gets GOAWAY with its code, and the daemon serves other connections', async (t) => {
  const d = await daemon(t);
  const other = await DohClient.connect(d.doh, pki.ca);
  t.teardown(() => other.close());
  for (const [what, frames, code] of connectionErrors) {
    const c = await raw(t, d.doh);
    c.write(...frames());
    const g = await c.goaway();
    t.equal(g.code, code, what);
    await c.closed;
  }
  await servesOn(t, d.doh, other);
});

t.test('a preface that is not HTTP/2, and a first frame that is not SETTINGS: PROTOCOL_ERROR', async (t) => {
  const d = await daemon(t);
  const bad = await raw(t, d.doh, { preface: false });
  bad.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.equal((await bad.goaway()).code, E.PROTOCOL_ERROR, 'not the preface');
  const noSettings = await raw(t, d.doh, { preface: false });
  noSettings.write(PREFACE, frame(T.PING, 0, 0, Buffer.alloc(8)));
  t.equal((await noSettings.goaway()).code, E.PROTOCOL_ERROR, 'PING before SETTINGS');
  await servesOn(t, d.doh);
});

t.test('stream errors get RST_STREAM with their code; the connection goes on', async (t) => {
  const d = await daemon(t);
  d.upstreams[0]!.byName.set('slow.example.test', 'silent');
  const c = await raw(t, d.doh);
  const slow = query('slow.example.test', TYPE.A, { id: 0 });
  const malformed: [string, [string, string][]][] = [
    ['an upper-case field name', [...getFields(q), ['X-Upper', '1']]],
    ['a connection-specific field', [...getFields(q), ['connection', 'keep-alive']]],
    ['te other than trailers', [...getFields(q), ['te', 'gzip']]],
    ['no :path', getFields(q).filter(([n]) => n !== ':path')],
    ['no :method', getFields(q).filter(([n]) => n !== ':method')],
    ['a pseudo-header after a field', [...getFields(q).slice(0, 3), ['accept', '*/*'], getFields(q)[3]!]],
    ['an unknown pseudo-header', [...getFields(q), [':protocol', 'websocket']]],
    ['a response pseudo-header', [...getFields(q), [':status', '200']]],
    ['two :method', [...getFields(q), [':method', 'POST']]],
    ['an empty :path', getFields(q).map(([n, v]) => [n, n === ':path' ? '' : v] as [string, string])],
    ['a value with a line feed', [...getFields(q), ['x-a', 'a\nb']]],
  ];
  let id = 1;
  for (const [what, fields] of malformed) {
    c.write(c.headers(id, fields));
    t.equal(await c.rst(id), E.PROTOCOL_ERROR, `malformed: ${what}`);
    id += 2;
  }
  // RFC 9113 8.1.1: a body longer or shorter than its content-length.
  c.write(c.headers(id, postFields([['content-length', '3']]), 0), frame(T.DATA, END_STREAM, id, Buffer.alloc(5)));
  t.equal(await c.rst(id), E.PROTOCOL_ERROR, 'more DATA than content-length');
  id += 2;
  c.write(c.headers(id, postFields([['content-length', '30']]), 0), frame(T.DATA, END_STREAM, id, Buffer.alloc(5)));
  t.equal(await c.rst(id), E.PROTOCOL_ERROR, 'less DATA than content-length');
  id += 2;
  // A stream that depends on itself (RFC 9113 5.3.1).
  const prio = Buffer.concat([u32(id), Buffer.from([16]), c.block(getFields(q))]);
  c.write(frame(T.HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, id, prio));
  t.equal(await c.rst(id), E.PROTOCOL_ERROR, 'HEADERS depending on its own stream');
  id += 2;
  c.write(frame(T.PRIORITY, 0, id + 100, Buffer.alloc(4)));
  t.equal(await c.rst(id + 100), E.FRAME_SIZE_ERROR, 'PRIORITY of 4 octets');
  // Half-closed (remote): the client ended the stream, and sends more.
  c.write(c.headers(id, getFields(slow)));
  c.write(frame(T.DATA, 0, id, Buffer.from('x')));
  t.equal(await c.rst(id), E.STREAM_CLOSED, 'DATA after END_STREAM');
  const open = id + 2;
  c.write(c.headers(open, getFields(slow)));
  c.write(frame(T.WINDOW_UPDATE, 0, open, u32(0)));
  t.equal(await c.rst(open), E.PROTOCOL_ERROR, 'a WINDOW_UPDATE of 0 on a stream');
  const big = open + 2;
  c.write(c.headers(big, getFields(slow)));
  c.write(frame(T.WINDOW_UPDATE, 0, big, u32(0x7fffffff)));
  t.equal(await c.rst(big), E.FLOW_CONTROL_ERROR, 'a stream window past 2^31-1');
  // Still serving on the same connection.
  const next = big + 2;
  c.write(c.headers(next, getFields(q)));
  t.equal((await c.response(next)).status, 200, 'the connection goes on');
  // PRIORITY on any stream, unknown frame types, unknown settings: ignored.
  c.write(
    frame(T.PRIORITY, 0, next + 40, Buffer.concat([u32(1), Buffer.from([10])])),
    frame(0x42, 0xff, 0, Buffer.from('whatever')),
    settings(0x99, 1234),
    c.headers(next + 2, getFields(q)),
  );
  t.equal((await c.response(next + 2)).status, 200, 'PRIORITY, an unknown type and an unknown setting ignored');
  t.notOk(
    c.frames.some((f) => f.type === T.GOAWAY),
    'no GOAWAY on this connection',
  );
});

t.test('a new stream below the last one is a connection error; trailers are taken', async (t) => {
  const d = await daemon(t);
  const c = await raw(t, d.doh);
  c.write(c.headers(1, postFields(), 0), frame(T.DATA, 0, 1, q), c.headers(1, [['x-trailer', 'yes']], END_STREAM));
  const r = await c.response(1);
  t.equal(r.status, 200, 'a POST with trailers');
  t.equal(rcodeOf(r.body), 0);
  c.write(c.headers(5, getFields(q)));
  t.equal((await c.response(5)).status, 200);
  c.write(c.headers(3, getFields(q)));
  t.equal((await c.goaway()).code, E.STREAM_CLOSED, 'stream 3 after stream 5');
});

t.test('streams beyond MAX_CONCURRENT_STREAMS are refused (REFUSED_STREAM); the rest are answered', async (t) => {
  const d = await daemon(t, { config: { tcp: { maxInFlightPerConnection: 2 } } });
  d.upstreams[0]!.byName.set('slow.example.test', 'slow');
  const c = await raw(t, d.doh);
  const slow = query('slow.example.test', TYPE.A, { id: 0 });
  c.write(c.headers(1, getFields(slow)), c.headers(3, getFields(slow)), c.headers(5, getFields(q)));
  t.equal(await c.rst(5), E.REFUSED_STREAM, 'the third stream at once');
  t.equal((await c.response(1)).status, 200);
  t.equal((await c.response(3)).status, 200);
  c.write(c.headers(7, getFields(q)));
  t.equal((await c.response(7)).status, 200, 'a new stream once the others are done');
});

t.test('many streams pipelined in one write are answered out of order, each whole', async (t) => {
  const d = await daemon(t);
  d.upstreams[0]!.byName.set('slow.example.test', 'slow');
  const c = await raw(t, d.doh);
  const frames: Buffer[] = [c.headers(1, getFields(query('slow.example.test', TYPE.A, { id: 0 })))];
  for (let i = 0; i < 60; i++)
    frames.push(c.headers(3 + 2 * i, getFields(query(`n${i}.example.test`, TYPE.A, { id: 0 }))));
  frames.push(c.headers(123, getFields(query('www.blocked.test', TYPE.A, { id: 0 }))));
  c.write(...frames);
  const answers = await Promise.all(
    [1, 123, ...Array.from({ length: 60 }, (_, i) => 3 + 2 * i)].map((id) => c.response(id)),
  );
  t.same(
    answers.map((a) => a.status),
    answers.map(() => 200),
  );
  t.equal(rcodeOf(answers[1]!.body), 3, 'the blocked name: NXDOMAIN');
  t.same(decode(answers[2]!.body).questions?.[0]?.name, 'n0.example.test', 'each answer on its own stream');
  const order = c.frames.filter((f) => f.type === T.HEADERS).map((f) => f.id);
  t.ok(order.indexOf(123) < order.indexOf(1), 'the blocked name answered before the slow one asked first');
});

t.test(
  'rapid reset (CVE-2023-44487): streams reset before their answer, past the budget, get ENHANCE_YOUR_CALM',
  async (t) => {
    const d = await daemon(t, { clock: new ManualClock() });
    const c = await raw(t, d.doh);
    const frames: Buffer[] = [];
    // POSTs whose body never comes: each waits for it, and is reset at once.
    for (let i = 0; i < 1010; i++) {
      const id = 1 + 2 * i;
      frames.push(c.headers(id, postFields(), 0), frame(T.RST_STREAM, 0, id, u32(E.CANCEL)));
    }
    c.write(...frames);
    const g = await c.goaway();
    t.equal(g.code, E.ENHANCE_YOUR_CALM);
    t.ok(g.lastStreamId >= 1999 && g.lastStreamId < 2020, `the last stream processed: ${g.lastStreamId}`);
    await c.closed;
    await servesOn(t, d.doh);
    t.equal(d.daemon.inFlight(), 0, 'nothing left in flight');
  },
);

t.test('PING and SETTINGS floods, and floods of frames that do nothing, get ENHANCE_YOUR_CALM', async (t) => {
  const d = await daemon(t, { clock: new ManualClock() });
  const floods: [string, Buffer][] = [
    ['PING', frame(T.PING, 0, 0, Buffer.alloc(8))],
    ['SETTINGS', settings()],
    ['PRIORITY', frame(T.PRIORITY, 0, 3, Buffer.concat([u32(1), Buffer.from([1])]))],
    ['unknown frames', frame(0x77, 0, 0)],
  ];
  for (const [what, f] of floods) {
    const c = await raw(t, d.doh);
    const n = what === 'PING' || what === 'SETTINGS' ? 1100 : 10_100;
    c.write(Buffer.concat(Array.from({ length: n }, () => f)));
    t.equal((await c.goaway()).code, E.ENHANCE_YOUR_CALM, what);
  }
  // Empty DATA frames on an open stream.
  const c = await raw(t, d.doh);
  const empty = frame(T.DATA, 0, 1);
  c.write(c.headers(1, postFields(), 0), Buffer.concat(Array.from({ length: 10_100 }, () => empty)));
  t.equal((await c.goaway()).code, E.ENHANCE_YOUR_CALM, 'empty DATA');
  await servesOn(t, d.doh);
});

t.test('CONTINUATION floods: too many frames or too many octets in one block', async (t) => {
  const d = await daemon(t, { config: { doh: { maxHeaderBytes: 2048 } } });
  const many = await raw(t, d.doh);
  const parts = [frame(T.HEADERS, END_STREAM, 1, Buffer.from([0x82]))];
  for (let i = 0; i < 40; i++) parts.push(frame(T.CONTINUATION, 0, 1));
  many.write(...parts);
  t.equal((await many.goaway()).code, E.ENHANCE_YOUR_CALM, '40 empty CONTINUATIONs');
  const big = await raw(t, d.doh);
  const filler = Buffer.alloc(9000, 0x61);
  big.write(
    frame(T.HEADERS, END_STREAM, 1, Buffer.from([0x82])),
    frame(T.CONTINUATION, 0, 1, filler),
    frame(T.CONTINUATION, 0, 1, filler),
  );
  t.equal((await big.goaway()).code, E.ENHANCE_YOUR_CALM, 'a block past 4 x maxHeaderBytes');
  // A list past maxHeaderBytes within the block cap: decoded, and answered 431.
  const c = await raw(t, d.doh);
  c.write(c.headers(1, [...getFields(q), ['x-filler', 'y'.repeat(3000)]]));
  t.equal((await c.response(1)).status, 431);
  c.write(c.headers(3, getFields(q)));
  t.equal((await c.response(3)).status, 200, 'and the connection goes on, its HPACK table in step');
  await servesOn(t, d.doh);
});

t.test('a header block and a frame left unfinished are closed at tcp.frameTimeoutMs', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, { clock, config: { tcp: { frameTimeoutMs: 2000 } } });
  const c = await raw(t, d.doh);
  c.write(c.headers(1, getFields(q)));
  await c.response(1);
  const before = clock.pending;
  c.write(frame(T.HEADERS, END_STREAM, 3, Buffer.from([0x82])));
  await until(() => clock.pending > before, 'the deadline of the open block');
  clock.advance(2000);
  await c.closed;
  t.equal(d.events.connectionsTimedOut['frame-timeout'], 1, 'an open header block');
  const half = await raw(t, d.doh);
  await half.next((f) => f.type === T.SETTINGS && f.flags === ACK);
  const idle = clock.pending;
  half.write(frame(T.PING, 0, 0, Buffer.alloc(8)).subarray(0, 12));
  await until(() => clock.pending > idle, 'the deadline of the partial frame');
  clock.advance(2000);
  await half.closed;
  t.equal(d.events.connectionsTimedOut['frame-timeout'], 2, 'a frame cut short');
});

t.test('nghttp2 (node:http2 client) as the peer: header table sizes and Huffman choices varied', async (t) => {
  // An echo server on the HTTP/2 layer alone: each request's fields come back as JSON.
  const { createServer } = await import('node:tls');
  const clock = new ManualClock();
  const host: H2Host = {
    request(stream: H2Stream) {
      stream.respond(
        200,
        { 'content-type': 'application/json' },
        JSON.stringify({ method: stream.method, target: stream.target, fields: stream.fields }),
      );
    },
    timedOut: () => undefined,
    deadline: () => () => undefined,
    clock,
  };
  const server = createServer({ cert: pem(pki.leaf.cert), key: pem(pki.leaf.key), ALPNProtocols: ['h2'] }, (s) => {
    new H2Connection(s, host, { maxConcurrentStreams: 100, maxHeaderListBytes: 65536, idleTimeoutMs: 60_000 });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  for (const headerTableSize of [0, 256, 4096]) {
    const session: ClientHttp2Session = h2connect(`https://127.0.0.1:${port}`, {
      ca: pem(pki.ca),
      servername: TLS_NAME,
      settings: { headerTableSize },
    });
    session.on('error', () => undefined);
    t.teardown(() => session.destroy());
    for (let round = 0; round < 20; round++) {
      const headers: Record<string, string> = {
        // Short lower-case values (Huffman-coded by nghttp2), values of rare octets (sent as they are), values
        // repeated from round to round (indexed), and one marked sensitive (never indexed).
        'x-lower': `abcdefghij${round % 3}`,
        'x-rare': `{}<>\\^\`~${'|'.repeat(round)}`,
        'x-same': 'the same value every time',
        'x-long': 'L'.repeat(200 + round * 50),
        authorization: `secret-${round}`,
      };
      const req = session.request({ ':path': `/dns-query?round=${round}`, ...headers }, {});
      const body = await new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const timer = setTimeout(() => reject(new Error('timeout')), 5000);
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          clearTimeout(timer);
          resolve(Buffer.concat(chunks).toString());
        });
        req.on('error', reject);
        req.end();
      });
      const got = JSON.parse(body) as { method: string; target: string; fields: string[] };
      const fields = new Map<string, string>();
      for (let i = 0; i < got.fields.length; i += 2) fields.set(got.fields[i]!, got.fields[i + 1]!);
      const same = Object.entries(headers).every(([k, v]) => fields.get(k) === v);
      if (!same || got.method !== 'GET' || got.target !== `/dns-query?round=${round}`) {
        t.fail(`table ${headerTableSize}, round ${round}: ${body}`);
        break;
      }
    }
    t.pass(`header table size ${headerTableSize}: 20 requests decoded as sent`);
    session.close();
  }
});

t.test('a client window of a few octets still gets whole answers (flow control, SETTINGS changes)', async (t) => {
  const d = await daemon(t);
  const session = h2connect(`https://127.0.0.1:${d.doh}`, {
    ca: pem(pki.ca),
    servername: TLS_NAME,
    settings: { initialWindowSize: 7 },
  });
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const ask = (name: string): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const req = session.request({
        ':method': 'GET',
        ':path': `/dns-query?dns=${query(name, TYPE.A, { id: 0, edns: {} }).toString('base64url')}`,
      });
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => reject(new Error('timeout')), 10_000);
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks));
      });
      req.on('error', reject);
      req.end();
    });
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => ask(`w${i}.example.test`)));
  for (const [i, a] of answers.entries()) {
    t.equal(a.length % 468, 0, 'a padded answer of 468 octets, sent 7 at a time');
    t.equal(decode(a).questions[0]?.name, `w${i}.example.test`, 'whole, on its own stream');
  }
  // A larger window by SETTINGS while answers wait: they go on.
  const more = Promise.all(Array.from({ length: 5 }, (_, i) => ask(`v${i}.example.test`)));
  session.settings({ initialWindowSize: 65535 });
  for (const a of await more) t.equal(a.length % 468, 0);
});

const nghttpMissing = needTool('nghttp') || needTool('h2load');

t.test('nghttp and h2load (Debian nghttp2-client) are served', { skip: nghttpMissing }, async (t) => {
  const d = await daemon(t);
  const url = `https://127.0.0.1:${d.doh}/dns-query?dns=${q.toString('base64url')}`;
  const { stdout } = await run('nghttp', ['-v', '-n', url], { timeout: 10_000 });
  t.match(stdout, /:status: 200/, 'nghttp: 200');
  t.match(stdout, /content-type: application\/dns-message/);
  t.match(stdout, /recv GOAWAY|send GOAWAY/, 'and the connection ended with GOAWAY');
  const h2 = await run('h2load', ['-n', '2000', '-c', '2', '-m', '50', url], { timeout: 30_000 });
  t.match(h2.stdout, /2000 succeeded, 0 failed, 0 errored, 0 timeout/, 'h2load: every request answered');
  t.match(h2.stdout, /status codes: 2000 2xx/);
});

t.test('stopping sends GOAWAY (NO_ERROR, the last stream) and answers the streams in flight', async (t) => {
  const d = await daemon(t);
  d.upstreams[0]!.byName.set('slow.example.test', 'slow');
  const c = await raw(t, d.doh);
  c.write(c.headers(1, getFields(query('slow.example.test', TYPE.A, { id: 0 }))));
  await until(() => d.daemon.inFlight() === 1, 'the request in flight');
  const closing = d.close();
  const g = await c.goaway();
  t.same(g, { lastStreamId: 1, code: E.NO_ERROR });
  t.equal((await c.response(1)).status, 200, 'answered after the GOAWAY');
  await closing;
  await c.closed;
});

t.test('random frame sequences end in answers, RST_STREAM or GOAWAY, never a crash', async (t) => {
  const d = await daemon(t, { clock: new ManualClock() });
  const fc = (await import('fast-check')).default;
  const block = (fields: [string, string][]): Buffer => enc.encode(fields);
  const anyFrame = fc.oneof(
    fc
      .tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 9 }))
      .chain(([type, flags, id]) =>
        fc.uint8Array({ maxLength: 40 }).map((p) => frame(type, flags, id, Buffer.from(p))),
      ),
    fc
      .tuple(fc.integer({ min: 0, max: 4 }), fc.boolean())
      .map(([n, end]) => frame(T.HEADERS, END_HEADERS | (end ? END_STREAM : 0), 1 + 2 * n, block(getFields(q)))),
    fc.integer({ min: 0, max: 4 }).map((n) => frame(T.HEADERS, END_HEADERS, 1 + 2 * n, block(postFields()))),
    fc.integer({ min: 0, max: 4 }).map((n) => frame(T.DATA, END_STREAM, 1 + 2 * n, q)),
  );
  let goaways = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(anyFrame, { minLength: 1, maxLength: 12 }), async (frames) => {
      const c = await RawH2.connect(d.doh, pki.ca);
      try {
        c.write(...frames, frame(T.PING, 0, 0, Buffer.from('lastping')));
        // Either the connection is still served (our PING answered) or it was closed with a GOAWAY.
        const f = await c.next(
          (f) => f.type === T.GOAWAY || (f.type === T.PING && f.payload.toString() === 'lastping'),
          5000,
        );
        if (f.type === T.GOAWAY) goaways++;
        return true;
      } finally {
        c.close();
      }
    }),
    { numRuns: 150 },
  );
  t.ok(goaways > 0, `some sequences were connection errors (${goaways} of 150)`);
  await servesOn(t, d.doh);
});

t.test('a request split over HEADERS and CONTINUATIONs, with padding and priority fields, is served', async (t) => {
  const d = await daemon(t);
  const c = await raw(t, d.doh);
  const b = c.block(getFields(q));
  const third = Math.ceil(b.length / 3);
  // HEADERS: pad length 5, the priority fields (stream 0, weight 16), the first third, 5 octets of padding.
  const first = Buffer.concat([Buffer.from([5]), u32(0), Buffer.from([15]), b.subarray(0, third), Buffer.alloc(5)]);
  c.write(
    frame(T.HEADERS, END_STREAM | PADDED | PRIORITY_FLAG, 1, first),
    frame(T.CONTINUATION, 0, 1, b.subarray(third, 2 * third)),
    frame(T.CONTINUATION, END_HEADERS, 1, b.subarray(2 * third)),
  );
  const r = await c.response(1);
  t.equal(r.status, 200);
  t.equal(rcodeOf(r.body), 0);
});

t.test('a POST body with padding: the windows are given back with WINDOW_UPDATE as it is taken', async (t) => {
  const d = await daemon(t);
  const c = await raw(t, d.doh);
  // 130 DATA frames of 255 octets of padding and no data: 33,280 octets of window, more than half of 65,535.
  const padding = frame(T.DATA, PADDED, 1, Buffer.concat([Buffer.from([255]), Buffer.alloc(255)]));
  c.write(
    c.headers(1, postFields(), 0),
    ...Array.from({ length: 130 }, () => padding),
    frame(T.DATA, END_STREAM | PADDED, 1, Buffer.concat([Buffer.from([3]), q, Buffer.alloc(3)])),
  );
  const r = await c.response(1);
  t.equal(r.status, 200, 'the body, less its padding, is the query');
  t.equal(rcodeOf(r.body), 0);
  const updates = c.frames.filter((f) => f.type === T.WINDOW_UPDATE);
  t.ok(
    updates.some((f) => f.id === 0),
    'the connection window',
  );
  t.ok(
    updates.some((f) => f.id === 1),
    'the stream window',
  );
});

t.test('a pipelined burst the query path answers at once leaves in one TLS record, not one per answer', async (t) => {
  const d = await daemon(t);
  const c = await raw(t, d.doh);
  // Cached first, so that every answer of the burst is given while its frames are read.
  c.write(c.headers(1, getFields(q)));
  t.equal((await c.response(1)).status, 200);
  const blocked = query('www.blocked.test', TYPE.A, { id: 0 });
  const ids = Array.from({ length: 20 }, (_, i) => 3 + 2 * i);
  let records = 0;
  c.socket.on('data', () => records++);
  // One write: one TLS record, so the server reads the twenty requests at once.
  c.write(...ids.map((id, i) => c.headers(id, getFields(i % 2 === 0 ? q : blocked))));
  const answers = await Promise.all(ids.map((id) => c.response(id)));
  t.same(
    answers.map((a) => a.status),
    ids.map(() => 200),
    'twenty answers',
  );
  t.equal(records, 1, 'all of them in one TLS record (one read on the client)');
});
