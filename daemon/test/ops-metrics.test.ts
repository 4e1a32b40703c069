// The metric set after a scripted sequence of queries and list updates, read back from the exposition text with
// exact values; promtool check metrics on the output (our own names must pass its lint).
import { join } from 'node:path';

import { generateListKey } from '@hashwall/format';
import t from 'tap';

import { needTool } from '../../test/helpers/tools.ts';
import { SYNC_ERROR_CODES } from '../dist/lists/types.js';
import { Metrics, QTYPE_NAMES, RCODE_NAMES } from '../dist/ops/metrics.js';
import { ManualClock } from '../dist/util/clock.js';
import { TYPE, query, rcodeOf, tcpAsk, udpAsk } from './helpers/client.ts';
import { until } from './helpers/daemon.ts';
import { parseExposition, promtoolProblemsOfOurs, samplesOf, sampleKey, startOpsDaemon } from './helpers/ops.ts';
import { Clock, ReleaseDir, fullOf, harness, settingsWith, tempDir, within } from './lists/helpers.ts';

const qtypeLabel = (t: number): string => QTYPE_NAMES[t] ?? 'other';
const rcodeLabel = (r: number): string => (r < 0 ? 'dropped' : (RCODE_NAMES[r] ?? 'other'));

t.test('queries, blocks, the cache and the upstream are counted exactly', async (t) => {
  const d = await startOpsDaemon({ config: { blocking: { allowlist: ['ok.allowed.test'] } } });
  t.teardown(() => d.close());
  const expected = new Map<string, number>();
  const sizes = { udp: [] as number[], tcp: [] as number[] };
  const ask = async (transport: 'udp' | 'tcp', name: string, qtype: number): Promise<number> => {
    const msg = query(name, qtype);
    const answer = transport === 'udp' ? await udpAsk(d.port, msg) : ((await tcpAsk(d.port, [msg]))[0] ?? null);
    if (answer === null) throw new Error(`no answer for ${name}`);
    sizes[transport].push(answer.length);
    const rcode = rcodeOf(answer);
    const k = sampleKey('hashwall_queries_total', { transport, qtype: qtypeLabel(qtype), rcode: rcodeLabel(rcode) });
    expected.set(k, (expected.get(k) ?? 0) + 1);
    return rcode;
  };

  t.equal(await ask('udp', 'a.example.test', TYPE.A), 0, 'forwarded');
  t.equal(await ask('udp', 'a.example.test', TYPE.A), 0, 'from the cache');
  t.equal(await ask('tcp', 'a.example.test', TYPE.AAAA), 0, 'forwarded over UDP for a TCP client');
  t.equal(await ask('udp', 'blocked.test', TYPE.A), 3, 'blocked: D');
  t.equal(await ask('udp', 'www.blocked.test', TYPE.A), 3, 'blocked below the D entry');
  t.equal(await ask('tcp', 'host.listed.test', TYPE.TXT), 3, 'blocked: H');
  t.equal(await ask('udp', 'to-blocked.example.test', TYPE.A), 3, 'blocked through a CNAME');
  t.equal(await ask('udp', 'ok.allowed.test', TYPE.A), 0, 'allowlisted over a D entry');
  t.equal(await ask('udp', 'nothing.example.test', TYPE.MX), 3, "the upstream's NXDOMAIN");
  t.equal(await ask('udp', 'a.example.test', TYPE.ANY), 0, 'ANY: forwarded like any type (RFC 8482 4.1)');
  t.equal(await ask('udp', 'a.example.test', 99), 0, 'a type outside the fixed set');
  // A response (QR set) is dropped; a question cut short is answered FORMERR.
  const response = query('x.example.test', TYPE.A);
  response[2]! |= 0x80;
  t.equal(await udpAsk(d.port, response, 300), null, 'a response sent as a query is dropped');
  expected.set(sampleKey('hashwall_queries_total', { transport: 'udp', qtype: 'other', rcode: 'dropped' }), 1);
  const cut = query('x.example.test', TYPE.A).subarray(0, 20);
  const formerr = await udpAsk(d.port, cut);
  t.equal(formerr && rcodeOf(formerr), 1, 'a cut question: FORMERR');
  sizes.udp.push(formerr!.length);
  expected.set(sampleKey('hashwall_queries_total', { transport: 'udp', qtype: 'other', rcode: 'FORMERR' }), 1);

  const s = parseExposition(await d.metrics.text());
  t.same(samplesOf(s, 'hashwall_queries_total'), Object.fromEntries(expected), 'queries by transport, type, rcode');
  t.same(
    samplesOf(s, 'hashwall_answers_total'),
    {
      'hashwall_answers_total{source="blocked"}': 4,
      'hashwall_answers_total{source="steered"}': 0,
      'hashwall_answers_total{source="cache"}': 1,
      'hashwall_answers_total{source="upstream"}': 6,
      'hashwall_answers_total{source="stale"}': 0,
      'hashwall_answers_total{source="local"}': 2,
    },
    'answers by source (the dropped query counts as local)',
  );
  t.same(samplesOf(s, 'hashwall_blocked_queries_total'), {
    'hashwall_blocked_queries_total{list="demo",mode="nxdomain",via="name"}': 3,
    'hashwall_blocked_queries_total{list="demo",mode="nxdomain",via="alias"}': 1,
  });
  t.same(samplesOf(s, 'hashwall_allowlisted_queries_total'), {
    'hashwall_allowlisted_queries_total{list="demo"}': 1,
  });
  t.equal(s.get('hashwall_cache_hits_total'), 1);
  t.equal(s.get('hashwall_cache_misses_total'), 7, 'every forwarded query missed once');
  const up = d.upstream.address;
  t.same(samplesOf(s, 'hashwall_upstream_queries_total'), {
    [sampleKey('hashwall_upstream_queries_total', { upstream: up, transport: 'udp' })]: 7,
    [sampleKey('hashwall_upstream_queries_total', { upstream: up, transport: 'tcp' })]: 0,
  });
  t.same(samplesOf(s, 'hashwall_upstream_answers_total'), {
    [sampleKey('hashwall_upstream_answers_total', { upstream: up, transport: 'udp' })]: 7,
    [sampleKey('hashwall_upstream_answers_total', { upstream: up, transport: 'tcp' })]: 0,
  });
  t.equal(s.get(sampleKey('hashwall_upstream_latency_seconds_count', { upstream: up })), 7, 'seven latencies');
  t.equal(s.get(sampleKey('hashwall_upstream_latency_seconds_bucket', { upstream: up, le: '+Inf' })), 7);
  for (const e of ['timeout', 'malformed', 'unexpected', 'rcode', 'network']) {
    t.equal(s.get(sampleKey('hashwall_upstream_errors_total', { upstream: up, error: e })), 0, `no ${e} error`);
  }
  t.same(samplesOf(s, 'hashwall_malformed_queries_total'), {
    'hashwall_malformed_queries_total{reply="formerr",transport="udp"}': 1,
    'hashwall_malformed_queries_total{reply="drop",transport="udp"}': 1,
    'hashwall_malformed_queries_total{reply="formerr",transport="tcp"}': 0,
    'hashwall_malformed_queries_total{reply="drop",transport="tcp"}': 0,
    'hashwall_malformed_queries_total{reply="formerr",transport="dot"}': 0,
    'hashwall_malformed_queries_total{reply="drop",transport="dot"}': 0,
    'hashwall_malformed_queries_total{reply="formerr",transport="doh"}': 0,
    'hashwall_malformed_queries_total{reply="drop",transport="doh"}': 0,
  });
  t.equal(s.get(sampleKey('hashwall_upstream_up', { upstream: up })), 1);
  t.equal(s.get('hashwall_cache_entries'), d.daemon.cacheSize(), 'cache entries from the daemon');
  t.equal(s.get('hashwall_cache_evictions_total'), 0, 'nothing evicted from a cache this size');
  t.ok(s.get('hashwall_cache_entries')! >= 5, 'the forwarded answers are cached');
  t.equal(s.get('hashwall_inflight_queries'), 0);
  t.equal(s.get('hashwall_upstream_inflight_queries'), 0);
  t.equal(s.get('hashwall_stale_answers_total'), 0);
  t.equal(s.get(sampleKey('hashwall_rate_limited_queries_total', { transport: 'udp', action: 'drop' })), 0);
  t.equal(s.get(sampleKey('hashwall_acl_refused_queries_total', { transport: 'udp', action: 'refuse' })), 0);
  t.equal(s.get(sampleKey('hashwall_build_info', { version: '0.1.0', node: process.versions.node })), 1);
  for (const transport of ['udp', 'tcp'] as const) {
    const n = sizes[transport].length;
    const sum = sizes[transport].reduce((a, b) => a + b, 0);
    const labels = { transport };
    t.equal(s.get(sampleKey('hashwall_response_size_bytes_count', labels)), n, `${transport}: ${n} answers sized`);
    t.equal(s.get(sampleKey('hashwall_response_size_bytes_sum', labels)), sum, `${transport}: their octets`);
    t.equal(
      s.get(sampleKey('hashwall_response_size_bytes_bucket', { transport, le: '512' })),
      sizes[transport].filter((x) => x <= 512).length,
      `${transport}: the 512-octet bucket`,
    );
    t.equal(s.get(sampleKey('hashwall_request_duration_seconds_count', labels)), n, `${transport}: ${n} answers timed`);
    t.equal(
      s.get(sampleKey('hashwall_request_duration_seconds_bucket', { transport, le: '+Inf' })),
      n,
      `${transport}: the +Inf bucket holds them all`,
    );
  }
  t.same(samplesOf(s, 'hashwall_servfail_answers_total'), {
    'hashwall_servfail_answers_total{reason="upstream-failed"}': 0,
    'hashwall_servfail_answers_total{reason="upstream-servfail"}': 0,
    'hashwall_servfail_answers_total{reason="inflight-cap"}': 0,
    'hashwall_servfail_answers_total{reason="alias-overflow"}': 0,
  });
  const leaks = [...s.keys()].filter((k) => /\.test|127\.0\.0\.1|[0-9a-f]{64}/.test(k.replaceAll(up, '')));
  t.same(leaks, [], 'no query name, client address or entry hash in any label');
});

