/**
 * The Debian tools the tests call where they check us from outside (`minisign`, `kdig`, `dig`, `promtool`,
 * `systemd-analyze`, util-linux's `script`). On a developer's machine a missing tool skips the tests that need it,
 * with a note saying which package brings it. Under `CI=true` a missing tool fails instead: `.ci/run` installs every
 * one of them (its PKGS list), so a skip there would only hide a test that never ran.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

import t from 'tap';

/** Every tool a test calls, with the Debian package that installs it (keep `.ci/run`'s PKGS in step). */
const TOOLS = {
  minisign: 'minisign',
  kdig: 'knot-dnsutils',
  dig: 'bind9-dnsutils',
  promtool: 'prometheus',
  'systemd-analyze': 'systemd',
  script: 'util-linux',
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
