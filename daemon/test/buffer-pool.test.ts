// The daemon cuts its small Buffers from 8 KiB pools, as Node 20 does, under Node 24 too (whose default is 64 KiB:
// util/buffers.ts says why the larger pools cost full collections at saturation).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { plainCommand } from '../../test/helpers/tools.ts';
import { SMALL_BUFFER_POOL_BYTES, useSmallBufferPool } from '../dist/util/buffers.js';
import { MAIN } from './helpers/child.ts';
import { tempDir } from './lists/helpers.ts';

t.test('after useSmallBufferPool, a new pool is 8 KiB', (t) => {
  const before = Buffer.poolSize;
  t.teardown(() => {
    Buffer.poolSize = before;
  });
  // Node 24's default, so the test says the same under Node 20.
  Buffer.poolSize = 64 * 1024;
  useSmallBufferPool();
  t.equal(Buffer.poolSize, SMALL_BUFFER_POOL_BYTES);
  t.equal(SMALL_BUFFER_POOL_BYTES, 8192);
  // Use up the pool in use (at most 64 KiB), then the next small Buffers come from 8 KiB pools.
  let last = Buffer.allocUnsafe(100);
  for (let i = 0; i < 1000; i++) last = Buffer.allocUnsafe(100);
  t.equal(last.buffer.byteLength, 8192, 'a small Buffer made now is cut from an 8 KiB pool');
  t.end();
});

t.test('the daemon sets it at start, whatever the pool size it was started with', (t) => {
  const dir = tempDir(t, 'hw-pool-');
  // Started with Node 24's default pool size; reports the size in force when the process ends.
  const preload = join(dir, 'pool.mjs');
  writeFileSync(
    preload,
    "Buffer.poolSize = 65536;\nprocess.on('exit', () => process.stderr.write(`pool size ${Buffer.poolSize}\\n`));\n",
  );
  // As a user runs it, without the test runner's hooks (plainCommand).
  const run = spawnSync(
    ...plainCommand(process.execPath, ['--import', preload, MAIN, '--config', join(dir, 'missing.yaml')]),
    { encoding: 'utf8', timeout: 60_000 },
  );
  t.equal(run.status, 2, 'a missing config stops the start (exit 2)');
  t.match(run.stderr, /pool size 8192\n/, 'the pool size in force at exit is 8 KiB');
  t.end();
});
