// The state directory is checked by --check and at start: a directory this user can write, on a filesystem that
// keeps files. Each case runs the built daemon (or the check) in a child process with a deadline, so that a check
// that spins (Node's recursive mkdir on procfs does) fails the test instead of hanging it.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import t from 'tap';

import { stateDirProblem } from '../dist/config/state-dir.js';
import { MAIN } from './helpers/child.ts';
import { tempDir } from './lists/helpers.ts';
import { plainCommand } from '../../test/helpers/tools.ts';
import { HANG_MS } from '../../test/helpers/within.ts';

interface Run {
  code: number | null;
  stderr: string;
  stdout: string;
  timedOut: boolean;
}

function run(
  args: string[],
  options: { uid?: number; gid?: number } = {},
  timeoutMs = HANG_MS,
  command = process.execPath,
  before: string[] = [],
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      // Run as a user runs it, without the test runner's hooks (plainCommand).
      ...plainCommand(command, [...before, ...args]),
      { timeout: timeoutMs, killSignal: 'SIGKILL', ...options },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: unknown; killed?: boolean }) | null;
        resolve({
          code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
          stderr,
          stdout,
          timedOut: e?.killed === true,
        });
      },
    );
  });
}

function config(dir: string, stateDir: string): string {
  const file = join(dir, 'hashwalld.yaml');
  writeFileSync(
    file,
    [
      `listen: ['127.0.0.1:0']`,
      `upstreams: ['127.0.0.1:9']`,
      `metrics: { listen: '' }`,
      `stateDir: '${stateDir}'`,
      '',
    ].join('\n'),
  );
  return file;
}

t.test('--check refuses a state directory on procfs or sysfs, promptly, with the key and the reason', async (t) => {
  const dir = tempDir(t, 'hw-state-dir-');
  for (const [stateDir, fs] of [
    ['/proc/hashwall-state', 'procfs'],
    ['/proc/hashwall-state/deeper', 'procfs'],
    ['/proc/self', 'procfs'],
    ['/sys/hashwall-state', 'sysfs'],
  ] as const) {
    const r = await run([MAIN, '--config', config(dir, stateDir), '--check']);
    t.notOk(r.timedOut, `${stateDir}: the check ends`);
    t.equal(r.code, 2, `${stateDir}: exit 2`);
    t.match(r.stderr, new RegExp(`stateDir: ${stateDir} is on ${fs}`), `${stateDir}: the key and the reason`);
  }
});

t.test('the daemon does not start with a state directory on procfs (and does not spin)', async (t) => {
  const dir = tempDir(t, 'hw-state-dir-');
  const r = await run([MAIN, '--config', config(dir, '/proc/hashwall-state')]);
  t.notOk(r.timedOut, 'it ends');
  t.equal(r.code, 2, 'the configuration-error status');
  // At start (not --check) the problem is one JSON log line, as every start-up error is.
  const line = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { code?: string; problems?: string[] })
    .find((l) => l.code === 'CONFIG_INVALID');
  t.match(
    line?.problems,
    [/^stateDir: \/proc\/hashwall-state is on procfs/],
    'one JSON line with the key and the reason',
  );
});

t.test('--check refuses a file, and a path below a file', async (t) => {
  const dir = tempDir(t, 'hw-state-dir-');
  const file = join(dir, 'a-file');
  writeFileSync(file, '');
  let r = await run([MAIN, '--config', config(dir, file), '--check']);
  t.equal(r.code, 2);
  t.match(r.stderr, /stateDir: .*a-file is a file, not a directory/);
  r = await run([MAIN, '--config', config(dir, join(file, 'below')), '--check']);
  t.equal(r.code, 2);
  t.match(r.stderr, /stateDir: .*a-file\/below cannot be created: a part of the path is a file/);
});

t.test('--check accepts a directory it can create, and leaves nothing behind', async (t) => {
  const dir = tempDir(t, 'hw-state-dir-');
  const state = join(dir, 'var', 'lib', 'hashwall');
  const r = await run([MAIN, '--config', config(dir, state), '--check']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /valid/);
  t.notOk(existsSync(join(dir, 'var')), 'what --check created is removed');
  mkdirSync(state, { recursive: true });
  t.equal((await run([MAIN, '--config', config(dir, state), '--check'])).code, 0, 'an existing directory');
  t.same(readdirSync(state), [], 'no test file left in it');
  t.equal(stateDirProblem(state, { keep: true }), null);
  const fresh = join(dir, 'fresh');
  t.equal(stateDirProblem(fresh, { keep: true }), null);
  t.ok(existsSync(fresh), 'kept when the daemon starts');
});

t.test('--check refuses a state directory this user cannot write', async (t) => {
  const dir = tempDir(t, 'hw-state-dir-');
  chmodSync(dir, 0o755);
  const state = join(dir, 'state');
  mkdirSync(state, { mode: 0o755 });
  const file = config(dir, state);
  chmodSync(file, 0o644);
  chmodSync(state, 0o555);
  t.teardown(() => chmodSync(state, 0o755));
  // Root writes anywhere: as root, the check runs without CAP_DAC_OVERRIDE (util-linux's setpriv), so the mode
  // binds it as it binds any user. (Not as another user: a checkout in a 0700 folder, as `mktemp -d` makes, would
  // be unreadable to it.)
  const asRoot = process.getuid?.() === 0;
  const r = asRoot
    ? await run([MAIN, '--config', file, '--check'], {}, HANG_MS, 'setpriv', [
        '--bounding-set',
        '-dac_override,-dac_read_search',
        '--',
        process.execPath,
      ])
    : await run([MAIN, '--config', file, '--check']);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /stateDir: .*state is not writable: permission denied for this user/);
});

t.test('a list store on procfs fails with an error instead of spinning', async (t) => {
  const store = pathToFileURL(join(MAIN, '..', 'lists', 'store.js')).href;
  const script =
    `const { ListStore } = await import(${JSON.stringify(store)});` +
    `try { new ListStore('/proc/hashwall-state', 'demo').createSpool(); console.log('created'); }` +
    `catch (err) { console.log(err.code); }`;
  const r = await run(['--input-type=module', '-e', script]);
  t.notOk(r.timedOut, 'it returns');
  t.equal(r.stdout.trim(), 'ENOENT', "procfs's answer, as an error");
});
