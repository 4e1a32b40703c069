/**
 * The built daemon as a child process (`node daemon/dist/main.js --config FILE`): SIGHUP reloads without dropping
 * a query, an invalid reload keeps the running config, SIGTERM drains queries in flight and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import t, { type Test } from 'tap';

import { TYPE, query, rcodeOf, udpAsk } from './helpers/client.ts';
import { TestUpstream } from './helpers/upstream.ts';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

interface Child {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly lines: Record<string, unknown>[];
  readonly configFile: string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  /** Resolves with the first log line matching `msg`, or null after `timeoutMs`. */
  waitFor(msg: string, timeoutMs?: number): Promise<Record<string, unknown> | null>;
}

function yaml(upstream: string, stateDir: string, extra = ''): string {
  return `listen: ['127.0.0.1:0']\nupstreams: ['${upstream}']\nupstream:\n  timeoutMs: 2000\nstateDir: ${stateDir}\nmetrics:\n  listen: ''\nshutdown:\n  drainTimeoutMs: 2000\n${extra}`;
}

async function start(t: Test, up: TestUpstream, extra = ''): Promise<Child> {
  const dir = mkdtempSync(join(tmpdir(), 'hw-sig-'));
  const configFile = join(dir, 'hashwalld.yaml');
  writeFileSync(configFile, yaml(up.address, join(dir, 'state'), extra));
  const proc = spawn(process.execPath, [main, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (l: Record<string, unknown>) => void }[] = [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    lines.push(obj);
    for (const w of [...waiters]) {
      if (String(obj.msg).includes(w.msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(obj);
      }
    }
  });
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const waitFor = (msg: string, timeoutMs = 5000): Promise<Record<string, unknown> | null> => {
    const seen = lines.find((l) => String(l.msg).includes(msg));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      waiters.push({
        msg,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  };
  t.teardown(async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const listening = await waitFor('listening for DNS', 10000);
  if (listening === null) throw new Error(`the daemon did not start: ${stderr}`);
  const port = (listening.addresses as { udp: { port: number }[] }).udp[0]!.port;
  return { proc, port, lines, configFile, exited, waitFor };
}

t.test('SIGHUP reloads the config without dropping a query', async (t) => {
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const c = await start(t, up);
  t.equal(rcodeOf((await udpAsk(c.port, query('a.example.test', TYPE.A)))!), 0);
  t.ok(
    c.lines.some((l) => l.msg === 'hashwalld starting' && typeof l.config === 'object'),
    'the effective config is logged at start',
  );

  // Queries in a steady stream while the config changes under them twice.
  let answered = 0;
  let sent = 0;
  let stop = false;
  const stream = (async () => {
    while (!stop) {
      sent++;
      const a = await udpAsk(c.port, query('a.example.test', TYPE.A, { id: sent & 0xffff }), 1000);
      if (a !== null) answered++;
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  writeFileSync(
    c.configFile,
    yaml(up.address, join(dirname(c.configFile), 'state'), "access:\n  allow: ['10.0.0.0/8']\n"),
  );
  c.proc.kill('SIGHUP');
  t.ok(await c.waitFor('configuration reloaded'), 'reloaded');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(rcodeOf((await udpAsk(c.port, query('a.example.test', TYPE.A)))!), 5, 'the new access list applies');
  writeFileSync(c.configFile, yaml(up.address, join(dirname(c.configFile), 'state')));
  c.proc.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await stream;
  t.equal(answered, sent, `every one of ${sent} queries answered across two reloads`);
  t.equal(rcodeOf((await udpAsk(c.port, query('a.example.test', TYPE.A)))!), 0, 'back to the first config');

  // An invalid config is refused and the running one stays.
  writeFileSync(c.configFile, 'listen: [nonsense]\n');
  c.proc.kill('SIGHUP');
  const refused = await c.waitFor('reload refused');
  t.ok(refused, 'an invalid config is refused');
  t.match(refused?.problems, [/^listen\.0: /], 'with its key path');
  t.equal(rcodeOf((await udpAsk(c.port, query('a.example.test', TYPE.A)))!), 0, 'still serving');
  c.proc.kill('SIGTERM');
  t.equal(await c.exited, 0);
});

t.test('SIGTERM drains queries in flight, then exits 0', async (t) => {
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const c = await start(t, up);
  up.behaviour = 'slow';
  up.delayMs = 400;
  const inFlight = udpAsk(c.port, query('a.example.test', TYPE.A, { id: 4242 }), 3000);
  await new Promise((r) => setTimeout(r, 100));
  c.proc.kill('SIGTERM');
  const stopping = await c.waitFor('stopping');
  t.equal(stopping?.inFlight, 1, 'one query in flight when the signal came');
  const a = await inFlight;
  t.ok(a !== null && rcodeOf(a) === 0, 'the query in flight is answered');
  t.equal(await c.exited, 0, 'exit code 0');
  t.ok(await c.waitFor('stopped', 100));
  t.equal(await udpAsk(c.port, query('a.example.test', TYPE.A), 200), null, 'nothing listens afterwards');
});

t.test('an invalid config stops the daemon at start with the key path (exit 2)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hw-sig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'upstream:\n  timeoutMs: fast\n');
  const proc = spawn(process.execPath, [main, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve(null);
    }, 5000);
    proc.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  t.equal(code, 2);
  t.match(stderr, /upstream\.timeoutMs: /);
});
