// The witness's unit must pass systemd-analyze verify and keep its exposure score at or below 2.0.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import t from 'tap';

const run = promisify(execFile);
const unit = fileURLToPath(new URL('../../systemd/hashwall-witness.service', import.meta.url));
const analyze = '/usr/bin/systemd-analyze';

if (!existsSync(analyze)) {
  t.plan(0, 'systemd-analyze is not installed (Debian package systemd)');
} else {
  t.test('hashwall-witness.service passes systemd-analyze verify', async (t) => {
    const { stdout, stderr } = await run(analyze, ['verify', unit], { timeout: 30000 });
    t.equal(`${stdout}${stderr}`.trim(), '', 'no warnings');
  });
  t.test('hashwall-witness.service keeps its exposure score at or below 2.0', async (t) => {
    const { stdout } = await run(analyze, ['security', '--offline=true', unit], { timeout: 30000 });
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(stdout);
    t.ok(m, 'a score was printed');
    t.ok(Number(m?.[1]) <= 2.0, `score ${m?.[1]}`);
  });
}
