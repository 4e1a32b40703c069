/**
 * The built daemon as a child process (`node daemon/dist/main.js --config FILE`): SIGHUP reloads without dropping
 * a query, an invalid reload keeps the running config, SIGTERM drains queries in flight and exits 0.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import t, { type Test } from 'tap';

import { TYPE, query, rcodeOf, udpAsk } from './helpers/client.ts';
import { startChild, type Child } from './helpers/child.ts';
import { until } from './helpers/daemon.ts';
import { TestUpstream } from './helpers/upstream.ts';
import { HANG_MS } from '../../test/helpers/within.ts';

interface Daemon extends Child {
  readonly port: number;
  readonly configFile: string;
  /** Resolves with the first log line whose message contains `msg`, or null after `timeoutMs`. */
  waitForMsg(msg: string, timeoutMs?: number): Promise<Record<string, unknown> | null>;
}

function yaml(upstream: string, stateDir: string, extra = ''): string {
  return `listen: ['127.0.0.1:0']\nupstreams: ['${upstream}']\nupstream:\n  timeoutMs: 2000\nstateDir: ${stateDir}\nmetrics:\n  listen: ''\nshutdown:\n  drainTimeoutMs: 2000\n${extra}`;
}

async function start(t: Test, up: TestUpstream, extra = ''): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'hw-sig-'));
  const configFile = join(dir, 'hashwalld.yaml');
  writeFileSync(configFile, yaml(up.address, join(dir, 'state'), extra));
  const child = startChild(configFile);
  const waitForMsg = (msg: string, timeoutMs = HANG_MS) => child.waitFor((l) => String(l.msg).includes(msg), timeoutMs);
  t.teardown(async () => {
    if (child.proc.exitCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const listening = await waitForMsg('listening for DNS', 10000);
  if (listening === null) throw new Error(`the daemon did not start: ${child.stderr()}`);
  const port = (listening.addresses as { udp: { port: number }[] }).udp[0]!.port;
  return { ...child, port, configFile, waitForMsg };
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
      // A generous bound: a query lost in a reload is the failure, not one a loaded machine answers late.
      const a = await udpAsk(c.port, query('a.example.test', TYPE.A, { id: sent & 0xffff }), 10_000);
      if (a !== null) answered++;
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  writeFileSync(
    c.configFile,
    yaml(
      up.address,
      join(dirname(c.configFile), 'state'),
      "access:\n  allow: ['10.0.0.0/8']\n  refusedRateLimitBurst: 1000000\n",
    ),
  );
  c.proc.kill('SIGHUP');
  t.ok(await c.waitForMsg('configuration reloaded'), 'reloaded');
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
  const refused = await c.waitForMsg('reload refused');
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
  const before = up.queries.length;
  const inFlight = udpAsk(c.port, query('a.example.test', TYPE.A, { id: 4242 }), HANG_MS);
  await until(() => up.queries.slice(before).some((q) => q.name === 'a.example.test'), 'the query upstream');
  c.proc.kill('SIGTERM');
  const stopping = await c.waitForMsg('stopping');
  t.equal(stopping?.inFlight, 1, 'one query in flight when the signal came');
  const a = await inFlight;
  t.ok(a !== null && rcodeOf(a) === 0, 'the query in flight is answered');
  t.equal(await c.exited, 0, 'exit code 0');
  t.ok(await c.waitForMsg('stopped', 100));
  t.equal(await udpAsk(c.port, query('a.example.test', TYPE.A), 200), null, 'nothing listens afterwards');
});

t.test('an invalid config stops the daemon at start with the key path (exit 2)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hw-sig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'upstream:\n  timeoutMs: fast\n');
  const child = startChild(file);
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), HANG_MS);
  const code = await child.exited;
  clearTimeout(timer);
  t.equal(code, 2);
  t.match(
    child.lines.find((l) => l.code === 'CONFIG_INVALID'),
    { problems: [/^upstream\.timeoutMs: /] },
    'one JSON line with the key path',
  );
});
