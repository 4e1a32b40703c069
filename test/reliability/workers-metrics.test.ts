/**
 * workers: 2, the built daemon as a child process, scraped over its metrics listener: a DNS worker killed with
 * SIGKILL takes none of its counts with it (the merged counters never go backwards, so Prometheus never reads a
 * reset), the restart is counted, and the process metrics are each process's own, with a `process` label.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { httpGet, parseExposition } from '../../daemon/test/helpers/ops.ts';
import { tempDir } from '../../daemon/test/lists/helpers.ts';
import { ZoneUpstream, addressOf, judgeAs, runLoad, sleep, startChild } from './helpers.ts';
import { HANG_MS } from '../helpers/within.ts';

/** The sum of every series of `name`. */
function total(s: Map<string, number>, name: string): number {
  let n = 0;
  for (const [k, v] of s) if (k === name || k.startsWith(`${name}{`)) n += v;
  return n;
}

/** The `process` label values of `name`'s series. */
function processes(s: Map<string, number>, name: string): string[] {
  return [...s.keys()]
    .filter((k) => k.startsWith(`${name}{`))
    .map((k) => /process="([^"]+)"/.exec(k)?.[1] ?? 'none')
    .sort();
}

t.test('a killed worker: counters keep growing, the restart is counted, process metrics per process', async (t) => {
  const dir = tempDir(t, 'hw-workers-metrics-');
  const upstream = new ZoneUpstream('w.test', 300);
  await upstream.start();
  t.teardown(() => upstream.close());
  const file = join(dir, 'hashwalld.yaml');
  writeFileSync(
    file,
    [
      `listen: ['127.0.0.1:0']`,
      `upstreams: ['${upstream.address}']`,
      `workers: 2`,
      `stateDir: '${join(dir, 'state')}'`,
      `metrics: { listen: '127.0.0.1:0' }`,
      `shutdown: { drainTimeoutMs: 1000 }`,
      '',
    ].join('\n'),
  );
  const child = startChild(file);
  t.teardown(() => child.stop());
  const serving = await child.waitFor((l) => l.msg === 'serving /metrics, /healthz and /readyz', HANG_MS);
  const ready = await child.waitFor((l) => l.msg === 'DNS workers listening', HANG_MS);
  t.ok(serving && ready, 'the primary serves its metrics, the workers listen');
  const metricsUrl = `http://${String(serving?.address)}/metrics`;
  const pids = (ready?.pids as number[] | undefined) ?? [];
  const port = (ready?.addresses as { udp: { port: number }[] } | undefined)?.udp[0]?.port ?? 0;
  const scrape = async (): Promise<Map<string, number>> => {
    const r = await httpGet(metricsUrl, { timeoutMs: 10_000 });
    t.equal(r.status, 200);
    return parseExposition(r.body);
  };
  const load = async (): Promise<number> => {
    let i = 0;
    const r = await runLoad({
      port,
      qps: 2000,
      durationMs: 1000,
      sockets: 32,
      timeoutMs: 1500,
      next: () => {
        const name = `n${i++ % 50}.w.test`;
        return { name, judge: judgeAs(name, { rcode: 0, address: addressOf(name) }) };
      },
    });
    t.equal(r.lost + r.wrong, 0, `${r.sent} queries, all answered`);
    return r.answered;
  };

  const answered = await load();
  // Each worker counts a query before it sends the answer: all are counted once the load has its answers.
  let s = await scrape();
  const first = total(s, 'hashwall_queries_total');
  t.equal(first, answered, `every query counted (${first})`);
  t.same(processes(s, 'process_start_time_seconds'), ['primary', 'worker-0', 'worker-1'], 'a start time per process');
  t.same(processes(s, 'process_max_fds'), ['primary', 'worker-0', 'worker-1'], 'fds per process, not summed');
  t.equal(s.get('hashwall_worker_restarts_total'), 0, 'no restart yet');
  const startedBefore = s.get('process_start_time_seconds{process="worker-0"}');

  await sleep(1100); // process_start_time_seconds has a resolution of a second
  process.kill(pids[0]!, 'SIGKILL');
  t.ok(await child.waitFor((l) => String(l.msg).includes('a DNS worker exited'), HANG_MS), 'the primary saw it');
  let listening = 0;
  for (let i = 0; i < 100 && listening < 3; i++) {
    listening = child.lines.filter((l) => l.msg === 'listening for DNS').length;
    if (listening < 3) await sleep(100);
  }
  t.equal(listening, 3, 'a new worker listens');

  s = await scrape();
  const afterKill = total(s, 'hashwall_queries_total');
  t.ok(afterKill >= first, `the merged count did not go backwards (${first} -> ${afterKill})`);
  t.equal(s.get('hashwall_worker_restarts_total'), 1, 'the restart is counted');
  t.same(processes(s, 'process_start_time_seconds'), ['primary', 'worker-0', 'worker-1'], 'worker-0 again');
  t.ok(
    s.get('process_start_time_seconds{process="worker-0"}')! > startedBefore!,
    "the new worker-0's start time is later",
  );

  const more = await load();
  s = await scrape();
  t.equal(total(s, 'hashwall_queries_total'), afterKill + more, 'and it grows from there');
});
