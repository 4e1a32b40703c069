// The Node runtime settings the daemon makes itself at start (util/runtime.ts says why): small Buffers cut from
// 8 KiB pools, as Node 20 does, under Node 24 too (whose default is 64 KiB), and V8's Maglev compiler off (Node 24's
// V8 has it on). What V8 compiles is read from its --trace-opt lines on stdout ("... <JSFunction f (sfi = ...)>
// (target MAGLEV)"); the scripts write to stderr only, so that nothing lands in a line V8's buffered output has half
// written.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import t from 'tap';

import { plainCommand } from '../../test/helpers/tools.ts';
import { SMALL_BUFFER_POOL_BYTES, useSmallBufferPool } from '../dist/util/runtime.js';
import { MAIN } from './helpers/child.ts';
import { tempDir } from './lists/helpers.ts';

const RUNTIME = pathToFileURL(join(MAIN, '..', 'util', 'runtime.js')).href;

/** A function made warm enough for V8's optimizing tiers, and its loop run long enough for on-stack replacement. */
const WARM = `
function f(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 2; return s; }
const a = Array.from({ length: 1000 }, (_, i) => i);
let total = 0;
for (let k = 0; k < 20000; k++) total += f(a);
process.stderr.write('total ' + total + '\\n');
`;

/** The tiers --trace-opt shows function `f` (WARM's) compiled for: MAGLEV, TURBOFAN (Node 24: TURBOFAN_JS). */
function tiersOfF(out: string): Set<string> {
  const tiers = new Set<string>();
  for (const m of out.matchAll(/<JSFunction f \(sfi = \w+\)> \(target (MAGLEV|TURBOFAN)\w*\)/g)) tiers.add(m[1]!);
  return tiers;
}

/** Maglev is on by default from V8 12 (Node 22) on; Node 20's V8 11.3 has it off. */
const maglevByDefault = Number(process.versions.v8.split('.')[0]) >= 12;

/** `node --trace-opt ARGS`, run as a user runs it: its exit status, V8's trace (stdout) and stderr. */
function traced(args: string[]): { status: number | null; trace: string; err: string } {
  const run = spawnSync(...plainCommand(process.execPath, ['--trace-opt', ...args]), {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: run.status, trace: run.stdout, err: run.stderr };
}

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

t.test('after withoutMaglev, a warm function goes to TurboFan and never to Maglev', (t) => {
  const dir = tempDir(t, 'hw-runtime-');
  const script = (off: boolean) => {
    const file = join(dir, off ? 'off.mjs' : 'control.mjs');
    writeFileSync(file, `import { withoutMaglev } from '${RUNTIME}';\n${off ? 'withoutMaglev();' : ''}\n${WARM}`);
    return file;
  };
  const off = traced([script(true)]);
  t.equal(off.status, 0);
  t.match(off.err, /^total 19980000000$/m);
  // Node's own functions that got warm while the module loaded, before the call, may have been compiled by Maglev.
  t.same([...tiersOfF(off.trace)], ['TURBOFAN'], 'the function was warm enough to be optimized, by TurboFan only');
  // The control: the same without the call. Where V8 has Maglev on by default it compiles the same function.
  const control = traced([script(false)]);
  t.equal(control.status, 0);
  if (maglevByDefault) t.ok(tiersOfF(control.trace).has('MAGLEV'), `V8 ${process.versions.v8} compiles it with Maglev`);
  else t.same([...tiersOfF(control.trace)], ['TURBOFAN'], `V8 ${process.versions.v8} has Maglev off by default`);
  t.end();
});

t.test('the daemon makes both at start, whatever the process was started with', (t) => {
  const dir = tempDir(t, 'hw-runtime-');
  // Started with Node 24's default pool size. When the process ends, after main() ran (a missing config ends it at
  // once, exit 2): the pool size in force, and a function warmed.
  const preload = join(dir, 'at-exit.mjs');
  writeFileSync(
    preload,
    `Buffer.poolSize = 65536;\nprocess.on('exit', () => {\nprocess.stderr.write(\`pool size \${Buffer.poolSize}\\n\`);${WARM}});\n`,
  );
  const run = traced(['--import', preload, MAIN, '--config', join(dir, 'missing.yaml')]);
  t.equal(run.status, 2, 'a missing config stops the start (exit 2)');
  t.match(run.err, /^pool size 8192$/m, 'the pool size in force at exit is 8 KiB');
  t.match(run.err, /^total 19980000000$/m);
  // As above, functions that got warm while the modules loaded, before main() ran, may have been.
  t.same([...tiersOfF(run.trace)], ['TURBOFAN'], 'a function warm after the start goes to TurboFan only');
  t.end();
});
