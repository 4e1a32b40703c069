import t from 'tap';

import { Access } from '../dist/dns/access.js';

const base = {
  allow: ['10.0.0.0/8', '192.168.1.0/24', 'fc00::/7', '2001:db8:1::/48'],
  rateLimitQps: 0,
  rateLimitBurst: 2,
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
  t.ok(a.take('10.0.0.1', 0));
  t.ok(a.take('10.0.0.2', 0), 'same /24');
  t.notOk(a.take('10.0.0.3', 0), 'burst of 2 spent for the /24');
  t.ok(a.take('10.0.1.1', 0), 'another /24 has its own bucket');
  t.ok(a.take('10.0.0.1', 100), 'one token back after 100 ms at 10 q/s');
  t.notOk(a.take('10.0.0.1', 100));
  t.ok(a.take('2001:db8:1:aa00::1', 0));
  t.ok(a.take('2001:db8:1:aaff::2', 0), 'same /56');
  t.notOk(a.take('2001:db8:1:aa00::3', 0));
  t.ok(a.take('2001:db8:1:ab00::1', 0), 'another /56');
  t.ok(new Access(base).take('10.0.0.1', 0), 'no limit when rateLimitQps is 0');
});
