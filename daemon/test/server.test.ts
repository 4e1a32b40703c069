/**
 * The query path end to end: a real upstream server, the daemon on 127.0.0.1 port 0, queries over real sockets.
 */
import t, { type Test } from 'tap';

import {
  TYPE,
  decode,
  flags,
  idOf,
  maskTtls,
  optOf,
  query,
  rcodeOf,
  tcpAsk,
  ttlsOf,
  udpAsk,
  type QueryOptions,
} from './helpers/client.ts';
import { ManualClock } from '../dist/util/clock.js';
import { startTestDaemon, until, type TestDaemon, type TestDaemonOptions } from './helpers/daemon.ts';
import { HANG_MS } from '../../test/helpers/within.ts';
import { demoMatcher, matcherFor } from './helpers/lists.ts';

const EDE = 15;

async function ask(d: TestDaemon, name: string, type: number, o: QueryOptions = {}): Promise<Buffer> {
  const a = await udpAsk(d.port, query(name, type, o));
  if (a === null) throw new Error(`no answer for ${name}`);
  return a;
}

async function daemon(t: Test, o: TestDaemonOptions = {}): Promise<TestDaemon> {
  const d = await startTestDaemon(o);
  t.teardown(() => d.close());
  return d;
}

/** EDE options of an answer as [code, text]. */
function edes(buf: Buffer): [number, string][] {
  return (optOf(buf)?.options ?? [])
    .filter((o) => o.code === EDE)
    .map((o) => [o.data.readUInt16BE(0), o.data.subarray(2).toString()]);
}

t.test('answers pass through unchanged but for the ID and TTLs', async (t) => {
  const d = await daemon(t);
  const up = d.upstreams[0]!;
  const cases: [string, number][] = [
    ['a.example.test', TYPE.A],
    ['a.example.test', TYPE.AAAA],
    ['mx.example.test', TYPE.MX],
    ['txt.example.test', TYPE.TXT],
    ['alias.example.test', TYPE.A], // CNAME -> CNAME -> A
    ['alias.example.test', TYPE.CNAME],
    ['nothere.example.test', TYPE.A], // NXDOMAIN + SOA
    ['a.example.test', TYPE.MX], // NODATA + SOA
  ];
  let id = 0x4000;
  for (const [name, type] of cases) {
    const msg = query(name, type, { id: id++ });
    const direct = await udpAsk(up.port, msg);
    const first = await udpAsk(d.port, msg);
    const second = await udpAsk(d.port, msg);
    t.ok(direct && first && second, `${name} ${type}: answered`);
    t.equal(idOf(first!), idOf(msg), 'the client ID');
    t.same(maskTtls(first!), maskTtls(direct!), `${name} ${type}: the upstream's answer`);
    t.same(maskTtls(second!), maskTtls(direct!), `${name} ${type}: the same from the cache`);
  }
  t.equal((d.events.cacheHits, d.events.cacheHits >= cases.length), true, 'second answers came from the cache');
});

t.test('EDNS clients get the daemon OPT: its size, DO echoed, upstream EDE kept, cookies and NSID not', async (t) => {
  const d = await daemon(t);
  const up = d.upstreams[0]!;
  const ecs = { code: 8, data: Buffer.from([0, 1, 24, 0, 198, 51, 100]) };
  const cookie = { code: 10, data: Buffer.alloc(8, 0xaa) };
  const a = await ask(d, 'a.example.test', TYPE.A, {
    edns: { size: 4096, options: [ecs, cookie, { code: 65001, data: Buffer.from('x') }] },
  });
  t.equal(rcodeOf(a), 0);
  const opt = optOf(a)!;
  t.equal(opt.size, 1232, 'udp.maxResponseBytes');
  t.equal(opt.version, 0);
  t.same(
    opt.options.map((o) => o.code),
    [EDE],
    'only the upstream EDE survives',
  );
  t.same(edes(a), [[0, 'upstream says hi']]);
  const sent = up.queries.find((q) => q.name === 'a.example.test' && q.type === TYPE.A)!;
  t.equal(sent.opt?.size, 1232, 'upstream queries advertise 1232');
  t.same(sent.opt?.options, [], 'no ECS, no cookie, no unknown option upstream');
  t.ok(sent.rd && sent.ad, 'RD and AD asked for upstream');
  const plain = await ask(d, 'a.example.test', TYPE.A);
  t.equal(optOf(plain), null, 'no OPT for a client that sent none');
  t.equal(plain.readUInt16BE(10), 0);
});

