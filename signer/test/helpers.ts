// Shared test helpers: temp dirs, the built CLI (in process, or as a child process on a pipe or a pseudo-terminal),
// test keys, a static HTTP server, minisign.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize, sep } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import type { Test } from 'tap';

import { plainNode } from '../../test/helpers/tools.ts';
import type { Io } from '../dist/cli-support.js';
import { main } from '../dist/main.js';

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));
export const SIGNER_FIXTURES = join(FIXTURES, 'signer');

/** 2026-11-22T06:00:00Z: SPEC.md's example time. */
export const T0 = Date.UTC(2026, 10, 22, 6, 0, 0) / 1000;

export function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** A fresh temp dir in `base` (MEMORY_TMP for one written to many times), removed when the test ends. */
export function tempDir(t: Test, prefix = 'hashwall-signer-', base = tmpdir()): string {
  const dir = mkdtempSync(join(base, prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** The working directory (default: the test's). */
  readonly cwd?: string;
  /** The environment, besides PATH (nothing else of the test's own is passed on). */
  readonly env?: NodeJS.ProcessEnv;
  /** What stdin holds (not a terminal). */
  readonly input?: string;
  readonly timeoutMs?: number;
}

/**
 * Runs `hashwall-signer ...args` in this process: the dispatcher cli.ts runs (main.ts), with an Io that captures
 * stdout and stderr and gives the command `options`' stdin, environment and working directory, as the executable
 * would get them from its process. cliProcess runs the executable itself (a child process, as a user would) for
 * what only a process shows: exit codes, the shebang, real pipes and terminals.
 */
export async function cli(args: readonly string[], options: CliOptions = {}): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: Io = {
    out: (line) => stdout.push(`${line}\n`),
    err: (line) => stderr.push(`${line}\n`),
    errText: (text) => stderr.push(text),
    stdin: Readable.from([Buffer.from(options.input ?? '')]),
    env: { PATH: process.env.PATH, ...options.env },
    cwd: options.cwd ?? process.cwd(),
    now: () => Math.floor(Date.now() / 1000),
  };
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`hashwall-signer ${args.join(' ')}: no exit within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    const code = await Promise.race([main(args, io), deadline]);
    return { code, signal: null, stdout: stdout.join(''), stderr: stderr.join('') };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `node signer/dist/cli.js ...args` with a deadline, as a user would (plainNode: none of tap's hooks). */
export function cliProcess(args: readonly string[], options: CliOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      ...plainNode(CLI, args),
      {
        cwd: options.cwd,
        env: { PATH: process.env.PATH, ...options.env },
        timeout: options.timeoutMs ?? 60_000,
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number' && !err.killed && err.signal == null)
          return reject(new Error(err.message, { cause: err }));
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
          signal: err?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}

/**
 * Runs the executable on a pseudo-terminal (util-linux's `script`) in `dir`, answering each prompt as it appears:
 * `answers` are [prompt, what to type] pairs. Resolves with the exit code and everything the terminal showed.
 */
export function cliOnPty(
  dir: string,
  args: readonly string[],
  answers: [string, string][],
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const cmd = plainNode(CLI, args)
      .flat()
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ');
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit within 60 s: ${JSON.stringify(out)}`));
    }, 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const next = answers[0];
      if (next && out.includes(next[0])) {
        answers.shift();
        child.stdin.write(next[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** Starts the CLI without waiting (for the crash tests). */
export function spawnCli(args: readonly string[], cwd?: string): ChildProcess {
  return spawn(...plainNode(CLI, args), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Copies a fixture file into `dir` with mode 0600 (git does not keep modes; secrets must not warn). */
export function copyFixture(from: string, dir: string, name?: string): string {
  const to = join(dir, name ?? from.split('/').pop()!);
  copyFileSync(join(FIXTURES, from), to);
  chmodSync(to, 0o600);
  return to;
}

/** The minisign fixture keys (made by the stock minisign binary, unencrypted): alice, bob, carol. */
export interface TestKey {
  readonly key: string;
  readonly pub: string;
  readonly keyId: string;
  /** The bare `RW...` public key string for `minisign -P`. */
  readonly pubString: string;
}

export function fixtureKey(dir: string, name: 'alice' | 'bob' | 'carol'): TestKey {
  const key = copyFixture(`minisign/${name}.key`, dir);
  const pub = copyFixture(`minisign/${name}.pub`, dir);
  const info = JSON.parse(readFileSync(join(FIXTURES, 'minisign/fixtures.json'), 'utf8')) as {
    keys: Record<string, { keyId: string; publicKey: string }>;
  };
  return { key, pub, keyId: info.keys[name]!.keyId, pubString: info.keys[name]!.publicKey };
}

/** SPEC.md 1.3's vector key (32 bytes of 0x0b) as a list key file with id demo-2026a. */
export function vectorListKey(dir: string): string {
  const path = join(dir, 'vector.listkey');
  writeFileSync(path, `hwl1-list-key\nhash-key-id: demo-2026a\nhash-key: ${'0b'.repeat(32)}\n`, { mode: 0o600 });
  return path;
}

/** Writes a source file. */
export function writeSource(dir: string, name: string, text: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The command line that builds `source` into a FULL of list demo at `out`. */
export function buildArgs(source: string, listKey: string, serial: number, out: string, created = T0): string[] {
  return [
    'build',
    source,
    '--list-key',
    listKey,
    '--list-id',
    'demo',
    '--serial',
    String(serial),
    '--created',
    iso(created),
    '--out',
    out,
  ];
}

/** Builds a FULL with the CLI, failing the test on a non-zero exit. */
export async function buildFull(
  t: Test,
  dir: string,
  source: string,
  listKey: string,
  serial: number,
  out: string,
  created = T0,
  extra: string[] = [],
): Promise<string> {
  const r = await cli([...buildArgs(source, listKey, serial, out, created), ...extra]);
  t.equal(r.code, 0, `build serial ${serial}: ${r.stderr}`);
  return out;
}

/** A static file server over `root` on 127.0.0.1 (port 0): what a CDN origin would be. */
export async function staticServer(t: Test, root: string): Promise<string> {
  const srv = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = normalize(join(root, decodeURIComponent(url.pathname)));
    if (!path.startsWith(root + sep) || url.pathname.split('/').some((p) => p.startsWith('.'))) {
      res.statusCode = 404;
      res.end();
      return;
    }
    stat(path)
      .then(async (st) => {
        if (!st.isFile()) throw new Error('not a file');
        const body = await readFile(path);
        res.setHeader('content-length', body.length);
        res.end(body);
      })
      .catch(() => {
        res.statusCode = 404;
        res.end();
      });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  );
  const { port } = srv.address() as AddressInfo;
  return `http://127.0.0.1:${port}/`;
}

export { minisign } from '../../test/helpers/tools.ts';

/** The time the release tests publish and verify at: an hour after the FULLs were built. */
export const NOW = iso(T0 + 3600);

/** Every file of a release directory (relative), sorted. */
export function files(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ['', 'full/', 'delta/']) {
    if (!existsSync(join(dir, sub))) continue;
    for (const e of readdirSync(join(dir, sub), { withFileTypes: true })) if (e.isFile()) out.push(sub + e.name);
  }
  return out.sort();
}

export function dataFiles(dir: string): string[] {
  return files(dir).filter((f) => !f.endsWith('.minisig') && !f.startsWith('.'));
}

/** A temp dir with the sample source, the vector list key, alice's and bob's keys, and a release dir. */
export interface World {
  dir: string;
  rel: string;
  listKey: string;
  alice: TestKey;
  bob: TestKey;
  source: string;
}

export function world(t: Test): World {
  const dir = tempDir(t);
  const source = copyFixture('signer/sample-source.txt', dir, 'source.txt');
  return {
    dir,
    rel: join(dir, 'release'),
    listKey: vectorListKey(dir),
    alice: fixtureKey(dir, 'alice'),
    bob: fixtureKey(dir, 'bob'),
    source,
  };
}

/** Adds a line to the source, builds and publishes (as alice) each serial in turn. */
export async function publishSerials(t: Test, w: World, serials: number[]): Promise<void> {
  for (const serial of serials) {
    appendFileSync(w.source, `domain added-${serial}.example\n`);
    const full = await buildFull(t, w.dir, w.source, w.listKey, serial, join(w.dir, `f${serial}.hwl`));
    const r = await cli(['publish', full, '--dir', w.rel, '--key', w.alice.key, '--now', NOW]);
    t.equal(r.code, 0, `publish ${serial}: ${r.stderr}`);
  }
}
