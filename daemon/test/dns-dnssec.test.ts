/**
 * DNSSEC through the daemon, checked by the real validator: a zone signed here with BIND's dnssec-signzone, served
 * by nsd on a loopback address of its own, hashwalld forwarding to it, and delv (bind9-dnsutils) validating what
 * hashwalld answers against the zone's key as its trust anchor. Scrubbing (dns/scrub.ts) must leave every proof
 * whole; ANY must not be made up. All tools are Debian's, installed by .ci/run.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import t from 'tap';

import { needTool } from '../../test/helpers/tools.ts';
import { TYPE, query, udpAsk } from './helpers/client.ts';
import { startTestDaemon } from './helpers/daemon.ts';

const run = promisify(execFile);

const missing = (['delv', 'nsd', 'dnssec-keygen', 'dnssec-signzone'] as const)
  .map((tool) => needTool(tool))
  .filter((why) => why !== false);

const ZONE = `$TTL 300
signed.test. IN SOA ns.signed.test. hostmaster.signed.test. 1 3600 600 86400 60
signed.test. IN NS ns.signed.test.
ns IN A 127.0.0.1
www IN A 192.0.2.80
www IN AAAA 2001:db8::80
www IN TXT "hello"
alias IN CNAME www
*.wild IN A 192.0.2.81
`;

/** Signs the zone in `dir`; returns the delv trust anchor (the KSK) as a trust-anchors clause. */
async function signZone(dir: string): Promise<string> {
  writeFileSync(join(dir, 'zone'), ZONE);
  const keygen = ['-q', '-K', dir, '-a', 'ECDSAP256SHA256'];
  await run('dnssec-keygen', [...keygen, '-f', 'KSK', 'signed.test'], { cwd: dir, timeout: 30_000 });
  await run('dnssec-keygen', [...keygen, 'signed.test'], { cwd: dir, timeout: 30_000 });
  await run('dnssec-signzone', ['-q', '-K', dir, '-S', '-o', 'signed.test', '-f', 'signed.zone', 'zone'], {
    cwd: dir,
    timeout: 60_000,
  });
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.key'))) {
    const text = readFileSync(join(dir, f), 'utf8');
    if (!text.includes('key-signing key')) continue;
    const line = text.split('\n').find((l) => l.trim() !== '' && !l.startsWith(';'))!;
    const [owner, , , flags, proto, alg, ...key] = line.trim().split(/\s+/);
    return `trust-anchors { ${owner} static-key ${flags} ${proto} ${alg} "${key.join('')}"; };\n`;
  }
  throw new Error('no key-signing key');
}

/** nsd on a loopback address and port of its own (random: nothing else binds there), serving the signed zone. */
async function startNsd(dir: string): Promise<{ host: string; port: number; proc: ChildProcess }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = (n: number): number => Math.floor(Math.random() * n);
    const host = `127.${64 + r(128)}.${r(256)}.${1 + r(254)}`;
    const port = 20000 + r(10000);
    const conf = join(dir, 'nsd.conf');
    writeFileSync(
      conf,
      [
        'server:',
        `  ip-address: ${host}@${port}`,
        '  username: ""',
        '  chroot: ""',
        `  zonesdir: "${dir}"`,
        `  pidfile: "${dir}/nsd.pid"`,
        '  database: ""',
        `  zonelistfile: "${dir}/zone.list"`,
        `  xfrdfile: "${dir}/xfrd.state"`,
        `  xfrdir: "${dir}"`,
        `  logfile: "${dir}/nsd.log"`,
        '  server-count: 1',
        '  do-ip6: no',
        'remote-control:',
        '  control-enable: no',
        'zone:',
        '  name: signed.test',
        `  zonefile: "${dir}/signed.zone"`,
        '',
      ].join('\n'),
    );
    const proc = spawn('nsd', ['-d', '-c', conf], { stdio: 'ignore' });
    let exited = false;
    proc.on('exit', () => (exited = true));
    for (let i = 0; i < 100 && !exited; i++) {
      if ((await udpAsk(port, query('signed.test', TYPE.SOA), 200, host)) !== null) return { host, port, proc };
    }
    proc.kill();
  }
  throw new Error(`nsd did not start: ${readFileSync(join(dir, 'nsd.log'), 'utf8')}`);
}

t.test(
  'delv validates what hashwalld forwards from a signed zone',
  { skip: missing.length > 0 ? missing.join('; ') : false },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hw-dnssec-'));
    const anchors = join(dir, 'anchors.conf');
    writeFileSync(anchors, await signZone(dir));
    const nsd = await startNsd(dir);
    t.teardown(async () => {
      const exited = new Promise((resolve) => nsd.proc.once('exit', resolve));
      nsd.proc.kill();
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      rmSync(dir, { recursive: true, force: true });
    });
    const d = await startTestDaemon({ upstreams: 0, config: { upstreams: [`${nsd.host}:${nsd.port}`] } });
    t.teardown(() => d.close());

    const delv = async (name: string, type: string): Promise<string> => {
      const { stdout, stderr } = await run(
        'delv',
        ['@127.0.0.1', '-p', String(d.port), '-a', anchors, '+root=signed.test', name, type],
        { timeout: 30_000, encoding: 'utf8' },
      );
      return stdout + stderr;
    };
    const cases: [string, string, RegExp, string][] = [
      ['www.signed.test', 'A', /^; fully validated/m, 'a signed A'],
      ['www.signed.test', 'AAAA', /^; fully validated/m, 'a signed AAAA'],
      ['alias.signed.test', 'A', /^; fully validated[\s\S]*CNAME[\s\S]*192\.0\.2\.80/m, 'a CNAME and its target'],
      ['x.wild.signed.test', 'A', /^; fully validated[\s\S]*192\.0\.2\.81/m, 'a wildcard answer with its NSEC proof'],
      ['nope.signed.test', 'A', /^; negative response, fully validated/m, 'NXDOMAIN with its NSEC proof'],
      ['www.signed.test', 'MX', /^; negative response, fully validated/m, 'NODATA'],
      [
        'www.signed.test',
        'ANY',
        /^; fully validated\n(?![\s\S]*HINFO)/m,
        "ANY: nsd's own RFC 8482 answer, validated, not an HINFO",
      ],
    ];
    for (const [name, type, want, what] of cases) t.match(await delv(name, type), want, what);
    t.equal(d.events.upstreamErrors('malformed'), 0, 'every answer of nsd passed the strict checks');
  },
);