t.test(
  'an upstream answer is scrubbed before it is cached: records off the chain or out of bailiwick go',
  async (t) => {
    const d = await daemon(t);
    d.upstreams[0]!.extra.set('a.example.test', {
      answer: [{ name: 'victim.test', type: TYPE.A, ttl: 86400, address: '198.51.100.66' }],
      authority: [
        { name: 'example.test', type: TYPE.NS, ttl: 300, ns: 'ns.example.test' },
        { name: 'victim.test', type: TYPE.NS, ttl: 86400, ns: 'ns.victim.test' },
      ],
      additional: [
        { name: 'ns.example.test', type: TYPE.A, ttl: 300, address: '192.0.2.53' },
        { name: 'ns.victim.test', type: TYPE.A, ttl: 86400, address: '198.51.100.53' },
      ],
    });
    for (const source of ['upstream', 'cache']) {
      const p = decode(await ask(d, 'a.example.test', TYPE.A));
      t.same(
        p.answers.map((r) => [r.name, r.address]),
        [['a.example.test', '192.0.2.1']],
        `${source}: the foreign answer record is gone`,
      );
      t.same(
        p.authorities.map((r) => r.name),
        ['example.test'],
        `${source}: the foreign NS is gone`,
      );
      t.same(
        p.additionals.map((r) => r.name),
        ['ns.example.test'],
        `${source}: and its glue`,
      );
    }
    t.equal(d.upstreams[0]!.queries.length, 1, 'the second answer came from the cache');
    t.equal(ttlsOf(await ask(d, 'a.example.test', TYPE.A))[0], 300, 'cached for the TTL of what stayed');
  },
);

t.test('DNSSEC is transparent: DO and CD go upstream, AD and RRSIGs come back', async (t) => {
  const d = await daemon(t);
  const up = d.upstreams[0]!;
  const a = await ask(d, 'txt.example.test', TYPE.TXT, { edns: { do: true }, cd: true });
  const sent = up.queries.find((q) => q.name === 'txt.example.test')!;
  t.ok(sent.opt?.do, 'DO upstream');
  t.ok(sent.cd, 'CD upstream');
  t.ok(flags(a).ad, 'AD kept');
  t.ok(flags(a).cd, 'CD echoed');
  t.ok(optOf(a)?.do, 'DO echoed');
  t.ok(
    decode(a).answers.some((r) => r.type === TYPE.RRSIG),
    'the RRSIG is passed on',
  );
  const noDo = await ask(d, 'a.example.test', TYPE.A);
  t.notOk(flags(noDo).ad, 'RFC 6840 5.7: no AD for a client that asked neither AD nor DO');
  const withAd = await ask(d, 'a.example.test', TYPE.A, { ad: true });
  t.ok(flags(withAd).ad, 'AD for a client that set AD');
  t.notOk(
    decode(withAd).answers.some((r) => r.type === TYPE.RRSIG),
    'DO=0 and DO=1 answers are cached apart',
  );
});

t.test('cached TTLs count down and the question comes back in the client case', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, { clock });
  const first = await ask(d, 'A.Example.Test', TYPE.A);
  t.same(ttlsOf(first), [300]);
  clock.advance(999);
  t.same(ttlsOf(await ask(d, 'a.example.test', TYPE.A)), [300], 'not within the first second');
  clock.advance(1);
  const msg = query('a.EXAMPLE.tEsT', TYPE.A, { id: 77 });
  const second = (await udpAsk(d.port, msg))!;
  const ttl = ttlsOf(second)[0]!;
  t.equal(ttl, 299, 'counted down a second later');
  t.same(second.subarray(12, msg.length), msg.subarray(12), 'the question as the client sent it');
  t.equal(d.upstreams[0]!.queries.length, 1, 'one upstream query');
});

t.test('TTL bounds: maxTtlSeconds cuts, minTtlSeconds raises, 0 is not cached', async (t) => {
  const d = await daemon(t, { config: { cache: { maxTtlSeconds: 3600, minTtlSeconds: 5 } } });
  t.same(ttlsOf(await ask(d, 'long.example.test', TYPE.A)), [3600]);
  t.same(ttlsOf(await ask(d, 'short.example.test', TYPE.A)), [5]);
  const d0 = await daemon(t);
  await ask(d0, 'zero.example.test', TYPE.A);
  await ask(d0, 'zero.example.test', TYPE.A);
  t.equal(d0.upstreams[0]!.queries.filter((q) => q.name === 'zero.example.test').length, 2, 'TTL 0 is not cached');
});

t.test('negative answers are cached for min(SOA TTL, SOA MINIMUM) (RFC 2308)', async (t) => {
  const d = await daemon(t);
  const nx = await ask(d, 'nothere.example.test', TYPE.A);
  t.equal(rcodeOf(nx), 3);
  t.same(ttlsOf(nx), [30], 'the SOA TTL is the negative TTL');
  await ask(d, 'nothere.example.test', TYPE.A);
  t.equal(d.upstreams[0]!.queries.filter((q) => q.name === 'nothere.example.test').length, 1);
  const capped = await daemon(t, { config: { cache: { maxNegativeTtlSeconds: 10 } } });
  t.same(ttlsOf(await ask(capped, 'a.example.test', TYPE.MX)), [10], 'maxNegativeTtlSeconds');
});

