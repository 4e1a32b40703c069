/**
 * EDNS and protocol checks with the Debian clients (kdig from knot-dnsutils, dig from bind9-dnsutils), in the
 * spirit of ISC's EDNS compliance tests: EDNS version 1 gets BADVERS (with our version 0), unknown options are
 * ignored (no FORMERR, not echoed), unknown EDNS flags and the header's Z bit are not echoed, TCP works, the DO
 * bit goes upstream and comes back, and a truncated answer is fetched over TCP. Run asynchronously (the daemon
 * is in this process).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import t from 'tap';

import { startTestDaemon, type TestDaemon } from '../../daemon/test/helpers/daemon.ts';
import { needTool } from '../helpers/tools.ts';

const run = promisify(execFile);

async function client(tool: 'kdig' | 'dig', d: TestDaemon, ...args: string[]): Promise<string> {
  const base = tool === 'kdig' ? ['+timeout=2', '+retry=0'] : ['+time=2', '+tries=1'];
  const { stdout } = await run(tool, ['@127.0.0.1', '-p', String(d.port), ...base, ...args], {
    timeout: 15_000,
    encoding: 'utf8',
  });
  return stdout;
}

t.test('kdig', { skip: needTool('kdig') }, async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.close());
  const kdig = (...a: string[]): Promise<string> => client('kdig', d, ...a);

  t.test('EDNS version 1 gets BADVERS with version 0, over UDP and TCP', async (t) => {
    for (const tcp of [[], ['+tcp']]) {
      const out = await kdig(...tcp, '+edns=1', 'a.example.test', 'A');
      t.match(out, /status: BADVERS/);
      t.match(out, /Version: 0;/);
    }
  });

  t.test('an unknown option and several options are ignored (no FORMERR, nothing echoed)', async (t) => {
    const out = await kdig('+ednsopt=65001:abcd', '+ednsopt=65002', '+nsid', 'a.example.test', 'A');
    t.match(out, /status: NOERROR/);
    t.notMatch(out, /65001|65002/, 'unknown options not echoed');
    t.notMatch(out, /NSID/, 'NSID not answered: the daemon does not do it');
  });

  t.test('TCP works, pipelined questions too', async (t) => {
    const out = await kdig('+tcp', 'a.example.test', 'A', 'txt.example.test', 'TXT');
    t.match(out, /192\.0\.2\.1/);
    t.match(out, /hello world/);
  });

  t.test('DO goes upstream and comes back, with the RRSIG', async (t) => {
    const before = d.upstreams[0]!.queries.length;
    const out = await kdig('+dnssec', 'txt.example.test', 'TXT');
    t.match(out, /flags: do;/);
    t.match(out, /RRSIG/);
    const sent = d.upstreams[0]!.queries.slice(before);
    t.ok(
      sent.some((q) => q.name === 'txt.example.test' && q.opt?.do === true),
      'the upstream query carried DO',
    );
  });

  t.test('a truncated UDP answer is fetched whole over TCP', async (t) => {
    const out = await kdig('+bufsize=512', 'big.example.test', 'TXT');
    t.match(out, /\(TCP\)/);
    t.match(out, /ANSWER: 40;/);
  });
});

t.test('dig', { skip: needTool('dig') }, async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.close());
  const dig = (...a: string[]): Promise<string> => client('dig', d, ...a);

  t.test('EDNS version 1 gets BADVERS', async (t) => {
    const out = await dig('+edns=1', '+noednsnegotiation', 'a.example.test', 'A');
    t.match(out, /status: BADVERS/);
    t.match(out, /EDNS: version: 0/);
  });

  t.test('unknown EDNS flags are not echoed', async (t) => {
    const out = await dig('+ednsflags=0x0040', 'a.example.test', 'A');
    t.match(out, /status: NOERROR/);
    t.match(out, /EDNS: version: 0, flags:;/);
    t.notMatch(out, /MBZ/, 'no must-be-zero EDNS flag in the answer');
  });

  t.test("the header's Z bit is not echoed", async (t) => {
    const out = await dig('+zflag', 'a.example.test', 'A');
    t.match(out, /status: NOERROR/);
    t.notMatch(out, /MBZ/, 'Z clear in the answer');
  });

  t.test('an unknown option with EDNS version 0 is ignored', async (t) => {
    const out = await dig('+ednsopt=65001:abcdef', 'a.example.test', 'A');
    t.match(out, /status: NOERROR/);
    // (dig echoes its own command line: look at the answer's OPT pseudosection only)
    const opt = /OPT PSEUDOSECTION:([\s\S]*?);; QUESTION/.exec(out)?.[1] ?? '';
    t.match(opt, /EDNS: version: 0/);
    t.notMatch(opt, /65001/, 'the option is not echoed');
  });

  t.test('TCP works', async (t) => {
    const out = await dig('+tcp', 'a.example.test', 'A');
    t.match(out, /192\.0\.2\.1/);
    t.match(out, /\(TCP\)/);
  });
});
