/**
 * The real binary at start: an address it cannot listen on and an invalid config are each one JSON line naming the
 * key and the reason, no stack trace, and exit status 2 (the systemd unit's RestartPreventExitStatus); every problem
 * of a config, schema and across keys, in the same run.
 */
import { execFile } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { HANG_MS } from '../../test/helpers/within.ts';
import { plainNode } from '../../test/helpers/tools.ts';
import { MAIN, startChild } from './helpers/child.ts';

function dir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'hw-start-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Runs the daemon on `yaml` until it exits by itself (killed after 20 s): its status, log lines and stderr. */
async function runToExit(t: Test, yaml: string) {
  const d = dir(t);
  const file = join(d, 'hashwalld.yaml');
  writeFileSync(file, `stateDir: ${join(d, 'state')}\nupstreams: ['127.0.0.1:9']\n${yaml}`);
  const child = startChild(file);
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 20_000);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, lines: child.lines, stderr: child.stderr() };
}

async function holdUdp(t: Test): Promise<number> {
  const s: UdpSocket = createSocket('udp4');
  await new Promise<void>((res) => s.bind({ port: 0, address: '127.0.0.1', exclusive: true }, res));
  t.teardown(() => s.close());
  return s.address().port;
}

async function holdTcp(t: Test): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((res) => s.listen({ port: 0, host: '127.0.0.1', exclusive: true }, res));
  t.teardown(() => new Promise<void>((res) => s.close(() => res())));
  return (s.address() as { port: number }).port;
}

t.test('a DNS port in use (UDP) names the key, as one JSON line, and exits 2', async (t) => {
  const port = await holdUdp(t);
  const r = await runToExit(t, `listen: ['127.0.0.1:${port}']\nmetrics:\n  listen: ''\n`);
  t.equal(r.code, 2, 'the configuration error status');
  const line = r.lines.find((l) => l.code === 'LISTEN_FAILED');
  t.match(line, {
    level: 'error',
    key: 'listen.0',
    address: `127.0.0.1:${port}`,
    msg: new RegExp(`^cannot listen: listen\\.0: 127\\.0\\.0\\.1:${port}: address in use`),
  });
  t.equal(r.stderr, '', 'no stack trace');
});

t.test('a DNS port in use for TCP only names the second address and exits 2', async (t) => {
  const port = await holdTcp(t);
  const r = await runToExit(t, `listen: ['127.0.0.1:0', '127.0.0.1:${port}']\nmetrics:\n  listen: ''\n`);
  t.equal(r.code, 2);
  t.match(
    r.lines.find((l) => l.code === 'LISTEN_FAILED'),
    { key: 'listen.1', address: `127.0.0.1:${port}`, msg: /address in use/ },
  );
  t.equal(r.stderr, '');
});

t.test('the metrics port in use names metrics.listen and exits 2', async (t) => {
  const port = await holdTcp(t);
  const r = await runToExit(t, `listen: ['127.0.0.1:0']\nmetrics:\n  listen: '127.0.0.1:${port}'\n`);
  t.equal(r.code, 2);
  t.match(
    r.lines.find((l) => l.code === 'LISTEN_FAILED'),
    { key: 'metrics.listen', msg: /^cannot listen: metrics\.listen: 127\.0\.0\.1:\d+: address in use/ },
  );
  t.equal(r.stderr, '');
});

t.test('with workers: 2, a worker that cannot listen fails the start with status 2, not a restart loop', async (t) => {
  const port = await holdUdp(t);
  const r = await runToExit(t, `listen: ['127.0.0.1:${port}']\nworkers: 2\nmetrics:\n  listen: ''\n`);
  t.equal(r.code, 2);
  t.ok(
    r.lines.some((l) => l.code === 'LISTEN_FAILED' && l.key === 'listen.0'),
    "the worker's line names the key",
  );
  t.ok(
    r.lines.some((l) => l.code === 'WORKER_START_FAILED'),
    "the primary's line says a worker failed to start",
  );
  t.notOk(
    r.lines.some((l) => String(l.msg).includes('it is restarted')),
    'a worker that fails at start is not restarted',
  );
  t.equal(r.stderr, '');
});

t.test('an invalid config at start: every problem, schema and across keys, in one JSON line; exit 2', async (t) => {
  const r = await runToExit(
    t,
    [
      "listen: ['127.0.0.1:0']",
      'workers: many',
      'blocking:',
      '  edeCode: 18',
      '  mode: stop-page',
      'hitReport:',
      '  enabled: true',
      '',
    ].join('\n'),
  );
  t.equal(r.code, 2);
  const line = r.lines.find((l) => l.code === 'CONFIG_INVALID');
  t.ok(line, 'one JSON line');
  t.same(line?.problems, [
    'blocking.edeCode: one of 16 (Censored), 15 (Blocked), 17 (Filtered), or 0 for no extended error (RFC 8914 4)',
    'workers: a whole number of processes from 1 to 256, or "auto" (one per core)',
    'blocking.stopPageIpv4: mode stop-page needs at least one stop page address',
    'hitReport.directory: the hit report is enabled but goes nowhere: set directory, or endpoint: true',
  ]);
  t.equal(r.stderr, '');
  t.notOk(
    r.lines.some((l) => l.msg === 'hashwalld starting'),
    'nothing starts',
  );
});

t.test('--check prints the same problems as text and exits 2; a valid file exits 0', async (t) => {
  const d = dir(t);
  const bad = join(d, 'bad.yaml');
  writeFileSync(bad, 'workers: many\nblocking:\n  mode: stop-page\n');
  const res = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(...plainNode(MAIN, ['--config', bad, '--check']), { timeout: HANG_MS }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
  t.equal(res.code, 2);
  t.match(res.stderr, /workers: a whole number of processes from 1 to 256, or "auto"/);
  t.match(res.stderr, /blocking\.stopPageIpv4: mode stop-page needs at least one stop page address/);
  const good = join(d, 'good.yaml');
  writeFileSync(good, `stateDir: ${d}\n`);
  const ok = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    execFile(...plainNode(MAIN, ['--config', good, '--check']), { timeout: HANG_MS }, (err, stdout) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout }),
    );
  });
  t.equal(ok.code, 0);
  t.match(ok.stdout, /: valid\n$/);
});
