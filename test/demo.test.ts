// `npm start`: the demo comes up with no network beyond loopback, blocks a demo name for real DNS clients (dig,
// kdig), serves metrics and the stop page, and stops cleanly on SIGINT: exit 0, ports free, work folder gone.
// The script is run directly (`npm start` runs exactly it, checked below): npm itself reports a SIGINT as its own
// death by that signal, whatever the script's exit code.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { daemonChild, noProc, runsAsShipped } from './helpers/shipped.ts';
import { needTool, plainNode } from './helpers/tools.ts';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const skipDig = needTool('dig');

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

/** The ports the kernel hands out to sockets bound to port 0 (and to outgoing connections). */
function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && low > 0 && high >= low) return { low, high };
  } catch {
    // not Linux: the IANA dynamic range
  }
  return { low: 49152, high: 65535 };
}

interface DemoPorts {
  readonly dns: number;
  readonly dot: number;
  readonly doh: number;
  readonly metrics: number;
  readonly stopPage: number;
}

/**
 * Five distinct ports for the demo, which is a separate process and takes its ports by number: drawn at random
 * from 10000 up to the ephemeral range, where no socket bound to port 0 (this suite's, or another process's) is
 * ever given one. One that another process holds all the same is reported by the demo before it starts anything,
 * and the test draws again ({@link runDemo}).
 */
function drawPorts(): DemoPorts {
  const { low, high } = ephemeralRange();
  const [bottom, top] = low > 11000 ? [10000, low] : [high + 1, 65536];
  const picked = new Set<number>();
  while (picked.size < 5) picked.add(bottom + Math.floor(Math.random() * (top - bottom)));
  const [dns, dot, doh, metrics, stopPage] = [...picked] as [number, number, number, number, number];
  return { dns, dot, doh, metrics, stopPage };
}

/** The demo's environment: the shell's, without the test runner's NODE_OPTIONS (plainNode drops what tap adds). */
function demoEnv(ports: DemoPorts): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _runnerOptions, ...shell } = process.env;
  return {
    ...shell,
    HASHWALL_DEMO_DNS_PORT: String(ports.dns),
    HASHWALL_DEMO_DOT_PORT: String(ports.dot),
    HASHWALL_DEMO_DOH_PORT: String(ports.doh),
    HASHWALL_DEMO_METRICS_PORT: String(ports.metrics),
    HASHWALL_DEMO_STOP_PAGE_PORT: String(ports.stopPage),
  };
}

/** A port another process took between the draw and the demo's bind: the demo stops, and the test draws again. */
const portTaken = (out: string): boolean => /is not free: another process listens there|EADDRINUSE/.test(out);

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

/** The demo's "ready" line, a blank line, what to try (one command a line) and a blank line. */
const READY = /hashwall demo ready.*\n\n(?:.+\n)+\n/;

/** The demo's process, its output so far and its exit, once it said it is ready. */
interface RunningDemo {
  readonly ports: DemoPorts;
  readonly demo: ChildProcess;
  readonly out: () => string;
  readonly exited: Promise<number | null>;
}

/**
 * Starts the demo on freshly drawn ports and waits (up to 60 s) until it says it is ready. A port that another
 * process took after the draw stops the demo before it starts anything: then it draws again, up to five times.
 * Any other stop fails `t` and gives null.
 */
async function runDemo(t: Test): Promise<RunningDemo | null> {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const ports = drawPorts();
    const demo = spawn(...plainNode(join(root, 'examples', 'demo', 'demo.mjs')), {
      cwd: root,
      env: demoEnv(ports),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
    t.teardown(() => {
      if (demo.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL');
    });
    const ready = new Promise<boolean>((resolve) => {
      const take = (c: Buffer): void => {
        out += c.toString();
        if (READY.test(out)) resolve(true);
      };
      demo.stdout.on('data', take);
      demo.stderr.on('data', take);
      void exited.then(() => resolve(READY.test(out)));
    });
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000).unref());
    const came = await Promise.race([ready, timer]);
    if (came === true) return { ports, demo, out: () => out, exited };
    if (came === false && portTaken(out)) {
      t.comment(`attempt ${attempt}: a drawn port was taken (${JSON.stringify(ports)}); drawing again`);
      continue;
    }
    demo.kill('SIGKILL');
    t.fail(`the demo did not come up (${came === 'timeout' ? 'in 60 s' : 'it exited'}):\n${out}`);
    return null;
  }
  t.fail('five draws of ports were all taken');
  return null;
}

