/**
 * hashwalld's query path, assembled in one place.
 *
 *   datagram / TCP or DoT frame / DoH request
 *     1. access list           REFUSED (EDE 18 Prohibited) for clients outside access.allow, under a rate limit
 *                              (a TCP, DoT or DoH connection from outside is closed when accepted: dns/stream.ts)
 *     2. rate limit            per client prefix, UDP only: over it dropped, every rateLimitSlip-th answered TC
 *     3. parse                 header + question + OPT only: drop, FORMERR, NOTIMP, BADVERS, REFUSED (non-IN, AXFR)
 *     4. list state            REFUSED (EDE 14 Not Ready) while a list set to `refuse` has none
 *     5. policy                allowlist, then the lists (cached per name and generation): block or steer
 *     6. ANY                   like any other type (RFC 8482 4.1: from the cache or the upstream, never made up)
 *     7. packet cache          fresh hit: copy, patch ID/flags/TTLs, re-check CNAME targets if the lists changed
 *     8. upstream              coalesced per cache key; UDP, TCP on TC, failover; the answer scrubbed (records off
 *                              the alias chain or out of bailiwick left out); its CNAME/DNAME targets through the
 *                              policy; cached; stale answer when every try failed (RFC 8767)
 *
 * Why this order. The cheapest checks on the least trusted input come first: the access list and the rate limit
 * look only at the source address, so a client outside the allowed networks or over its rate costs us nothing
 * more (the rate limit sits above everything that allocates or looks anything up, like blocky's chain puts it
 * above the cache). Parsing comes next because every later stage needs the question. The policy sits above the
 * cache so that a block never depends on what the cache holds: a name listed after its answer was cached is
 * blocked on the next query, and the verdict cache is keyed by list generation. ANY is decided by the policy
 * like every type, so a blocked name is blocked for every type. The cache sits above the upstream, and the upstream's answer goes
 * through the policy again for its CNAME/DNAME targets before it is cached or sent.
 *
 * "Verdicts and cache entries never outlive the list generation they were made under": the name's verdict cache
 * is emptied when the generation changes (policy/verdict.ts). A cached answer depends on the lists only through its
 * CNAME/DNAME targets, so each entry keeps its targets and the generation they were checked under, and a hit
 * under a newer generation re-checks them (a few microseconds) instead of dropping the whole cache at every list
 * update (every few minutes, which would cost every ISP a cold cache). A config reload counts as a new generation
 * too (the allowlist or the partial action may have changed).
 *
 * One QueryPath owns no global state: each DNS worker process (workers > 1) owns its own listeners, cache and
 * upstream pool.
 */
import { Buffer } from 'node:buffer';

import type { Config } from './config/schema.js';
import { Access, LIMIT_DROP, LIMIT_PASS, LIMIT_SLIP } from './dns/access.js';
import { makeEntry, renderEntry, truncate, udpLimit } from './dns/answer.js';
import { PacketCache, hashKey, type CacheEntry } from './dns/cache.js';
import { InflightTable } from './dns/inflight.js';
import { scrubAnswer } from './dns/scrub.js';
import type { Client } from './dns/client.js';
import { CountingEvents, type AnswerSource, type QueryEvents, type Transport } from './dns/events.js';
import type { QueryHandler } from './dns/listeners.js';
import { ScratchAnswers } from './dns/scratch.js';
import { EDE_NOT_READY, EDE_NOT_SUPPORTED, EDE_PROHIBITED, Synth, spliceAnswer, type TailPair } from './dns/synth.js';
import { Job, UpstreamPool, type UpstreamOwner } from './dns/upstream.js';
import {
  F1_RD,
  F1_TC,
  F2_AD,
  F2_CD,
  HEADER_BYTES,
  MAX_MESSAGE_BYTES,
  ParsedQuery,
  Q_BADVERS,
  Q_DROP,
  Q_FORMERR,
  Q_FORMERR_HEADER,
  Q_NOTIMP,
  Q_NOTIMP_TYPE,
  Q_OK,
  Q_REFUSED,
  RCODE_BADVERS,
  RCODE_FORMERR,
  RCODE_NOERROR,
  RCODE_NOTIMP,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
  ResponseInfo,
  TYPE_ANY,
  UPSTREAM_EDNS_BYTES,
  OPT_DO_BYTE,
  TYPE_OPT,
  copyOctets,
  foldQuestion,
  parseQuery,
  readDottedName,
  scanResponse,
  writeU16,
} from './dns/wire.js';
import { Policy } from './policy/verdict.js';
import { BLOCK, PASS, PASS_DECISION, STEER, type Decision, type PolicyEvents } from './types/decision.js';
import type { ListProvider, ListView } from './types/lists.js';
import type { ProbeResult, UpstreamState } from './types/ops.js';
import { systemClock, type Clock } from './util/clock.js';
import type { Logger } from './util/log.js';
import { dottedFromWire } from './util/names.js';