t.test('upstream failures, health and stale answers are counted', async (t) => {
  const clock = new ManualClock();
  const d = await startOpsDaemon({
    clock,
    config: { upstream: { maxTries: 2, failureThreshold: 1 }, cache: { minTtlSeconds: 0 } },
  });
  t.teardown(() => d.close());
  t.equal(rcodeOf((await udpAsk(d.port, query('short.example.test', TYPE.A)))!), 0, 'cached with TTL 2');
  d.upstream.behaviour = 'silent';
  clock.advance(2000);
  const answer = udpAsk(d.port, query('short.example.test', TYPE.A), 5000);
  await until(() => d.upstream.queries.length === 2, 'the first try');
  clock.advance(200);
  await until(() => d.upstream.queries.length === 3, 'the second try');
  clock.advance(200);
  const stale = await answer;
  t.equal(stale && rcodeOf(stale), 0, 'a stale answer after every try timed out');
  const s = parseExposition(await d.metrics.text());
  const up = d.upstream.address;
  t.equal(s.get(sampleKey('hashwall_upstream_errors_total', { upstream: up, error: 'timeout' })), 2, 'two timeouts');
  t.equal(s.get(sampleKey('hashwall_upstream_marked_down_total', { upstream: up })), 1, 'marked down once');
  t.equal(s.get(sampleKey('hashwall_upstream_up', { upstream: up })), 0, 'and down now');
  t.equal(s.get('hashwall_stale_answers_total'), 1);
  t.equal(s.get(sampleKey('hashwall_answers_total', { source: 'stale' })), 1);
});

