/**
 * Prometheus metrics (prom-client). Every name has the `hashwall_` prefix and its unit; every label set is bounded:
 * a transport, a query type from a fixed set (else `other`), an rcode name, a list id from the configuration, a
 * block mode, an upstream as configured, and small enums. Never a query name, a client address or an entry hash.
 *
 * The query path reports through QueryEvents and PolicyEvents (synchronously, once or twice a query). This class
 * implements both by counting into typed arrays and plain numbers, indexed by label values resolved once (no
 * string is built and no prom-client call is made per query); the counts are copied into prom-client's metrics
 * when Prometheus scrapes (`collect`). The upstream latency histogram is observed directly (once per upstream
 * answer, a path that already waited for the network). Figures owned elsewhere (the packet cache, the upstream
 * health, the lists) are read at scrape time.
 *
 * Several worker processes: each keeps its own Metrics (query path figures), and the process that serves HTTP
 * merges them (ops/cluster.ts) with prom-client's aggregation: counters and most gauges are summed, the list
 * gauges take the maximum (or the minimum for "in force" and "canary ok"), so the merged figures are right whether
 * the lists are kept by one process or by every worker.
 */
import { readFileSync } from 'node:fs';

import { Counter, Gauge, Registry, collectDefaultMetrics, type Aggregator, type Metric } from 'prom-client';

import type {
  AnswerSource,
  BlockAction,
  ConnectionRefusal,
  ConnectionTimeout,
  MalformedReply,
  ProxyOutcome,
  ProxyTransport,
  QueryEvents,
  StreamTransport,
  ServfailReason,
  Transport,
  UpstreamError,
} from '../dns/events.js';
import { SYNC_ERROR_CODES, type ListStats } from '../lists/types.js';
import type { Decision, PolicyEvents } from '../types/decision.js';

/** Query types with their own label value; every other type is `other`. */
export const QTYPE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  35: 'NAPTR',
  43: 'DS',
  48: 'DNSKEY',
  64: 'SVCB',
  65: 'HTTPS',
  255: 'ANY',
  257: 'CAA',
});

/** Response codes with their own label value; `dropped` for a query left unanswered, `other` for the rest. */
export const RCODE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  16: 'BADVERS',
});

const TRANSPORTS: readonly Transport[] = ['udp', 'tcp', 'dot', 'doh'];
const TRANSPORT_INDEX: Readonly<Record<Transport, number>> = { udp: 0, tcp: 1, dot: 2, doh: 3 };
const NT = TRANSPORTS.length;
/** How the daemon reaches an upstream. */
const UPSTREAM_TRANSPORTS = ['udp', 'tcp'] as const;
const PROXY_TRANSPORTS: readonly ProxyTransport[] = ['udp', 'tcp', 'dot'];
const PROXY_OUTCOMES: readonly ProxyOutcome[] = ['proxied', 'local', 'missing', 'untrusted', 'malformed'];
const SOURCES: readonly AnswerSource[] = ['blocked', 'steered', 'cache', 'upstream', 'stale', 'local'];
const ACTIONS: readonly BlockAction[] = ['nxdomain', 'refused', 'nodata', 'stop-page', 'steer'];
const UPSTREAM_ERRORS: readonly UpstreamError[] = ['timeout', 'malformed', 'unexpected', 'rcode', 'network'];
const MALFORMED_REPLIES: readonly MalformedReply[] = ['formerr', 'drop'];
/** The transports whose clients hold connections (every transport but UDP). */
const STREAM_TRANSPORTS = TRANSPORTS.filter((t): t is StreamTransport => t !== 'udp');
const REFUSALS: readonly ConnectionRefusal[] = ['acl', 'limit', 'prefix-limit'];
const TIMEOUTS: readonly ConnectionTimeout[] = ['idle', 'frame-timeout', 'handshake-timeout'];
const SERVFAIL_REASONS: readonly ServfailReason[] = [
  'upstream-failed',
  'upstream-servfail',
  'inflight-cap',
  'alias-overflow',
];
const SERVFAIL_INDEX: Readonly<Record<ServfailReason, number>> = {
  'upstream-failed': 0,
  'upstream-servfail': 1,
  'inflight-cap': 2,
  'alias-overflow': 3,
};

// Label value tables, resolved once.
const QTYPE_LABELS: string[] = [...Object.values(QTYPE_NAMES), 'other'];
const QTYPE_OTHER = QTYPE_LABELS.length - 1;
const QTYPE_INDEX = new Uint8Array(65536).fill(QTYPE_OTHER);
Object.keys(QTYPE_NAMES).forEach((t, i) => (QTYPE_INDEX[Number(t)] = i));
const RCODE_LABELS: string[] = [...Object.values(RCODE_NAMES), 'other', 'dropped'];
const RCODE_OTHER = RCODE_LABELS.length - 2;
const RCODE_DROPPED = RCODE_LABELS.length - 1;
const RCODE_INDEX = new Uint8Array(4096).fill(RCODE_OTHER);
Object.keys(RCODE_NAMES).forEach((r, i) => (RCODE_INDEX[Number(r)] = i));
const NQ = QTYPE_LABELS.length;
const NR = RCODE_LABELS.length;
/**
 * The index of `source` in SOURCES. A switch, not a table read as SOURCE_INDEX[source]: a keyed load by six names
 * is megamorphic, V8's generic lookup at every answer (bench/README.md, "Buffer's methods off the query path").
 */
