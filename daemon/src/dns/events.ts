/**
 * What the query path reports, for the metrics (ops/metrics.ts) to turn into Prometheus series. The query path
 * calls these methods synchronously with plain values (no objects built per call); an implementation must be cheap
 * and must never throw. Label sets stay bounded: a transport, a type number, an rcode, a list id from the
 * configuration, an upstream as configured ("192.0.2.1:53"), and the small enums below. Never a query name or a
 * client address.
 *
 * `CountingEvents` is the default: it counts into plain numbers and maps, and the tests assert on it.
 */

import type { ProxyOutcome } from './proxy.js';

export type { ProxyOutcome };

/** How a client query arrived: plain UDP or TCP, DNS over TLS (RFC 7858), DNS over HTTPS (RFC 8484). */
export type Transport = 'udp' | 'tcp' | 'dot' | 'doh';

/** Where a PROXY v2 header can arrive (dns/proxy.ts): a UDP datagram, a TCP connection, a DoT session. */
export type ProxyTransport = 'udp' | 'tcp' | 'dot';

/** The transports whose clients hold a connection (dns/stream.ts). */
export type StreamTransport = Exclude<Transport, 'udp'>;

/** Why a new connection was closed at once: outside access.allow, the cap, the cap per client prefix. */
export type ConnectionRefusal = 'acl' | 'limit' | 'prefix-limit';

/**
 * Why the daemon closed a connection: idle (RFC 7766 6.2.3), a frame (or a PROXY header) not whole within
 * tcp.frameTimeoutMs, or a TLS handshake not done within it (DoT, DoH).
 */
export type ConnectionTimeout = 'idle' | 'frame-timeout' | 'handshake-timeout';

/** Where a query's answer came from. */
export type AnswerSource =
  /** Synthesized for a blocked name (any mode). */
  | 'blocked'
  /** Synthesized for a steered (P) name. */
  | 'steered'
  /** The packet cache. */
  | 'cache'
  /** An upstream, just now. */
  | 'upstream'
  /** An expired cache entry, because every upstream failed (RFC 8767). */
  | 'stale'
  /** Synthesized locally: ANY (RFC 8482), FORMERR, NOTIMP, BADVERS, REFUSED, SERVFAIL. */
  | 'local';

export type BlockAction = 'nxdomain' | 'refused' | 'nodata' | 'stop-page' | 'steer';

export type UpstreamError =
  /** No answer within upstream.timeoutMs (UDP) or the TCP deadline. */
  | 'timeout'
  /** An answer that failed the strict checks (bad structure, wrong question, QR/opcode). */
  | 'malformed'
  /** An answer from the wrong address or port, or for an ID nothing is waiting on. */
  | 'unexpected'
  /** SERVFAIL, REFUSED or NOTIMP from the upstream. */
  | 'rcode'
  /** A socket or connection error. */
  | 'network';

export type MalformedReply = 'formerr' | 'drop';

/** Why the daemon itself answered SERVFAIL. */
export type ServfailReason =
  /** Every try to the upstreams failed (timeouts, network errors, malformed answers), and no stale answer. */
  | 'upstream-failed'
  /** The upstreams answered SERVFAIL, and that answer was relayed. */
  | 'upstream-servfail'
  /** `upstream.maxInFlight` questions were waiting for the upstreams: refused at once. */
  | 'inflight-cap'
  /** An answer's CNAME/DNAME chain was too long to check against the lists. */
  | 'alias-overflow';

