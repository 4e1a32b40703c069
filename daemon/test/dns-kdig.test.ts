/**
 * Real clients from Debian against the daemon: kdig (knot-dnsutils) and dig (bind9-dnsutils), as installed by
 * .ci/run. Run asynchronously: the daemon is in this process, a blocking exec would stall it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import t from 'tap';

import { needTool } from '../../test/helpers/tools.ts';
import { startTestDaemon, type TestDaemon } from './helpers/daemon.ts';

const run = promisify(execFile);

const kdigMissing = needTool('kdig');
const digMissing = needTool('dig');

async function kdig(d: TestDaemon, ...args: string[]): Promise<string> {
  const { stdout } = await run('kdig', ['@127.0.0.1', '-p', String(d.port), '+timeout=2', '+retry=0', ...args], {
    timeout: 10000,
    encoding: 'utf8',
  });
  return stdout;
}

interface KdigJson {
  RCODE: number;
  TC: number;
  ANCOUNT: number;
  answerRRs?: { TYPEname: string; rdataA?: string; rdataCNAME?: string }[];
}

t.test('kdig as a real client', { skip: kdigMissing }, async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.close());

  t.test('a forwarded answer over UDP and over TCP', async (t) => {
    const udp = JSON.parse(await kdig(d, '+json', 'a.example.test', 'A')) as KdigJson;
    t.equal(udp.RCODE, 0);
    t.same(
      udp.answerRRs?.map((r) => r.rdataA),
      ['192.0.2.1'],
    );
    const tcp = JSON.parse(await kdig(d, '+json', '+tcp', 'alias.example.test', 'A')) as KdigJson;
    t.same(
      tcp.answerRRs?.map((r) => r.TYPEname),
      ['CNAME', 'CNAME', 'A'],
    );
  });

  t.test('a blocked name: NXDOMAIN with EDE 16 naming the list', async (t) => {
    const out = await kdig(d, '+edns', 'www.blocked.test', 'A');
    t.match(out, /status: NXDOMAIN/);
    t.match(out, /EDE: 16 \(Censored\): 'list demo'/);
  });

  t.test('+edns=1 gets BADVERS with our version 0', async (t) => {
    const out = await kdig(d, '+edns=1', 'a.example.test', 'A');
    t.match(out, /status: BADVERS/);
    t.match(out, /Version: 0;/);
  });

  t.test('an unknown EDNS option is ignored, not FORMERR', async (t) => {
    const out = await kdig(d, '+ednsopt=65001:abcd', '+cookie', 'a.example.test', 'A');
    t.match(out, /status: NOERROR/);
    t.notMatch(out, /COOKIE/, 'no cookie in the answer: the daemon does not do cookies');
  });

  t.test('+bufsize=512 +dnssec on a large answer: TC over UDP, all of it over TCP', async (t) => {
    const truncated = await kdig(d, '+bufsize=512', '+dnssec', '+ignore', 'big.example.test', 'TXT');
    t.match(truncated, /Flags: qr tc rd ra/);
    const full = await kdig(d, '+bufsize=512', '+dnssec', 'big.example.test', 'TXT');
    t.match(full, /ANSWER: 41;/, '40 TXT records and the RRSIG');
    t.match(full, /\(TCP\)/, 'kdig retried over TCP');
    t.match(full, /flags: do;/, 'DO echoed');
  });

  t.test(
    '+bufsize=512 +dnssec: an additional section that does not fit is left out, without TC (RFC 2181 9)',
    async (t) => {
      const up = d.upstreams[0]!;
      up.extra.set('a.example.test', {
        authority: [{ name: 'example.test', type: 2, ttl: 300, ns: 'ns1.example.test' }],
        additional: Array.from({ length: 24 }, (_, i) => ({
          name: 'ns1.example.test',
          type: 28,
          ttl: 300,
          address: `2001:db8::${i + 1}`,
        })),
      });
      const out = await kdig(d, '+bufsize=512', '+dnssec', '+ignore', '+norecurse', 'a.example.test', 'AAAA');
      t.notMatch(out, /Flags: [^;]*\btc\b/, 'no TC');
      t.match(out, /ANSWER: 2; AUTHORITY: 1; ADDITIONAL: 1/, 'the AAAA and its RRSIG, the NS, the OPT only');
      t.match(out, /a\.example\.test\.\s+\d+\s+IN\s+AAAA\s+2001:db8::1/);
      t.match(out, /RRSIG\s+AAAA/);
      const big = await kdig(d, '+bufsize=512', '+dnssec', '+ignore', 'big.example.test', 'TXT');
      t.match(big, /Flags: qr tc rd ra/, 'an answer section that does not fit still gets TC');
      up.extra.delete('a.example.test');
    },
  );

  t.test(
    'ANY is forwarded (RFC 8482 4.1): a name that does not exist is NXDOMAIN, not a synthesized HINFO',
    async (t) => {
      const out = await kdig(d, '-t', 'ANY', 'nope.example.test');
      t.match(out, /status: NXDOMAIN/);
      t.notMatch(out, /HINFO/);
      const alias = await kdig(d, '-t', 'ANY', 'alias.example.test');
      t.match(alias, /alias\.example\.test\.\s+\d+\s+IN\s+CNAME\s+mid\.example\.test\./, 'a CNAME is not hidden');
    },
  );

  t.test('+cd +dnssec: CD goes upstream and comes back, the RRSIG is passed on', async (t) => {
    const out = await kdig(d, '+cd', '+dnssec', 'txt.example.test', 'TXT');
    t.match(out, /Flags: qr rd ra ad cd/);
    t.match(out, /RRSIG/);
    t.ok(d.upstreams[0]!.queries.some((q) => q.name === 'txt.example.test' && q.cd && q.opt?.do === true));
  });
});

t.test('dig as a real client', { skip: digMissing }, async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.close());
  const dig = async (...args: string[]): Promise<string> => {
    const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(d.port), '+tries=1', '+time=2', ...args], {
      timeout: 10000,
      encoding: 'utf8',
    });
    return stdout;
  };

  t.test('opcode STATUS gets NOTIMP', async (t) => {
    t.match(await dig('+opcode=status', '+header-only', 'a.example.test'), /opcode: STATUS, status: NOTIMP/);
  });

  t.test('NOTIFY with EDNS gets NOTIMP with an OPT (RFC 6891 7)', async (t) => {
    const out = await dig('+opcode=notify', '+edns=0', 'x.test');
    t.match(out, /opcode: NOTIFY, status: NOTIMP/);
    t.match(out, /OPT PSEUDOSECTION:\n; EDNS: version: 0/, 'an OPT in the answer');
  });
});
