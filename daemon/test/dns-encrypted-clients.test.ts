/**
 * Real clients from Debian over the encrypted transports: kdig +tls and +https (knot-dnsutils), curl --doh-url,
 * each trusting only the CA the test makes, and a blocked name answered with its EDE over each. Then the built
 * daemon as a child process: SIGHUP re-reads the certificate files, new sessions get the new certificate and an
 * open session keeps answering. Run asynchronously: the in-process daemon must not be stalled by a blocking exec.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import t, { type Test } from 'tap';

import { needTool } from '../../test/helpers/tools.ts';
import { TYPE, query, rcodeOf } from './helpers/client.ts';
import { startChild } from './helpers/child.ts';
import { startTestDaemon, type TestDaemon } from './helpers/daemon.ts';
import { DotClient, TLS_NAME, makePki, type TestPki } from './helpers/tls.ts';
import { TestUpstream } from './helpers/upstream.ts';

const run = promisify(execFile);

/** What `cmd args` prints (its help: which options this version has), or '' when it cannot run. */
async function helpOf(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout: 5000 });
    return `${stdout}${stderr}`;
  } catch {
    return '';
  }
}

const kdigMissing = needTool('kdig');
const kdigNoHttps =
  kdigMissing || (!(await helpOf('kdig', ['-h'])).includes('+[no]https') && 'this kdig has no +https');
const curlNoDoh =
  needTool('curl') ||
  (!(await helpOf('curl', ['--help', 'all'])).includes('--doh-url') && 'this curl has no --doh-url');

const pki: TestPki = await makePki();
t.teardown(() => pki.remove());

async function daemon(t: Test): Promise<TestDaemon & { dot: number; doh: number }> {
  const d = await startTestDaemon({
    config: {
      dot: { listen: ['127.0.0.1:0'] },
      doh: { listen: ['127.0.0.1:0'] },
      tls: { certFile: pki.leaf.cert, keyFile: pki.leaf.key },
    },
  });
  t.teardown(() => d.close());
  return Object.assign(d, { dot: d.daemon.addresses.dot[0]!.port, doh: d.daemon.addresses.doh[0]!.port });
}

async function kdig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run(
    'kdig',
    [
      '@127.0.0.1',
      '-p',
      String(port),
      `+tls-ca=${pki.ca}`,
      `+tls-hostname=${TLS_NAME}`,
      '+timeout=3',
      '+retry=0',
      ...args,
    ],
    { timeout: 15000, encoding: 'utf8' },
  );
  return stdout;
}

t.test('kdig +tls: a forwarded answer, and a blocked name with its EDE', { skip: kdigMissing }, async (t) => {
  const d = await daemon(t);
  const ok = await kdig(d.dot, '+tls', 'a.example.test', 'A');
  t.match(ok, /;; TLS session \(TLS1\.3\)/, 'TLS 1.3, the certificate verified against the test CA');
  t.match(ok, /status: NOERROR/);
  t.match(ok, /a\.example\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.1/);
  const blocked = await kdig(d.dot, '+tls', '+edns', 'www.blocked.test', 'A');
  t.match(blocked, /status: NXDOMAIN/);
  t.match(blocked, /EDE: 16 \(Censored\): 'list demo'/);
  t.match(blocked, /;; PADDING: \d+ B/, 'padded');
  t.match(blocked, /;; Received 468 B/, 'to one 468-octet block');
  t.equal(d.events.queries.dot, 2);
});

t.test(
  'kdig +https (POST) and +https-get: a forwarded answer, and a blocked name with its EDE',
  { skip: kdigNoHttps },
  async (t) => {
    const d = await daemon(t);
    const post = await kdig(d.doh, '+https', 'a.example.test', 'A');
    t.match(post, /;; HTTP session \(HTTP\/2-POST\)-\(dns\.hashwall\.test\/dns-query\)-\(status: 200\)/);
    t.match(post, /a\.example\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.1/);
    t.match(post, /id: 0\b/, 'kdig sends ID 0 over DoH and gets it back');
    const get = await kdig(d.doh, '+https-get', '+edns', 'www.blocked.test', 'A');
    t.match(get, /HTTP\/2-GET/);
    t.match(get, /status: NXDOMAIN/);
    t.match(get, /EDE: 16 \(Censored\): 'list demo'/);
    t.equal(d.events.queries.doh, 2);
  },
);