function sourceIndex(source: AnswerSource): number {
  switch (source) {
    case 'blocked':
      return 0;
    case 'steered':
      return 1;
    case 'cache':
      return 2;
    case 'upstream':
      return 3;
    case 'stale':
      return 4;
    case 'local':
      return 5;
  }
}
const ACTION_INDEX: Readonly<Record<BlockAction, number>> = {
  nxdomain: 0,
  refused: 1,
  nodata: 2,
  'stop-page': 3,
  steer: 4,
};
const ERROR_INDEX: Readonly<Record<UpstreamError, number>> = {
  timeout: 0,
  malformed: 1,
  unexpected: 2,
  rcode: 3,
  network: 4,
};

/** Upstream answer latency buckets, seconds: a recursive resolver nearby answers from its cache in well under 1 ms. */
export const LATENCY_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
] as const;

/**
 * What a configuration reload (SIGHUP) came to: put in force; refused because the new file is invalid (the running
 * configuration stays); or valid but failed while being applied (a listener that cannot open, a template that
 * cannot be read: the running configuration stays too).
 */
export const RELOAD_OUTCOMES = ['applied', 'invalid', 'failed'] as const;
export type ReloadOutcome = (typeof RELOAD_OUTCOMES)[number];

/**
 * Client answer latency buckets, seconds: from 100 µs (an answer from the cache, a block) to 5 s (every try of a
 * query spent: maxTries x timeoutMs by default is 4.5 s).
 */
export const ANSWER_LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
] as const;

/** Answer size buckets, octets: 512 (no EDNS), 1232 (the UDP cap's default), 1500 (Ethernet), up to TCP's 65535. */
export const RESPONSE_SIZE_BUCKETS_BYTES = [
  64, 128, 256, 512, 768, 1024, 1232, 1500, 2048, 4096, 8192, 16384, 32768, 65535,
] as const;

const LATENCY_BOUNDS_MS = Float64Array.from(ANSWER_LATENCY_BUCKETS_SECONDS, (s) => s * 1000);
const UPSTREAM_LATENCY_BOUNDS_S = Float64Array.from(LATENCY_BUCKETS_SECONDS);
const SIZE_BOUNDS = Float64Array.from(RESPONSE_SIZE_BUCKETS_BYTES);

/** One series of a histogram: a count per bucket (the last for +Inf) and the sum. */
class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  readonly #bounds: Float64Array;

  constructor(bounds: Float64Array) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Counts `value` (in the bounds' unit). */
  observe(value: number): void {
    const bounds = this.#bounds;
    let b = 0;
    while (b < bounds.length && value > bounds[b]!) b++;
    this.counts[b]!++;
    this.sum += value;
  }
}

/**
 * A histogram with one label (the transport, the upstream), each label value's series counted into a typed array
 * (Buckets) and exported as Prometheus histogram series at scrape time. Not prom-client's Histogram: its observe()
 * costs ~470 ns (a label lookup and a walk of the buckets through objects, measured on this project's 2-core VM),
 * over half a cached answer's whole cost in the query path, for a figure taken once per query (the transports') or
 * per upstream answer (the upstreams'; 0.9% of the saturated query path's busy time in a --profile run). A caller
 * keeps the Buckets of its label value (`series`) and observes into it.
 */
class LabeledHistogram {
  readonly #label: string;
  readonly #bounds: Float64Array;
  readonly #series = new Map<string, Buckets>();

  /** `preset`: label values whose series exist (and are exported, at 0) from the start, in this order. */
  constructor(label: string, bounds: Float64Array, preset: readonly string[] = []) {
    this.#label = label;
    this.#bounds = bounds;
    for (const v of preset) this.series(v);
  }