t.test('SERVFAILs are counted by reason, the in-flight cap apart; an answer that waited is timed', async (t) => {
  const clock = new ManualClock();
  const d = await startOpsDaemon({ clock, config: { upstream: { maxTries: 1, maxInFlight: 1 } } });
  t.teardown(() => d.close());
  d.upstream.behaviour = 'silent';
  const waiting = udpAsk(d.port, query('a.example.test', TYPE.A), 5000);
  await until(() => d.upstream.queries.length === 1, 'the query upstream');
  const capped = await udpAsk(d.port, query('mx.example.test', TYPE.A), 5000);
  t.equal(capped && rcodeOf(capped), 2, 'over upstream.maxInFlight: SERVFAIL at once');
  clock.advance(200);
  t.equal(rcodeOf((await waiting)!), 2, 'every try failed: SERVFAIL');
  d.upstream.behaviour = 'servfail';
  const relayed = udpAsk(d.port, query('txt.example.test', TYPE.A), 5000);
  t.equal(rcodeOf((await relayed)!), 2, "the upstream's SERVFAIL");
  const s = parseExposition(await d.metrics.text());
  t.same(samplesOf(s, 'hashwall_servfail_answers_total'), {
    'hashwall_servfail_answers_total{reason="upstream-failed"}': 1,
    'hashwall_servfail_answers_total{reason="upstream-servfail"}': 1,
    'hashwall_servfail_answers_total{reason="inflight-cap"}': 1,
    'hashwall_servfail_answers_total{reason="alias-overflow"}': 0,
  });
  const bucket = (le: string): number | undefined =>
    s.get(sampleKey('hashwall_request_duration_seconds_bucket', { transport: 'udp', le }));
  t.equal(bucket('0.0001'), 2, 'the capped answer and the relayed one: at once (the clock did not move)');
  t.equal(bucket('0.1'), 2, 'the answer that waited 200 ms is not in the 100 ms bucket');
  t.equal(bucket('0.25'), 3, 'but in the 250 ms one');
  t.equal(s.get(sampleKey('hashwall_request_duration_seconds_sum', { transport: 'udp' })), 0.2);
});

