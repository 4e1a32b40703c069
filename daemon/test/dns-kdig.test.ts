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

  t.test('+cd +dnssec: CD goes upstream and comes back, the RRSIG is passed on', async (t) => {
    const out = await kdig(d, '+cd', '+dnssec', 'txt.example.test', 'TXT');
    t.match(out, /Flags: qr rd ra ad cd/);
    t.match(out, /RRSIG/);
    t.ok(d.upstreams[0]!.queries.some((q) => q.name === 'txt.example.test' && q.cd && q.opt?.do === true));
  });
});

t.test('dig: opcode STATUS gets NOTIMP', { skip: digMissing }, async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.close());
  const { stdout } = await run(
    'dig',
    ['@127.0.0.1', '-p', String(d.port), '+opcode=status', '+header-only', '+tries=1', '+time=2', 'a.example.test'],
    { timeout: 10000, encoding: 'utf8' },
  );
  t.match(stdout, /opcode: STATUS, status: NOTIMP/);
});