t.test('too large for UDP: TC, and the full answer over TCP', async (t) => {
  const d = await daemon(t);
  const udp = await ask(d, 'big.example.test', TYPE.TXT);
  t.ok(flags(udp).tc, 'TC without EDNS');
  t.equal(udp.readUInt16BE(6), 0);
  t.ok(udp.length <= 512);
  const udpEdns = await ask(d, 'big.example.test', TYPE.TXT, { edns: { size: 65000 } });
  t.ok(flags(udpEdns).tc, 'TC above udp.maxResponseBytes whatever the client advertises');
  t.ok(optOf(udpEdns), 'the truncated answer keeps an OPT for an EDNS client');
  const [tcp] = await tcpAsk(d.port, [query('big.example.test', TYPE.TXT)]);
  t.notOk(flags(tcp!).tc);
  t.equal(decode(tcp!).answers.length, 40, 'every record over TCP');
  const small = await ask(d, 'big.example.test', TYPE.TXT, { edns: { size: 512 } });
  t.ok(flags(small).tc && small.length <= 512);
});

t.test('a truncated upstream answer is asked again over TCP', async (t) => {
  const d = await daemon(t);
  const up = d.upstreams[0]!;
  up.behaviour = 'tc';
  const a = await ask(d, 'a.example.test', TYPE.A);
  t.equal(decode(a).answers[0]?.address, '192.0.2.1');
  t.notOk(flags(a).tc);
  t.same(
    up.queries.map((q) => q.transport),
    ['udp', 'tcp'],
  );
  t.equal(d.events.upstreams.get(up.address)?.tcpAnswers, 1);
});

async function blocking(t: Test, blockingConfig: Record<string, unknown>): Promise<TestDaemon> {
  return daemon(t, { config: { blocking: blockingConfig } });
}

t.test('blocked names in each mode, with EDE 16 naming the list', async (t) => {
  const nx = await blocking(t, {});
  let a = await ask(nx, 'www.blocked.test', TYPE.A, { edns: {} });
  t.equal(rcodeOf(a), 3, 'nxdomain');
  const p = decode(a);
  t.equal(p.authorities[0]?.type, TYPE.SOA);
  t.equal(p.authorities[0]?.ttl, 300, 'blocking.ttlSeconds');
  t.equal(p.authorities[0]?.minimum, 300);
  t.same(edes(a), [[16, 'list demo']], 'RFC 8914 Censored, the list named');
  t.notOk(flags(a).aa);
  a = await ask(nx, 'www.blocked.test', TYPE.A);
  t.equal(optOf(a), null, 'no OPT, so no EDE, without EDNS');
  t.equal(rcodeOf(a), 3);

  const refused = await blocking(t, { mode: 'refused', edeCode: 15 });
  a = await ask(refused, 'blocked.test', TYPE.A, { edns: {} });
  t.equal(rcodeOf(a), 5, 'refused');
  t.same(edes(a), [[15, 'list demo']], 'EDE 15 Blocked when configured');

  const nodata = await blocking(t, { mode: 'nodata', edeCode: 17, ttlSeconds: 60 });
  a = await ask(nodata, 'blocked.test', TYPE.AAAA, { edns: {} });
  t.equal(rcodeOf(a), 0, 'nodata');
  t.equal(decode(a).answers.length, 0);
  t.equal(decode(a).authorities[0]?.ttl, 60);
  t.same(edes(a), [[17, 'list demo']]);

  const stop = await blocking(t, {
    mode: 'stop-page',
    edeCode: 0,
    stopPageIpv4: ['198.51.100.10', '198.51.100.11'],
    stopPageIpv6: ['2001:db8:5::10'],
  });
  a = await ask(stop, 'www.blocked.test', TYPE.A, { edns: {} });
  t.same(
    decode(a).answers.map((r) => r.address),
    ['198.51.100.10', '198.51.100.11'],
    'stop-page A',
  );
  t.same(edes(a), [], 'edeCode 0: no EDE');
  a = await ask(stop, 'www.blocked.test', TYPE.AAAA);
  t.same(
    decode(a).answers.map((r) => r.address),
    ['2001:db8:5::10'],
    'stop-page AAAA',
  );
  a = await ask(stop, 'www.blocked.test', TYPE.MX);
  t.equal(rcodeOf(a), 0);
  t.equal(decode(a).answers.length, 0, 'other types: NODATA');

  for (const d of [nx, refused, nodata, stop]) {
    t.notOk(
      d.upstreams[0]!.queries.some((q) => q.name.endsWith('blocked.test')),
      'a blocked name never reaches the upstream',
    );
  }
  t.equal(nx.events.blocks.get('demo')?.nxdomain, 2);
  t.equal(stop.events.bySource.blocked, 3);
});

t.test('subdomains of D entries are blocked, H entries only exactly', async (t) => {
  const d = await daemon(t);
  t.equal(rcodeOf(await ask(d, 'blocked.test', TYPE.A)), 3);
  t.equal(rcodeOf(await ask(d, 'deep.er.blocked.test', TYPE.A)), 3);
  t.equal(rcodeOf(await ask(d, 'host.listed.test', TYPE.A)), 3);
  const sub = await ask(d, 'sub.host.listed.test', TYPE.A);
  t.equal(decode(sub).answers[0]?.address, '192.0.2.70', 'below an H entry passes');
  t.equal(rcodeOf(await ask(d, 'BLOCKED.test', TYPE.A)), 3, 'whatever the case');
});

