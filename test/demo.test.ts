// `npm start`: the demo comes up with no network beyond loopback, blocks a demo name for real DNS clients (dig,
// kdig), serves metrics and the stop page, and stops cleanly on SIGINT: exit 0, ports free, work folder gone.
// The script is run directly (`npm start` runs exactly it, checked below): npm itself reports a SIGINT as its own
// death by that signal, whatever the script's exit code.
import { execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';

import t from 'tap';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const DIG = '/usr/bin/dig';
const KDIG = '/usr/bin/kdig';

function free(kind: 'udp' | 'tcp', port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (kind === 'udp') {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    } else {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
    }
  });
}

/** A port free for TCP and UDP on 127.0.0.1 now (the kernel's pick). */
async function freePort(): Promise<number> {
  for (;;) {
    const s = createServer();
    const port = await new Promise<number>((resolve) =>
      s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)),
    );
    await new Promise((resolve) => s.close(resolve));
    if (await free('udp', port)) return port;
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10000 }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`));
  });
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

t.test('npm start runs the demo script', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.equal(pkg.scripts.start, 'node examples/demo/demo.mjs');
});

t.test(
  'the demo blocks a demo name and stops cleanly on SIGINT',
  { skip: !existsSync(DIG) && 'dig is not installed (Debian package bind9-dnsutils)' },
  async (t) => {
    const defaults = { dns: 5353, dot: 8853, doh: 8443, metrics: 9153, stopPage: 8053 };
    const defaultsFree =
      (await free('udp', defaults.dns)) &&
      (await free('tcp', defaults.dns)) &&
      (await free('tcp', defaults.dot)) &&
      (await free('tcp', defaults.doh)) &&
      (await free('tcp', defaults.metrics)) &&
      (await free('tcp', defaults.stopPage));
    const ports = defaultsFree
      ? defaults
      : {
          dns: await freePort(),
          dot: await freePort(),
          doh: await freePort(),
          metrics: await freePort(),
          stopPage: await freePort(),
        };
    if (!defaultsFree) t.comment(`the default ports are taken here; the demo runs on ${JSON.stringify(ports)}`);
    // As from a shell: without the test runner's NODE_OPTIONS (its TypeScript and coverage hooks).
    const { NODE_OPTIONS: _runnerOptions, ...shell } = process.env;
    const env = {
      ...shell,
      HASHWALL_DEMO_DNS_PORT: String(ports.dns),
      HASHWALL_DEMO_DOT_PORT: String(ports.dot),
      HASHWALL_DEMO_DOH_PORT: String(ports.doh),
      HASHWALL_DEMO_METRICS_PORT: String(ports.metrics),
      HASHWALL_DEMO_STOP_PAGE_PORT: String(ports.stopPage),
    };
    const demo = spawn(process.execPath, [join(root, 'examples', 'demo', 'demo.mjs')], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout.on('data', (c: Buffer) => (out += c.toString()));
    demo.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
    t.teardown(() => {
      if (demo.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL');
    });

    const deadline = Date.now() + 60000;
    while (!out.includes('hashwall demo ready')) {
      if (demo.exitCode !== null || Date.now() > deadline) {
        t.fail(`the demo did not come up:\n${out}`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.match(out, `dig @127.0.0.1 -p ${ports.dns} blocked.example`, 'it says what to try');

    const p = String(ports.dns);
    const blocked = await run(DIG, ['@127.0.0.1', '-p', p, '+tries=1', '+time=3', 'blocked.example', 'A']);
    t.match(blocked, /status: NXDOMAIN/, 'blocked.example: NXDOMAIN');
    t.match(blocked, /EDE: 16 \(Censored\).*list demo/, 'with EDE 16 naming the list');
    const below = await run(DIG, ['@127.0.0.1', '-p', p, '+tcp', '+tries=1', '+time=3', 'www.blocked.example']);
    t.match(below, /status: NXDOMAIN/, 'a name below it, over TCP');
    const passed = await run(DIG, ['@127.0.0.1', '-p', p, '+short', '+tries=1', '+time=3', 'allowed.example']);
    t.equal(passed.trim(), '192.0.2.1', 'a name not listed: the demo upstream answers');
    if (existsSync(KDIG)) {
      const k = await run(KDIG, ['@127.0.0.1', '-p', p, '+edns', '+retry=0', '+time=3', 'abuse.test']);
      t.match(k, /EDE: 16 \(Censored\): 'list demo'/, 'kdig shows the EDE');
      const ca = /^\s*CA=(\S+)/m.exec(out)?.[1] ?? '';
      t.match(out, `kdig @127.0.0.1 -p ${ports.dot} +tls +tls-ca=$CA +edns blocked.example`, 'it says how to try DoT');
      const dot = await run(KDIG, [
        '@127.0.0.1',
        '-p',
        String(ports.dot),
        '+tls',
        `+tls-ca=${ca}`,
        '+edns',
        '+retry=0',
        '+time=3',
        'blocked.example',
      ]);
      t.match(dot, /EDE: 16 \(Censored\): 'list demo'/, 'the block over DoT, its certificate verified');
      const doh = await run(KDIG, [
        '@127.0.0.1',
        '-p',
        String(ports.doh),
        '+https',
        `+tls-ca=${ca}`,
        '+edns',
        '+retry=0',
        '+time=3',
        'blocked.example',
      ]);
      t.match(doh, /EDE: 16 \(Censored\): 'list demo'/, 'and over DoH');
    }
    const metrics = await get(`http://127.0.0.1:${ports.metrics}/metrics`);
    t.match(metrics.body, /^hashwall_blocked_queries_total\{list="demo",mode="nxdomain",via="name"\} [1-9]/m);
    t.match(metrics.body, /^hashwall_list_canary_ok\{list="demo"\} 1$/m, 'the canary passes');
    t.match(metrics.body, /^hashwall_list_enforced\{list="demo"\} 1$/m);
    t.match(await get(`http://127.0.0.1:${ports.metrics}/readyz`), { status: 200 });
    const page = await get(`http://127.0.0.1:${ports.stopPage}/`, { host: 'blocked.example' });
    t.equal(page.status, 451);
    t.match(page.body, 'the list <strong>the demo list</strong>');

    const work = /source=(\S+)\/hashwalld\.yaml/.exec(out)?.[1];
    t.ok(work !== undefined && existsSync(work), 'the work folder exists while the demo runs');
    demo.kill('SIGINT');
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20000).unref());
    t.equal(await Promise.race([exited, timeout]), 0, 'exit 0 after SIGINT');
    t.match(out, 'demo: stopped');
    t.notOk(work !== undefined && existsSync(work), 'the work folder is removed');
    t.ok(await free('udp', ports.dns), 'the DNS port is free (UDP)');
    t.ok(await free('tcp', ports.dns), 'and TCP');
    t.ok(await free('tcp', ports.metrics), 'the metrics port is free');
    t.ok(await free('tcp', ports.stopPage), 'the stop page port is free');
    t.ok((await free('tcp', ports.dot)) && (await free('tcp', ports.doh)), 'the DoT and DoH ports are free');
  },
);

