// The Prometheus alert rules and the Grafana dashboard in examples/: promtool checks the rules and runs their unit
// tests, every dashboard query parses, and the alerts, the dashboard and docs/isp.md only name metrics the daemon
// exports (and the docs name every one of them and every alert).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';
import { parse } from 'yaml';

import type { ListStats } from '../daemon/dist/lists/types.js';
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
  // A daemon that counts cache evictions, a readiness check, workers and a PROXY header: the metrics registered only
  // then are listed too.
  metrics.attachDaemon({
    inFlight: () => 0,
    cacheSize: () => 0,
    cacheBytes: () => 0,
    upstreamHealth: () => [],
    cacheEvictions: () => 0,
  });
  metrics.attachReadiness(() => true);
  metrics.attachWorkers(() => 0);
  metrics.proxyHeader('udp', 'proxied');
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

/** A list's figures as the list registry gives them: in force, polled, with these refusals. */
function listStats(id: string, rejections: Record<string, number>): ListStats {
  return {
    id,
    enforced: true,
    origin: 'network',
    entries: 10,
    serial: 1,
    seq: 1,
    fullExpires: 2_000_000_000,
    indexExpires: 2_000_000_000,
    minPollSeconds: 900,
    lastAttemptAt: 1_800_000_000,
    lastSuccessAt: 1_800_000_000,
    lastUpdateAt: 1_800_000_000,
    stale: false,
    expired: false,
    consecutiveFailures: 0,
    outcomes: { updated: 1, heartbeat: 0, unchanged: 0, 'not-modified': 0, held: 0, rejected: 0 },
    rejections,
    deltaFallbacks: 0,
    storeUnusable: 0,
    heldSerial: null,
    exemptedEntries: 0,
    keyringVersion: null,
    keyringExpires: null,
    logSize: null,
    splitViews: 0,
  };
}

/**
 * promtool input series from one exposition text per minute: every sample line's series (with `extra` labels, as
 * Prometheus adds them to what it scrapes), its value each minute, `_` where a scrape did not have it.
 */
function promtoolSeries(
  minutes: readonly string[],
  extra: Record<string, string>,
): { series: string; values: string }[] {
  const add = Object.entries(extra)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const bySeries = new Map<string, string[]>();
  minutes.forEach((text, i) => {
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const at = line.lastIndexOf(' ');
      const key = line.slice(0, at);
      const series = key.includes('{') ? key.replace(/}$/, `,${add}}`) : `${key}{${add}}`;
      const values = bySeries.get(series) ?? Array<string>(minutes.length).fill('_');
      values[i] = line.slice(at + 1);
      bySeries.set(series, values);
    }
  });
  return [...bySeries].map(([series, values]) => ({ series, values: values.join(' ') }));
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
    'HashwallAbsent',
    'HashwallCanaryFailing',
    'HashwallDown',
    'HashwallInFlightCap',
    'HashwallKeyringExpiring',
    'HashwallListExpired',
    'HashwallListHeld',
    'HashwallListKeyringRefused',
    'HashwallListLogRefused',
    'HashwallListNotEnforced',
    'HashwallListPollsFailing',
    'HashwallListRejected',
    'HashwallListSplitView',
    'HashwallListStale',
    'HashwallNoValidList',
    'HashwallNotReady',
    'HashwallReloadFailed',
    'HashwallRestarted',
    'HashwallServfailRatio',
    'HashwallUpstreamDown',
    'HashwallUpstreamErrors',
    'HashwallWorkerRestarts',
  ]);
});

t.test(
  'on the series the daemon exports, the first refusal and the first refused reload alert',
  { skip },
  async (t) => {
    // The daemon's own exposition, before and after, scraped once a minute by a Prometheus that adds instance and
    // job: whatever labels and series the metrics code gives is what the rules see.
    let rejections: Record<string, number> = {};
    const metrics = new Metrics({ processMetrics: false });
    metrics.attachLists({ stats: () => [listStats('demo', rejections)] });
    const before = await metrics.text();
    t.match(before, /hashwall_list_updates_total\{list="demo",outcome="ROLLBACK"\} 0/, 'every refusal code from 0');
    rejections = { ROLLBACK: 1 };
    metrics.reloadOutcome('invalid');
    const after = await metrics.text();
    const dir = mkdtempSync(join(tmpdir(), 'hw-alerts-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'exported.test.yml');
    const minutes = [...Array<string>(5).fill(before), ...Array<string>(3).fill(after)];
    writeFileSync(
      file,
      JSON.stringify({
        rule_files: [rulesFile],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: promtoolSeries(minutes, { instance: 'a', job: 'hashwall' }),
            alert_rule_test: [
              { eval_time: '4m', alertname: 'HashwallListRejected', exp_alerts: [] },
              {
                eval_time: '6m',
                alertname: 'HashwallListRejected',
                exp_alerts: [
                  {
                    exp_labels: {
                      severity: 'critical',
                      instance: 'a',
                      job: 'hashwall',
                      list: 'demo',
                      outcome: 'ROLLBACK',
                    },
                    exp_annotations: {
                      summary: 'list demo on a: a mirror served a list refused with ROLLBACK',
                      description:
                        'The refused list was not enforced; the last verified one stays in force. Tell the list ' +
                        'maintainer. See docs/isp.md#hashwalllistrejected.',
                    },
                  },
                ],
              },
              { eval_time: '4m', alertname: 'HashwallReloadFailed', exp_alerts: [] },
              {
                eval_time: '6m',
                alertname: 'HashwallReloadFailed',
                exp_alerts: [
                  {
                    exp_labels: { severity: 'warning', instance: 'a', job: 'hashwall', outcome: 'invalid' },
                    exp_annotations: {
                      summary: 'hashwalld on a: a configuration reload was refused (invalid)',
                      description: 'The running configuration stays in force. See docs/isp.md#hashwallreloadfailed.',
                    },
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
    const r = await promtool(['test', 'rules', file], dir);
    t.equal(r.code, 0, r.out);
  },
);

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
