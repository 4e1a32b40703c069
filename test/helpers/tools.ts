/**
 * The Debian tools the tests call where they check us from outside (`minisign`, `kdig`, `dig`, `delv`, `nsd`,
 * `dnssec-keygen`, `dnssec-signzone`, `promtool`, `systemd-analyze`, util-linux's `script`, `openssl`, `curl`,
 * `dnsdist`, nghttp2-client's `nghttp` and `h2load`). On a developer's machine a missing tool skips the tests that
 * need it, with a note saying which package brings it. Under `CI=true` a missing tool fails instead: `.ci/run`
 * installs every one of them (its PKGS list), so a skip there would only hide a test that never ran.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

import t from 'tap';

/** Every tool a test calls, with the Debian package that installs it (keep `.ci/run`'s PKGS in step). */
const TOOLS = {
  minisign: 'minisign',
  kdig: 'knot-dnsutils',
  dig: 'bind9-dnsutils',
  delv: 'bind9-dnsutils',
  nsd: 'nsd',
  'dnssec-keygen': 'bind9-utils',
  'dnssec-signzone': 'bind9-utils',
  promtool: 'prometheus',
  'systemd-analyze': 'systemd',
  script: 'util-linux',
  openssl: 'openssl',
  curl: 'curl',
  dnsdist: 'dnsdist',
  'systemd-notify': 'systemd',
  python3: 'python3',
  nghttp: 'nghttp2-client',
  h2load: 'nghttp2-client',
} as const;

export type ToolName = keyof typeof TOOLS;

/** True when CI runs the suite (`CI=true`, as CI services and `.ci/run` set it). */
const inCi = (): boolean => process.env.CI === 'true' || process.env.CI === '1';

/** The path of an executable `name` on PATH, or undefined. */
function findTool(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

const reported = new Set<ToolName>();

/**
 * What a test that needs `name` passes as tap's `skip` option: false when the tool is installed; otherwise the
 * reason to skip, and under CI a failure of the test file (once per tool) saying what is missing.
 */
export function needTool(name: ToolName): string | false {
  if (findTool(name) !== undefined) return false;
  const why = `${name} is not installed (Debian package ${TOOLS[name]})`;
  if (inCi() && !reported.has(name)) {
    reported.add(name);
    t.fail(`${why}: CI installs every tool the tests use (.ci/run), so none may be skipped`);
  }
  return why;
}

/** What a tool printed, and its exit code. */
export interface ToolRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the stock `minisign` with a deadline, feeding `input` (for example a password line) on stdin. Rejects when
 * it could not run or was killed at the deadline; resolves with its exit code otherwise.
 */
export function minisign(args: readonly string[], input = '', timeoutMs = 60_000): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = execFile('minisign', [...args], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) return resolve({ code: 0, stdout, stderr });
      if (err.killed || typeof err.code !== 'number') {
        return reject(new Error(`minisign ${args.join(' ')}: ${err.message}`, { cause: err }));
      }
      resolve({ code: err.code, stdout, stderr });
    });
    // minisign may exit before reading stdin (for example when it needs no password): ignore EPIPE there.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

/**
 * The file and arguments that run `file` as a user would, without the test runner's NODE_OPTIONS: tap adds its
 * process-info hook (which tracks coverage, not collected here) to every process a test starts, and in a Node
 * process that hook costs about half a second of CPU at start, and more in every worker thread, more than most
 * scripts' own start. Taking NODE_OPTIONS out of the environment passed to spawn() is not enough: the hook wraps
 * spawn() itself and puts itself back; `env -u` removes it after that, and execs the command in the same process.
 */
export function plainCommand(file: string, args: readonly string[] = []): [file: string, args: string[]] {
  return ['env', ['-u', 'NODE_OPTIONS', file, ...args]];
}

/** As plainCommand, for `node script args...` with this process's Node. */
export function plainNode(script: string, args: readonly string[] = []): [file: string, args: string[]] {
  return plainCommand(process.execPath, [script, ...args]);
}

/** The fork() options that start the child through `env -u NODE_OPTIONS` (see plainCommand), with no execArgv. */
export function plainFork(): { execPath: string; execArgv: string[] } {
  return { execPath: 'env', execArgv: ['-u', 'NODE_OPTIONS', process.execPath] };
}

/**
 * The text of a preload (`node --import FILE ...`) that says on stderr, as the process ends, whether Node loaded its
 * bundled undici: `undici loaded: true` or `false`. Under Node 24 an ES-module import of node:http loads it
 * (daemon/src/util/http.ts); the daemon's and the witness's starts must not.
 */
export const UNDICI_AT_EXIT = `process.on('exit', () => {
  const loaded = process.moduleLoadList.includes('NativeModule internal/deps/undici/undici');
  process.stderr.write('undici loaded: ' + loaded + '\\n');
});
`;