export interface QueryEvents {
  /** A query was answered (or dropped: rcode -1). */
  queryDone(transport: Transport, qtype: number, rcode: number, source: AnswerSource): void;
  /** A query was blocked or steered by `listId`; `viaAlias` when a CNAME/DNAME target matched. */
  blocked(listId: string, action: BlockAction, viaAlias: boolean): void;
  /** A cache lookup for a query that was not blocked. */
  cacheLookup(hit: boolean): void;
  /** A try was sent to an upstream (UDP, or TCP after a truncated answer). */
  upstreamQuery(upstream: string, tcp: boolean): void;
  /** An upstream answered well, `latencyMs` after the try started (UDP or TCP). */
  upstreamAnswer(upstream: string, latencyMs: number, tcp: boolean): void;
  upstreamError(upstream: string, error: UpstreamError): void;
  /** An upstream was marked down (`up` false) or came back. */
  upstreamHealth(upstream: string, up: boolean): void;
  /** A stale answer was served (RFC 8767). */
  staleAnswer(): void;
  /** A malformed query, answered FORMERR or dropped. */
  malformed(transport: Transport, reply: MalformedReply): void;
  /** A query over its client prefix's rate: dropped, or answered with TC (`slipped`). */
  rateLimited(transport: Transport, slipped: boolean): void;
  /** A query from outside access.allow: answered REFUSED (`answered`), or dropped (access.outside, its rate limit). */
  aclRefused(transport: Transport, answered: boolean): void;
  /** Upstream queries in flight changed (coalesced client queries count once). */
  inFlight(count: number): void;
  /** A PROXY v2 header was read (or found missing, or refused): once per datagram, once per connection. */
  proxyHeader(transport: ProxyTransport, outcome: ProxyOutcome): void;
  /** A client connection was accepted; it is open until connectionClosed. */
  connectionOpened(transport: StreamTransport): void;
  connectionClosed(transport: StreamTransport): void;
  /** A new client connection was closed at once. */
  connectionRefused(transport: StreamTransport, reason: ConnectionRefusal): void;
  /** The daemon closed a connection at a deadline. */
  connectionTimedOut(transport: StreamTransport, reason: ConnectionTimeout): void;
  /**
   * An answer of `bytes` octets was sent to a client, `latencyMs` after its query was handled (0 for an answer
   * given while the query was handled: see server.ts).
   */
  answerSent(transport: Transport, bytes: number, latencyMs: number): void;
  /** The daemon answered SERVFAIL itself, or relayed an upstream's, for `reason`. */
  servfail(reason: ServfailReason): void;
}

interface UpstreamCounts {
  queries: number;
  tcpQueries: number;
  answers: number;
  tcpAnswers: number;
  latencyMsSum: number;
  errors: Record<UpstreamError, number>;
  downs: number;
  ups: number;
}

/** Counts every event into plain numbers. Reading the fields is the whole API. */
export class CountingEvents implements QueryEvents {
  readonly queries: Record<Transport, number> = { udp: 0, tcp: 0, dot: 0, doh: 0 };
  /** Dropped queries (no answer at all) are under rcode -1. */
  readonly byRcode = new Map<number, number>();
  readonly bySource: Record<AnswerSource, number> = {
    blocked: 0,
    steered: 0,
    cache: 0,
    upstream: 0,
    stale: 0,
    local: 0,
  };
  readonly byQtype = new Map<number, number>();
  /** Per list id, per action. */
  readonly blocks = new Map<string, Partial<Record<BlockAction, number>>>();
  aliasBlocks = 0;
  cacheHits = 0;
  cacheMisses = 0;
  readonly upstreams = new Map<string, UpstreamCounts>();
  stale = 0;
  readonly malformedQueries = { udp: 0, tcp: 0, dot: 0, doh: 0, formerr: 0, drop: 0 };
  readonly rateLimitedQueries = { udp: 0, tcp: 0, dot: 0, doh: 0, slipped: 0 };
  readonly aclRefusedQueries = { udp: 0, tcp: 0, dot: 0, doh: 0, dropped: 0 };
  /** PROXY headers per transport and outcome, as `udp proxied`. */
  readonly proxyHeaders = new Map<string, number>();
  inFlightNow = 0;
  inFlightMax = 0;
  /** Open client connections, and those closed at once or at a deadline, by reason (every stream transport). */
  connectionsOpen = 0;
  readonly connectionsRefused: Record<ConnectionRefusal, number> = { acl: 0, limit: 0, 'prefix-limit': 0 };
  readonly connectionsTimedOut: Record<ConnectionTimeout, number> = {
    idle: 0,
    'frame-timeout': 0,
    'handshake-timeout': 0,
  };
  /** Answers sent, their octets and their latencies (ms), per transport. */
  readonly sent = { udp: 0, tcp: 0, dot: 0, doh: 0, bytes: 0, latencyMs: [] as number[] };
  readonly servfails: Record<ServfailReason, number> = {
    'upstream-failed': 0,
    'upstream-servfail': 0,
    'inflight-cap': 0,
    'alias-overflow': 0,
  };

