// The daemon process of memory-bench.mjs: wired as main.ts's runSingle wires hashwalld (operations, the list
// registry, the query path), plus an IPC channel for the bench:
//   { op: 'poll' }  polls the list now and answers { outcome, ms }
//   { op: 'mem' }   answers process.memoryUsage() and V8's heap statistics of this (the main) thread
//   { op: 'stop' }  stops as SIGTERM would and exits
//   node memory-child.mjs <settings.json>
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

import { settingsFrom } from '../../dist/config/load.js';
import { createListRegistry } from '../../dist/lists/registry.js';
import { createLogger } from '../../dist/util/log.js';
import { Operations } from '../../dist/ops/runtime.js';
import { startDaemon } from '../../dist/daemon.js';

const t0 = performance.now();
const raw = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const settings = settingsFrom(raw, '/');
const logger = createLogger({ level: 'warn' });
const lists = createListRegistry(settings, { logger });
const ops = await Operations.start(settings, { logger, lists });
await lists.start();
ops.listsStarted();
const daemon = await startDaemon(settings, { logger, lists, events: ops.metrics, policyEvents: ops.metrics });
await ops.attach(daemon);
const id = settings.lists[0].config.id;

const mib = (n) => Math.round((n / 1048576) * 10) / 10;
process.on('message', async (m) => {
  if (m.op === 'poll') {
    const t = performance.now();
    const outcome = await lists.pollNow(id);
    process.send({ op: 'poll', outcome, ms: Math.round(performance.now() - t), stats: lists.stats()[0] });
  } else if (m.op === 'mem') {
    // With --expose-gc (HW_BENCH_GC=1 in the bench), a full collection first: what is garbage and what is held.
    if (m.gc && typeof globalThis.gc === 'function') globalThis.gc();
    const u = process.memoryUsage();
    const h = getHeapStatistics();
    process.send({
      op: 'mem',
      rss: mib(u.rss),
      heapUsed: mib(u.heapUsed),
      heapTotal: mib(u.heapTotal),
      external: mib(u.external),
      arrayBuffers: mib(u.arrayBuffers),
      mallocedMemory: mib(h.malloced_memory),
    });
  } else if (m.op === 'stop') {
    await daemon.close();
    await lists.close();
    await ops.close();
    process.exit(0);
  }
});
process.send({
  op: 'ready',
  ms: Math.round(performance.now() - t0),
  port: daemon.addresses.udp[0].port,
  stats: lists.stats()[0],
});
