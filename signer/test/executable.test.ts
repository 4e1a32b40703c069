// The executable itself, as a child process: what the in-process runs of the other tests (helpers.ts cli) cannot
// show. Its shebang and the package's bin, exit codes as the shell sees them, stdout and stderr apart, relative paths
// against the process's working directory, and a password prompt on a real terminal interrupted with Ctrl-C.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { needTool } from '../../test/helpers/tools.ts';
import {
  CLI,
  NOW,
  buildArgs,
  cliOnPty,
  cliProcess,
  copyFixture,
  fixtureKey,
  tempDir,
  vectorListKey,
  writeSource,
} from './helpers.ts';

t.test('the package bin is dist/cli.js, a node script by its shebang; it says its version', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    bin: Record<string, string>;
  };
  t.equal(join(new URL('..', import.meta.url).pathname, pkg.bin['hashwall-signer']!), CLI, 'bin is dist/cli.js');
  t.equal(readFileSync(CLI, 'utf8').split('\n')[0], '#!/usr/bin/env node');
  const r = await cliProcess(['--version']);
  t.same(r, { code: 0, signal: null, stdout: 'hashwall-signer 0.1.0\n', stderr: '' });
});

t.test('exit codes and the split of stdout and stderr, as a shell sees them', async (t) => {
  const help = await cliProcess(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: hashwall-signer COMMAND/);
  t.equal(help.stderr, '');
  const bare = await cliProcess([]);
  t.equal(bare.code, 2, 'no command is a usage error');
  t.equal(bare.stdout, help.stdout, 'and prints the help');

  const unknown = await cliProcess(['nonesuch']);
  t.equal(unknown.code, 2);
  t.equal(unknown.stdout, '');
  t.match(unknown.stderr, /^hashwall-signer: USAGE: unknown command "nonesuch"/);

  const dir = tempDir(t);
  const key = vectorListKey(dir);
  const build = (source: string, serial: number) =>
    cliProcess(buildArgs(source, key, serial, join(dir, `f${serial}.hwl`)));
  const warned = await build(writeSource(dir, 's.txt', 'domain a.example\ndomain a.example\n'), 1);
  t.equal(warned.code, 0, warned.stderr);
  t.match(warned.stdout, /^built demo serial 1: 1 entries/, 'the result on stdout');
  t.match(warned.stderr, /s\.txt:2: warning: /, 'warnings on stderr');
  t.notMatch(warned.stdout, /s\.txt:2/, 'and not on stdout');

  const missing = await build(join(dir, 'absent.txt'), 2);
  t.equal(missing.code, 3, 'a file that cannot be read is an I/O error');
  t.equal(missing.stdout, '');
  t.match(missing.stderr, /^hashwall-signer build: IO: /);

  const bad = await build(writeSource(dir, 'bad.txt', 'domain\n'), 3);
  t.equal(bad.code, 2, 'a bad source is an input error');
  t.match(bad.stderr, /bad\.txt:1: /);

  const alice = fixtureKey(dir, 'alice');
  const rel = join(dir, 'release');
  const published = await cliProcess(['publish', join(dir, 'f1.hwl'), '--dir', rel, '--key', alice.key, '--now', NOW]);
  t.equal(published.code, 0, published.stderr);
  const bob = fixtureKey(dir, 'bob');
  const refused = await cliProcess(['verify', rel, '--pub', bob.pub, '--now', NOW]);
  t.equal(refused.code, 1, "a release bob's key did not sign fails verification");
  const rollback = await cliProcess(['publish', join(dir, 'f1.hwl'), '--dir', rel, '--key', alice.key, '--now', NOW]);
  t.equal(rollback.code, 1, 'publishing the same serial again is refused');
  t.match(rollback.stderr, /ROLLBACK/);
});

t.test("relative paths resolve against the process's working directory", async (t) => {
  const dir = tempDir(t);
  copyFixture('signer/sample-source.txt', dir, 'source.txt');
  vectorListKey(dir);
  const r = await cliProcess(
    ['build', 'source.txt', '--list-key', 'vector.listkey', '--list-id', 'demo', '--serial', '1', '--out', 'o.hwl'],
    { cwd: dir },
  );
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /-> o\.hwl/, 'named as given');
  t.ok(statSync(join(dir, 'o.hwl')).isFile(), 'written in the working directory');
});

t.test(
  'at a password prompt on a terminal, Ctrl-C exits 130 and writes nothing',
  { skip: needTool('script') },
  async (t) => {
    const dir = tempDir(t);
    const interrupted = await cliOnPty(dir, ['keygen', '--out', 'r'], [['Password for the new key: ', 'abc\u0003']]);
    t.equal(interrupted.code, 130, interrupted.out);
    t.match(interrupted.out, /INTERRUPTED/);
    t.notMatch(interrupted.out, 'abc', 'what was typed is not echoed');
    t.throws(() => statSync(join(dir, 'r.key')), 'nothing written');
  },
);