t.test('access-list refusals and rate-limited queries are counted', async (t) => {
  const acl = await startOpsDaemon({ config: { access: { allow: ['10.0.0.0/8'] } } });
  t.teardown(() => acl.close());
  t.equal(rcodeOf((await udpAsk(acl.port, query('a.example.test', TYPE.A)))!), 5, 'REFUSED');
  t.same(await tcpAsk(acl.port, [query('a.example.test', TYPE.A)]), [], 'a TCP connection closed when accepted');
  const s1 = parseExposition(await acl.metrics.text());
  t.equal(s1.get(sampleKey('hashwall_acl_refused_queries_total', { transport: 'udp', action: 'refuse' })), 1);
  t.equal(s1.get(sampleKey('hashwall_connections_refused_total', { transport: 'tcp', reason: 'acl' })), 1);
  t.equal(s1.get(sampleKey('hashwall_connections_refused_total', { transport: 'tcp', reason: 'limit' })), 0);
  t.equal(s1.get(sampleKey('hashwall_connections_open', { transport: 'tcp' })), 0);

  const rl = await startOpsDaemon({
    config: { access: { rateLimitQps: 0.001, rateLimitBurst: 1, rateLimitSlip: 2 } },
  });
  t.teardown(() => rl.close());
  t.ok(await udpAsk(rl.port, query('a.example.test', TYPE.A)), 'the first query is answered');
  t.equal(await udpAsk(rl.port, query('a.example.test', TYPE.A), 300), null, 'the second is dropped');
  const slipped = await udpAsk(rl.port, query('a.example.test', TYPE.A));
  t.ok(slipped && (slipped[2]! & 0x02) !== 0, 'the third slips: TC');
  const s2 = parseExposition(await rl.metrics.text());
  t.equal(s2.get(sampleKey('hashwall_rate_limited_queries_total', { transport: 'udp', action: 'drop' })), 1);
  t.equal(s2.get(sampleKey('hashwall_rate_limited_queries_total', { transport: 'udp', action: 'slip' })), 1);
});