t.test('a CNAME or DNAME chain that reaches a listed name is blocked', async (t) => {
  const d = await daemon(t, { config: { blocking: { edeCode: 16 } } });
  let a = await ask(d, 'to-blocked.example.test', TYPE.A, { edns: {} });
  t.equal(rcodeOf(a), 3, 'CNAME to a D-listed name');
  t.same(edes(a), [[16, 'list demo']]);
  t.equal(rcodeOf(await ask(d, 'to-host.example.test', TYPE.A)), 3, 'CNAME to an H-listed name');
  t.equal(rcodeOf(await ask(d, 'x.dname.example.test', TYPE.A)), 3, 'DNAME into a D-listed name');
  a = await ask(d, 'to-blocked.example.test', TYPE.A);
  t.equal(rcodeOf(a), 3, 'again, from the cache');
  t.equal(d.upstreams[0]!.queries.filter((q) => q.name === 'to-blocked.example.test').length, 1);
  t.equal(decode(await ask(d, 'alias.example.test', TYPE.A)).answers.length, 3, 'a clean chain passes');
  t.equal(d.events.aliasBlocks, 4);

  const off = await daemon(t, { config: { blocking: { cnameInspection: false } } });
  a = await ask(off, 'to-blocked.example.test', TYPE.A);
  t.equal(decode(a).answers.at(-1)?.address, '192.0.2.66', 'cnameInspection: false');
});

t.test('the allowlist wins over the lists, for the name and below it', async (t) => {
  const d = await daemon(t, { config: { blocking: { allowlist: ['Allowed.TEST.', 'cdn.blocked.test'] } } });
  t.equal(decode(await ask(d, 'ok.allowed.test', TYPE.A)).answers[0]?.address, '192.0.2.72');
  t.equal(rcodeOf(await ask(d, 'www.blocked.test', TYPE.A)), 3, 'siblings stay blocked');
  t.equal(
    decode(await ask(d, 'to-blocked.example.test', TYPE.A)).answers.at(-1)?.address,
    '192.0.2.66',
    'an allowlisted CNAME target passes',
  );
  t.ok(
    d.logs.some(
      (l) =>
        l.msg?.toString().includes('allowlist') &&
        JSON.stringify(l.allowlist) === '["allowed.test","cdn.blocked.test"]',
    ),
    'the allowlist is logged at start',
  );
});

t.test('P entries pass by default and steer A/AAAA/HTTPS to the proxy when partial is steer', async (t) => {
  const pass = await daemon(t);
  t.equal(decode(await ask(pass, 'partial.test', TYPE.A)).answers[0]?.address, '192.0.2.71');
  const steer = await daemon(t, { config: { blocking: { partial: 'steer', proxyIpv4: ['198.51.100.7'] } } });
  let a = await ask(steer, 'partial.test', TYPE.A, { edns: {} });
  t.same(
    decode(a).answers.map((r) => r.address),
    ['198.51.100.7'],
  );
  t.same(edes(a), [], 'a steer is not a block');
  a = await ask(steer, 'partial.test', TYPE.AAAA);
  t.equal(decode(a).answers.length, 0, 'AAAA without an IPv6 proxy: NODATA, not the real address');
  a = await ask(steer, 'partial.test', TYPE.HTTPS);
  t.equal(decode(a).answers.length, 0, 'HTTPS: NODATA (its address hints would bypass the proxy)');
  a = await ask(steer, 'partial.test', TYPE.MX);
  t.equal(decode(a).answers[0]?.exchange, 'mail.partial.test', 'other types pass');
  t.equal(steer.events.blocks.get('demo')?.steer, 3);
});

t.test(
  'ANY is forwarded and answered as the upstream answers it (RFC 8482 4.1); a blocked name stays blocked',
  async (t) => {
    const d = await daemon(t);
    const types = (answer: Buffer): number[] =>
      decode(answer)
        .answers.map((r) => r.type)
        .sort();
    let a = await ask(d, 'a.example.test', TYPE.ANY);
    t.same(types(a), [TYPE.A, TYPE.AAAA], "the upstream's records, no HINFO");
    t.equal(rcodeOf(await ask(d, 'nope.example.test', TYPE.ANY)), 3, 'a name that does not exist: NXDOMAIN');
    a = await ask(d, 'alias.example.test', TYPE.ANY);
    t.equal(decode(a).answers[0]?.type, TYPE.CNAME, 'a CNAME is not hidden');
    const asked = d.upstreams[0]!.queries.length;
    t.equal(asked, 3, 'each went upstream');
    a = await ask(d, 'a.example.test', TYPE.ANY);
    t.same(types(a), [TYPE.A, TYPE.AAAA], 'and is cached like any answer');
    t.equal(d.upstreams[0]!.queries.length, asked);
    t.equal(rcodeOf(await ask(d, 'blocked.test', TYPE.ANY)), 3, 'a blocked name is blocked for ANY too');
    t.equal(d.upstreams[0]!.queries.length, asked);
    t.equal(d.daemon.probe('www.blocked.test').decision?.listId, 'demo', 'the in-process probe still sees the block');
    t.equal(d.daemon.probe('a.example.test').rcode, 0, 'and a name that passes');
    t.equal(d.upstreams[0]!.queries.length, asked, 'the probe never goes upstream');
  },
);

