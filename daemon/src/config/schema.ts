/**
 * The daemon's configuration: YAML in, one validated, typed, frozen object out. Defaults sit next to each key,
 * units are in the names. Every key is documented in examples/hashwalld.yaml; keep the two in step.
 *
 * Validation is zod: an unknown key, a wrong type or an impossible value is refused with its key path. Checks that
 * need more than one key or the file system (key files, stop-page addresses for the stop-page mode) are in load.ts.
 */
import { isIP } from 'node:net';

import { z } from 'zod';

import { parseCidr, parseHostPort } from '../util/net.js';

const LIST_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A BCP 47 language tag, as far as a config needs to check one (en, de, pt-BR). */
const languageTag = z.string().regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/, 'not a language tag (en, de, pt-BR)');

/** A contact URI of the structured DNS error: the draft's registry holds mailto: (RFC 6068) and tel: (RFC 3966). */
const contactUri = z
  .string()
  .max(100)
  .regex(
    /^(mailto:[^\s@]+@[^\s@]+|tel:\+?[0-9][0-9.()-]*)$/,
    'a mailto: or tel: URI (mailto:abuse@isp.example, tel:+1-555-0100)',
  );

/** The hit report's floors (ops/hits.ts): windows of an hour or more, and entries hit at least this often. */
export const HIT_REPORT_MIN_INTERVAL_SECONDS = 3600;
export const HIT_REPORT_MIN_COUNT = 5;

