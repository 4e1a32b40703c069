// A forked process playing one DNS worker for daemon/test/ops-cluster.test.ts: the real WorkerOpsAgent and the
// real query path (on 127.0.0.1 port 0), answering the primary over the real IPC channel. It counts the queries
// it is told to count (argv[2]) so that the merged figures are known, then says "ready". argv[3]: `silent` (never
// answers), or `worker-<slot>` (with its process metrics, labelled so).
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';

const n = Number(process.argv[2] ?? 1);
const silent = process.argv[3] === 'silent';
// argv[3] = 'worker-<slot>': with process metrics, labelled so.
const name = process.argv[3]?.startsWith('worker-') ? process.argv[3] : undefined;
if (!silent) {
  // The daemon's modules only where they run: a silent worker answers nothing and need not load them.
  const { settingsFrom } = await import('../../dist/config/load.js');
  const { WorkerOpsAgent } = await import('../../dist/ops/cluster.js');
  const { createLogger } = await import('../../dist/util/log.js');
  const { StaticListProvider } = await import('../../dist/lists/static.js');
  const { startDaemon } = await import('../../dist/daemon.js');
  const settings = settingsFrom(
    {
      listen: ['127.0.0.1:0'],
      upstreams: ['127.0.0.1:9'],
      metrics: { processMetrics: name !== undefined },
      hitReport: { enabled: true, endpoint: true, minCount: 5 },
    },
    tmpdir(),
  );
  const logger = createLogger({ level: 'error' }, new Writable({ write: (_c, _e, cb) => cb() }));
  const lists = new StaticListProvider([]);
  const agent = new WorkerOpsAgent(settings, { logger, lists, process: name });
  const daemon = await startDaemon(settings, { logger, lists, events: agent.metrics, policyEvents: agent.metrics });
  agent.attach(daemon);
  for (let i = 0; i < n; i++) {
    agent.metrics.queryDone('udp', 1, 3, 'blocked');
    agent.metrics.blocked('demo', 'nxdomain', false);
    agent.metrics.matched({ action: 1, listId: 'demo', kind: 'D', entry: 'a'.repeat(64), allowlisted: false });
  }
  process.on('disconnect', () => {
    agent.close();
    void daemon.close();
  });
} else {
  process.on('disconnect', () => process.exit(0));
}
process.send({ test: 'ready' });
