// Operations with several worker processes: real forked processes answer the primary over the IPC channel; the
// primary merges their metrics (sums), hits and status, and leaves out a worker that does not answer in time.
import { fork, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { settingsFrom } from '../dist/config/load.js';
import { ClusterOps, type OpsChannel } from '../dist/ops/cluster.js';
import { createLogger } from '../dist/util/log.js';
import { Metrics } from '../dist/ops/metrics.js';
import { StaticListProvider } from '../dist/lists/static.js';
import { demoMatcher } from './helpers/lists.ts';
import { plainFork } from '../../test/helpers/tools.ts';
import { parseExposition } from './helpers/ops.ts';
import { LogSink, within } from './lists/helpers.ts';

const WORKER = fileURLToPath(new URL('./helpers/ops-worker.mjs', import.meta.url));

async function startWorker(t: { teardown(fn: () => unknown): void }, args: string[]): Promise<ChildProcess> {
  // No execArgv and no NODE_OPTIONS: the worker is plain JavaScript and need not load the test runner's hooks.
  const child = fork(WORKER, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...plainFork() });
  t.teardown(() => {
    if (child.connected) child.disconnect();
    setTimeout(() => child.kill('SIGKILL'), 2000).unref();
  });
  await within(
    new Promise<void>((resolve, reject) => {
      child.on('message', (m: { test?: string }) => m.test === 'ready' && resolve());
      child.on('exit', (code) => reject(new Error(`worker exited ${code}`)));
    }),
    'worker start',
  );
  return child;
}

t.test('the primary merges its workers and leaves out a silent one', async (t) => {
  const [w2, w3, silent] = await Promise.all([
    startWorker(t, ['2']),
    startWorker(t, ['3']),
    startWorker(t, ['0', 'silent']),
  ]);
  const workers = [w2, w3];
  const channels = (): OpsChannel[] => [...workers, silent];
  const log = new LogSink();
  const settings = settingsFrom({}, tmpdir());
  const cluster = new ClusterOps(channels, {
    logger: createLogger({ level: 'info' }, log),
    lists: new StaticListProvider([demoMatcher()]),
    settings,
    timeoutMs: 300,
    statusIntervalMs: 3_600_000,
  });
  t.teardown(() => cluster.close());

  const primary = new Metrics({ processMetrics: false });
  const s = parseExposition(await cluster.metricsText(primary));
  t.equal(s.get('hashwall_queries_total{qtype="A",rcode="NXDOMAIN",transport="udp"}'), 5, 'summed over the workers');
  t.equal(s.get('hashwall_blocked_queries_total{list="demo",mode="nxdomain",via="name"}'), 5);
  t.equal(s.get('hashwall_upstream_up{upstream="127.0.0.1:9"}'), 1, 'the lowest over the workers');
  t.equal(s.get(`hashwall_build_info{node="${process.versions.node}",version="0.1.0"}`), 1, 'build info once');
  t.notOk(s.has('hashwall_ready'), 'no readiness from the workers: only the process that answers /readyz has it');
  t.match(log.lines, [{ level: 'warn', what: 'metrics', missing: 1, workers: 3 }], 'the silent worker is named');

  const hits = await cluster.takeHits();
  t.same([...hits.lists.get('demo')!], [['a'.repeat(64), 5]], 'hits merged');
  t.equal((await cluster.takeHits()).lists.size, 0, 'each worker started a new window');

  await cluster.refreshStatus();
  const d = cluster.opsDaemon();
  t.equal(d.listening(), true, 'every worker that answered listens');
  t.same(d.upstreamHealth(), [{ name: '127.0.0.1:9', up: true }]);
  t.match(d.probe('www.blocked.test'), { decision: { listId: 'demo', kind: 'D' } }, 'the stop page lookup');
  t.equal(d.probe('a.example.test').decision, null);
});

t.test(
  'a worker that dies or misses the deadline never takes its counts with it; process metrics stay apart',
  async (t) => {
    const [w0, w1] = await Promise.all([startWorker(t, ['2', 'worker-0']), startWorker(t, ['3', 'worker-1'])]);
    let channels: OpsChannel[] = [w0, w1];
    const log = new LogSink();
    const cluster = new ClusterOps(() => channels, {
      logger: createLogger({ level: 'info' }, log),
      lists: new StaticListProvider([demoMatcher()]),
      settings: settingsFrom({}, tmpdir()),
      timeoutMs: 2000,
      statusIntervalMs: 3_600_000,
    });
    t.teardown(() => cluster.close());
    const primary = new Metrics({ processMetrics: true });
    const queries = 'hashwall_queries_total{qtype="A",rcode="NXDOMAIN",transport="udp"}';
    const processes = (s: Map<string, number>, name: string): string[] =>
      [...s.keys()]
        .filter((k) => k.startsWith(`${name}{`))
        .map((k) => /process="([^"]+)"/.exec(k)?.[1] ?? 'none')
        .sort();

    let s = parseExposition(await cluster.metricsText(primary));
    t.equal(s.get(queries), 5, 'summed over the workers');
    t.same(processes(s, 'process_start_time_seconds'), ['primary', 'worker-0', 'worker-1'], 'a start time per process');
    t.same(processes(s, 'process_max_fds'), ['primary', 'worker-0', 'worker-1'], 'fds per process, never summed');
    t.same(processes(s, 'hashwall_queries_total'), ['none'], 'hashwall_ series are merged, with no process label');
    const started1 = s.get('process_start_time_seconds{process="worker-1"}');

    // Worker 1's channel refuses the request (a full pipe): its last reply stands in.
    channels = [w0, { send: () => false, on: (e, fn) => w1.on(e, fn), off: (e, fn) => w1.off(e, fn) }];
    s = parseExposition(await cluster.metricsText(primary));
    t.equal(s.get(queries), 5, 'a worker that did not answer is counted with its last reply');

    // Worker 1 dies; another takes its slot with a count of its own.
    w1.kill('SIGKILL');
    const w1b = await startWorker(t, ['1', 'worker-1']);
    channels = [w0];
    s = parseExposition(await cluster.metricsText(primary));
    t.equal(s.get(queries), 5, "a dead worker's counts stay in the sum");
    t.same(processes(s, 'process_start_time_seconds'), ['primary', 'worker-0'], 'its process series go with it');
    channels = [w0, w1b];
    s = parseExposition(await cluster.metricsText(primary));
    t.equal(s.get(queries), 6, 'and its replacement adds its own');
    t.ok(
      s.get('process_start_time_seconds{process="worker-1"}')! >= started1!,
      "the replacement's start time, under the same label",
    );
    t.equal(s.get('hashwall_upstream_up{upstream="127.0.0.1:9"}'), 1, "the dead worker's gauges are gone");
  },
);