t.test('BADVERS, NOTIMP and REFUSED for what the daemon does not serve', async (t) => {
  const d = await daemon(t);
  let a = await ask(d, 'a.example.test', TYPE.A, { edns: { version: 1 }, id: 99 });
  t.equal(idOf(a), 99);
  t.equal(rcodeOf(a), 0, 'the low bits are 0');
  t.equal(optOf(a)?.extRcode, 1, 'RFC 6891 6.1.3: BADVERS is 16 = 1 << 4');
  t.equal(optOf(a)?.version, 0, 'the version we support');
  a = await ask(d, 'a.example.test', TYPE.A, { opcode: 2 });
  t.equal(rcodeOf(a), 4, 'NOTIMP for STATUS');
  t.equal((a[2]! >> 3) & 15, 2, 'the opcode echoed');
  a = await ask(d, 'version.bind', TYPE.TXT, { qclass: 3, edns: {} });
  t.equal(rcodeOf(a), 5, 'REFUSED for CHAOS');
  t.same(edes(a), [[21, '']], 'EDE 21 Not Supported');
  t.equal(rcodeOf(await ask(d, 'example.test', 252)), 5, 'REFUSED for AXFR');
  t.equal(d.upstreams[0]!.queries.length, 0);
});

t.test('every answer the daemon makes carries an OPT when the query had a sound one (RFC 6891 7)', async (t) => {
  const d = await daemon(t);
  // NOTIMP for another opcode: the opcode and the question echoed, our OPT with the client's DO.
  let a = await ask(d, 'a.example.test', TYPE.A, { opcode: 4, edns: { do: true }, id: 41 });
  t.equal(rcodeOf(a), 4, 'NOTIFY gets NOTIMP');
  t.equal((a[2]! >> 3) & 15, 4, 'the opcode echoed');
  t.equal(a.readUInt16BE(4), 1, 'the question echoed');
  t.equal(optOf(a)?.do, true, 'with an OPT, DO echoed');
  t.equal(optOf(a)?.size, 1232);
  a = await ask(d, 'a.example.test', TYPE.A, { opcode: 4 });
  t.equal(optOf(a), null, 'and none without EDNS');
  // FORMERR with a sound OPT: a bad query type.
  a = await ask(d, 'a.example.test', 0, { edns: {} });
  t.equal(rcodeOf(a), 1);
  t.ok(optOf(a), 'FORMERR for QTYPE 0 carries an OPT');
  // FORMERR without a question: QDCOUNT 0 and an OPT.
  const noQuestion = query('a.example.test', TYPE.A, { edns: {} });
  const qEnd = 12 + 'a.example.test'.length + 2 + 4;
  const bare = Buffer.concat([noQuestion.subarray(0, 12), noQuestion.subarray(qEnd)]);
  bare.writeUInt16BE(0, 4);
  a = (await udpAsk(d.port, bare))!;
  t.equal(rcodeOf(a), 1, 'QDCOUNT 0: FORMERR');
  t.equal(a.readUInt16BE(4), 0, 'no question echoed');
  t.ok(optOf(a), 'with an OPT');
  // Two OPT records: the OPT is the broken part, so none comes back.
  const one = query('a.example.test', TYPE.A, { edns: {} });
  const two = Buffer.concat([one, one.subarray(qEnd)]);
  two.writeUInt16BE(2, 10);
  a = (await udpAsk(d.port, two))!;
  t.equal(rcodeOf(a), 1, 'two OPTs: FORMERR');
  t.equal(optOf(a), null, 'without an OPT');
  // SERVFAIL the daemon makes, and REFUSED to a client outside access.allow.
  d.upstreams[0]!.behaviour = 'silent';
  a = await ask(d, 'mx.example.test', TYPE.MX, { edns: {} });
  t.equal(rcodeOf(a), 2);
  t.ok(optOf(a), 'SERVFAIL carries an OPT');
  const closed = await daemon(t, { config: { access: { allow: ['10.0.0.0/8'] } } });
  a = (await udpAsk(closed.port, query('a.example.test', TYPE.A, { opcode: 2, edns: {} })))!;
  t.equal(rcodeOf(a), 5, 'REFUSED outside access.allow, whatever the opcode');
  t.ok(optOf(a), 'with an OPT');
});

t.test('clients outside access.allow get REFUSED (EDE 18)', async (t) => {
  const d = await daemon(t, { config: { access: { allow: ['10.0.0.0/8', 'fc00::/7'] } } });
  const a = await ask(d, 'a.example.test', TYPE.A, { edns: {} });
  t.equal(rcodeOf(a), 5);
  t.same(edes(a), [[18, '']]);
  t.same(await tcpAsk(d.port, [query('a.example.test', TYPE.A)]), [], 'a TCP connection is closed when accepted');
  t.equal(d.events.aclRefusedQueries.udp, 1);
  t.equal(d.events.connectionsRefused.acl, 1, 'and counted');
  t.equal(d.events.queries.tcp, 0, 'before it could send a query');
  t.equal(d.upstreams[0]!.queries.length, 0);
});