const hostPort = (defaultPort: number) =>
  z.string().superRefine((s, ctx) => {
    try {
      parseHostPort(s, defaultPort);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

const cidr = z.string().superRefine((s, ctx) => {
  try {
    parseCidr(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const ipv4 = z.string().refine((s) => isIP(s) === 4, 'not an IPv4 address');
const ipv6 = z.string().refine((s) => isIP(s) === 6, 'not an IPv6 address');
const ms = (min: number, max: number) => z.number().int().min(min).max(max);
const seconds = (min: number, max: number) => z.number().int().min(min).max(max);

/** A host name the operator writes in plaintext (allowlist, canary): lower-case is applied at load. */
const hostName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/, 'not a host name (letters, digits, "-", "_" and dots)')
  .refine((s) => s.split('.').every((l) => l.length <= 63), 'a label is longer than 63 characters');

export const DEFAULT_ALLOWED_NETWORKS = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
];

export const listSchema = z.strictObject({
  /** The list-id the publisher signs for (SPEC.md 2.1). */
  id: z.string().regex(LIST_ID, 'a list id is [a-z0-9][a-z0-9-]{0,62}'),
  /** Release base URLs (the folder holding index.hwl), tried in order: https://, http:// or file://. */
  mirrors: z
    .array(
      z.string().refine((s) => {
        try {
          return ['https:', 'http:', 'file:'].includes(new URL(s).protocol);
        } catch {
          return false;
        }
      }, 'not an https://, http:// or file:// URL'),
    )
    .min(1),
  /** Trusted minisign public keys (`RW...`), inline. */
  keys: z.array(z.string()).default([]),
  /** Trusted minisign public key files (`.pub`). */
  keyFiles: z.array(z.string()).default([]),
  /** How many distinct trusted keys must sign each file (default 1). Not with rootKeys. */
  threshold: z.number().int().min(1).max(8).optional(),
  /**
   * Instead of keys: the list's root keys (SPEC.md 5), inline (`RW...`) or as files. The signing keys then come
   * from the keyrings the maintainer publishes, checked from these roots on: rotations need no config change.
   */
  rootKeys: z.array(z.string()).default([]),
  rootKeyFiles: z.array(z.string()).default([]),
  /** How many distinct root keys must sign keyring 1 (default 1). */
  rootThreshold: z.number().int().min(1).max(8).optional(),
  /** The list's release log (SPEC.md 6): an index is accepted only in a checkpoint enough witnesses cosigned. */
  log: z
    .strictObject({
      /** The log's verifier key (`origin+keyid+base64`, what `hashwall-signer keygen --log-key` printed). */
      key: z.string().min(1),
      /** The checkpoint origin line (default: the log key's name). */
      origin: z.string().min(1).max(1024).optional(),
      /** The witnesses' cosigner keys. */
      witnesses: z.array(z.string()).max(32).default([]),
      /** How many distinct witnesses must have cosigned a checkpoint (default: all of them). */
      witnessThreshold: z.number().int().min(0).max(32).optional(),
    })
    .optional(),
  /** The list hash key file (hwl1-list-key), readable only by the daemon's user. */
  hashKeyFile: z.string().optional(),
  /** The list hash key inline: prefer hashKeyFile. */
  hashKey: z.strictObject({ id: z.string().regex(LIST_ID), key: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
  /** When to poll (cron, five fields). Never more often than the index's min-poll. */
  schedule: z.string().default('*/5 * * * *'),
  /** Random delay added to each poll, up to this many seconds. */
  jitterSeconds: seconds(0, 3600).default(60),
  /** Cap for a FULL or DELTA download (SPEC.md 4: hard limit 256 MiB). */
  maxListBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(64 * 1024 * 1024),
  connectTimeoutMs: ms(100, 60000).default(5000),
  totalTimeoutMs: ms(1000, 600000).default(60000),
  /** First retry delay after a failed poll; doubles up to retryMaxMs. */
  retryMinMs: ms(1000, 3600000).default(30000),
  retryMaxMs: ms(1000, 86400000).default(3600000),
  /** SPEC.md 4.5: once the enforced FULL is past its expires, keep enforcing it or drop it. */
  onExpired: z.enum(['keep', 'drop']).default('keep'),
  /** With no valid list at start: wait (up to startWaitMs, then serve unfiltered), serve unfiltered, or refuse. */
  onStartWithoutList: z.enum(['wait', 'serve-unfiltered', 'refuse']).default('wait'),
  startWaitMs: ms(0, 600000).default(30000),
  /** A name the maintainer lists on purpose; checked through the query path after each update. */
  canary: hostName.optional(),
});

const blockingSchema = z.strictObject({
  /** How a blocked query is answered. */
  mode: z.enum(['nxdomain', 'refused', 'nodata', 'stop-page']).default('nxdomain'),
  /** TTL of blocked answers (and of the SOA in NXDOMAIN/NODATA). */
  ttlSeconds: seconds(0, 86400).default(300),
  /** RFC 8914 Extended DNS Error: 16 Censored (default), 15 Blocked, 17 Filtered, or 0 for none. */
  edeCode: z
    .union([z.literal(0), z.literal(15), z.literal(16), z.literal(17)], {
      error: 'one of 16 (Censored), 15 (Blocked), 17 (Filtered), or 0 for no extended error (RFC 8914 4)',
    })
    .default(16),
  /** Addresses of the stop page, for mode stop-page. */
  stopPageIpv4: z.array(ipv4).default([]),
  stopPageIpv6: z.array(ipv6).default([]),
  /** Hosts with URL-level entries (P): pass them (default), or steer them to a filtering proxy. */
  partial: z.enum(['pass', 'steer']).default('pass'),
  proxyIpv4: z.array(ipv4).default([]),
  proxyIpv6: z.array(ipv6).default([]),
  /** Names that always pass, with everything below them (an operator's own false positives). */
  allowlist: z.array(hostName).default([]),
  /** Block when an upstream answer's CNAME/DNAME chain reaches a listed name. */
  cnameInspection: z.boolean().default(true),
  /**
   * The EDE's EXTRA-TEXT as the JSON of draft-ietf-dnsop-structured-dns-error ("I-JSON in EXTRA-TEXT Field"):
   * contact URIs, a justification and the organization, so that a user whose browser shows no page (HTTPS) can
   * learn why. Off: the EXTRA-TEXT is `list <id>`.
   */
  structuredError: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** "c": how to report a wrong block; the draft allows mailto: and tel: URIs only. */
      contact: z.array(contactUri).max(4).default([]),
      /** "j": why the name is blocked; {list} is replaced by the list's display name (stopPage.listNames, or its id). */
      justification: z.string().max(200).default(''),
      /** "o": who blocked it. */
      organization: z.string().max(100).default(''),
      /** "l": the language of "j" and "o" (BCP 47). */
      language: languageTag.default('en'),
    })
    .prefault({}),
});

/** Guards against over-blocking (SPEC.md has no say: the ISP's own check before a list is put in force). */
const guardSchema = z.strictObject({
  /** Hold a list that blocks a name of the bundled popular-domain list (@hashwall/format's top-sites.txt). */
  topSites: z.boolean().default(true),
  /** Your own critical names, one a line (# comments): a list that blocks one is held. */
  namesFiles: z.array(z.string()).default([]),
  /** Hold a list that adds, or removes, more than this share of the entries in force ... */
  maxChangePercent: z.number().int().min(0).max(100000).default(25),
  /** ... or this many entries, whichever is larger. */
  maxChangeCount: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(100),
});

export const configSchema = z.strictObject({
  /** Addresses to serve DNS on, UDP and TCP each: "127.0.0.1:53", "[::1]:53", "0.0.0.0:5353". */
  listen: z.array(hostPort(53)).min(1).default(['127.0.0.1:53', '[::1]:53']),
  tcp: z
    .strictObject({
      /** Client connections open at once per listener; more are closed when accepted. */
      maxConnections: z.number().int().min(1).max(100000).default(1000),
      /** Client connections open at once per client prefix (ipv4Prefix/ipv6Prefix bits) per listener. */
      maxConnectionsPerPrefix: z.number().int().min(1).max(100000).default(100),
      ipv4Prefix: z.number().int().min(8).max(32).default(24),
      ipv6Prefix: z.number().int().min(16).max(128).default(56),
      /** A connection with nothing in flight for this long is closed (RFC 7766 6.2.3). */
      idleTimeoutMs: ms(100, 600000).default(10000),
      /** From the first octet of a frame (its length) to its last: a frame not whole by then closes the connection. */
      frameTimeoutMs: ms(100, 60000).default(2000),
      /** Queries one connection may have in flight at once (RFC 7766 pipelining). */
      maxInFlightPerConnection: z.number().int().min(1).max(1000).default(100),
    })
    .prefault({}),
  /** The certificate and key of the encrypted listeners (dot, doh); read at start and again on SIGHUP. */
  tls: z
    .strictObject({
      /** PEM: the server's certificate chain, leaf first. */
      certFile: z.string().default(''),
      /** PEM: its private key (not readable by others). */
      keyFile: z.string().default(''),
      /** The oldest TLS version accepted (TLS 1.3 is always offered). */
      minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    })
    .prefault({}),
  /** DNS over TLS (RFC 7858): RFC 7766 streams over TLS, with tcp's limits. */
  dot: z
    .strictObject({
      /** Addresses to serve DoT on ("0.0.0.0:853", "[::]:853"); empty: none. */
      listen: z.array(hostPort(853)).default([]),
    })
    .prefault({}),
  /** DNS over HTTPS (RFC 8484), HTTP/2 and HTTP/1.1, with tcp's connection limits. */
  doh: z
    .strictObject({
      /** Addresses to serve DoH on ("0.0.0.0:443", "[::]:443"); empty: none. */
      listen: z.array(hostPort(443)).default([]),
      /** The URI path of the DoH endpoint. */
      path: z
        .string()
        .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, 'an absolute URI path without query or fragment')
        .default('/dns-query'),
      /** Accept HTTP/1.1 besides HTTP/2. */
      http1: z.boolean().default(true),
      /** The largest DNS query accepted, as a POST body (413 beyond) or decoded from GET's dns= (414 beyond). */
      maxQueryBytes: z.number().int().min(512).max(65535).default(4096),
      /** The largest request header block (HTTP/2: uncompressed; HTTP/1.1: as sent), 431 beyond. */
      maxHeaderBytes: z.number().int().min(1024).max(65536).default(8192),
    })
    .prefault({}),
  /** PROXY protocol v2 from front ends (dnsdist useProxyProtocol=true) on listen (UDP and TCP) and dot.listen. */
  proxyProtocol: z
    .strictObject({
      /** Front-end networks whose PROXY headers are believed; empty: off. Anyone else's header is dropped. */
      trusted: z.array(cidr).default([]),
      /** From a trusted front end, drop a query (or connection) without a header; false: serve it as the front end's. */
      requireHeader: z.boolean().default(true),
      /** The longest header accepted, all of it (dnsdist's default cap is 512). */
      maxHeaderBytes: z.number().int().min(52).max(65551).default(512),
    })
    .prefault({}),
  udp: z
    .strictObject({
      /** Largest UDP answer whatever the client advertises (DNS Flag Day 2020: 1232). */
      maxResponseBytes: z.number().int().min(512).max(4096).default(1232),
    })
    .prefault({}),
  upstreams: z.array(hostPort(53)).min(1).default(['127.0.0.1:5300']),
  upstream: z
    .strictObject({
      /** Time to wait for one try before the next upstream. */
      timeoutMs: ms(50, 30000).default(1500),
      /** Time for the TCP retry after a truncated UDP answer (connect, send, whole answer). */
      tcpTimeoutMs: ms(50, 30000).default(3000),
      /** Tries per query across the upstreams, the first included. */
      maxTries: z.number().int().min(1).max(10).default(3),
      /**
       * Distinct questions (names or probes) whose tries failed, each sent after the upstream's last good answer,
       * that mark it down. The tries of one name count once (dns/health.ts).
       */
      failureThreshold: z.number().int().min(1).max(100).default(3),
      /** Good answers in a row (probes, or queries when every upstream is down) that bring it back up. */
      recoveryThreshold: z.number().int().min(1).max(100).default(2),
      /** The question each upstream is asked on a timer, whatever the client traffic, and how often. */
      probe: z
        .strictObject({
          /** A name every upstream answers: "." (the root's NS, from any recursive resolver's priming). */
          name: z.union([z.literal('.'), hostName]).default('.'),
          type: z.enum(['A', 'AAAA', 'NS', 'SOA', 'TXT', 'MX', 'PTR']).default('NS'),
          intervalMs: ms(100, 3600000).default(2000),
        })
        .prefault({}),
      /** Queries in flight to all upstreams at once; beyond this, SERVFAIL. */
      maxInFlight: z.number().int().min(1).max(1000000).default(10000),
    })
    .prefault({}),
  cache: z
    .strictObject({
      maxEntries: z.number().int().min(0).max(100000000).default(100000),
      maxBytes: z
        .number()
        .int()
        .min(0)
        .default(64 * 1024 * 1024),
      minTtlSeconds: seconds(0, 86400).default(0),
      maxTtlSeconds: seconds(0, 604800).default(86400),
      /** RFC 2308: cap on the TTL of cached NXDOMAIN and NODATA. */
      maxNegativeTtlSeconds: seconds(0, 86400).default(3600),
      /** RFC 8767: answer from expired entries when every upstream fails. */
      serveStale: z.boolean().default(true),
      /** How long past expiry an entry may still be served stale. */
      staleMaxAgeSeconds: seconds(0, 604800).default(86400),
      /** TTL put in stale answers (RFC 8767 recommends 30). */
      staleAnswerTtlSeconds: seconds(1, 3600).default(30),
    })
    .prefault({}),
  access: z
    .strictObject({
      /** Client networks allowed to query; others get REFUSED. The default keeps a fresh install closed. */
      allow: z.array(cidr).default(DEFAULT_ALLOWED_NETWORKS),
      /** Clients outside `allow`: REFUSED under refusedRateLimitQps per prefix (the rest dropped), or all dropped. */
      outside: z.enum(['refuse', 'drop']).default('refuse'),
      /** REFUSED answers per second per client prefix outside `allow`, with a burst allowance (reflection bound). */
      refusedRateLimitQps: z.number().min(0.01).max(1000000).default(10),
      refusedRateLimitBurst: z.number().int().min(1).max(10000000).default(20),
      /** UDP queries per second per client prefix (0: no limit), with a burst allowance. TCP is not limited. */
      rateLimitQps: z.number().min(0).max(1000000).default(0),
      rateLimitBurst: z.number().int().min(1).max(10000000).default(200),
      /** Every n-th UDP query over the rate gets an empty answer with TC set, so real clients retry over TCP (0: none). */
      rateLimitSlip: z.number().int().min(0).max(100).default(2),
      rateLimitIpv4Prefix: z.number().int().min(8).max(32).default(24),
      rateLimitIpv6Prefix: z.number().int().min(16).max(128).default(56),
      /** Prefixes tracked at once for rate limiting (least recently seen are forgotten). */
      rateLimitMaxPrefixes: z.number().int().min(100).max(10000000).default(100000),
    })
    .prefault({}),
  blocking: blockingSchema.prefault({}),
  lists: z.array(listSchema).default([]),
  /** What a new list is checked against before it is put in force; a list that fails is held (lists/hold.ts). */
  guard: guardSchema.prefault({}),
  /** What /readyz (and hashwall_ready) asks for beyond listening and being able to answer. */
  readiness: z
    .strictObject({
      /**
       * Lists without which the node is not ready: "none" (a missing list is reported, the node stays in service,
       * unfiltered for that list), "all", or a list of ids. For fleets that must fail closed.
       */
      requireLists: z.union([z.enum(['none', 'all']), z.array(z.string().regex(LIST_ID, 'a list id'))]).default('none'),
    })
    .prefault({}),
  /** Where verified lists and their state are kept across restarts. */
  stateDir: z.string().min(1).default('/var/lib/hashwall'),
  /** Workers sharing the DNS port: 1, or "auto" for one per core. */
  workers: z
    .union([z.number().int().min(1).max(256), z.literal('auto')], {
      error: 'a whole number of processes from 1 to 256, or "auto" (one per core)',
    })
    .default(1),
  metrics: z
    .strictObject({
      /** HTTP listener for /metrics, /healthz and /readyz; empty to disable. */
      listen: z
        .union([hostPort(9153), z.literal('')], {
          error: 'an IP address with an optional port ("127.0.0.1:9153", "[::1]:9153"), or "" for no listener',
        })
        .default('127.0.0.1:9153'),
      /** Node.js process metrics (CPU, memory, event loop, GC) beside the hashwall_ ones. */
      processMetrics: z.boolean().default(true),
    })
    .prefault({}),
  /** The stop page's own HTTP listener (ops/stop-page.ts), for blocking.mode stop-page. */
  stopPage: z
    .strictObject({
      /** Addresses to serve the page on ("0.0.0.0:80", "[::]:80"); empty: no stop page listener. */
      listen: z.array(hostPort(80)).default([]),
      /** An HTML template (UTF-8, placeholders {{lang}} {{list}} {{operator}} {{contact}} {{appeal}} {{host}}). */
      templateFile: z.string().default(''),
      /** The page's language (BCP 47), for <html lang> and Content-Language. */
      language: languageTag.default('en'),
      /** Who blocked the site, as the page names them. */
      operator: z.string().max(200).default('Your Internet service provider'),
      /** How to reach the operator about a block. */
      contact: z.string().max(500).default(''),
      /** What to do if the block is wrong. */
      appeal: z.string().max(2000).default(''),
      /** Display names of lists by id ("iwf: Internet Watch Foundation"); a list without one is named by its id. */
      listNames: z
        .record(z.string().regex(LIST_ID), z.string().min(1).max(200), {
          error: (issue) => (issue.code === 'invalid_key' ? 'not a list id ([a-z0-9][a-z0-9-]{0,62})' : undefined),
        })
        .default({}),
    })
    .prefault({}),
  /** Hits per listed entry for the list maintainers (ops/hits.ts). */
  hitReport: z
    .strictObject({
      enabled: z.boolean().default(false),
      /**
       * Window length; windows are aligned to multiples of it since the epoch (86400: days from 00:00 UTC). At least
       * an hour, so that a report cannot tell when one person looked a name up.
       */
      intervalSeconds: seconds(HIT_REPORT_MIN_INTERVAL_SECONDS, 31 * 86400).default(86400),
      /** Entries hit fewer times than this in a window are left out of its report (at least 5, for the same reason). */
      minCount: z.number().int().min(HIT_REPORT_MIN_COUNT).max(1000000000).default(10),
      /** Where each window's report is written, one file a window (JSON, atomically); empty for no files. */
      directory: z.string().default(''),
      /** Window files kept in the directory; the oldest beyond this are removed. */
      keepWindows: z.number().int().min(1).max(100000).default(90),
      /** Serve the last window's report at /hit-report on the metrics listener. */
      endpoint: z.boolean().default(false),
      /** Distinct entries counted per window at most (memory bound). */
      maxEntries: z.number().int().min(1).max(10000000).default(100000),
    })
    .prefault({}),
  logging: z
    .strictObject({
      level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
      /** Put query names in debug log lines (never at info or above). */
      debugQueryNames: z.boolean().default(false),
      /** Put client addresses in debug log lines (never at info or above). */
      debugClientAddresses: z.boolean().default(false),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** On SIGTERM, how long in-flight queries may take to finish. */
      drainTimeoutMs: ms(0, 60000).default(3000),
    })
    .prefault({}),
});

export type ConfigInput = z.input<typeof configSchema>;
type Parsed = z.output<typeof configSchema>;
export type ListConfigParsed = Parsed['lists'][number];

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The validated configuration: frozen all the way down. */
export type Config = DeepReadonly<Parsed>;
export type ListConfig = Config['lists'][number];
export type BlockingConfig = Config['blocking'];
export type GuardConfig = Config['guard'];