export interface QueryPathOptions {
  readonly logger: Logger;
  readonly lists: ListProvider;
  /** Where the query path reports; a CountingEvents when absent. */
  readonly events?: QueryEvents;
  /** Where blocks (with the listed entry) and allowlisted passes are reported: the metrics and the hit report. */
  readonly policyEvents?: PolicyEvents;
  /** The rate limit's, the cache's and the upstream tries' time (tests move a ManualClock); the system's by default. */
  readonly clock?: Clock;
}

/** Takes the query path's reports while it answers a probe. */
const SILENT_EVENTS: QueryEvents = {
  queryDone: () => undefined,
  blocked: () => undefined,
  cacheLookup: () => undefined,
  upstreamQuery: () => undefined,
  upstreamAnswer: () => undefined,
  upstreamError: () => undefined,
  upstreamHealth: () => undefined,
  staleAnswer: () => undefined,
  malformed: () => undefined,
  rateLimited: () => undefined,
  aclRefused: () => undefined,
  inFlight: () => undefined,
  proxyHeader: () => undefined,
  connectionOpened: () => undefined,
  connectionClosed: () => undefined,
  connectionRefused: () => undefined,
  connectionTimedOut: () => undefined,
  answerSent: () => undefined,
  servfail: () => undefined,
};

const NO_POLICY_EVENTS: PolicyEvents = { matched: () => undefined, allowlisted: () => undefined };

/** Clients one upstream question may carry (coalesced identical queries); more start their own. */
const MAX_WAITERS = 64;
/** Generations: list generation + this times the config epoch, so a reload also counts as a new generation. */
const EPOCH = 0x100000000;

/** Everything that depends on the configuration; rebuilt (or carried over) on reload. */
export class Parts {
  constructor(
    readonly config: Config,
    readonly access: Access,
    readonly policy: Policy,
    readonly synth: Synth,
    readonly cache: PacketCache,
    readonly pool: UpstreamPool<ParsedQuery>,
    readonly epoch: number,
  ) {}

  get maxResponseBytes(): number {
    return this.config.udp.maxResponseBytes;
  }
}

/**
 * The query path: every stage above, for one process. Its configuration comes in as Parts (build() makes them,
 * use() puts them in force), so a reload swaps them between two queries; the listeners (daemon.ts) hand it queries.
 */
export class QueryPath implements QueryHandler, UpstreamOwner<ParsedQuery> {
  parts!: Parts;
  readonly events: QueryEvents;
  readonly #lists: ListProvider;
  /** Not readonly only so that probe() can silence them for its one synchronous query. */
  #events: QueryEvents;
  /** While probe() asks its question. */
  #probing = false;
  #policyEvents: PolicyEvents;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #debug: boolean;
  /** Scratch for the query being handled (cloned only when it has to wait for an upstream). */
  readonly #q = new ParsedQuery();
  readonly #key = Buffer.alloc(MAX_MESSAGE_BYTES);
  readonly #info = new ResponseInfo();
  readonly #dotted = Buffer.alloc(512);
  /** Where answers are rendered: a buffer per length, reused once the client's send has let go of it. */
  readonly #answers = new ScratchAnswers();
  /** Upstream questions in flight, by cache key (coalescing). */
  readonly #inflight = new InflightTable<Job<ParsedQuery>>();
  /** Configurations built so far: a reload is a new generation for the verdicts memoized in the cache. */
  #epoch = 0;
  /** Evictions of caches a reload replaced, so the count only ever grows (a Prometheus counter). */
  #evictionsBefore = 0;

