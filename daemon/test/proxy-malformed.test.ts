/**
 * The PROXY v2 parser (dns/proxy.ts) against hostile headers: a header is untrusted input even from a trusted
 * front end. Every case is refused with P_MALFORMED (or waits as P_INCOMPLETE while a stream is short), never
 * repaired, never a throw; random headers behind a valid signature never crash it (fast-check, bounded).
 */
import { isIP } from 'node:net';

import fc from 'fast-check';
import t from 'tap';

import {
  P_ABSENT,
  P_INCOMPLETE,
  P_LOCAL,
  P_MALFORMED,
  P_PROXY,
  ProxyHeader,
  formatIpv6,
  parseProxyHeader,
} from '../dist/dns/proxy.js';
import { addressBytes } from '../dist/util/net.js';
import { SIGNATURE, proxyHeader } from './helpers/proxy.ts';

const CAP = 512;
const parse = (b: Buffer, cap = CAP): ProxyHeader => {
  const h = new ProxyHeader();
  parseProxyHeader(b, cap, h);
  return h;
};

t.test('well-formed headers as dnsdist sends them', async (t) => {
  const v4 = parse(Buffer.concat([proxyHeader({ src: '192.0.2.7', srcPort: 5353 }), Buffer.from('DNS')]));
  t.match(v4, { status: P_PROXY, address: '192.0.2.7', port: 5353, length: 28 });
  const v6 = parse(proxyHeader({ src: '2001:db8::7', srcPort: 1 }));
  t.match(v6, { status: P_PROXY, address: '2001:db8::7', port: 1, length: 52 });
  const dgram = parse(proxyHeader({ transport: 'dgram' }));
  t.equal(dgram.status, P_PROXY, 'DGRAM as well as STREAM');
  const local = parse(proxyHeader({ cmd: 'local' }));
  t.match(local, { status: P_LOCAL, length: 16, address: '' }, 'LOCAL, no addresses (dnsdist health checks)');
  const localWithAddrs = parse(proxyHeader({ cmd: 'local', src: '10.0.0.1' }));
  t.equal(localWithAddrs.status, P_LOCAL, 'LOCAL with addresses: they are ignored');
  const tlvs = parse(
    proxyHeader({
      tlvs: [
        { type: 0x02, value: Buffer.from('dns.example') },
        { type: 0xee, value: Buffer.alloc(0) },
      ],
    }),
  );
  t.equal(tlvs.status, P_PROXY, 'TLVs (authority, custom, empty) are walked and skipped');
  t.equal(parse(proxyHeader({ crc: true })).status, P_PROXY, 'a CRC-32c that matches');
  t.equal(parse(Buffer.from('\x00\x1c\x12\x34')).status, P_ABSENT, 'a DNS frame is not a header');
  t.equal(parse(Buffer.alloc(0)).status, P_INCOMPLETE, 'nothing yet: wait');
});

t.test('hostile headers are refused, each for its reason', async (t) => {
  const good = proxyHeader();
  const edit = (f: (b: Buffer) => void, from: Buffer = good): Buffer => {
    const b = Buffer.from(from);
    f(b);
    return b;
  };
  const withLength = (b: Buffer, n: number): Buffer => edit((x) => x.writeUInt16BE(n, 14), b);
  const cases: [string, Buffer, RegExp][] = [
    ['version 1 in the binary form', edit((b) => (b[12] = 0x11)), /version/],
    ['version 3', edit((b) => (b[12] = 0x31)), /version/],
    ['command 2', edit((b) => (b[12] = 0x22)), /command/],
    ['address family 4', edit((b) => (b[13] = 0x41)), /family/],
    ['transport 3', edit((b) => (b[13] = 0x13)), /transport/],
    ['longer than the cap', withLength(Buffer.concat([good, Buffer.alloc(600)]), 12 + 600), /longer than 512/],
    ['shorter than its IPv4 addresses', withLength(good.subarray(0, 16 + 8), 8), /shorter than its addresses/],
    ['shorter than its IPv6 addresses', withLength(proxyHeader({ src: '::1' }).subarray(0, 40), 24), /shorter/],
    [
      'UNIX addresses shorter than 216',
      withLength(
        edit((b) => (b[13] = 0x31)),
        12,
      ),
      /shorter/,
    ],
    ['a TLV header cut short', withLength(Buffer.concat([good, Buffer.from([0x04, 0])]), 14), /TLV header/],
    ['a TLV longer than the header', withLength(Buffer.concat([good, Buffer.from([0x04, 0, 9, 1])]), 16), /TLV runs/],
    ['a CRC-32c that does not match', edit((b) => (b[b.length - 1]! ^= 1), proxyHeader({ crc: true })), /mismatch/],
    ['a CRC-32c TLV of 3 octets', withLength(Buffer.concat([good, Buffer.from([0x03, 0, 3, 1, 2, 3])]), 18), /bad CRC/],
    [
      'two CRC-32c TLVs',
      (() => {
        const once = proxyHeader({ crc: true });
        return withLength(Buffer.concat([once, Buffer.from([0x03, 0, 4, 0, 0, 0, 0])]), once.length - 16 + 7);
      })(),
      /bad CRC/,
    ],
    ['PROXY with AF_UNSPEC', edit((b) => (b[13] = 0x01), withLength(good.subarray(0, 16), 0)), /without an IP/],
    [
      'PROXY with AF_UNIX',
      withLength(Buffer.concat([edit((b) => (b[13] = 0x31), good.subarray(0, 16)), Buffer.alloc(216)]), 216),
      /without an IP/,
    ],
    ['PROXY with transport UNSPEC', edit((b) => (b[13] = 0x10)), /without a transport/],
  ];
  for (const [what, buf, reason] of cases) {
    const h = parse(buf);
    t.equal(h.status, P_MALFORMED, what);
    t.match(h.reason, reason, `${what}: ${h.reason}`);
  }
});

