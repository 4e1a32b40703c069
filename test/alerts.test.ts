// The Prometheus alert rules and the Grafana dashboard in examples/: promtool checks the rules and runs their unit
// tests, every dashboard query parses, and the alerts, the dashboard and docs/isp.md only name metrics the daemon
// exports (and the docs name every one of them and every alert).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';
import { parse } from 'yaml';

import { Metrics } from '../daemon/dist/ops/metrics.js';
import { needTool } from './helpers/tools.ts';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const rulesFile = join(root, 'examples', 'prometheus', 'hashwall-alerts.yml');
const rulesTest = join(root, 'examples', 'prometheus', 'hashwall-alerts.test.yml');
const dashboardFile = join(root, 'examples', 'grafana', 'hashwall.json');
const ispDoc = join(root, 'docs', 'isp.md');

function promtool(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('promtool', args, { cwd, timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: `${stdout}${stderr}` });
    });
  });
}

interface Rule {
  alert?: string;
  expr: string;
}

const rules = (parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
);
const alerts = rules.flatMap((r) => (r.alert ? [r.alert] : []));

interface Panel {
  title?: string;
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { uid: string; panels: Panel[] };
/** Every query of the dashboard, with Grafana's variables replaced by values PromQL accepts. */
const queries = dashboard.panels.flatMap((p) =>
  (p.targets ?? []).map((q) => ({
    panel: p.title ?? '',
    expr: q.expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*'),
  })),
);

/** The metric names the daemon exports (histogram series included). */
async function exported(): Promise<Set<string>> {
  const names = new Set<string>();
  const metrics = new Metrics({ processMetrics: false });
  // A daemon that counts cache evictions, a readiness check and a PROXY header: the metrics registered only then are
  // listed too.
  metrics.attachDaemon({
    inFlight: () => 0,
    cacheSize: () => 0,
    cacheBytes: () => 0,
    upstreamHealth: () => [],
    cacheEvictions: () => 0,
  });
  metrics.attachReadiness(() => true);
  metrics.proxyHeader('udp', 'proxied');
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

const namesIn = (text: string): string[] => [...new Set(text.match(/\bhashwall_[a-z_]+\b/g) ?? [])];

const skip = needTool('promtool');

t.test('promtool check rules accepts the alert rules', { skip }, async (t) => {
  const r = await promtool(['check', 'rules', rulesFile], root);
  t.equal(r.code, 0, r.out);
  t.match(r.out, `SUCCESS: ${rules.length} rules found`);
});

t.test('promtool test rules: every alert fires when it should and not before', { skip }, async (t) => {
  const r = await promtool(['test', 'rules', rulesTest], join(root, 'examples', 'prometheus'));
  t.equal(r.code, 0, r.out);
  const tested = new Set(
    (parse(readFileSync(rulesTest, 'utf8')) as { tests: { alert_rule_test: { alertname: string }[] }[] }).tests
      .flatMap((x) => x.alert_rule_test)
      .map((x) => x.alertname),
  );
  t.same(
    alerts.filter((a) => !tested.has(a)),
    [],
    'each alert has a unit test',
  );
  t.same(alerts.sort(), [
    'HashwallCanaryFailing',
    'HashwallListExpired',
    'HashwallListPollsFailing',
    'HashwallListRejected',
    'HashwallListStale',
    'HashwallNoValidList',
    'HashwallNotReady',
    'HashwallServfailRatio',
    'HashwallUpstreamDown',
    'HashwallUpstreamErrors',
  ]);
});

t.test('every dashboard query parses as PromQL', { skip }, async (t) => {
  t.ok(queries.length >= 20, `${queries.length} queries`);
  const dir = mkdtempSync(join(tmpdir(), 'hw-dash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dashboard-rules.yml');
  const group = {
    groups: [{ name: 'dashboard', rules: queries.map((q, i) => ({ record: `dashboard:query${i}`, expr: q.expr })) }],
  };
  writeFileSync(file, JSON.stringify(group));
  const r = await promtool(['check', 'rules', file], dir);
  t.equal(r.code, 0, r.out);
});

t.test('the alerts, the dashboard and the docs name only exported metrics', async (t) => {
  const names = await exported();
  const unknown = (text: string): string[] => namesIn(text).filter((n) => !names.has(n));
  t.same(unknown(rules.map((r) => r.expr).join('\n')), [], 'alerts');
  t.same(unknown(queries.map((q) => q.expr).join('\n')), [], 'dashboard');
  const doc = readFileSync(ispDoc, 'utf8');
  t.same(unknown(doc), [], 'docs/isp.md');
  const documented = new Set(namesIn(doc));
  t.same(
    [...names].filter((n) => !/_(bucket|sum|count)$/.test(n) && !documented.has(n)),
    [],
    'docs/isp.md names every metric',
  );
  t.same(
    alerts.filter((a) => !doc.includes(`### ${a}`)),
    [],
    'docs/isp.md explains every alert under its own heading',
  );
  for (const panel of ['Block rate by list', 'Cache hit ratio', 'Upstream latency', 'Upstream errors', 'Canary']) {
    t.ok(
      dashboard.panels.some((p) => p.title === panel),
      `the dashboard has "${panel}"`,
    );
  }
});