t.test('the demo says which port is taken, and starts nothing', async (t) => {
  const held = createServer();
  const port = await new Promise<number>((resolve) =>
    held.listen(0, '127.0.0.1', () => resolve((held.address() as { port: number }).port)),
  );
  t.teardown(() => new Promise((resolve) => held.close(resolve)));
  const { NODE_OPTIONS: _runnerOptions, ...shell } = process.env;
  const dnsPort = String(await freePort());
  const stopPagePort = String(await freePort());
  const dotPort = String(await freePort());
  const dohPort = String(await freePort());
  const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'examples', 'demo', 'demo.mjs')],
      {
        env: {
          ...shell,
          HASHWALL_DEMO_DNS_PORT: dnsPort,
          HASHWALL_DEMO_DOT_PORT: dotPort,
          HASHWALL_DEMO_DOH_PORT: dohPort,
          HASHWALL_DEMO_METRICS_PORT: String(port),
          HASHWALL_DEMO_STOP_PAGE_PORT: stopPagePort,
        },
        timeout: 20000,
      },
      (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, text: `${stdout}${stderr}` }),
    );
  });
  t.equal(out.code, 1);
  t.match(out.text, `127.0.0.1:${port} (tcp, metrics) is not free: another process listens there`);
  t.notMatch(out.text, 'hashwalld |', 'the daemon was not started');
});