  /** The series of label value `value`, made at its first use. */
  series(value: string): Buckets {
    let b = this.#series.get(value);
    if (b === undefined) {
      b = new Buckets(this.#bounds);
      this.#series.set(value, b);
    }
    return b;
  }

  /** The Prometheus series (cumulative buckets, sum and count), with the bounds and the sums times `scale`. */
  values(name: string, scale: number): { value: number; labels: Labels; metricName: string }[] {
    const out: { value: number; labels: Labels; metricName: string }[] = [];
    const n = this.#bounds.length + 1;
    for (const [value, series] of this.#series) {
      let cumulative = 0;
      for (let b = 0; b < n; b++) {
        cumulative += series.counts[b]!;
        const le = b < n - 1 ? String(Number((this.#bounds[b]! * scale).toPrecision(12))) : '+Inf';
        out.push({ value: cumulative, labels: { [this.#label]: value, le }, metricName: `${name}_bucket` });
      }
      out.push({ value: series.sum * scale, labels: { [this.#label]: value }, metricName: `${name}_sum` });
      out.push({ value: cumulative, labels: { [this.#label]: value }, metricName: `${name}_count` });
    }
    return out;
  }
}

/** Registers a LabeledHistogram under `name` (prom-client's Metric interface: get() gives the series). */
function defineHistogram(r: Registry, name: string, help: string, h: LabeledHistogram, scale: number): void {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum' as Aggregator,
    get: () => Promise.resolve({ name, help, type: 'histogram', aggregator: 'sum', values: h.values(name, scale) }),
    reset: () => undefined,
  };
  // prom-client's Metric is its classes' type; a registry needs only name, get() and reset() of what it holds.
  r.registerMetric(metric as unknown as Metric);
}

/** The outcomes of list polls other than a refusal; a refusal counts under its code (SIGNATURE_INVALID, ...). */
const LIST_OUTCOMES = ['updated', 'heartbeat', 'unchanged', 'not-modified', 'held'] as const;

/** What the metrics read at scrape time from the running daemon (daemon.ts's Daemon has all of these). */
export interface DaemonFigures {
  inFlight(): number;
  cacheSize(): number;
  cacheBytes(): number;
  upstreamHealth(): readonly { readonly name: string; readonly up: boolean }[];
  /** Entries the packet cache evicted to stay within its bounds (when the daemon counts them). */
  cacheEvictions?(): number;
}

/** Where the list figures come from (the ListRegistry). */
export interface ListFigures {
  stats(): ListStats[];
}

/**
 * Whether `metrics` asks for the process metrics and something can read them: a listener (`metrics.listen`). With
 * workers each process's metrics reach the scrape through the primary's listener.
 */
export function processMetricsWanted(metrics: { readonly listen: string; readonly processMetrics: boolean }): boolean {
  return metrics.processMetrics && metrics.listen !== '';
}

/** Receives a block's listed entry (the hit report). */
export interface HitSink {
  record(listId: string, entry: string): void;
}

export interface MetricsOptions {
  /**
   * Node.js process metrics (CPU, memory, event loop, GC), unprefixed as prom-client names them, from the start;
   * else from startProcessMetrics().
   */
  readonly processMetrics?: boolean;
  /**
   * Register `hashwall_build_info` and `hashwall_config_reloads_total` (only in the process that serves /metrics when
   * several are merged).
   */
  readonly buildInfo?: boolean;
}

interface UpstreamCounts {
  /** Tries sent over UDP, over TCP. */
  readonly queries: Float64Array;
  /** Answers over UDP, over TCP. */
  readonly answers: Float64Array;
  readonly errors: Float64Array;
  markedDown: number;
  readonly latency: { observe(seconds: number): void };
}

/** The daemon's version, from its package.json. */
export function daemonVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

type Labels = Record<string, string>;

/** Counts kept per stream transport and reason (index transport * reasons + reason) as labelled samples. */
function byTransportAndReason(
  inc: (labels: Labels, value: number) => void,
  reasons: readonly string[],
  counts: Float64Array,
): void {
  STREAM_TRANSPORTS.forEach((transport, i) =>
    reasons.forEach((reason, j) => inc({ transport, reason }, counts[i * reasons.length + j]!)),
  );
}

/** Registers counters whose values `fill` sets at scrape time. */
function defineCounter(r: Registry) {
  return (
    name: string,
    help: string,
    labelNames: readonly string[],
    fill: (inc: (labels: Labels, value: number) => void) => void,
  ): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [r],
      collect() {
        this.reset();
        fill((labels, value) => this.inc(labels, value));
      },
    });
  };
}

/** Registers gauges whose values `fill` sets at scrape time (series it does not set disappear). */
function defineGauge(r: Registry) {
  return (
    name: string,
    help: string,
    labelNames: readonly string[],
    fill: (set: (labels: Labels, value: number) => void) => void,
    aggregator: Aggregator = 'sum',
  ): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [r],
      aggregator,
      collect() {
        this.reset();
        fill((labels, value) => this.set(labels, value));
      },
    });
  };
}

export class Metrics implements QueryEvents, PolicyEvents {
  readonly registry = new Registry();
  #daemon: DaemonFigures | null = null;
  #lists: ListFigures | null = null;
  #ready: (() => boolean) | null = null;
  /** Receives matched entries while a hit report is on. */
  hits: HitSink | null = null;

  // Hot counters, copied into prom-client at scrape time.
  readonly #queries = new Float64Array(NT * NQ * NR);
  readonly #answers = new Float64Array(SOURCES.length);
  /** Per list: [action * 2 + viaAlias]. */
  readonly #blocks = new Map<string, Float64Array>();
  readonly #allowlisted = new Map<string, number>();
  #cacheHits = 0;
  #cacheMisses = 0;
  #stale = 0;
  readonly #malformed = new Float64Array(NT * MALFORMED_REPLIES.length);
  /** [transport * 2 + slipped]. */
  readonly #rateLimited = new Float64Array(NT * 2);
  /** [transport * 2 + dropped]. */
  readonly #aclRefused = new Float64Array(NT * 2);
  /** Per PROXY transport and outcome, registered at the first header seen (the protocol is off by default). */
  readonly #proxy = new Float64Array(PROXY_TRANSPORTS.length * PROXY_OUTCOMES.length);
  #proxyRegistered = false;
  readonly #answerLatency = new LabeledHistogram('transport', LATENCY_BOUNDS_MS, TRANSPORTS);
  readonly #answerBytes = new LabeledHistogram('transport', SIZE_BOUNDS, TRANSPORTS);
  /** The series of each transport, by TRANSPORT_INDEX. */
  readonly #latencyOf = TRANSPORTS.map((t) => this.#answerLatency.series(t));
  readonly #bytesOf = TRANSPORTS.map((t) => this.#answerBytes.series(t));
  readonly #servfails = new Float64Array(SERVFAIL_REASONS.length);
  #upstreamInFlight = 0;
  /** Per stream transport (STREAM_TRANSPORTS order): open connections, refusals and deadline closes by reason. */
  readonly #connectionsOpen = new Float64Array(STREAM_TRANSPORTS.length);
  readonly #connectionsRefused = new Float64Array(STREAM_TRANSPORTS.length * REFUSALS.length);
  readonly #connectionsTimedOut = new Float64Array(STREAM_TRANSPORTS.length * TIMEOUTS.length);
  readonly #upstreams = new Map<string, UpstreamCounts>();
  readonly #latency = new LabeledHistogram('upstream', UPSTREAM_LATENCY_BOUNDS_S);
  readonly #canary = new Map<string, boolean>();
  readonly #stopPage = new Map<string, number>();
  readonly #reloads = new Float64Array(RELOAD_OUTCOMES.length);
  #evictionsRegistered = false;
  #readyRegistered = false;
  #restarts: (() => number) | null = null;
  #restartsRegistered = false;

  #processMetrics = false;

  constructor(options: MetricsOptions = {}) {
    const r = this.registry;
    if (options.processMetrics ?? true) this.startProcessMetrics();
    if (options.buildInfo ?? true) {
      new Gauge({
        name: 'hashwall_build_info',
        help: 'Always 1; the labels give the hashwalld version and the Node.js version running it.',
        labelNames: ['version', 'node'],
        registers: [r],
        aggregator: 'first',
      }).set({ version: daemonVersion(), node: process.versions.node }, 1);
      // Reloads are the daemon's, not a DNS worker's: counted once, where the build info is (every outcome from 0,
      // so that the first failure is an increase).
      defineCounter(r)(
        'hashwall_config_reloads_total',
        'Configuration reloads (SIGHUP) by outcome: applied, invalid (the new file was refused) or failed (valid, ' +
          'but it could not be put in force); the running configuration stays unless applied.',
        ['outcome'],
        (inc) => RELOAD_OUTCOMES.forEach((outcome, i) => inc({ outcome }, this.#reloads[i]!)),
      );
    }
    this.#queryMetrics(r);
    defineHistogram(
      r,
      'hashwall_upstream_latency_seconds',
      'Time from sending a query to an upstream to its good answer (UDP or TCP), per upstream.',
      this.#latency,
      1,
    );
    this.#daemonMetrics(r);
    this.#listMetrics(r);
  }

  // ----------------------------------------------------------------------------------------------------------
  // Sources read at scrape time
  // ----------------------------------------------------------------------------------------------------------

  /** The running daemon, for the cache, in-flight and upstream health gauges (null to detach). */
  attachDaemon(daemon: DaemonFigures | null): void {
    this.#daemon = daemon;
    if (daemon?.cacheEvictions !== undefined && !this.#evictionsRegistered) {
      // Registered only once a daemon that counts evictions is attached: a constant 0 would be a false figure.
      this.#evictionsRegistered = true;
      defineCounter(this.registry)(
        'hashwall_cache_evictions_total',
        'Entries the packet cache evicted to stay within cache.maxEntries and cache.maxBytes.',
        [],
        (inc) => inc({}, this.#daemon?.cacheEvictions?.() ?? 0),
      );
    }
  }

  /**
   * Starts the Node.js process metrics (once): prom-client's collectors, among them an observer of every garbage
   * collection (each one's PerformanceEntry is made for it: ~3 KB more promoted per scavenge) and an event-loop
   * delay monitor. Only worth their cost where something can scrape them (processMetricsWanted).
   */
  startProcessMetrics(): void {
    if (this.#processMetrics) return;
    this.#processMetrics = true;
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Starts the process metrics if `metrics` (a configuration, at start or after a reload) wants them; a reload that
   * stops wanting them leaves them running: prom-client offers no way to stop its collectors.
   */
  followConfig(metrics: { readonly listen: string; readonly processMetrics: boolean }): void {
    if (processMetricsWanted(metrics)) this.startProcessMetrics();
  }

  /** The list registry, for the per-list metrics. */
  attachLists(lists: ListFigures | null): void {
    this.#lists = lists;
  }

  /**
   * The readiness check behind `hashwall_ready`, registered with the first one: only the process that answers
   * /readyz has it (a worker's registry would otherwise add a constant to the merged figure).
   */
  attachReadiness(ready: (() => boolean) | null): void {
    this.#ready = ready;
    if (ready !== null && !this.#readyRegistered) {
      this.#readyRegistered = true;
      defineGauge(this.registry)(
        'hashwall_ready',
        'Whether /readyz answers 200: listening, the lists or their start policy met, an upstream up.',
        [],
        (set) => set({}, this.#ready?.() === true ? 1 : 0),
        'min',
      );
    }
  }

  /**
   * The primary's count of DNS workers restarted (workers > 1), behind `hashwall_worker_restarts_total`, registered
   * with the first call: a single process has no workers to restart.
   */
  attachWorkers(restarts: () => number): void {
    this.#restarts = restarts;
    if (this.#restartsRegistered) return;
    this.#restartsRegistered = true;
    defineCounter(this.registry)(
      'hashwall_worker_restarts_total',
      'DNS worker processes that exited and were started again by the primary (workers > 1).',
      [],
      (inc) => inc({}, this.#restarts?.() ?? 0),
    );
  }

  /** The canary check's result for a list (null: no canary configured for it any more). */
  setCanary(listId: string, ok: boolean | null): void {
    if (ok === null) this.#canary.delete(listId);
    else this.#canary.set(listId, ok);
  }

  /** A configuration reload ended with `outcome` (counted in `hashwall_config_reloads_total`). */
  reloadOutcome(outcome: ReloadOutcome): void {
    this.#reloads[RELOAD_OUTCOMES.indexOf(outcome)]!++;
  }

  /** A stop page was served, for `list` (a configured list id, or `unknown`). */
  stopPageServed(list: string): void {
    this.#stopPage.set(list, (this.#stopPage.get(list) ?? 0) + 1);
  }

  // ----------------------------------------------------------------------------------------------------------
  // QueryEvents and PolicyEvents: the hot path
  // ----------------------------------------------------------------------------------------------------------

  queryDone(transport: Transport, qtype: number, rcode: number, source: AnswerSource): void {
    const ti = TRANSPORT_INDEX[transport];
    const qi = QTYPE_INDEX[qtype & 0xffff]!;
    const ri = rcode < 0 ? RCODE_DROPPED : RCODE_INDEX[rcode & 0xfff]!;
    this.#queries[(ti * NQ + qi) * NR + ri]!++;
    this.#answers[sourceIndex(source)]!++;
  }

  blocked(listId: string, action: BlockAction, viaAlias: boolean): void {
    let per = this.#blocks.get(listId);
    if (per === undefined) this.#blocks.set(listId, (per = new Float64Array(ACTIONS.length * 2)));
    per[ACTION_INDEX[action] * 2 + (viaAlias ? 1 : 0)]!++;
  }

  cacheLookup(hit: boolean): void {
    if (hit) this.#cacheHits++;
    else this.#cacheMisses++;
  }

  #upstream(name: string): UpstreamCounts {
    let u = this.#upstreams.get(name);
    if (u === undefined) {
      u = {
        queries: new Float64Array(2),
        answers: new Float64Array(2),
        errors: new Float64Array(UPSTREAM_ERRORS.length),
        markedDown: 0,
        latency: this.#latency.series(name),
      };
      this.#upstreams.set(name, u);
    }
    return u;
  }

  upstreamQuery(upstream: string, tcp: boolean): void {
    this.#upstream(upstream).queries[tcp ? 1 : 0]!++;
  }

  upstreamAnswer(upstream: string, latencyMs: number, tcp: boolean): void {
    const u = this.#upstream(upstream);
    u.answers[tcp ? 1 : 0]!++;
    u.latency.observe(latencyMs / 1000);
  }

  upstreamError(upstream: string, error: UpstreamError): void {
    this.#upstream(upstream).errors[ERROR_INDEX[error]]!++;
  }

  upstreamHealth(upstream: string, up: boolean): void {
    if (!up) this.#upstream(upstream).markedDown++;
  }

  staleAnswer(): void {
    this.#stale++;
  }

  malformed(transport: Transport, reply: MalformedReply): void {
    this.#malformed[TRANSPORT_INDEX[transport] * 2 + (reply === 'formerr' ? 0 : 1)]!++;
  }

  rateLimited(transport: Transport, slipped: boolean): void {
    this.#rateLimited[TRANSPORT_INDEX[transport] * 2 + (slipped ? 1 : 0)]!++;
  }

  aclRefused(transport: Transport, answered: boolean): void {
    this.#aclRefused[TRANSPORT_INDEX[transport] * 2 + (answered ? 0 : 1)]!++;
  }

  proxyHeader(transport: ProxyTransport, outcome: ProxyOutcome): void {
    if (!this.#proxyRegistered) this.#registerProxy();
    this.#proxy[PROXY_TRANSPORTS.indexOf(transport) * PROXY_OUTCOMES.length + PROXY_OUTCOMES.indexOf(outcome)]!++;
  }

  #registerProxy(): void {
    this.#proxyRegistered = true;
    defineCounter(this.registry)(
      'hashwall_proxy_headers_total',
      'PROXY v2 headers by transport and outcome: proxied (the client named), local (the front end itself), ' +
        'missing, untrusted (from an address not in proxyProtocol.trusted: dropped) or malformed (dropped); once ' +
        'per datagram, once per connection.',
      ['transport', 'outcome'],
      (inc) => {
        for (let i = 0; i < this.#proxy.length; i++) {
          const transport = PROXY_TRANSPORTS[Math.floor(i / PROXY_OUTCOMES.length)]!;
          inc({ transport, outcome: PROXY_OUTCOMES[i % PROXY_OUTCOMES.length]! }, this.#proxy[i]!);
        }
      },
    );
  }

  inFlight(count: number): void {
    this.#upstreamInFlight = count;
  }

  connectionOpened(transport: StreamTransport): void {
    this.#connectionsOpen[STREAM_TRANSPORTS.indexOf(transport)]!++;
  }

  connectionClosed(transport: StreamTransport): void {
    this.#connectionsOpen[STREAM_TRANSPORTS.indexOf(transport)]!--;
  }

  connectionRefused(transport: StreamTransport, reason: ConnectionRefusal): void {
    this.#connectionsRefused[STREAM_TRANSPORTS.indexOf(transport) * REFUSALS.length + REFUSALS.indexOf(reason)]!++;
  }

  connectionTimedOut(transport: StreamTransport, reason: ConnectionTimeout): void {
    this.#connectionsTimedOut[STREAM_TRANSPORTS.indexOf(transport) * TIMEOUTS.length + TIMEOUTS.indexOf(reason)]!++;
  }

  answerSent(transport: Transport, bytes: number, latencyMs: number): void {
    const ti = TRANSPORT_INDEX[transport];
    this.#latencyOf[ti]!.observe(latencyMs);
    this.#bytesOf[ti]!.observe(bytes);
  }

  servfail(reason: ServfailReason): void {
    this.#servfails[SERVFAIL_INDEX[reason]]!++;
  }

  matched(d: Decision): void {
    this.hits?.record(d.listId, d.entry);
  }

  allowlisted(d: Decision): void {
    this.#allowlisted.set(d.listId, (this.#allowlisted.get(d.listId) ?? 0) + 1);
  }

  // ----------------------------------------------------------------------------------------------------------
  // Definitions. Each metric's collect() fills it from the counts above at scrape time; `fill` is an arrow
  // function, so it reads this class's fields (inside collect(), `this` is the prom-client metric).
  // ----------------------------------------------------------------------------------------------------------

  #queryMetrics(r: Registry): void {
    const counter = defineCounter(r);
    counter(
      'hashwall_queries_total',
      'Client queries answered (rcode) or dropped (rcode="dropped"), by transport, query type and rcode.',
      ['transport', 'qtype', 'rcode'],
      (inc) => {
        const q = this.#queries;
        for (let i = 0; i < q.length; i++) {
          if (q[i] === 0) continue;
          const ri = i % NR;
          const qi = Math.floor(i / NR) % NQ;
          const ti = Math.floor(i / (NR * NQ));
          inc({ transport: TRANSPORTS[ti]!, qtype: QTYPE_LABELS[qi]!, rcode: RCODE_LABELS[ri]! }, q[i]!);
        }
      },
    );
    counter(
      'hashwall_answers_total',
      'Client queries by where the answer came from: blocked, steered, cache, upstream, stale or local.',
      ['source'],
      (inc) => SOURCES.forEach((source, i) => inc({ source }, this.#answers[i]!)),
    );
    counter(
      'hashwall_blocked_queries_total',
      'Queries blocked (or steered: mode="steer") by a list, by block mode, and whether the query name or a ' +
        'CNAME/DNAME target matched (via="name" or "alias").',
      ['list', 'mode', 'via'],
      (inc) => {
        for (const [list, per] of this.#blocks) {
          for (let i = 0; i < per.length; i++) {
            if (per[i] === 0) continue;
            inc({ list, mode: ACTIONS[i >> 1]!, via: (i & 1) === 1 ? 'alias' : 'name' }, per[i]!);
          }
        }
      },
    );
    counter(
      'hashwall_allowlisted_queries_total',
      'Queries a list would have blocked or steered that passed because the allowlist covers the name.',
      ['list'],
      (inc) => this.#allowlisted.forEach((n, list) => inc({ list }, n)),
    );
    counter('hashwall_cache_hits_total', 'Packet cache lookups that found a fresh answer.', [], (inc) =>
      inc({}, this.#cacheHits),
    );
    counter('hashwall_cache_misses_total', 'Packet cache lookups that found no fresh answer.', [], (inc) =>
      inc({}, this.#cacheMisses),
    );
    counter(
      'hashwall_stale_answers_total',
      'Answers served from an expired cache entry because every upstream failed (RFC 8767).',
      [],
      (inc) => inc({}, this.#stale),
    );
    counter(
      'hashwall_malformed_queries_total',
      'Malformed client queries, by transport and whether they were answered FORMERR or dropped.',
      ['transport', 'reply'],
      (inc) => {
        for (let i = 0; i < this.#malformed.length; i++) {
          inc({ transport: TRANSPORTS[i >> 1]!, reply: MALFORMED_REPLIES[i & 1]! }, this.#malformed[i]!);
        }
      },
    );
    counter(
      'hashwall_servfail_answers_total',
      'SERVFAIL answers by reason: upstream-failed (every try failed, nothing stale), upstream-servfail (the ' +
        "upstreams' own, relayed), inflight-cap (upstream.maxInFlight reached), alias-overflow (a CNAME chain too " +
        'long to check).',
      ['reason'],
      (inc) => SERVFAIL_REASONS.forEach((reason, i) => inc({ reason }, this.#servfails[i]!)),
    );
    defineHistogram(
      r,
      'hashwall_request_duration_seconds',
      'Time from taking a client query to sending its answer, by transport: 0 for answers given at once (cache, ' +
        'blocks, local answers; they take microseconds), the wait for an upstream otherwise.',
      this.#answerLatency,
      0.001,
    );
    defineHistogram(
      r,
      'hashwall_response_size_bytes',
      'Size of the answers sent to clients, by transport (after truncation for UDP).',
      this.#answerBytes,
      1,
    );
    counter(
      'hashwall_rate_limited_queries_total',
      "UDP queries over their client prefix's rate: dropped, or answered empty with TC (action slip).",
      ['transport', 'action'],
      (inc) => {
        for (let i = 0; i < this.#rateLimited.length; i++) {
          inc({ transport: TRANSPORTS[i >> 1]!, action: i & 1 ? 'slip' : 'drop' }, this.#rateLimited[i]!);
        }
      },
    );
    counter(
      'hashwall_acl_refused_queries_total',
      'Queries from clients outside access.allow: answered REFUSED, or dropped (access.outside, its rate limit).',
      ['transport', 'action'],
      (inc) => {
        for (let i = 0; i < this.#aclRefused.length; i++) {
          inc({ transport: TRANSPORTS[i >> 1]!, action: i & 1 ? 'drop' : 'refuse' }, this.#aclRefused[i]!);
        }
      },
    );
    counter(
      'hashwall_upstream_queries_total',
      'Tries sent to an upstream, by upstream and transport (TCP after a truncated answer).',
      ['upstream', 'transport'],
      (inc) => {
        for (const [upstream, u] of this.#upstreams) {
          UPSTREAM_TRANSPORTS.forEach((transport, i) => inc({ upstream, transport }, u.queries[i]!));
        }
      },
    );
    counter(
      'hashwall_upstream_answers_total',
      'Good answers from an upstream, by upstream and transport.',
      ['upstream', 'transport'],
      (inc) => {
        for (const [upstream, u] of this.#upstreams) {
          UPSTREAM_TRANSPORTS.forEach((transport, i) => inc({ upstream, transport }, u.answers[i]!));
        }
      },
    );
    counter(
      'hashwall_upstream_errors_total',
      'Upstream failures by upstream and kind: timeout, malformed, unexpected, rcode (SERVFAIL, REFUSED, ' +
        'NOTIMP) or network.',
      ['upstream', 'error'],
      (inc) => {
        for (const [upstream, u] of this.#upstreams) {
          UPSTREAM_ERRORS.forEach((error, i) => inc({ upstream, error }, u.errors[i]!));
        }
      },
    );
    counter(
      'hashwall_upstream_marked_down_total',
      'Times an upstream was marked down (failureThreshold distinct questions failed and it answered nothing).',
      ['upstream'],
      (inc) => this.#upstreams.forEach((u, upstream) => inc({ upstream }, u.markedDown)),
    );
    counter(
      'hashwall_connections_refused_total',
      'Client connections closed as soon as accepted, by transport and reason: acl (outside access.allow), limit ' +
        '(tcp.maxConnections), prefix-limit (tcp.maxConnectionsPerPrefix).',
      ['transport', 'reason'],
      (inc) => byTransportAndReason(inc, REFUSALS, this.#connectionsRefused),
    );
    counter(
      'hashwall_connections_timed_out_total',
      'Client connections the daemon closed at a deadline, by transport and reason: idle (tcp.idleTimeoutMs), ' +
        'frame-timeout (a frame or PROXY header not whole within tcp.frameTimeoutMs), handshake-timeout (a TLS ' +
        'handshake not done within it).',
      ['transport', 'reason'],
      (inc) => byTransportAndReason(inc, TIMEOUTS, this.#connectionsTimedOut),
    );
    counter(
      'hashwall_stop_page_requests_total',
      'Stop pages served, by the list that blocks the requested host ("unknown" when none could be told).',
      ['list'],
      (inc) => this.#stopPage.forEach((n, list) => inc({ list }, n)),
    );
  }

  #daemonMetrics(r: Registry): void {
    const gauge = defineGauge(r);
    gauge(
      'hashwall_upstream_inflight_queries',
      'Questions waiting for an upstream (identical client queries coalesced count once).',
      [],
      (set) => set({}, this.#upstreamInFlight),
    );
    gauge('hashwall_connections_open', 'Client connections open, by transport.', ['transport'], (set) =>
      STREAM_TRANSPORTS.forEach((transport, i) => set({ transport }, this.#connectionsOpen[i]!)),
    );
    gauge('hashwall_inflight_queries', 'Client queries received and not yet answered.', [], (set) =>
      set({}, this.#daemon?.inFlight() ?? 0),
    );
    gauge('hashwall_cache_entries', 'Answers held in the packet cache.', [], (set) =>
      set({}, this.#daemon?.cacheSize() ?? 0),
    );
    gauge('hashwall_cache_bytes', 'Bytes held in the packet cache, as counted for cache.maxBytes.', [], (set) =>
      set({}, this.#daemon?.cacheBytes() ?? 0),
    );
    gauge(
      'hashwall_upstream_up',
      'Whether an upstream is in use (1) or marked down (0); with several processes, the lowest.',
      ['upstream'],
      (set) => {
        for (const u of this.#daemon?.upstreamHealth() ?? []) set({ upstream: u.name }, u.up ? 1 : 0);
      },
      'min',
    );
  }

  #listMetrics(r: Registry): void {
    const gauge = defineGauge(r);
    const counter = defineCounter(r);
    const stats = (): ListStats[] => this.#lists?.stats() ?? [];
    const perList = (
      name: string,
      help: string,
      value: (s: ListStats) => number | null,
      aggregator: Aggregator = 'max',
    ): void =>
      gauge(
        name,
        help,
        ['list'],
        (set) => {
          for (const s of stats()) {
            const v = value(s);
            if (v !== null) set({ list: s.id }, v);
          }
        },
        aggregator,
      );
    const flag = (b: boolean): number => (b ? 1 : 0);
    perList(
      'hashwall_list_enforced',
      'Whether a verified list is in force for queries (1) or not (0).',
      (s) => flag(s.enforced),
      'min',
    );
    perList('hashwall_list_entries', 'Entries of the list in force (D, H and P; U entries are not kept).', (s) =>
      s.enforced ? s.entries : 0,
    );
    perList('hashwall_list_serial', 'Serial of the list in force (SPEC.md 2.1).', (s) => s.serial);
    perList('hashwall_list_seq', 'Seq of the index in force (SPEC.md 2.3).', (s) => s.seq);
    perList(
      'hashwall_list_last_attempt_timestamp_seconds',
      'When the list was last polled (seconds since the epoch).',
      (s) => s.lastAttemptAt,
    );
    perList(
      'hashwall_list_last_success_timestamp_seconds',
      'When a poll last succeeded: updated, heartbeat, unchanged or not modified (seconds since the epoch).',
      (s) => s.lastSuccessAt,
    );
    perList(
      'hashwall_list_last_update_timestamp_seconds',
      'When a new serial was last put in force from a mirror (seconds since the epoch).',
      (s) => s.lastUpdateAt,
    );
    perList(
      'hashwall_list_index_expiry_timestamp_seconds',
      'When the index in force expires: from then on the list is stale (SPEC.md 4.5).',
      (s) => s.indexExpires,
    );
    perList(
      'hashwall_list_expiry_timestamp_seconds',
      'When the list in force expires (its FULL, SPEC.md 4.5).',
      (s) => s.fullExpires,
    );
    perList(
      'hashwall_list_stale',
      'Whether the index in force is stale (1): the publisher has not re-signed it in time.',
      (s) => flag(s.stale),
    );
    perList('hashwall_list_expired', 'Whether the list in force is past its expiry (1).', (s) => flag(s.expired));
    perList(
      'hashwall_list_failed_rounds',
      'Poll rounds in a row in which every mirror failed or was refused.',
      (s) => s.consecutiveFailures,
    );
    gauge(
      'hashwall_list_canary_ok',
      "Whether the list's canary name is blocked through the query path after the last change (1) or not (0).",
      ['list'],
      (set) => this.#canary.forEach((ok, list) => set({ list }, ok ? 1 : 0)),
      'min',
    );
    // Trust over time (SPEC.md 5, 6) and the guard (lists/hold.ts).
    perList(
      'hashwall_list_held',
      'Whether the guard holds a verified list (1): it blocks a guard name or changes more than the cap; the last ' +
        'list stays in force until an operator releases it (hashwalld release-held).',
      (s) => flag(s.heldSerial !== null),
    );
    perList('hashwall_list_held_serial', 'The serial the guard holds (absent when none).', (s) => s.heldSerial);
    perList(
      'hashwall_list_guard_exempted_entries',
      'Entries of the list in force left out of the matcher because they block a guard name.',
      (s) => s.exemptedEntries,
    );
    perList(
      'hashwall_list_keyring_version',
      'The current keyring version of a list anchored on root keys (SPEC.md 5).',
      (s) => s.keyringVersion,
    );
    perList(
      'hashwall_list_keyring_expiry_timestamp_seconds',
      'When the current keyring expires: no index is accepted under it from then (SPEC.md 5.2).',
      (s) => s.keyringExpires,
    );
    perList(
      'hashwall_list_log_size',
      'The size of the release log checkpoint last accepted (SPEC.md 6).',
      (s) => s.logSize,
    );
    counter(
      'hashwall_list_split_views_total',
      'Split views of the release log seen (SPEC.md 6): two signed checkpoints that cannot both be true; both are ' +
        "kept in the list's state directory.",
      ['list'],
      (inc) => stats().forEach((s) => inc({ list: s.id }, s.splitViews)),
    );
    // Every outcome and every refusal code from 0, for every list: a series first seen at 1 has no increase, so an
    // alert on increase() would miss the first refusal of its kind.
    counter(
      'hashwall_list_updates_total',
      'List polls by outcome: updated, heartbeat, unchanged, not-modified, held, or the code a refusal carried ' +
        '(SIGNATURE_INVALID, ROLLBACK, FETCH_FAILED, KEYRING_WITHHELD, LOG_NOT_INCLUDED, ...).',
      ['list', 'outcome'],
      (inc) => {
        for (const s of stats()) {
          for (const outcome of LIST_OUTCOMES) inc({ list: s.id, outcome }, s.outcomes[outcome]);
          for (const outcome of SYNC_ERROR_CODES) inc({ list: s.id, outcome }, s.rejections[outcome] ?? 0);
        }
      },
    );
    counter(
      'hashwall_list_delta_fallbacks_total',
      'Deltas that failed, so that the full list was downloaded instead.',
      ['list'],
      (inc) => stats().forEach((s) => inc({ list: s.id }, s.deltaFallbacks)),
    );
    counter(
      'hashwall_list_store_unusable_total',
      "Times the list's state directory could not be used and was ignored.",
      ['list'],
      (inc) => stats().forEach((s) => inc({ list: s.id }, s.storeUnusable)),
    );
  }

  /** The exposition text (Prometheus 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