t.test(
  'curl --doh-url resolves through hashwalld: a listed name fails, another is fetched',
  { skip: curlNoDoh },
  async (t) => {
    const d = await daemon(t);
    // web.example.test points at a web server of the test's on loopback: curl's traffic stays on 127.0.0.1.
    d.upstreams[0]!.zone.push({ name: 'web.example.test', type: TYPE.A, ttl: 300, address: '127.0.0.1' });
    const web: Server = createServer((_req, res) => res.end('hello from loopback\n'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', () => resolve()));
    t.teardown(() => new Promise<void>((resolve) => web.close(() => resolve())));
    const webPort = (web.address() as { port: number }).port;
    // No --max-time or --ipv4: with either, curl 7.88 ends a DoH lookup of a name without addresses in exit 27 "Out
    // of memory" instead of 6. execFile's timeout bounds it.
    const curl = async (host: string): Promise<{ code: number; out: string }> => {
      try {
        const { stdout } = await run(
          'curl',
          [
            '-sS',
            '--doh-url',
            `https://127.0.0.1:${d.doh}/dns-query`,
            '--cacert',
            pki.ca,
            `http://${host}:${webPort}/`,
          ],
          { timeout: 15000, encoding: 'utf8' },
        );
        return { code: 0, out: stdout };
      } catch (err) {
        const e = err as { code?: number; stderr?: string };
        return { code: e.code ?? -1, out: e.stderr ?? '' };
      }
    };
    const ok = await curl('web.example.test');
    t.equal(ok.code, 0);
    t.equal(ok.out, 'hello from loopback\n', 'resolved over DoH to 127.0.0.1, then fetched');
    const blocked = await curl('www.blocked.test');
    t.equal(blocked.code, 6, 'curl exit 6: could not resolve host');
    t.match(blocked.out, /Couldn't resolve host/);
    t.ok(d.events.queries.doh >= 2, `curl asked over DoH (${d.events.queries.doh} queries: A and AAAA)`);
    t.ok((d.events.blocks.get('demo')?.nxdomain ?? 0) >= 1, "the block was the list's");
  },
);

t.test('SIGHUP re-reads the certificate files: new sessions get the new one, an open session goes on', async (t) => {
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const dir = mkdtempSync(join(tmpdir(), 'hw-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, 'server.pem');
  const key = join(dir, 'server.key');
  copyFileSync(pki.leaf.cert, cert);
  copyFileSync(pki.leaf.key, key);
  const configFile = join(dir, 'hashwalld.yaml');
  writeFileSync(
    configFile,
    [
      `listen: ['127.0.0.1:0']`,
      `upstreams: ['${up.address}']`,
      `stateDir: ${join(dir, 'state')}`,
      `metrics: { listen: '' }`,
      `dot: { listen: ['127.0.0.1:0'] }`,
      `doh: { listen: ['127.0.0.1:0'] }`,
      `tls: { certFile: server.pem, keyFile: server.key }`,
      '',
    ].join('\n'),
  );
  const child = startChild(configFile);
  t.teardown(() => child.stop());
  const listening = await child.waitFor((l) => l.msg === 'listening for DNS', 10000);
  t.ok(listening, `listening (${child.stderr()})`);
  const addrs = listening!.addresses as { dot: { port: number }[]; doh: { port: number }[] };
  const dot = addrs.dot[0]!.port;
  const open = await DotClient.connect(dot, { ca: pki.ca });
  t.teardown(() => open.close());
  t.equal(open.socket.getPeerCertificate().fingerprint256, pki.leaf.fingerprint256);
  const renewed = await pki.issue('renewed-sighup');
  copyFileSync(renewed.cert, cert);
  copyFileSync(renewed.key, key);
  child.proc.kill('SIGHUP');
  t.ok(await child.waitFor((l) => l.msg === 'configuration reloaded', 10000), 'reloaded');
  const fresh = await DotClient.connect(dot, { ca: pki.ca });
  t.teardown(() => fresh.close());
  t.equal(
    fresh.socket.getPeerCertificate().fingerprint256,
    renewed.fingerprint256,
    'a new session: the new certificate',
  );
  t.equal(rcodeOf((await open.ask(query('a.example.test', TYPE.A)))!), 0, 'the session opened before answers still');
  t.equal(rcodeOf((await fresh.ask(query('a.example.test', TYPE.A)))!), 0);
  // A key that does not match is refused at reload, and the running certificate stays.
  copyFileSync(pki.leaf.cert, cert);
  child.proc.kill('SIGHUP');
  const refused = await child.waitFor((l) => String(l.msg).startsWith('reload refused'), 10000);
  t.match(JSON.stringify(refused?.problems), /tls\.certFile: the certificate and key cannot be used together/);
  const after = await DotClient.connect(dot, { ca: pki.ca });
  t.teardown(() => after.close());
  t.equal(after.socket.getPeerCertificate().fingerprint256, renewed.fingerprint256, 'the renewed one is still served');
  await child.stop();
  t.equal(await child.exited, 0);
});
