/**
 * The shipped units: systemd-analyze verify passes, the daemon's exposure score stays at or below 2.0, and what
 * hashwalld.service asks of the daemon is what the daemon does. Its ExecStartPre and ExecReload command lines run
 * here as systemd runs them (in order, the first failure ends the reload), against the built daemon: an invalid
 * config fails the reload with exit 2 and nothing is signalled, a valid one is applied. (systemd itself cannot run
 * the unit in this test environment; daemon/test/systemd-notify.test.ts checks the notifications.)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import t from 'tap';

import { shippedEnv, shippedFlags } from '../bench/lib/shipped.mjs';
import { startChild } from '../daemon/test/helpers/child.ts';
import { needTool } from './helpers/tools.ts';
import { HANG_MS } from './helpers/within.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const dir = join(root, 'systemd');
const skip = needTool('systemd-analyze');
const analyze = 'systemd-analyze';

/** The unit's [Service] settings: every value of each key, in order. */
function settings(unit: string): Map<string, string[]> {
  const text = readFileSync(join(dir, unit), 'utf8').replace(/\\\n\s*/g, ' ');
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

/** A unit's command line as it runs from this checkout: node, the checkout and `config` for the installed paths. */
function local(command: string, config: string, mainPid = 0): string[] {
  return command
    .replaceAll('/opt/hashwall', root)
    .replaceAll('/etc/hashwall/hashwalld.yaml', config)
    .replaceAll('$MAINPID', String(mainPid))
    .split(/\s+/)
    .map((w, i) => (i === 0 && w === '/usr/bin/node' ? process.execPath : w));
}

async function runLine(argv: string[]): Promise<number> {
  try {
    await run(argv[0]!, argv.slice(1), { timeout: 30000 });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

t.test('hashwalld.service asks for what the daemon does', async (t) => {
  const s = settings('hashwalld.service');
  t.same(s.get('Type'), ['notify'], 'readiness from sd_notify');
  t.same(s.get('NotifyAccess'), ['all'], 'the daemon notifies through systemd-notify, a child process');
  t.match(s.get('ExecStartPre'), [/main\.js --config \S+ --check$/], 'the config is checked before the start');
  t.match(s.get('ExecReload'), [/main\.js --config \S+ --check$/, /^\/bin\/kill -HUP \$MAINPID$/]);
  t.same(s.get('RestartPreventExitStatus'), ['2'], 'a config or listen error (exit 2) is not restarted');
  t.same(s.get('Restart'), ['on-abnormal'], 'nor is a failed ExecStartPre, which RestartPreventExitStatus= misses');
  t.same(s.get('RestartForceExitStatus'), ['1'], "a crash (Node's exit status 1) is");
  t.match(s.get('MemoryMax'), [/^\d+M$/]);
  t.match(s.get('TasksMax'), [/^\d+$/]);
  t.notOk(s.has('ReloadSignal'), 'Type=notify, not notify-reload (systemd 253): Debian 12 has 252');
});

t.test('the unit runs the daemon as the hashwalld command does', async (t) => {
  // The command's first line, `#!/usr/bin/env -S NAME=VALUE ... node FLAGS`, as bench/lib/shipped.mjs reads it
  // (test/bench-tools.test.ts checks that reading against the line).
  const shebang = readFileSync(join(root, 'daemon', 'src', 'main.ts'), 'utf8').split('\n', 1)[0]!;
  t.match(shebang, /^#!\/usr\/bin\/env -S (\S+=\S+ )*node /, `the first line runs node: ${shebang}`);
  const env = Object.entries(shippedEnv)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  const flags = shippedFlags;
  t.ok(flags.length > 0 && env.length > 0, 'the first line sets V8 flags and the environment');
  const s = settings('hashwalld.service');
  t.same([...(s.get('Environment') ?? [])].flatMap((v) => v.split(/\s+/)).sort(), env, 'the same environment');
  const start = s.get('ExecStart')![0]!.split(/\s+/);
  t.same(start.slice(1, 1 + flags.length), flags, 'the same node flags, before main.js');
  t.match(start[1 + flags.length], /\/daemon\/dist\/main\.js$/);
});

t.test("the unit's ExecStartPre and ExecReload lines, as systemd runs them", async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'hw-unit-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const config = join(work, 'hashwalld.yaml');
  const good = `listen: ['127.0.0.1:0']\nupstreams: ['127.0.0.1:9']\nstateDir: ${join(work, 'state')}\nmetrics:\n  listen: ''\n`;
  writeFileSync(config, good);
  const s = settings('hashwalld.service');
  t.equal(await runLine(local(s.get('ExecStartPre')![0]!, config)), 0, 'ExecStartPre passes a valid config');

  const child = startChild(config);
  t.teardown(() => child.stop());
  t.ok(await child.waitFor((l) => l.msg === 'listening for DNS', HANG_MS), 'the daemon runs');
  const pid = child.proc.pid!;
  /** ExecReload: each line in order; the first that fails fails the reload (systemctl reload exits non-zero). */
  const reload = async (): Promise<number> => {
    for (const line of s.get('ExecReload')!) {
      const code = await runLine(local(line, config, pid));
      if (code !== 0) return code;
    }
    return 0;
  };

  writeFileSync(config, 'workers: many\n');
  t.equal(await runLine(local(s.get('ExecStartPre')![0]!, config)), 2, 'ExecStartPre fails an invalid config (exit 2)');
  t.equal(await reload(), 2, 'systemctl reload of an invalid config fails');
  t.notOk(
    child.lines.some((l) => String(l.msg).startsWith('reload')),
    'and the daemon was not even signalled: it runs the previous config',
  );

  writeFileSync(config, good.replace("upstreams: ['127.0.0.1:9']", "upstreams: ['127.0.0.1:10']"));
  t.equal(await reload(), 0, 'a valid config reloads');
  t.ok(await child.waitFor((l) => l.msg === 'configuration reloaded', HANG_MS), 'and the daemon applied it');
});

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
  ['hashwalld.service', 2.0],
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