/** Sends `msgs` from a UDP socket bound to `from` and collects answers until `expect` arrived, then `graceMs` more. */
async function floodFrom(
  port: number,
  from: string,
  msgs: Buffer[],
  done: () => boolean,
  graceMs = 200,
): Promise<Buffer[]> {
  const { createSocket } = await import('node:dgram');
  const s = createSocket('udp4');
  const got: Buffer[] = [];
  s.on('message', (m) => got.push(m));
  await new Promise<void>((resolve) => s.bind({ address: from, port: 0 }, resolve));
  for (const m of msgs) s.send(m, port, '127.0.0.1');
  await until(done, 'every query handled by the daemon');
  await new Promise((r) => setTimeout(r, graceMs));
  s.close();
  return got;
}

t.test('REFUSED to sources outside access.allow is rate limited per prefix, or dropped (no reflector)', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, { clock, config: { access: { allow: ['127.0.0.1/32'] } } });
  const msgs = Array.from({ length: 60 }, (_, i) => query('a.example.test', TYPE.A, { id: i }));
  let got = await floodFrom(d.port, '127.0.0.9', msgs, () => d.events.aclRefusedQueries.udp === 60);
  t.equal(got.length, 20, 'the burst (refusedRateLimitBurst 20) is answered');
  t.ok(got.every((a) => rcodeOf(a) === 5));
  t.equal(d.events.aclRefusedQueries.dropped, 40, 'the rest dropped and counted');
  clock.advance(1000);
  got = await floodFrom(d.port, '127.0.0.9', msgs, () => d.events.aclRefusedQueries.udp === 120);
  t.equal(got.length, 10, 'then refusedRateLimitQps (10) a second');
  t.equal(d.upstreams[0]!.queries.length, 0);
  const drop = await daemon(t, { config: { access: { allow: ['127.0.0.1/32'], outside: 'drop' } } });
  got = await floodFrom(drop.port, '127.0.0.9', msgs, () => drop.events.aclRefusedQueries.udp === 60);
  t.equal(got.length, 0, 'outside: drop answers none');
  t.equal(drop.events.aclRefusedQueries.dropped, 60);
});

t.test(
  'a client prefix over its UDP rate: dropped, every rateLimitSlip-th answered TC; TCP still served',
  async (t) => {
    const clock = new ManualClock();
    const d = await daemon(t, { clock, config: { access: { rateLimitQps: 1, rateLimitBurst: 3, rateLimitSlip: 2 } } });
    const answers = [];
    for (let i = 0; i < 7; i++)
      answers.push(await udpAsk(d.port, query('a.example.test', TYPE.A, { id: i, edns: {} }), i < 3 ? 2000 : 300));
    t.equal(answers.slice(0, 3).filter((a) => a !== null && !flags(a).tc).length, 3, 'the burst is served');
    const over = answers.slice(3);
    t.same(
      over.map((a) => (a === null ? 'dropped' : flags(a).tc ? 'tc' : 'answer')),
      ['dropped', 'tc', 'dropped', 'tc'],
      'over the rate: every second one slips',
    );
    const slip = over[1]!;
    t.equal(idOf(slip), 4, 'the slip carries the query ID');
    t.equal(slip.readUInt16BE(6) + slip.readUInt16BE(8), 0, 'and no records');
    t.ok(slip.length <= query('a.example.test', TYPE.A, { edns: {} }).length, 'no larger than the query');
    t.equal(d.events.rateLimitedQueries.udp, 4);
    t.equal(d.events.rateLimitedQueries.slipped, 2);
    const [tcp] = await tcpAsk(d.port, [query('a.example.test', TYPE.A)]);
    t.equal(decode(tcp!).answers[0]?.address, '192.0.2.1', 'TCP from the same prefix is answered');
    t.equal(d.events.rateLimitedQueries.tcp, 0);
    clock.advance(999);
    t.equal(await udpAsk(d.port, query('a.example.test', TYPE.A), 300), null, 'not within the second');
    clock.advance(1);
    t.ok(await udpAsk(d.port, query('a.example.test', TYPE.A)), 'served again after a second');
  },
);

t.test('REFUSED (EDE 14 Not Ready) while a list set to refuse has none', async (t) => {
  const d = await daemon(t, { refuseAll: true });
  const a = await ask(d, 'a.example.test', TYPE.A, { edns: {} });
  t.equal(rcodeOf(a), 5);
  t.same(edes(a), [[14, '']]);
  d.lists.set([demoMatcher()], false);
  t.equal(
    decode(await ask(d, 'a.example.test', TYPE.A)).answers[0]?.address,
    '192.0.2.1',
    'served once a list arrives',
  );
});