  constructor(options: QueryPathOptions) {
    this.#lists = options.lists;
    this.events = options.events ?? new CountingEvents();
    this.#events = this.events;
    this.#policyEvents = options.policyEvents ?? NO_POLICY_EVENTS;
    this.#log = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.#debug = this.#log.isLevelEnabled('debug');
    this.#lists.on('swap', (view) => this.parts.policy.sync(view));
  }

  /**
   * The parts for `config`, not yet in force: those whose settings are unchanged from `previous` are carried over
   * (the cache survives a reload that does not change its settings, the upstream pool one that does not change the
   * upstreams).
   */
  build(config: Config, previous: Parts | null = null): Parts {
    const access = new Access(config.access);
    const policy = new Policy({ allowlist: config.blocking.allowlist, steer: config.blocking.partial === 'steer' });
    const synth =
      previous &&
      same(previous.config.blocking, config.blocking) &&
      same(previous.config.udp, config.udp) &&
      same(previous.config.stopPage.listNames, config.stopPage.listNames)
        ? previous.synth
        : synthFor(config);
    for (const l of config.lists) synth.prepare(l.id);
    // An entry records its CNAME/DNAME targets only while cnameInspection is on, and is checked by them only then:
    // an entry cached under the other setting would be served unchecked (turned on) or blocked (turned off) until
    // its TTL ran out, so a change of that setting starts a new cache as a change of the cache's own settings does.
    const cache =
      previous !== null &&
      same(previous.config.cache, config.cache) &&
      previous.config.blocking.cnameInspection === config.blocking.cnameInspection
        ? previous.cache
        : new PacketCache(config.cache);
    const pool =
      previous && same(previous.config.upstreams, config.upstreams) && same(previous.config.upstream, config.upstream)
        ? previous.pool
        : new UpstreamPool<ParsedQuery>(
            { upstreams: config.upstreams, ...config.upstream },
            this,
            this.events,
            this.#log,
            this.#clock,
          );
    return new Parts(config, access, policy, synth, cache, pool, this.#epoch++);
  }

  /** Puts `parts` in force (between two queries); an upstream pool they replaced closes once its queries are done. */
  use(parts: Parts): void {
    const old = this.parts as Parts | undefined;
    this.parts = parts;
    if (old === undefined) return;
    if (parts.cache !== old.cache) this.#evictionsBefore += old.cache.evictions;
    if (parts.pool !== old.pool) old.pool.retire();
  }

  /** Lets go of `parts` that were built and never put in force. */
  discard(parts: Parts): void {
    if (parts.pool !== (this.parts as Parts | undefined)?.pool) parts.pool.close();
  }

  /** Ends the upstream questions in flight (their clients get SERVFAIL) and closes the upstream sockets. */
  close(): void {
    this.parts.pool.close();
  }

  /** Entries in the packet cache. */
  get cacheSize(): number {
    return this.parts.cache.size;
  }

  /** Bytes the packet cache holds, as counted for cache.maxBytes. */
  get cacheBytes(): number {
    return this.parts.cache.bytes;
  }

  /** Entries the packet cache evicted to stay within its bounds, across reloads. */
  get cacheEvictions(): number {
    return this.#evictionsBefore + this.parts.cache.evictions;
  }

  /** The upstreams in force, in order, with their health. */
  upstreamHealth(): readonly UpstreamState[] {
    return this.parts.pool.upstreams.map((u) => ({ name: u.name, up: !u.down }));
  }

  /** Stage 1 for a connection, when it is accepted: whether its client is inside access.allow. */
  accepts(address: string): boolean {
    return this.parts.access.allowed(address);
  }

  handle(msg: Buffer, client: Client): void {
    try {
      this.#handle(msg, client);
    } catch (err) {
      // Never past the listener: a bug here costs one query (SERVFAIL or drop), not the daemon.
      this.#log.error({ err: (err as Error).stack }, 'internal error in the query path; please report it');
      try {
        client.drop();
      } catch {
        // the client's accounting is already settled
      }
    }
  }

  #handle(msg: Buffer, client: Client): void {
    const p = this.parts;
    const events = this.#events;
    const t = client.transport;
    const q = this.#q;
    // The one clock read of a query answered at once: the rate limit's, the cache's lifetimes, and the start of the
    // latency of an answer that waits for an upstream (kept on the waiter only: a double stored on the scratch query
    // would be boxed, 16 heap bytes per query).
    const now = this.#clock.now();
    // 1. Access list. A REFUSED to a spoofed source is reflected at a victim: bounded per prefix, or none at all.
    if (!p.access.allowed(client.address)) {
      const refuse = t !== 'udp' || p.access.refuse(client.address, now);
      events.aclRefused(t, refuse);
      if (!refuse) return this.#drop(client, t);
      const st = parseQuery(msg, q);
      if (st === Q_DROP) return this.#drop(client, t);
      q.client = client;
      return this.#send(p, q, spliceAnswer(q, p.synth.error(RCODE_REFUSED, EDE_PROHIBITED), this.#answers), 'local');
    }
    // 2. Rate limit, UDP only (access.ts says why TCP is not limited by it).
    if (t === 'udp' && p.access.limiting) {
      const limit = p.access.take(client.address, now);
      if (limit !== LIMIT_PASS) {
        events.rateLimited(t, limit === LIMIT_SLIP);
        // Never feed a reflection flood: dropped, but for the slip's empty TC answer (no larger than the query).
        if (limit === LIMIT_DROP || parseQuery(msg, q) !== Q_OK) return this.#drop(client, t);
        q.client = client;
        const out = spliceAnswer(q, p.synth.error(RCODE_NOERROR), this.#answers);
        out[2]! |= F1_TC;
        return this.#send(p, q, out, 'local');
      }
    }
    this.#admitted(msg, client, now);
  }

  /**
   * Asks about `name` in-process (the canary check, the stop page): type ANY, from stage 3 on (the access list and
   * the rate limit are about clients, not names), answered synchronously: a blocked name by the block, any other by
   * an empty NOERROR made right after the policy, so nothing is looked up in the cache or goes upstream. The reports are silenced but for its own decision: not
   * counted in the metrics or the hit report. RangeError for a name that cannot be put in a question.
   */
  probe(name: string): ProbeResult {
    const { answer, decision } = this.#probeWire(probeQuery(name));
    return { rcode: answer === null ? -1 : answer[3]! & 0x0f, decision };
  }

  #probeWire(msg: Buffer): { answer: Buffer | null; decision: Decision | null } {
    const out: { answer: Buffer | null; decision: Decision | null } = { answer: null, decision: null };
    const events = this.#events;
    const policyEvents = this.#policyEvents;
    this.#events = SILENT_EVENTS;
    this.#policyEvents = { matched: (d) => (out.decision = d), allowlisted: () => undefined };
    const client: Client = {
      transport: 'tcp',
      address: '',
      port: 0,
      reply: (answer) => {
        out.answer = answer;
        return true; // kept: probe() reads it after the query path returns
      },
      drop: () => undefined,
      keep: () => client,
    };
    this.#probing = true;
    try {
      this.#admitted(msg, client, this.#clock.now());
    } finally {
      this.#probing = false;
      this.#events = events;
      this.#policyEvents = policyEvents;
    }
    return out;
  }