t.test('a header cut short waits on a stream; the signature is checked as far as it goes', async (t) => {
  const good = proxyHeader({ src: '2001:db8::1' });
  for (let n = 0; n < good.length; n++) {
    t.equal(parse(good.subarray(0, n)).status, P_INCOMPLETE, `${n} of ${good.length} octets`);
  }
  t.equal(parse(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b])).status, P_ABSENT, 'a signature broken early is no header');
  const cap = parse(Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]));
  t.equal(cap.status, P_MALFORMED, 'a length over the cap is refused before its octets arrive');
});

t.test('IPv6 addresses are written as RFC 5952 says, and read back by the access list', async (t) => {
  for (const a of [
    '2001:db8::1',
    '::1',
    '::',
    '2001:db8:0:1:1:1:1:1',
    '2001:db8::1:0:0:1',
    'fe80::1:2:3:4',
    '2001:0:0:1::1',
    '1:2:3:4:5:6:7:8',
    '::ffff:192.0.2.1',
  ]) {
    const text = formatIpv6(addressBytes(a), 0);
    t.equal(
      text,
      new URL(`http://[${a}]/`).hostname
        .slice(1, -1)
        .replace(/^::ffff:([0-9a-f]+):([0-9a-f]+)$/, (_m, hi: string, lo: string) => {
          const h = parseInt(hi, 16);
          const l = parseInt(lo, 16);
          return `::ffff:${h >> 8}.${h & 255}.${l >> 8}.${l & 255}`;
        }),
      `${a} -> ${text}`,
    );
    t.same(Buffer.from(addressBytes(text)), Buffer.from(addressBytes(a)), 'the same address');
  }
});

t.test('random headers behind a valid signature never throw, and a PROXY result names an IP', async (t) => {
  let proxies = 0;
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 300, size: 'max' }),
      fc.integer({ min: 16, max: 600 }),
      (tail, cap) => {
        const h = new ProxyHeader();
        const st = parseProxyHeader(Buffer.concat([SIGNATURE, tail]), cap, h);
        if (st === P_PROXY) {
          proxies++;
          if (isIP(h.address) === 0) return false;
        }
        if (st === P_PROXY || st === P_LOCAL) return h.length <= cap && h.length <= 12 + tail.length;
        return st === P_MALFORMED || st === P_INCOMPLETE;
      },
    ),
    { numRuns: 20_000 },
  );
  // Well-formed headers mutated in one octet: still no throw, and a PROXY result still names an IP.
  fc.assert(
    fc.property(fc.nat(51), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, value, v6) => {
      const b = proxyHeader(v6 ? { src: '2001:db8::9' } : {});
      b[at % b.length] = value;
      const h = new ProxyHeader();
      const st = parseProxyHeader(b, CAP, h);
      return st !== P_PROXY || isIP(h.address) !== 0;
    }),
    { numRuns: 5000 },
  );
  t.pass(`no throw (${proxies} random tails parsed as PROXY)`);
});
