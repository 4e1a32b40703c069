/**
 * The `hashwalld` command (daemon/bin/hashwalld, the package's bin): through a link, as npm installs it, it runs the
 * built daemon with the node flags and the environment of main.js's first line, keeps a value the caller gave one of
 * those variables, and refuses a main.js whose first line does not run node.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

import t, { type Test } from 'tap';

import { shippedEnv, shippedFlags } from '../bench/lib/shipped.mjs';
import { startCommand } from '../daemon/test/helpers/child.ts';
import { commandOf, environOf, noProc, runsAsShipped } from './helpers/shipped.ts';
import { plainCommand } from './helpers/tools.ts';
import { HANG_MS } from './helpers/within.ts';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const launcher = join(root, 'daemon', 'bin', 'hashwalld');
/** This process's node first on the PATH: the command runs `node` from the PATH, as `#!/usr/bin/env node` would. */
const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;

/** A work folder with a config (loopback, port 0, no lists) and the command linked into bin/, as npm links it. */
function work(t: Test): { config: string; link: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hw-launcher-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'hashwalld.yaml');
  writeFileSync(
    config,
    `listen: ['127.0.0.1:0']\nupstreams: ['127.0.0.1:9']\nstateDir: ${join(dir, 'state')}\nmetrics:\n  listen: ''\n`,
  );
  mkdirSync(join(dir, 'bin'));
  const link = join(dir, 'bin', 'hashwalld');
  symlinkSync(launcher, link);
  return { config, link };
}

/** Runs the command until the daemon listens; calls `check` with its PID, then stops it (SIGTERM). */
async function whileRunning(t: Test, env: NodeJS.ProcessEnv, check: (pid: number) => void): Promise<void> {
  const { config, link } = work(t);
  const child = startCommand(link, ['--config', config], env);
  const started = (await child.waitFor((l) => String(l.msg).includes('listening for DNS'), HANG_MS)) !== null;
  t.ok(started, `the daemon started (stderr: ${child.stderr().trim() || 'none'})`);
  // sh and env exec what they run: the command's process is the daemon's.
  if (started && child.proc.pid !== undefined) check(child.proc.pid);
  child.proc.kill('SIGTERM');
  t.equal(await child.exited, 0, 'exit 0 after SIGTERM');
}

t.test('through a link, the daemon runs with the flags and environment of its first line', { skip: noProc }, (t) =>
  whileRunning(t, { ...process.env, PATH, MALLOC_ARENA_MAX: undefined }, (pid) => runsAsShipped(t, pid)),
);

t.test("a variable the first line sets keeps the caller's value", { skip: noProc }, (t) => {
  const [name] = Object.keys(shippedEnv);
  t.ok(name !== undefined, 'the first line sets a variable');
  return whileRunning(t, { ...process.env, PATH, [name!]: '7' }, (pid) => {
    t.ok(environOf(pid).includes(`${name}=7`), `${name}=7, as given`);
    t.same(commandOf(pid).argv.slice(1, 1 + shippedFlags.length), shippedFlags, 'the node flags all the same');
  });
});

t.test(
  "main.js's first line fits the 256 octets Linux 5.1 and later read of a #! line, and runs node so",
  async (t) => {
    const first = readFileSync(join(root, 'daemon', 'dist', 'main.js'), 'latin1').split('\n', 1)[0]!;
    t.ok(first.length + 1 <= 256, `${first.length + 1} octets with its newline`);
    // The kernel reads only the first line: a script of its own with that line shows what node it runs.
    const dir = mkdtempSync(join(tmpdir(), 'hw-launcher-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, 'first-line.mjs');
    writeFileSync(script, `${first}\nconsole.log(JSON.stringify(process.execArgv));\n`, { mode: 0o755 });
    const { stdout } = await promisify(execFile)(script, [], { env: { ...process.env, PATH } });
    t.same(JSON.parse(stdout), shippedFlags, 'node runs with the shipped flags');
  },
);

/** Runs the command against a dist/main.js whose first line is `first`: its exit code and stderr. */
async function withFirstLine(t: Test, first: string): Promise<{ code: number | null; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'hw-launcher-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'dist'));
  copyFileSync(launcher, join(dir, 'bin', 'hashwalld'));
  writeFileSync(join(dir, 'dist', 'main.js'), `${first}\n`);
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile(...plainCommand(join(dir, 'bin', 'hashwalld')), { env: { ...process.env, PATH } }, (err, _o, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stderr }),
    );
  });
}

t.test('a main.js whose first line does not run node is refused (exit 2)', async (t) => {
  const r = await withFirstLine(t, '#!/usr/bin/env -S NAME=1 deno --flag');
  t.equal(r.code, 2);
  t.match(r.stderr, /its first line does not run node/);
});

t.test('a word before node that is not NAME=VALUE is refused, never evaluated (exit 2)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hw-launcher-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mark = join(dir, 'ran');
  for (const word of [`X;touch${'\t'}${mark}=1`, `$(touch${'\t'}${mark})=1`, 'NOVALUE', '1X=2']) {
    const r = await withFirstLine(t, `#!/usr/bin/env -S ${word} node --flag`);
    t.equal(r.code, 2, word);
    t.match(r.stderr, /its first line does not run node: .* is not NAME=VALUE/, word);
  }
  t.notOk(existsSync(mark), 'nothing in the line was run');
});
