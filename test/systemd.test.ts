// The shipped units must pass systemd-analyze verify, and the daemon's exposure score must stay low.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import t from 'tap';

import { needTool } from './helpers/tools.ts';

const run = promisify(execFile);
const dir = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'systemd');
const skip = needTool('systemd-analyze');
const analyze = 'systemd-analyze';

for (const unit of [
  'hashwalld.service',
  'hashwall-heartbeat.service',
  'hashwall-heartbeat.timer',
  'hashwall-witness.service',
]) {
  t.test(`${unit} passes systemd-analyze verify`, { skip }, async (t) => {
    const { stdout, stderr } = await run(analyze, ['verify', join(dir, unit)], { timeout: 30000 });
    t.equal(`${stdout}${stderr}`.trim(), '', 'no warnings');
  });
}
for (const [unit, max] of [
  ['hashwalld.service', 2.5],
  ['hashwall-heartbeat.service', 1.5],
  ['hashwall-witness.service', 2.0],
] as const) {
  t.test(`${unit} keeps its exposure score at or below ${max}`, { skip }, async (t) => {
    const { stdout } = await run(analyze, ['security', '--offline=true', join(dir, unit)], { timeout: 30000 });
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(stdout);
    t.ok(m, 'a score was printed');
    t.ok(Number(m?.[1]) <= max, `score ${m?.[1]}`);
  });
}
