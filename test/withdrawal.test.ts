// A withdrawal end to end (SPEC.md 4.6), with real parts: the maintainer publishes, with the real signer (its
// library, the code behind `hashwall-signer publish`) and `min-poll: 60`, a release that removes an entry (an
// ordinary delta); a real HTTP server serves it; the built daemon (`node daemon/dist/main.js`), whose schedule
// would not poll for a year, gets SIGUSR1 and polls every list at once, min-poll notwithstanding; the withdrawn name
// resolves again. The time from the start of `publish` to the first answer that passes is measured and reported
// (docs/isp.md and docs/maintainers.md quote it); nothing here depends on it. With `workers: 2` the primary polls
// and both workers answer with the new list; a SIGUSR1 that reaches a worker (systemd signals the whole control
// group) is ignored there, and no process opens Node's inspector.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { generateListKey, publicKeyToString } from '@hashwall/format';
import t, { type Test } from 'tap';

import { ReleaseDir, ReleaseServer, tempDir } from '../daemon/test/lists/helpers.ts';
import { Maintainer } from '../daemon/test/lists/trust-helpers.ts';
import { ZoneUpstream, queryFor, sleep, startChild } from './reliability/helpers.ts';
import { udpAsk } from '../daemon/test/helpers/client.ts';
import { HANG_MS } from './helpers/within.ts';

const listKey = generateListKey('demo-2026a');
const GONE = 'gone.w.test';
const STAYS = 'stays.w.test';

/** The rcode the daemon answers `name` with (3: NXDOMAIN, the block; 0: the upstream's answer), or -1. */
async function rcode(port: number, name: string, id = 1): Promise<number> {
  const a = await udpAsk(port, queryFor(name, id), 2000);
  return a === null ? -1 : a[3]! & 0x0f;
}

/**
 * Asks until `name` gets `want` `streak` times in a row, each from a fresh socket (so with workers sharing the port,
 * from every worker), at most `ms`: true if it did.
 */
async function until(port: number, name: string, want: number, ms: number, streak = 1): Promise<boolean> {
  const end = performance.now() + ms;
  let run = 0;
  for (let id = 1; performance.now() < end; id++) {
    run = (await rcode(port, name, id & 0xffff)) === want ? run + 1 : 0;
    if (run >= streak) return true;
    if (run === 0) await sleep(20);
  }
  return false;
}

async function setup(t: Test, workers: number) {
  const dir = tempDir(t, 'hw-withdrawal-');
  const upstream = new ZoneUpstream('w.test', 300);
  await upstream.start();
  t.teardown(() => upstream.close());
  const m = new Maintainer(join(dir, 'release'), listKey, ['s0']);
  // Real time: the daemon child runs on the system clock.
  const now = Math.floor(Date.now() / 1000);
  const publish = (serial: number, names: string[]) => m.publishAt(serial, names, ['s0'], now, 60);
  await publish(1, [GONE, STAYS]);
  const server = await new ReleaseServer(new ReleaseDir(m.dir)).listen();
  t.teardown(() => server.close());
  const config = [
    `listen: ['127.0.0.1:0']`,
    `upstreams: ['${upstream.address}']`,
    `workers: ${workers}`,
    `stateDir: '${join(dir, 'state')}'`,
    `metrics: { listen: '' }`,
    `shutdown: { drainTimeoutMs: 1000 }`,
    `lists:`,
    `  - id: demo`,
    `    mirrors: ['${server.url}']`,
    `    keys: ['${publicKeyToString(m.key('s0').publicKey)}']`,
    `    hashKey: { id: '${listKey.id}', key: '${listKey.keyHex()}' }`,
    `    schedule: '0 0 1 1 *'`,
    `    jitterSeconds: 0`,
    `    startWaitMs: 20000`,
    '',
  ].join('\n');
  const file = join(dir, 'hashwalld.yaml');
  writeFileSync(file, config);
  const child = startChild(file);
  t.teardown(() => child.stop());
  return { m, child, publish, server };
}

/** Publishes serial 2 without GONE, sends SIGUSR1 to `pid`, and measures until GONE resolves again. */
async function withdraw(
  t: Test,
  s: Awaited<ReturnType<typeof setup>>,
  port: number,
  pid: number,
  streak: number,
): Promise<{ publishMs: number; totalMs: number }> {
  const t0 = performance.now();
  const report = await s.publish(2, [STAYS]);
  const published = performance.now();
  t.same(report.deltaBases, [1], 'the withdrawal is an ordinary delta from serial 1');
  process.kill(pid, 'SIGUSR1');
  const updated = await s.child.waitFor((l) => l.msg === 'list updated' && l.serial === 2, HANG_MS);
  t.ok(updated, 'SIGUSR1: the list was polled at once, min-poll (60 s, from the start-up poll) notwithstanding');
  t.equal(updated?.via, 'delta', 'and fetched as a delta');
  t.ok(await until(port, GONE, 0, 20_000, streak), 'the withdrawn name resolves again (every worker)');
  const done = performance.now();
  t.equal(await rcode(port, STAYS), 3, 'the rest stays blocked');
  return { publishMs: Math.round(published - t0), totalMs: Math.round(done - t0) };
}

t.test('workers: 1: a withdrawal reaches clients at once on SIGUSR1', async (t) => {
  const s = await setup(t, 1);
  const listening = await s.child.waitFor((l) => String(l.msg).includes('listening for DNS'), HANG_MS);
  t.ok(listening, 'the daemon listens');
  const port = (listening?.addresses as { udp: { port: number }[] } | undefined)?.udp[0]?.port ?? 0;
  t.ok(await until(port, GONE, 3, 10_000), 'serial 1 blocks the name');
  const before = s.server.count('index.hwl');
  const m = await withdraw(t, s, port, s.child.proc.pid!, 1);
  t.equal(s.server.count('index.hwl'), before + 1, 'one index fetch, on the signal');
  t.ok(
    s.child.lines.some((l) => String(l.msg).includes('polling every list now')),
    'the request is logged',
  );
  t.comment(`withdrawal, workers 1: publish ${m.publishMs} ms; publish to the withdrawn name passing ${m.totalMs} ms`);
  process.stdout.write(`# withdrawal workers=1 publish_ms=${m.publishMs} end_to_end_ms=${m.totalMs}\n`);
});

t.test('workers: 2: the primary polls; a signal that reaches a worker is ignored there', async (t) => {
  const s = await setup(t, 2);
  const ready = await s.child.waitFor((l) => l.msg === 'DNS workers listening', HANG_MS);
  t.ok(ready, 'the workers listen');
  const port = (ready?.addresses as { udp: { port: number }[] } | undefined)?.udp[0]?.port ?? 0;
  const pids = (ready?.pids as number[] | undefined) ?? [];
  t.ok(await until(port, GONE, 3, 10_000), 'serial 1 blocks the name');
  // systemctl kill signals every process of the unit: a worker gets SIGUSR1 too, and ignores it.
  process.kill(pids[0]!, 'SIGUSR1');
  await sleep(200);
  t.equal(await rcode(port, STAYS), 3, 'the worker still answers');
  // 40 answers in a row from fresh sockets: both workers have read the new list.
  const m = await withdraw(t, s, port, s.child.proc.pid!, 40);
  t.notMatch(s.child.stderr(), /Debugger listening/, 'no inspector opened by SIGUSR1');
  t.comment(`withdrawal, workers 2: publish ${m.publishMs} ms; publish to the withdrawn name passing ${m.totalMs} ms`);
  process.stdout.write(`# withdrawal workers=2 publish_ms=${m.publishMs} end_to_end_ms=${m.totalMs}\n`);
});