t.test('the demo blocks a demo name and stops cleanly on SIGINT', { skip: skipDig }, async (t) => {
  const running = await runDemo(t);
  if (running === null) return;
  const { ports, demo, out, exited } = running;
  t.match(out(), `dig @127.0.0.1 -p ${ports.dns} blocked.example`, 'it says what to try');

  const p = String(ports.dns);
  const blocked = await run('dig', ['@127.0.0.1', '-p', p, '+tries=1', '+time=3', 'blocked.example', 'A']);
  t.match(blocked, /status: NXDOMAIN/, 'blocked.example: NXDOMAIN');
  t.match(blocked, /EDE: 16 \(Censored\).*list demo/, 'with EDE 16 naming the list');
  const below = await run('dig', ['@127.0.0.1', '-p', p, '+tcp', '+tries=1', '+time=3', 'www.blocked.example']);
  t.match(below, /status: NXDOMAIN/, 'a name below it, over TCP');
  const passed = await run('dig', ['@127.0.0.1', '-p', p, '+short', '+tries=1', '+time=3', 'allowed.example']);
  t.equal(passed.trim(), '192.0.2.1', 'a name not listed: the demo upstream answers');
  await t.test('kdig shows the EDE', { skip: needTool('kdig') }, async (t) => {
    const k = await run('kdig', ['@127.0.0.1', '-p', p, '+edns', '+retry=0', '+time=3', 'abuse.test']);
    t.match(k, /EDE: 16 \(Censored\): 'list demo'/);
    const ca = /^\s*CA=(\S+)/m.exec(out())?.[1] ?? '';
    t.match(out(), `kdig @127.0.0.1 -p ${ports.dot} +tls +tls-ca=$CA +edns blocked.example`, 'it says how to try DoT');
    const tls = ['+edns', '+retry=0', '+time=3', `+tls-ca=${ca}`, 'blocked.example'];
    const dot = await run('kdig', ['@127.0.0.1', '-p', String(ports.dot), '+tls', ...tls]);
    t.match(dot, /EDE: 16 \(Censored\): 'list demo'/, 'the block over DoT, its certificate verified');
    const doh = await run('kdig', ['@127.0.0.1', '-p', String(ports.doh), '+https', ...tls]);
    t.match(doh, /EDE: 16 \(Censored\): 'list demo'/, 'and over DoH');
  });
  const metrics = await get(`http://127.0.0.1:${ports.metrics}/metrics`);
  t.match(metrics.body, /^hashwall_blocked_queries_total\{list="demo",mode="nxdomain",via="name"\} [1-9]/m);
  t.match(metrics.body, /^hashwall_list_canary_ok\{list="demo"\} 1$/m, 'the canary passes');
  t.match(metrics.body, /^hashwall_list_enforced\{list="demo"\} 1$/m);
  t.match(metrics.body, /^hashwall_list_keyring_version\{list="demo"\} 1$/m, 'under keyring 1 of the root key');
  t.match(metrics.body, /^hashwall_list_log_size\{list="demo"\} 1$/m, 'in the log the witness cosigned');
  t.match(await get(`http://127.0.0.1:${ports.metrics}/readyz`), { status: 200 });
  const page = await get(`http://127.0.0.1:${ports.stopPage}/`, { host: 'blocked.example' });
  t.equal(page.status, 451);
  t.match(page.body, 'the list <strong>the demo list</strong>');

  await t.test('hashwalld runs as it ships: the flags and environment of its first line', { skip: noProc }, (t) => {
    const daemon = demo.pid === undefined ? undefined : daemonChild(demo.pid);
    t.ok(daemon !== undefined, 'hashwalld is among the demo processes');
    if (daemon !== undefined) runsAsShipped(t, daemon);
    t.end();
  });

  const work = /source=(\S+)\/hashwalld\.yaml/.exec(out())?.[1];
  t.ok(work !== undefined && existsSync(work), 'the work folder exists while the demo runs');
  demo.kill('SIGINT');
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20000).unref());
  t.equal(await Promise.race([exited, timeout]), 0, 'exit 0 after SIGINT');
  t.match(out(), 'demo: stopped');
  t.notOk(work !== undefined && existsSync(work), 'the work folder is removed');
  t.ok(await free('udp', ports.dns), 'the DNS port is free (UDP)');
  t.ok(await free('tcp', ports.dns), 'and TCP');
  t.ok(await free('tcp', ports.metrics), 'the metrics port is free');
  t.ok(await free('tcp', ports.stopPage), 'the stop page port is free');
  t.ok((await free('tcp', ports.dot)) && (await free('tcp', ports.doh)), 'the DoT and DoH ports are free');
});

t.test('the demo says which port is taken, and starts nothing', async (t) => {
  // The metrics port is one this test holds (bound to port 0 and kept until the end); the others are drawn, and
  // drawn again if another process holds one of them.
  const held = createServer();
  const port = await new Promise<number>((resolve) =>
    held.listen(0, '127.0.0.1', () => resolve((held.address() as { port: number }).port)),
  );
  t.teardown(() => new Promise((resolve) => held.close(resolve)));
  for (let attempt = 1; attempt <= 5; attempt++) {
    const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
      execFile(
        ...plainNode(join(root, 'examples', 'demo', 'demo.mjs')),
        { env: demoEnv({ ...drawPorts(), metrics: port }), timeout: 20000 },
        (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, text: `${stdout}${stderr}` }),
      );
    });
    const named = /127\.0\.0\.1:(\d+) \(\w+, [\w ]+\) is not free/.exec(out.text)?.[1];
    if (named !== undefined && Number(named) !== port) {
      t.comment(`attempt ${attempt}: a drawn port was taken (${named}); drawing again`);
      continue;
    }
    t.equal(out.code, 1);
    t.match(out.text, `127.0.0.1:${port} (tcp, metrics) is not free: another process listens there`);
    t.notMatch(out.text, 'hashwalld |', 'the daemon was not started');
    return;
  }
  t.fail('five draws of ports were all taken');
});
