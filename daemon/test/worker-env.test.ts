// The daemon's worker threads run only its own code: a preload named in NODE_OPTIONS (an operator's agent, a test
// runner's hooks) loads in the main thread, never again in the list worker or the cluster's list reader.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { generateListKey } from '@hashwall/format';
import t from 'tap';

import { FollowerLists } from '../dist/cluster/follower.js';
import { createLogger } from '../dist/util/log.js';
import {
  Clock,
  LogSink,
  ReleaseDir,
  ReleaseServer,
  fullOf,
  harness,
  settingsWith,
  tempDir,
  verdictOf,
  within,
} from './lists/helpers.ts';

const listKey = generateListKey('demo-2026a');

/** Sets NODE_OPTIONS to import a module that writes its thread's id to a file; returns what it wrote so far. */
function preloadMarker(t: { teardown(fn: () => unknown): void }, dir: string): () => string[] {
  const marks = join(dir, 'marks');
  writeFileSync(marks, '');
  const preload = join(dir, 'preload.mjs');
  writeFileSync(
    preload,
    "import { appendFileSync } from 'node:fs';\nimport { threadId } from 'node:worker_threads';\n" +
      `appendFileSync(${JSON.stringify(marks)}, threadId + '\\n');\n`,
  );
  const before = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = `--import=${pathToFileURL(preload).href}`;
  t.teardown(() => {
    if (before === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = before;
  });
  return () => readFileSync(marks, 'utf8').split('\n').filter(Boolean);
}

/** Runs a worker that exits at once; resolves when it has. */
function ranWorker(w: Worker): Promise<void> {
  return within(new Promise<void>((resolve) => w.once('exit', () => resolve())), 'a worker exits');
}

t.test('a plain worker does load the NODE_OPTIONS preload (what the daemon avoids)', async (t) => {
  const dir = tempDir(t);
  const marks = preloadMarker(t, dir);
  const script = join(dir, 'empty.mjs');
  writeFileSync(script, '');
  await ranWorker(new Worker(pathToFileURL(script), { execArgv: [] }));
  t.equal(marks().length, 1, 'the preload ran in the worker, execArgv [] notwithstanding');
});

t.test(
  "the list worker, then the cluster's list reader over what it stored: the preload runs in neither",
  async (t) => {
    const root = tempDir(t);
    const marks = preloadMarker(t, root);
    const rel = new ReleaseDir(join(root, 'release'));
    const server = await new ReleaseServer(rel).listen();
    t.teardown(() => server.close());
    rel.publish(fullOf(listKey, 1, ['blocked.example']));
    const settings = settingsWith(join(root, 'state'), [{ mirrors: [server.url], keys: [rel.key], listKey }]);
    const h = harness(t, settings, new Clock(), { inlineCore: false });
    await within(h.registry.start());
    t.equal(await within(h.registry.pollNow('demo')), 'updated', 'the list worker loaded and polled the list');
    const follower = new FollowerLists(settings, { logger: createLogger({ level: 'error' }, new LogSink()) });
    t.teardown(() => follower.close());
    await within(follower.readAll());
    t.equal(verdictOf(follower.view(), 'blocked.example'), 'D:demo', 'the reader read the stored list');
    t.same(marks(), [], 'no thread ran the preload');
  },
);