t.test('list metrics follow a scripted sequence of updates', async (t) => {
  const root = tempDir(t, 'hw-ops-metrics-');
  const listKey = generateListKey('demo-2026a');
  const rel = new ReleaseDir(join(root, 'release'));
  const clock = new Clock();
  const settings = settingsWith(join(root, 'state'), [{ mirrors: [rel.url], keys: [rel.key], listKey }]);
  const h = harness(t, settings, clock);
  const metrics = new Metrics({ processMetrics: false });
  metrics.attachLists(h.registry);

  rel.publish(fullOf(listKey, 1, ['one.example', 'two.example']));
  await within(h.registry.start());
  t.equal(await within(h.registry.pollNow('demo')), 'updated', 'serial 1');
  t.equal(await within(h.registry.pollNow('demo')), 'unchanged');
  rel.publish(fullOf(listKey, 1, ['one.example', 'two.example']), { seq: 2 });
  t.equal(await within(h.registry.pollNow('demo')), 'heartbeat', 'seq 2, same serial');
  rel.publish(fullOf(listKey, 2, ['one.example', 'two.example', 'three.example']));
  rel.tamper('index.hwl', 30);
  t.equal(await within(h.registry.pollNow('demo')), 'rejected', 'a tampered index');
  rel.publish(fullOf(listKey, 2, ['one.example', 'two.example', 'three.example']), { seq: 4 });
  t.equal(await within(h.registry.pollNow('demo')), 'updated', 'serial 2');
  metrics.setCanary('demo', true);

  const s = parseExposition(await metrics.text());
  const updates = samplesOf(s, 'hashwall_list_updates_total');
  t.same(
    Object.fromEntries(Object.entries(updates).filter(([, n]) => n > 0)),
    {
      'hashwall_list_updates_total{list="demo",outcome="updated"}': 2,
      'hashwall_list_updates_total{list="demo",outcome="heartbeat"}': 1,
      'hashwall_list_updates_total{list="demo",outcome="unchanged"}': 1,
      'hashwall_list_updates_total{list="demo",outcome="SIGNATURE_INVALID"}': 1,
    },
    'the outcomes seen',
  );
  for (const outcome of ['not-modified', ...SYNC_ERROR_CODES.filter((c) => c !== 'SIGNATURE_INVALID')]) {
    t.equal(updates[`hashwall_list_updates_total{list="demo",outcome="${outcome}"}`], 0, `${outcome} from 0`);
  }
  const st = h.registry.stats()[0]!;
  t.equal(s.get('hashwall_list_serial{list="demo"}'), 2);
  t.equal(s.get('hashwall_list_seq{list="demo"}'), 4);
  t.equal(s.get('hashwall_list_entries{list="demo"}'), 3);
  t.equal(s.get('hashwall_list_enforced{list="demo"}'), 1);
  t.equal(s.get('hashwall_list_stale{list="demo"}'), 0);
  t.equal(s.get('hashwall_list_expired{list="demo"}'), 0);
  t.equal(s.get('hashwall_list_failed_rounds{list="demo"}'), 0);
  t.equal(s.get('hashwall_list_canary_ok{list="demo"}'), 1);
  t.equal(s.get('hashwall_list_last_success_timestamp_seconds{list="demo"}'), st.lastSuccessAt);
  t.equal(s.get('hashwall_list_last_attempt_timestamp_seconds{list="demo"}'), st.lastAttemptAt);
  t.equal(s.get('hashwall_list_last_update_timestamp_seconds{list="demo"}'), clock.now);
  t.equal(s.get('hashwall_list_index_expiry_timestamp_seconds{list="demo"}'), st.indexExpires);
  t.equal(s.get('hashwall_list_expiry_timestamp_seconds{list="demo"}'), st.fullExpires);
  t.equal(s.get('hashwall_list_delta_fallbacks_total{list="demo"}'), 0);
  t.equal(s.get('hashwall_list_store_unusable_total{list="demo"}'), 0);

  clock.now = st.indexExpires!;
  h.registry.evaluate();
  const later = parseExposition(await metrics.text());
  t.equal(later.get('hashwall_list_stale{list="demo"}'), 1, 'stale once the index has expired');
});