t.test('a list swap blocks names already cached and re-checks cached CNAME targets', async (t) => {
  const d = await daemon(t);
  const up = d.upstreams[0]!;
  t.equal(rcodeOf(await ask(d, 'a.example.test', TYPE.A)), 0);
  t.equal(decode(await ask(d, 'alias.example.test', TYPE.A)).answers.length, 3);
  const before = up.queries.length;
  d.lists.set([
    demoMatcher(),
    matcherFor('late', [
      ['a.example.test', 'H'],
      ['target.example.test', 'H'],
    ]),
  ]);
  let a = await ask(d, 'a.example.test', TYPE.A, { edns: {} });
  t.equal(rcodeOf(a), 3, 'a cached name listed later is blocked');
  t.same(edes(a), [[16, 'list late']]);
  a = await ask(d, 'alias.example.test', TYPE.A);
  t.equal(rcodeOf(a), 3, 'a cached chain whose target was listed later is blocked');
  d.lists.set([demoMatcher()]);
  t.equal(decode(await ask(d, 'alias.example.test', TYPE.A)).answers.length, 3, 'and passes again once unlisted');
  t.equal(rcodeOf(await ask(d, 'a.example.test', TYPE.A)), 0);
  t.equal(up.queries.length, before, 'all from the cache: no entry was dropped');
});

t.test('identical questions in flight are coalesced into one upstream query', async (t) => {
  const d = await daemon(t, { config: { upstream: { timeoutMs: 1000 } } });
  const up = d.upstreams[0]!;
  up.behaviour = 'slow';
  up.delayMs = 200;
  const ids = [1, 2, 3, 4, 5];
  const answers = await Promise.all(ids.map((id) => udpAsk(d.port, query('a.example.test', TYPE.A, { id }))));
  t.same(
    answers.map((a) => idOf(a!)),
    ids,
    'each client gets its own ID',
  );
  t.equal(up.queries.length, 1, 'one upstream query');
  t.equal(d.daemon.inFlight(), 0, 'nothing left in flight');
});

t.test('beyond upstream.maxInFlight, SERVFAIL at once', async (t) => {
  const clock = new ManualClock();
  const d = await daemon(t, { clock, config: { upstream: { maxInFlight: 1, timeoutMs: 1000 } } });
  const up = d.upstreams[0]!;
  up.behaviour = 'silent';
  const slow = udpAsk(d.port, query('a.example.test', TYPE.A), 5000);
  await until(() => up.queries.length === 1, 'the first query upstream');
  const second = await ask(d, 'mx.example.test', TYPE.MX);
  t.equal(rcodeOf(second), 2);
  t.equal(d.daemon.inFlight(), 1, 'without waiting: the first query still waits on its upstream');
  t.equal(up.queries.length, 1, 'and the second never went upstream');
  up.behaviour = 'normal';
  clock.advance(1000);
  t.equal(rcodeOf((await slow)!), 0, 'the first is answered by its second try');
});

t.test('the cache is bounded by entries and by bytes', async (t) => {
  const d = await daemon(t, { config: { cache: { maxEntries: 3 } } });
  for (const n of ['a', 'mx', 'txt', 'alias', 'long', 'short']) await ask(d, `${n}.example.test`, TYPE.A);
  t.equal(d.daemon.cacheSize(), 3);
  t.equal(d.daemon.cacheEvictions(), 3, 'six answers into three places: three evictions');
  const b = await daemon(t, { config: { cache: { maxBytes: 6000 } } });
  for (let i = 0; i < 5; i++) await tcpAsk(b.port, [query('big.example.test', TYPE.TXT, { id: i })]);
  for (const n of ['a', 'mx', 'txt', 'alias', 'long', 'short']) await ask(b, `${n}.example.test`, TYPE.A);
  t.ok(b.daemon.cacheBytes() <= 6000, `at most maxBytes (${b.daemon.cacheBytes()})`);
  t.ok(b.daemon.cacheSize() >= 1);
});

t.test('TCP: pipelined queries on one connection, each answered with its ID', async (t) => {
  const d = await daemon(t);
  const msgs = Array.from({ length: 20 }, (_, i) =>
    query(i % 2 ? 'a.example.test' : 'www.blocked.test', TYPE.A, { id: 500 + i }),
  );
  const answers = await tcpAsk(d.port, msgs);
  t.equal(answers.length, 20);
  t.same(
    answers.map(idOf).sort((a, b) => a - b),
    msgs.map(idOf),
  );
  t.equal(d.events.queries.tcp, 20);
});

t.test('TCP: frames split across writes, a garbage frame dropped, the next one answered', async (t) => {
  const d = await daemon(t);
  const { connect } = await import('node:net');
  const answers: Buffer[] = [];
  await new Promise<void>((resolve) => {
    const s = connect({ port: d.port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      s.destroy();
      resolve();
    }, HANG_MS);
    let buf = Buffer.alloc(0);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        answers.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (answers.length === 2) {
        clearTimeout(timer);
        s.destroy();
        resolve();
      }
    });
    const q = query('a.example.test', TYPE.A, { id: 1 });
    const garbage = Buffer.from([0, 3, 1, 2, 3]);
    const q2 = query('mx.example.test', TYPE.MX, { id: 2 });
    const all = Buffer.concat([Buffer.from([0, q.length]), q, garbage, Buffer.from([0, q2.length]), q2]);
    // One byte at a time.
    let i = 0;
    const tick = setInterval(() => {
      if (i >= all.length) {
        clearInterval(tick);
        return;
      }
      s.write(all.subarray(i, i + 1));
      i++;
    }, 1);
  });
  t.same(answers.map(idOf), [1, 2]);
  t.equal(d.events.malformedQueries.drop, 1);
});