  queryDone(transport: Transport, qtype: number, rcode: number, source: AnswerSource): void {
    this.queries[transport]++;
    this.byRcode.set(rcode, (this.byRcode.get(rcode) ?? 0) + 1);
    this.byQtype.set(qtype, (this.byQtype.get(qtype) ?? 0) + 1);
    this.bySource[source]++;
  }

  blocked(listId: string, action: BlockAction, viaAlias: boolean): void {
    let per = this.blocks.get(listId);
    if (per === undefined) this.blocks.set(listId, (per = {}));
    per[action] = (per[action] ?? 0) + 1;
    if (viaAlias) this.aliasBlocks++;
  }

  cacheLookup(hit: boolean): void {
    if (hit) this.cacheHits++;
    else this.cacheMisses++;
  }

  #upstream(name: string): UpstreamCounts {
    let u = this.upstreams.get(name);
    if (u === undefined) {
      u = {
        queries: 0,
        tcpQueries: 0,
        answers: 0,
        tcpAnswers: 0,
        latencyMsSum: 0,
        errors: { timeout: 0, malformed: 0, unexpected: 0, rcode: 0, network: 0 },
        downs: 0,
        ups: 0,
      };
      this.upstreams.set(name, u);
    }
    return u;
  }

  upstreamQuery(upstream: string, tcp: boolean): void {
    const u = this.#upstream(upstream);
    u.queries++;
    if (tcp) u.tcpQueries++;
  }

  upstreamAnswer(upstream: string, latencyMs: number, tcp: boolean): void {
    const u = this.#upstream(upstream);
    u.answers++;
    if (tcp) u.tcpAnswers++;
    u.latencyMsSum += latencyMs;
  }

  upstreamError(upstream: string, error: UpstreamError): void {
    this.#upstream(upstream).errors[error]++;
  }

  upstreamHealth(upstream: string, up: boolean): void {
    const u = this.#upstream(upstream);
    if (up) u.ups++;
    else u.downs++;
  }

  staleAnswer(): void {
    this.stale++;
  }

  malformed(transport: Transport, reply: MalformedReply): void {
    this.malformedQueries[transport]++;
    this.malformedQueries[reply]++;
  }

  rateLimited(transport: Transport, slipped: boolean): void {
    this.rateLimitedQueries[transport]++;
    if (slipped) this.rateLimitedQueries.slipped++;
  }

  aclRefused(transport: Transport, answered: boolean): void {
    this.aclRefusedQueries[transport]++;
    if (!answered) this.aclRefusedQueries.dropped++;
  }

  inFlight(count: number): void {
    this.inFlightNow = count;
    if (count > this.inFlightMax) this.inFlightMax = count;
  }

  proxyHeader(transport: ProxyTransport, outcome: ProxyOutcome): void {
    const k = `${transport} ${outcome}`;
    this.proxyHeaders.set(k, (this.proxyHeaders.get(k) ?? 0) + 1);
  }

  connectionOpened(): void {
    this.connectionsOpen++;
  }

  connectionClosed(): void {
    this.connectionsOpen--;
  }

  connectionRefused(_transport: StreamTransport, reason: ConnectionRefusal): void {
    this.connectionsRefused[reason]++;
  }

  connectionTimedOut(_transport: StreamTransport, reason: ConnectionTimeout): void {
    this.connectionsTimedOut[reason]++;
  }

  answerSent(transport: Transport, bytes: number, latencyMs: number): void {
    this.sent[transport]++;
    this.sent.bytes += bytes;
    if (this.sent.latencyMs.length < 10_000) this.sent.latencyMs.push(latencyMs);
  }

  servfail(reason: ServfailReason): void {
    this.servfails[reason]++;
  }

  /** Total errors of one kind across upstreams. */
  upstreamErrors(kind: UpstreamError): number {
    let n = 0;
    for (const u of this.upstreams.values()) n += u.errors[kind];
    return n;
  }
}