t.test('promtool check metrics finds nothing wrong with our names', { skip: needTool('promtool') }, async (t) => {
  const d = await startOpsDaemon({ metrics: new Metrics({ processMetrics: true }) });
  t.teardown(() => d.close());
  await udpAsk(d.port, query('a.example.test', TYPE.A));
  await udpAsk(d.port, query('blocked.test', TYPE.A));
  d.metrics.setCanary('demo', false);
  d.metrics.stopPageServed('demo');
  const text = await d.metrics.text();
  t.match(text, /^hashwall_upstream_latency_seconds_bucket/m, 'the histogram is in');
  t.match(text, /^process_cpu_user_seconds_total/m, 'and the process metrics');
  t.same(await promtoolProblemsOfOurs(text), [], 'no problem with a hashwall_ name');
});

t.test('configuration reloads are counted by outcome, every outcome from 0', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const before = parseExposition(await metrics.text());
  t.same(samplesOf(before, 'hashwall_config_reloads_total'), {
    'hashwall_config_reloads_total{outcome="applied"}': 0,
    'hashwall_config_reloads_total{outcome="invalid"}': 0,
    'hashwall_config_reloads_total{outcome="failed"}': 0,
  });
  metrics.reloadOutcome('applied');
  metrics.reloadOutcome('invalid');
  metrics.reloadOutcome('applied');
  const after = parseExposition(await metrics.text());
  t.same(samplesOf(after, 'hashwall_config_reloads_total'), {
    'hashwall_config_reloads_total{outcome="applied"}': 2,
    'hashwall_config_reloads_total{outcome="invalid"}': 1,
    'hashwall_config_reloads_total{outcome="failed"}': 0,
  });
  const worker = new Metrics({ processMetrics: false, buildInfo: false });
  worker.reloadOutcome('failed');
  t.notOk(
    (await worker.text()).includes('hashwall_config_reloads_total'),
    "a DNS worker's registry leaves reloads to the process that serves /metrics",
  );
});

t.test('the upstream latency histogram puts each answer in its bucket, per upstream', async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  const a = '192.0.2.1:53';
  const b = '[2001:db8::1]:53';
  // On a bound (0.5 ms) counts in that bucket (le is "less or equal"); 3 ms, 30 ms, 3 s; 10 s is over every bound.
  for (const ms of [0.5, 3, 30, 3000, 10_000]) metrics.upstreamAnswer(a, ms, false);
  metrics.upstreamAnswer(b, 0.2, true);
  const s = parseExposition(await metrics.text());
  const bucket = (upstream: string, le: string): number | undefined =>
    s.get(sampleKey('hashwall_upstream_latency_seconds_bucket', { upstream, le }));
  t.equal(bucket(a, '0.0005'), 1, 'on the bound: in it');
  t.equal(bucket(a, '0.001'), 1);
  t.equal(bucket(a, '0.005'), 2);
  t.equal(bucket(a, '0.05'), 3);
  t.equal(bucket(a, '2.5'), 3);
  t.equal(bucket(a, '5'), 4);
  t.equal(bucket(a, '+Inf'), 5, 'over every bound: only in +Inf');
  t.equal(s.get(sampleKey('hashwall_upstream_latency_seconds_count', { upstream: a })), 5);
  t.ok(
    Math.abs(s.get(sampleKey('hashwall_upstream_latency_seconds_sum', { upstream: a }))! - 13.0335) < 1e-9,
    'the sum in seconds',
  );
  t.equal(bucket(b, '0.0005'), 1, 'the other upstream apart');
  t.equal(s.get(sampleKey('hashwall_upstream_latency_seconds_count', { upstream: b })), 1);
  t.equal(
    s.get(sampleKey('hashwall_upstream_answers_total', { upstream: b, transport: 'tcp' })),
    1,
    'the answer counted by transport as well',
  );
});