t.test('TCP: idle connections are closed, and connections are capped', async (t) => {
  const { connect } = await import('node:net');
  /** A connection; `closedAfterMs` resolves when the daemon closes it (-1 if it is still open after 10 s). */
  const open = (port: number): Promise<{ closedAfterMs: Promise<number>; isClosed: () => boolean; end: () => void }> =>
    new Promise((resolve) => {
      const started = performance.now();
      let closed = false;
      const s = connect({ port, host: '127.0.0.1' });
      const closedAfterMs = new Promise<number>((r) => {
        const guard = setTimeout(() => {
          s.destroy();
          r(-1);
        }, 10_000);
        s.on('close', () => {
          closed = true;
          clearTimeout(guard);
          r(performance.now() - started);
        });
        s.on('error', () => undefined);
      });
      s.on('connect', () => resolve({ closedAfterMs, isClosed: () => closed, end: () => s.destroy() }));
    });
  // The cap: idle connections are kept far longer than the test runs, so a close can only be the cap's.
  const capped = await daemon(t, { config: { tcp: { idleTimeoutMs: 60_000, maxConnections: 2 } } });
  const a = await open(capped.port);
  const b = await open(capped.port);
  const c = await open(capped.port);
  const third = await c.closedAfterMs;
  t.ok(third >= 0, 'the third connection is refused');
  t.equal(capped.events.connectionsRefused.limit, 1, 'and counted');
  t.notOk(a.isClosed() || b.isClosed(), 'the two within the cap stay open');
  a.end();
  b.end();
  // The idle timeout, on its own.
  const d = await daemon(t, { config: { tcp: { idleTimeoutMs: 200 } } });
  const idle = await open(d.port);
  const first = await idle.closedAfterMs;
  t.ok(first >= 150, `an idle connection is closed after idleTimeoutMs (${first.toFixed(0)} ms)`);
});

t.test('TCP: a client that pipelines and never reads stops being read', async (t) => {
  const d = await daemon(t);
  await tcpAsk(d.port, [query('big.example.test', TYPE.TXT)]); // cached: every answer below is ~4.5 KB
  const { connect } = await import('node:net');
  const s = connect({ port: d.port, host: '127.0.0.1' });
  t.teardown(() => s.destroy());
  s.pause();
  s.on('error', () => undefined);
  const q = query('big.example.test', TYPE.TXT);
  const frame = Buffer.concat([Buffer.from([0, q.length]), q]);
  await new Promise<void>((resolve) => s.on('connect', resolve));
  s.write(Buffer.concat(Array.from({ length: 3000 }, () => frame)));
  // Once answering has begun, time to answer them all, were reading not paused.
  await until(() => d.events.queries.tcp > 1, 'the first pipelined query answered');
  await new Promise((r) => setTimeout(r, 800));
  const served = d.events.queries.tcp - 1;
  t.ok(served > 0 && served < 3000, `reading paused with answers queued (${served} of 3000 answered)`);
  t.ok(process.memoryUsage().rss < 1024 * 1024 * 1024, 'memory stays bounded');
});

t.test('listens on several addresses, IPv4 and IPv6', async (t) => {
  const d = await daemon(t, { config: { listen: ['127.0.0.1:0', '[::1]:0'] } });
  const v6 = d.daemon.addresses.udp.find((a) => a.family === 6)!;
  t.ok(v6, 'bound on ::1');
  const a = await udpAsk(v6.port, query('a.example.test', TYPE.A), 2000, '::1');
  t.equal(decode(a).answers[0]?.address, '192.0.2.1');
  const [tcp] = await tcpAsk(v6.port, [query('www.blocked.test', TYPE.A)], { host: '::1' });
  t.equal(rcodeOf(tcp!), 3);
});

t.test('reload keeps serving: new settings apply, the cache survives, listeners are reconciled', async (t) => {
  const d = await daemon(t);
  await ask(d, 'a.example.test', TYPE.A);
  const { settingsFrom } = await import('../dist/config/load.js');
  const { tmpdir } = await import('node:os');
  const next = settingsFrom(
    {
      listen: ['127.0.0.1:0', '[::1]:0'],
      upstreams: d.settings.config.upstreams,
      blocking: { mode: 'refused' },
    },
    tmpdir(),
  );
  const port = d.port;
  await d.daemon.reload(next);
  t.equal(rcodeOf(await ask(d, 'blocked.test', TYPE.A)), 5, 'the new mode');
  t.equal(rcodeOf((await udpAsk(port, query('a.example.test', TYPE.A)))!), 0, 'the kept address still answers');
  t.equal(d.upstreams[0]!.queries.length, 1, 'from the cache kept across the reload');
  t.equal(d.daemon.addresses.udp.length, 2, 'a new listener opened');
});
