// How hashwalld runs as shipped: the environment and the node flags of main.js's first line (daemon/src/main.ts,
// `#!/usr/bin/env -S NAME=VALUE ... node FLAGS`), which the `hashwalld` command (daemon/bin/hashwalld) reads and runs
// node with, and the systemd unit repeats (test/systemd.test.ts checks that they agree). The bench's tools, the demo
// and the fleet example start the daemon with these, so that what they measure and show is what an operator runs.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'daemon', 'src', 'main.ts');
const words = readFileSync(main, 'utf8')
  .split('\n', 1)[0]
  .replace(/^#!\/usr\/bin\/env -S /, '')
  .split(/\s+/);
const at = words.indexOf('node');
if (at < 0) throw new Error(`${main}: the first line does not run node through env -S`);

/** The node flags (`--max-semi-space-size=2 ...`). @type {string[]} */
export const shippedFlags = words.slice(at + 1);

/** The environment the command sets (MALLOC_ARENA_MAX), as an object. @type {Record<string, string>} */
export const shippedEnv = Object.fromEntries(words.slice(0, at).map((w) => w.split('=', 2)));

/**
 * The process environment with the shipped settings for those it does not set itself (it wins, to compare).
 * @returns {Record<string, string | undefined>}
 */
export function daemonEnv() {
  return { ...shippedEnv, ...process.env };
}
