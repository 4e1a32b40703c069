import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import t from 'tap';

import { Access, LIMIT_DROP, LIMIT_PASS, LIMIT_SLIP } from '../dist/dns/access.js';

const execFileAsync = promisify(execFile);

const base = {
  allow: ['10.0.0.0/8', '192.168.1.0/24', 'fc00::/7', '2001:db8:1::/48'],
  outside: 'refuse' as const,
  refusedRateLimitQps: 1,
  refusedRateLimitBurst: 2,
  rateLimitQps: 0,
  rateLimitBurst: 2,
  rateLimitSlip: 0,
  rateLimitIpv4Prefix: 24,
  rateLimitIpv6Prefix: 56,
  rateLimitMaxPrefixes: 100,
};

t.test('allowed networks: IPv4, IPv4-mapped IPv6, IPv6 prefixes', async (t) => {
  const a = new Access(base);
  t.ok(a.allowed('10.200.3.4'));
  t.ok(a.allowed('192.168.1.255'));
  t.notOk(a.allowed('192.168.2.1'));
  t.notOk(a.allowed('127.0.0.1'), 'loopback only when listed');
  t.ok(a.allowed('::ffff:10.1.2.3'), 'an IPv4 client on a dual-stack socket');
  t.notOk(a.allowed('::ffff:11.1.2.3'));
  t.ok(a.allowed('fd12:3456::1'));
  t.ok(a.allowed('2001:db8:1:ffff::1'));
  t.notOk(a.allowed('2001:db8:2::1'));
  t.notOk(a.allowed('fe80::1%eth0'), 'link-local not listed');
  t.notOk(a.allowed('not an address'));
  t.ok(new Access({ ...base, allow: ['0.0.0.0/0', '::/0'] }).allowed('203.0.113.9'), 'an explicit open resolver');
});

t.test('the rate limit is per prefix, with a burst, refilled over time', async (t) => {
  const a = new Access({ ...base, rateLimitQps: 10 });
  const ok = (address: string, at: number): boolean => a.take(address, at) === LIMIT_PASS;
  t.ok(ok('10.0.0.1', 0));
  t.ok(ok('10.0.0.2', 0), 'same /24');
  t.notOk(ok('10.0.0.3', 0), 'burst of 2 spent for the /24');
  t.ok(ok('10.0.1.1', 0), 'another /24 has its own bucket');
  t.ok(ok('10.0.0.1', 100), 'one token back after 100 ms at 10 q/s');
  t.notOk(ok('10.0.0.1', 100));
  t.ok(ok('2001:db8:1:aa00::1', 0));
  t.ok(ok('2001:db8:1:aaff::2', 0), 'same /56');
  t.notOk(ok('2001:db8:1:aa00::3', 0));
  t.ok(ok('2001:db8:1:ab00::1', 0), 'another /56');
  t.equal(new Access(base).take('10.0.0.1', 0), LIMIT_PASS, 'no limit when rateLimitQps is 0');
});

t.test('over the rate, every rateLimitSlip-th query slips (TC), the rest are dropped', async (t) => {
  const a = new Access({ ...base, rateLimitQps: 1, rateLimitSlip: 3 });
  t.equal(a.take('10.0.0.1', 0), LIMIT_PASS);
  t.equal(a.take('10.0.0.1', 0), LIMIT_PASS);
  const over = Array.from({ length: 9 }, () => a.take('10.0.0.1', 0));
  t.same(
    over,
    [1, 1, 2, 1, 1, 2, 1, 1, 2].map((k) => (k === 2 ? LIMIT_SLIP : LIMIT_DROP)),
  );
  const never = new Access({ ...base, rateLimitQps: 1, rateLimitBurst: 1, rateLimitSlip: 0 });
  never.take('10.0.0.1', 0);
  t.same(
    Array.from({ length: 4 }, () => never.take('10.0.0.1', 0)),
    [LIMIT_DROP, LIMIT_DROP, LIMIT_DROP, LIMIT_DROP],
    'slip 0: all dropped',
  );
});

t.test(
  'REFUSED to clients outside access.allow: a burst, then the rate per prefix; none with outside: drop',
  async (t) => {
    const a = new Access(base);
    t.ok(a.refuse('203.0.113.1', 0));
    t.ok(a.refuse('203.0.113.2', 0));
    t.notOk(a.refuse('203.0.113.3', 0), 'the /24 spent its burst');
    t.ok(a.refuse('198.51.100.1', 0), 'another /24');
    t.notOk(a.refuse('203.0.113.3', 999));
    t.ok(a.refuse('203.0.113.3', 1000), 'one a second');
    t.notOk(new Access({ ...base, outside: 'drop' }).refuse('203.0.113.1', 0), 'outside: drop');
  },
);

t.test('a limiter lays out its prefix table at its first token, not before', async (t) => {
  // lru-cache makes its arrays for `max` entries at once: 12 bytes a prefix in typed arrays (three Uint32Arrays).
  // Measured in a child with a collection before each reading, so no other test's buffers come and go in between.
  const script = `
    import { Access } from ${JSON.stringify(new URL('../dist/dns/access.js', import.meta.url).href)};
    const m = () => (gc(), process.memoryUsage().arrayBuffers);
    const a = new Access(${JSON.stringify({ ...base, rateLimitQps: 10, rateLimitMaxPrefixes: 1_000_000 })});
    const out = [];
    let at = m();
    const step = (f) => { const r = f(); const now = m(); out.push([r, now - at]); at = now; };
    step(() => a.refuse('203.0.113.1', 0));
    step(() => a.allowed('10.0.0.1'));
    step(() => a.take('10.0.0.1', 0));
    step(() => a.take('10.0.0.2', 0));
    step(() => a.refuse('203.0.113.2', 0));
    step(() => a.refuse('203.0.113.3', 0));
    console.log(JSON.stringify(out));`;
  const { stdout } = await execFileAsync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script]);
  const steps = JSON.parse(stdout) as [unknown, number][];
  t.same(
    steps.map(([r]) => r),
    [true, true, LIMIT_PASS, LIMIT_PASS, true, false],
    'the limits as before',
  );
  // A table is 12,000,000 bytes; the counter is the whole process's, and under Node 24 a collection can also let go
  // of tens of KB of other buffers between two readings (11,966,174 seen once), so the bounds leave a megabyte.
  const grown = steps.map(([, bytes]) => bytes);
  t.ok(grown[0]! >= 11_000_000, `the REFUSED limit's table at its first refusal (${grown[0]} bytes)`);
  t.ok(grown[1]! < 1_000_000, `none for a client inside (${grown[1]} bytes)`);
  t.ok(grown[2]! >= 11_000_000, `the rate limit's at its first query (${grown[2]} bytes)`);
  t.ok(Math.max(grown[3]!, grown[4]!, grown[5]!) < 1_000_000, `then no more (${grown.slice(3).join(', ')} bytes)`);
});
