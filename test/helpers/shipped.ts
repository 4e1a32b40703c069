// Whether a running hashwalld was started as the `hashwalld` command starts it: the node flags and the environment
// of the command's first line (bench/lib/shipped.mjs reads them), seen from /proc. The demo and the fleet example
// start the daemon with `node` themselves and must pass both.
import { existsSync, readFileSync } from 'node:fs';

import type { Test } from 'tap';

import { shippedEnv, shippedFlags } from '../../bench/lib/shipped.mjs';

/** Why a check of these cannot run here (no Linux /proc with task children), or false. */
export const noProc: string | false = existsSync(`/proc/${process.pid}/task/${process.pid}/children`)
  ? false
  : 'no /proc/PID/task/PID/children here';

/** Process `pid`'s argv, and where hashwalld's main.js is in it (-1: not there). */
export function commandOf(pid: number): { argv: string[]; script: number } {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  return { argv, script: argv.findIndex((a) => a.endsWith('main.js')) };
}

/** Checks process `pid`'s argv (the flags before its script) and environment (skip the test with `noProc`). */
export function runsAsShipped(t: Test, pid: number): void {
  const { argv, script } = commandOf(pid);
  t.ok(script > 0, `process ${pid} runs hashwalld's main.js`);
  t.same(argv.slice(1, script), shippedFlags, "the command's node flags, before the script");
  const environ = environOf(pid);
  for (const [name, value] of Object.entries(shippedEnv))
    t.ok(environ.includes(`${name}=${value}`), `${name}=${value}`);
}

/** Process `pid`'s environment, as NAME=VALUE strings. */
export function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
}

/** The child of `parent` that runs hashwalld's main.js (Linux's /proc/PID/task/PID/children), if any. */
export function daemonChild(parent: number): number | undefined {
  return readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .find((pid) => {
      try {
        return commandOf(pid).script >= 0;
      } catch {
        return false; // ended meanwhile
      }
    });
}