  /** Stages 3 to 8, for a query the access list and the rate limit let through, taken at `now`. */
  #admitted(msg: Buffer, client: Client, now: number): void {
    const p = this.parts;
    const events = this.#events;
    const q = this.#q;
    // 3. Parse.
    const st = parseQuery(msg, q);
    q.client = client;
    if (st !== Q_OK) return this.#notOk(p, q, st);
    // 4. List state.
    const view = this.#lists.view();
    if (view.refuseAll)
      return this.#send(p, q, spliceAnswer(q, p.synth.error(RCODE_REFUSED, EDE_NOT_READY), this.#answers), 'local');
    // 5. Policy.
    const kb = this.#key;
    const klen = foldQuestion(q, kb, 4);
    kb[klen] = 0x30 + (q.dnssecOk ? 1 : 0) + (q.cd ? 2 : 0);
    // The key as a string only where a table keyed by strings needs one (a decision not memoized, a question going
    // upstream): a cached answer is found by the key's octets, and their hash serves the questions in flight too.
    // The cache entry of this question (looked up once, used in stage 7) memoizes the name's decision under the
    // generation it was made in: a hit skips the decision map (one string hash and lookup fewer per query; the
    // decision is the policy's all the same, and a new generation or a reload makes it decide again).
    const hash = hashKey(kb, klen + 1);
    const e = p.cache.getWire(kb, klen + 1, now, hash);
    const gen = view.generation + p.epoch * EPOCH;
    let d: Decision;
    if (e !== undefined && e.nameGeneration === gen) {
      d = e.nameDecision;
    } else {
      d = p.policy.decideWire(kb.toString('latin1', 0, q.nameEnd - HEADER_BYTES), msg, HEADER_BYTES, view);
      if (e !== undefined) {
        e.nameDecision = d;
        e.nameGeneration = gen;
      }
    }
    if (d.action !== PASS) {
      if (this.#decided(p, q, d, false)) return;
    } else if (d.allowlisted) {
      this.#policyEvents.allowlisted(d);
    }
    // The in-process probe (probe()) ends with the decision: never answered from the cache nor forwarded.
    if (this.#probing) return this.#send(p, q, spliceAnswer(q, p.synth.error(RCODE_NOERROR), this.#answers), 'local');
    // 6. ANY goes on like any other type: RFC 8482 4.1 lets a forwarder answer it from what it has or from its
    // upstream (which applies RFC 8482 itself), never with records that are not there (a synthesized HINFO breaks
    // DNSSEC validation, turns NXDOMAIN into NOERROR and hides a CNAME). It was decided by the policy above, so a
    // blocked name is blocked for ANY too.
    // 7. Cache (the entry was looked up with the policy's memo above).
    if (e !== undefined && now < e.freshUntilMs) {
      events.cacheLookup(true);
      const ad = this.#aliasDecision(p, e, view);
      if (ad.action !== PASS && this.#decided(p, q, ad, true)) return;
      return this.#send(p, q, renderEntry(e, q, now, 0, this.#answers), 'cache');
    }
    events.cacheLookup(false);
    // RFC 8767 5 (the failure recheck timer): while every upstream is down and none is due for a probe, a stale
    // entry answers at once instead of after every try has timed out. Queries without one still go out (and probe).
    if (e !== undefined && p.config.cache.serveStale && p.pool.allDown()) {
      const ad = this.#aliasDecision(p, e, view);
      if (ad.action !== PASS && this.#decided(p, q, ad, true)) return;
      events.staleAnswer();
      return this.#send(p, q, renderEntry(e, q, now, p.config.cache.staleAnswerTtlSeconds, this.#answers), 'stale');
    }
    // 8. Upstream, coalescing identical questions.
    const key = kb.toString('latin1', 0, klen + 1);
    const pending = this.#inflight.get(key, hash);
    if (pending !== undefined && pending.waiters.length < MAX_WAITERS) {
      pending.waiters.push(waiterOf(q, now));
      return;
    }
    if (p.pool.inFlight >= p.config.upstream.maxInFlight) {
      events.servfail('inflight-cap');
      return this.#send(p, q, spliceAnswer(q, p.synth.error(RCODE_SERVFAIL), this.#answers), 'local');
    }
    const job = new Job<ParsedQuery>(key, upstreamQuery(q), q.qEnd);
    job.keyHash = hash;
    job.waiters.push(waiterOf(q, now));
    if (pending === undefined) this.#inflight.add(job);
    p.pool.start(job);
  }

  /** Answers for the parse outcomes other than Q_OK. */
  #notOk(p: Parts, q: ParsedQuery, st: number): void {
    const client = q.client!;
    const t = client.transport;
    switch (st) {
      case Q_DROP:
        this.#events.malformed(t, 'drop');
        return this.#drop(client, t);
      case Q_FORMERR_HEADER:
      case Q_FORMERR:
        // The question echoed when it could be read; an OPT when the query's own was sound (RFC 6891 7).
        this.#events.malformed(t, 'formerr');
        return this.#send(p, q, spliceAnswer(q, p.synth.error(RCODE_FORMERR), this.#answers), 'local');
      case Q_NOTIMP:
      case Q_NOTIMP_TYPE:
        return this.#send(p, q, spliceAnswer(q, p.synth.error(RCODE_NOTIMP), this.#answers), 'local');
      case Q_BADVERS:
        // RFC 6891 6.1.3: BADVERS, with an OPT of the highest version we support (0).
        q.edns = true;
        return this.#send(p, q, spliceAnswer(q, p.synth.error(RCODE_BADVERS), this.#answers), 'local', RCODE_BADVERS);
      case Q_REFUSED:
        return this.#send(
          p,
          q,
          spliceAnswer(q, p.synth.error(RCODE_REFUSED, EDE_NOT_SUPPORTED), this.#answers),
          'local',
        );
      default:
        return this.#drop(client, t);
    }
  }

  /**
   * Answers a block or a steer; false when a steer does not apply to this query type (it then passes). `nowMs` as
   * for #send.
   */
  #decided(p: Parts, q: ParsedQuery, d: Decision, viaAlias: boolean, nowMs = -1): boolean {
    if (d.action === BLOCK) {
      this.#events.blocked(d.listId, p.config.blocking.mode, viaAlias);
      this.#policyEvents.matched(d);
      const variants = p.synth.blocks(d.listId, q.qtype);
      let answer = spliceAnswer(q, variants[0]!, this.#answers);
      if (variants.length > 1 && q.client!.transport === 'udp') {
        // draft-ietf-dnsop-structured-dns-error, "Server Generating Response": a shorter EXTRA-TEXT before TC.
        const limit = udpLimit(q, p.maxResponseBytes);
        for (let i = 1; answer.length > limit && i < variants.length; i++) {
          answer = spliceAnswer(q, variants[i]!, this.#answers);
        }
      }
      this.#send(p, q, answer, 'blocked', undefined, nowMs);
      return true;
    }
    if (d.action === STEER) {
      const pair: TailPair | null = p.synth.steer(d.listId, q.qtype);
      if (pair === null) return false;
      this.#events.blocked(d.listId, 'steer', viaAlias);
      this.#policyEvents.matched(d);
      this.#send(p, q, spliceAnswer(q, pair, this.#answers), 'steered', undefined, nowMs);
      return true;
    }
    return false;
  }

  /** The policy decision over an entry's CNAME/DNAME targets under the current lists (re-checked if they changed). */
  #aliasDecision(p: Parts, e: CacheEntry, view: ListView): Decision {
    if (e.aliases === null) return PASS_DECISION;
    const gen = view.generation + p.epoch * EPOCH;
    if (e.generation !== gen) {
      e.decision = this.#aliasesDecide(p, e.aliases, view);
      e.generation = gen;
    }
    return e.decision;
  }

  /** The first blocking (else steering) decision among `aliases`. */
  #aliasesDecide(p: Parts, aliases: readonly string[], view: ListView): Decision {
    let steer: Decision = PASS_DECISION;
    for (const name of aliases) {
      const d = p.policy.decideName(name, view);
      if (d.action === BLOCK) return d;
      if (d.action === STEER && steer.action === PASS) steer = d;
    }
    return steer;
  }

  upstreamAnswer(job: Job<ParsedQuery>, answer: Buffer, scanned: ResponseInfo): void {
    this.#inflight.delete(job);
    const p = this.parts;
    // Scrubbed once, here, before it is cached (dns/scrub.ts): a cache hit never pays for it.
    const scrubbed = this.#scrub(answer, scanned);
    if (scrubbed === null) {
      for (const w of job.waiters)
        this.#send(p, w, spliceAnswer(w, p.synth.error(RCODE_SERVFAIL), this.#answers), 'local');
      return;
    }
    const { msg, info } = scrubbed;
    const view = this.#lists.view();
    const now = this.#clock.now();
    let aliases: string[] | null = null;
    let decision = PASS_DECISION;
    if (p.config.blocking.cnameInspection && (info.aliasCount > 0 || info.aliasOverflow)) {
      if (info.aliasOverflow) {
        // More aliases than any resolver follows: the chain cannot be checked, so it is not served.
        for (const w of job.waiters) {
          this.#events.servfail('alias-overflow');
          this.#send(p, w, spliceAnswer(w, p.synth.error(RCODE_SERVFAIL), this.#answers), 'local', undefined, now);
        }
        return;
      }
      aliases = [];
      for (let i = 0; i < info.aliasCount; i++) aliases.push(readDottedName(msg, info.aliasOffsets[i]!));
      decision = this.#aliasesDecide(p, aliases, view);
    }
    const gen = view.generation + p.epoch * EPOCH;
    const e = makeEntry(p.cache.settings, msg, msg.length, info, p.maxResponseBytes, now, aliases, gen, decision);
    p.cache.set(job.key, e);
    for (const w of job.waiters) {
      if (decision.action !== PASS && this.#decided(p, w, decision, true, now)) continue;
      this.#send(p, w, renderEntry(e, w, now, 0, this.#answers), 'upstream', undefined, now);
    }
  }

  /** `msg` as scrubAnswer leaves it, with its scan (rescanned when records were left out); null if unusable. */
  #scrub(msg: Buffer, info: ResponseInfo): { msg: Buffer; info: ResponseInfo } | null {
    const out = scrubAnswer(msg, info);
    if (out === msg) return { msg, info };
    if (out === null || !scanResponse(out, out.length, this.#info)) return null;
    return { msg: out, info: this.#info };
  }

  upstreamFailed(job: Job<ParsedQuery>): void {
    this.#inflight.delete(job);
    const p = this.parts;
    const now = this.#clock.now();
    const e = p.cache.get(job.key, now);
    if (e !== undefined) {
      // RFC 8767: every upstream failed; an entry within its stale window answers, with a short TTL.
      const fresh = now < e.freshUntilMs;
      if (fresh || p.config.cache.serveStale) {
        const view = this.#lists.view();
        const d = this.#aliasDecision(p, e, view);
        const staleTtl = fresh ? 0 : p.config.cache.staleAnswerTtlSeconds;
        for (const w of job.waiters) {
          if (d.action !== PASS && this.#decided(p, w, d, true, now)) continue;
          if (!fresh) this.#events.staleAnswer();
          this.#send(p, w, renderEntry(e, w, now, staleTtl, this.#answers), fresh ? 'cache' : 'stale', undefined, now);
        }
        return;
      }
    }
    const raw = job.lastRcodeAnswer;
    const relay = raw !== null && scanResponse(raw, raw.length, this.#info) ? this.#scrub(raw, this.#info) : null;
    if (relay !== null) {
      // The upstream's own SERVFAIL/REFUSED/NOTIMP (it may carry an EDE saying why), scrubbed, never cached.
      const view = this.#lists.view();
      const r = makeEntry(
        p.cache.settings,
        relay.msg,
        relay.msg.length,
        relay.info,
        p.maxResponseBytes,
        now,
        null,
        view.generation,
        PASS_DECISION,
      );
      const servfail = relay.info.rcode === RCODE_SERVFAIL;
      for (const w of job.waiters) {
        if (servfail) this.#events.servfail('upstream-servfail');
        this.#send(p, w, renderEntry(r, w, now, 0, this.#answers), 'upstream', undefined, now);
      }
      return;
    }
    for (const w of job.waiters) {
      this.#events.servfail('upstream-failed');
      this.#send(p, w, spliceAnswer(w, p.synth.error(RCODE_SERVFAIL), this.#answers), 'local', undefined, now);
    }
  }

  /**
   * Sends an answer to `q`'s client, cut to fit (RFC 2181 9, RFC 6891 7) when it is too large for the transport. `nowMs`: the time, for
   * an answer that waited for an upstream (-1: an answer given while its query is handled).
   *
   * The answer's latency, for the histogram: an answer given while its query is handled (the cache, a block, a local
   * answer) counts as 0: the handler takes a few microseconds, far below the first bucket (100 µs), and a second
   * clock read per query would cost about as much as the rest of a cached answer's bookkeeping. An answer that
   * waited for an upstream is timed from the handling of its query to now. (The time a datagram waits in the
   * socket's queue before it is handled is in neither: only the kernel sees it.)
   */
  #send(p: Parts, q: ParsedQuery, answer: Buffer, source: AnswerSource, rcode = answer[3]! & 0x0f, nowMs = -1): void {
    const client = q.client!;
    let out = answer;
    const limit = client.transport === 'udp' ? udpLimit(q, p.maxResponseBytes) : MAX_MESSAGE_BYTES;
    if (out.length > limit) out = truncate(out, q, limit, p.maxResponseBytes);
    this.#events.queryDone(client.transport, q.qtype, rcode, source);
    this.#events.answerSent(client.transport, out.length, nowMs < 0 ? 0 : nowMs - q.receivedMs);
    if (this.#debug) this.#logQuery(q, rcode, source);
    if (client.reply(out)) this.#answers.release(out);
  }

  #drop(client: Client, t: Transport): void {
    this.#events.queryDone(t, 0, -1, 'local');
    client.drop();
  }

  #logQuery(q: ParsedQuery, rcode: number, source: AnswerSource): void {
    // util/log.ts removes `qname` and `client` unless the operator asked for them at debug level.
    const n = dottedFromWire(q.msg, HEADER_BYTES, this.#dotted);
    this.#log.debug(
      {
        qname: this.#dotted.toString('latin1', 0, n),
        client: q.client?.address,
        qtype: q.qtype,
        rcode,
        source,
        transport: q.client?.transport,
      },
      'query',
    );
  }
}

/**
 * A copy of the scratch query `q` that waits for an upstream, with a client that outlives the datagram's handler, and
 * the time it was taken.
 */
function waiterOf(q: ParsedQuery, receivedMs: number): ParsedQuery {
  const w = new ParsedQuery().copyFrom(q);
  w.client = q.client!.keep();
  w.receivedMs = receivedMs;
  return w;
}

/**
 * The query sent upstream: RD set (upstreams are recursive resolvers), AD set (RFC 6840 5.7: ask for the AD bit;
 * it is cleared on the way out for clients that did not ask), CD as the client sent it, the client's question
 * bytes, and an OPT of our own (RFC 6891): a 1232-octet buffer, DO as the client sent it, no options (no ECS, no
 * cookie: cookies are per hop, RFC 7873; the client's subnet stays private).
 */
function upstreamQuery(q: ParsedQuery): Buffer {
  const qEnd = q.qEnd;
  // A slice of Node's shared pool, not an ArrayBuffer of its own (Buffer.alloc makes one per query, which V8 tracks
  // and sweeps one by one); every octet is written below.
  const out = Buffer.allocUnsafe(qEnd + 11);
  // Octet by octet (copyOctets: wire.ts): fill() and copy() cost more in their argument checks and calls into C++
  // than the ~50 octets they would write.
  for (let i = 0; i < HEADER_BYTES; i++) out[i] = 0;
  out[2] = F1_RD;
  out[3] = F2_AD | (q.cd ? F2_CD : 0);
  out[5] = 1;
  out[11] = 1;
  copyOctets(q.msg, HEADER_BYTES, qEnd, out, HEADER_BYTES);
  for (let i = qEnd; i < qEnd + 11; i++) out[i] = 0;
  writeU16(out, qEnd + 1, TYPE_OPT);
  writeU16(out, qEnd + 3, UPSTREAM_EDNS_BYTES);
  out[qEnd + 7] = q.dnssecOk ? OPT_DO_BYTE : 0;
  return out;
}

function synthFor(c: Config): Synth {
  const b = c.blocking;
  return new Synth({
    mode: b.mode,
    ttlSeconds: b.ttlSeconds,
    edeCode: b.edeCode,
    stopPageIpv4: b.stopPageIpv4,
    stopPageIpv6: b.stopPageIpv6,
    proxyIpv4: b.proxyIpv4,
    proxyIpv6: b.proxyIpv6,
    ednsSize: c.udp.maxResponseBytes,
    structuredError: b.structuredError.enabled ? b.structuredError : null,
    listNames: c.stopPage.listNames,
  });
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A query for `name`, type ANY, class IN, RD set, no EDNS. */
function probeQuery(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.');
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = Buffer.from(l, 'latin1');
    if (b.length === 0 || b.length > 63) throw new RangeError('probe: a label is empty or longer than 63 octets');
    parts.push(Buffer.from([b.length]), b);
  }
  const qname = Buffer.concat([...parts, Buffer.from([0])]);
  if (qname.length > 255) throw new RangeError('probe: the name is longer than 255 octets');
  const header = Buffer.from([0, 0, F1_RD, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(TYPE_ANY, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, qname, tail]);
}
