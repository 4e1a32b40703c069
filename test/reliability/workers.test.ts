/**
 * workers: 2, the built daemon as a child process: the primary syncs the list, the workers read it; a list update
 * reaches every worker; SIGHUP and SIGTERM reach every worker; a killed worker is restarted with the current list.
 * On Node 20 the workers share the port through the cluster module, on Node 24 with SO_REUSEPORT (CI runs both).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { generateListKey, publicKeyToString } from '@hashwall/format';
import t from 'tap';

import { ReleaseDir, fullOf, tempDir } from '../../daemon/test/lists/helpers.ts';
import { ZoneUpstream, addressOf, judgeAs, runLoad, sleep, startChild } from './helpers.ts';
import { HANG_MS } from '../helpers/within.ts';

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('two workers: one list sync, updates in every worker, signals, restarts', async (t) => {
  const dir = tempDir(t, 'hw-workers-');
  const upstream = new ZoneUpstream('w.test', 300);
  await upstream.start();
  t.teardown(() => upstream.close());
  const listKey = generateListKey('workers-key');
  const rel = new ReleaseDir(join(dir, 'release'));
  const now = (): number => Math.floor(Date.now() / 1000);
  const publish = (serial: number): void => {
    rel.publish(
      fullOf(listKey, serial, [`listed${serial}.w.test`, 'always.w.test'], {
        created: now() - 60,
        expires: now() + 86400,
      }),
      { created: now() - 60, expires: now() + 86400, bases: [] },
    );
  };
  publish(1);
  const config = (jitter: number): string =>
    [
      `listen: ['127.0.0.1:0']`,
      `upstreams: ['${upstream.address}']`,
      `workers: 2`,
      `stateDir: '${join(dir, 'state')}'`,
      `metrics: { listen: '' }`,
      `shutdown: { drainTimeoutMs: 1000 }`,
      `lists:`,
      `  - id: demo`,
      `    mirrors: ['${rel.url}']`,
      `    keys: ['${publicKeyToString(rel.key.publicKey)}']`,
      `    hashKey: { id: '${listKey.id}', key: '${listKey.keyHex()}' }`,
      `    schedule: '0 0 1 1 *'`,
      `    jitterSeconds: ${jitter}`,
      `    startWaitMs: 20000`,
      '',
    ].join('\n');
  const file = join(dir, 'hashwalld.yaml');
  writeFileSync(file, config(0));
  const child = startChild(file);
  t.teardown(() => child.stop());

  const ready = await child.waitFor((l) => l.msg === 'DNS workers listening', HANG_MS);
  t.ok(ready, 'the workers listen');
  const pids = (ready?.pids as number[] | undefined) ?? [];
  t.equal(pids.length, 2, 'two workers');
  const sharing = String(ready?.sharing);
  t.comment(`port sharing: ${sharing} (Node ${process.version})`);
  // From the primary's line: a worker's own 'listening for DNS' line can reach stdout after its ready message.
  const port = (ready?.addresses as { udp: { port: number }[] } | undefined)?.udp[0]?.port ?? 0;
  t.ok(port > 0, 'the primary says where the workers listen');

  /** Many source ports (so every worker gets some of them): every answer as `name` must be. */
  const allAnswer = async (name: string, rcode: number): Promise<{ wrong: number; lost: number; ran: boolean }> => {
    const r = await runLoad({
      port,
      qps: 2000,
      durationMs: 500,
      sockets: 32,
      timeoutMs: 1500,
      next: () => ({ name, judge: judgeAs(name, rcode === 0 ? { rcode, address: addressOf(name) } : { rcode }) }),
    });
    // The load ran: two queries per source port at least (the kernel spreads ports over the workers). A machine too
    // busy for the rate sends fewer than its 1,000 in the 500 ms, and that is not a failure of the daemon.
    return { wrong: r.wrong, lost: r.lost, ran: r.sent >= 64 };
  };

  t.same(await allAnswer('listed1.w.test', 3), { wrong: 0, lost: 0, ran: true }, 'serial 1 blocked by every worker');
  t.same(await allAnswer('listed2.w.test', 0), { wrong: 0, lost: 0, ran: true }, 'serial 2 not yet');
  t.equal(
    child.lines.filter((l) => l.msg === 'list read from the state directory' && l.serial === 1).length,
    2,
    'each worker read the list the primary committed',
  );

  // An update: the primary polls it (a changed list config restarts that list's sync, which polls at once), the
  // workers read it when the primary's registry swaps. SIGHUP reaches every worker too.
  // A name on every release stays blocked by every worker throughout the reload and the update.
  let steady = false;
  const during = runLoad({
    port,
    qps: 1000,
    durationMs: 30_000,
    sockets: 16,
    stopWhen: () => steady,
    next: () => ({ name: 'always.w.test', judge: judgeAs('always.w.test', { rcode: 3 }) }),
  });
  await sleep(300);
  publish(2);
  writeFileSync(file, config(1));
  child.proc.kill('SIGHUP');
  const updated = await child.waitFor((l) => l.msg === 'list updated' && l.serial === 2, HANG_MS);
  t.ok(updated, 'the primary polled serial 2');
  const readBoth = async (): Promise<number> => {
    for (let i = 0; i < 100; i++) {
      const n = child.lines.filter((l) => l.msg === 'list read from the state directory' && l.serial === 2).length;
      if (n >= 2) return n;
      await sleep(100);
    }
    return 0;
  };
  // (a worker may log it twice: once for its reload's fresh read, once for the primary's swap message)
  t.ok((await readBoth()) >= 2, 'both workers read serial 2');
  await sleep(500);
  steady = true;
  const d = await during;
  t.equal(d.wrong + d.lost, 0, `a listed name stayed blocked through the reload (${d.sent} queries)`);
  t.same(await allAnswer('listed2.w.test', 3), { wrong: 0, lost: 0, ran: true }, 'serial 2 blocked by every worker');
  t.same(await allAnswer('listed1.w.test', 0), { wrong: 0, lost: 0, ran: true }, 'serial 1 name freed everywhere');
  await sleep(500);
  t.equal(
    child.lines.filter((l) => l.msg === 'configuration reloaded').length,
    2,
    'SIGHUP reached both workers (each reloaded its query path)',
  );

  // A worker killed: the primary starts another, which reads the current list.
  process.kill(pids[0]!, 'SIGKILL');
  const restarted = await child.waitFor((l) => String(l.msg).includes('a DNS worker exited'), HANG_MS);
  t.ok(restarted, 'the primary saw the worker exit');
  let next: number[] = [];
  for (let i = 0; i < 100; i++) {
    next = childrenOf(child.proc.pid!);
    if (next.length === 2 && !next.includes(pids[0]!)) break;
    await sleep(100);
  }
  t.equal(next.length, 2, 'two workers again');
  t.notOk(next.includes(pids[0]!), 'a new worker in place of the killed one');
  for (let i = 0; i < 100; i++) {
    if (child.lines.filter((l) => l.msg === 'listening for DNS').length >= 3) break;
    await sleep(100);
  }
  t.same(await allAnswer('listed2.w.test', 3), { wrong: 0, lost: 0, ran: true }, 'the new worker blocks serial 2');
  t.same(await allAnswer('ok.w.test', 0), { wrong: 0, lost: 0, ran: true }, 'and forwards');

  // SIGTERM: every worker drains and exits, then the primary.
  child.proc.kill('SIGTERM');
  const code = await Promise.race([child.exited, sleep(15_000).then(() => 'timeout')]);
  t.equal(code, 0, 'the primary exits 0');
  t.ok(
    next.every((p) => !alive(p)),
    'no worker outlives it',
  );
  t.equal(child.lines.filter((l) => l.msg === 'stopped').length, 3, 'both workers and the primary stopped cleanly');
});
