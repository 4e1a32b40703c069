/**
 * Forwarding to the configured recursive resolvers.
 *
 * - UDP from a new socket per try on a random source port (udp-ports.ts, RFC 5452 10; bound ahead of need), with a
 *   random 16-bit ID per try drawn from a batched CSPRNG buffer (crypto.randomFillSync once per 1,024 draws: ~3 ns a
 *   draw against ~30-55 ns for crypto.randomInt, measured on this project's 2-core VM, Node 20). Tries wait on
 *   their socket's slot by ID (udp-ports.ts, PortSlot).
 * - Strict answers: the source address and port must be the upstream's, the ID one we wait on, QR set, opcode
 *   QUERY, exactly our question (case-insensitively), every record well formed (wire.ts scanResponse). Anything
 *   else is dropped and counted, and the try goes on waiting: a spoofed or broken datagram never ends a query, the
 *   try's timeout does (then the next upstream, then SERVFAIL).
 * - TC over UDP: the same upstream is asked again over TCP (RFC 7766), under its own deadline. A TCP answer with
 *   TC set is incomplete: that try failed (no TC loop, no empty answer passed on).
 * - Per-try timeout without a timer per try: every UDP try has the same timeout, so deadlines arrive in the order
 *   tries start; one FIFO and one timer for its head serve them all.
 * - Failover with health: upstreams are tried in configuration order, skipping those marked down. Health is
 *   health.ts's: every try's outcome (timeouts, network errors and malformed answers ending a TCP try count against
 *   it, any answer for it) and probes on a timer, sent here as one-upstream jobs. SERVFAIL, REFUSED and NOTIMP
 *   move the query to an untried upstream but do not count against health (a recursive resolver's SERVFAIL is
 *   usually the authority's fault). When every upstream is down the least recently failed one is still tried.
 */
import { Buffer } from 'node:buffer';
import type { RemoteInfo } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';

import { systemClock, type Clock, type Timer } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { parseHostPort } from '../util/net.js';
import type { QueryEvents } from './events.js';
import { HealthMonitor, PROBE_TYPES, UpstreamHealth, nameKey, probeQuery } from './health.js';
import { UdpPorts, type PortSlot } from './udp-ports.js';
import {
  HEADER_BYTES,
  RCODE_NOTIMP,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
  F1_TC,
  ResponseInfo,
  equalFolded,
  scanResponse,
} from './wire.js';

export interface UpstreamSettings {
  readonly upstreams: readonly string[];
  readonly timeoutMs: number;
  readonly tcpTimeoutMs: number;
  readonly maxTries: number;
  /** Distinct questions whose tries failed, sent after its last good answer, that mark an upstream down (health.ts). */
  readonly failureThreshold: number;
  /** UDP sockets open at once (one per try in flight); beyond it tries share them (default MAX_SOCKETS). */
  readonly maxSockets?: number;
  /** Good answers in a row that bring it back. */
  readonly recoveryThreshold: number;
  /** The probe question and how often each upstream is asked it. */
  readonly probe: { readonly name: string; readonly type: string; readonly intervalMs: number };
}

/** UDP sockets open at once: a file descriptor each (the systemd unit allows 65,536). */
const MAX_SOCKETS = 4096;
/** The deadline FIFO's first room (a power of two; doubled when full, never shrunk). */
const QUEUE_START = 64;

export class Upstream {
  readonly index: number;
  /** As configured, for events and logs ("192.0.2.1:53"). */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
  readonly health: UpstreamHealth;

  constructor(index: number, name: string, health: UpstreamHealth) {
    const hp = parseHostPort(name, 53);
    this.index = index;
    this.name = name;
    // The address as the socket layer reports senders (RFC 5952 form for IPv6).
    // A scoped address (fe80::1%eth0) is kept as written: URL would refuse it, and the socket layer reports it so.
    this.host =
      hp.family === 6 && !hp.host.includes('%') ? new URL(`dns://[${hp.host}]`).hostname.slice(1, -1) : hp.host;
    this.port = hp.port;
    this.family = hp.family;
    this.health = health;
  }

  /** Marked down (health.ts). */
  get down(): boolean {
    return !this.health.up;
  }
}

/** Try states. */
const IDLE = 0;
const UDP = 1;
const TCP = 2;
const DONE = 3;

/** One upstream question in flight; the query path hangs its waiting clients on it. */
export class Job<W = unknown> {
  /** The query as sent upstream (header, question, OPT); its ID is rewritten per try. */
  readonly query: Buffer;
  /** Offset after the question in `query`. */
  readonly qEnd: number;
  /** What the query path keeps with the job (its waiting clients). */
  readonly waiters: W[] = [];
  readonly key: string;
  /** The query path's hash of `key` (dns/inflight.ts). */
  keyHash = 0;
  state = IDLE;
  /** Increases with every try, so a stale timeout or TCP callback can tell it is too late. */
  seq = 0;
  tries = 0;
  /** Bit per upstream index tried (the first 31). */
  tried = 0;
  upstream: Upstream | null = null;
  /** The socket the current UDP try waits on, or null. */
  slot: PortSlot<Job<W>> | null = null;
  /** The current UDP try's ID. */
  id = -1;
  /** The slot of the current UDP try's deadline in the pool's FIFO, or -1. */
  qPos = -1;
  tryStartedMs = 0;
  /** The last SERVFAIL/REFUSED/NOTIMP answer seen, relayed when nothing better comes. */
  lastRcodeAnswer: Buffer | null = null;
  /** A probe: every try goes to this upstream, and its end is the health's alone (no owner, not in flight). */
  pinned: Upstream | null = null;
  /** A probe's end (answered or failed). */
  onProbeEnd: (() => void) | null = null;

  constructor(key: string, query: Buffer, qEnd: number) {
    this.key = key;
    this.query = query;
    this.qEnd = qEnd;
  }
}

/**
 * A finished job lets go of its waiters and its last error answer. Nothing long-lived should hold a finished job:
 * the tries wait on their socket's slot (udp-ports.ts), the questions in flight in a table cleared in place
 * (inflight.ts), the deadline FIFO clears a job's place when it ends or moves on. Where something still does (a slot
 * shared at maxSockets keeps its other tries in a Map, the TCP try's closures until the socket has closed), the job
 * it keeps is an empty shell, not its waiters with their clients and buffers: as measured under Node 24 at
 * saturation, what an old object points at survives every scavenge until a full collection, and what survives is
 * promoted (bench/README.md, "What keeps them: the registries' hash tables").
 */
function shed<W>(job: Job<W>): void {
  job.waiters.length = 0;
  job.lastRcodeAnswer = null;
}

export interface UpstreamOwner<W> {
  /** A good answer (already checked). `info` describes `msg` and is valid only during the call. */
  upstreamAnswer(job: Job<W>, msg: Buffer, info: ResponseInfo): void;
  /** Every try failed. `lastRcodeAnswer` on the job holds an upstream's SERVFAIL/REFUSED/NOTIMP, if any. */
  upstreamFailed(job: Job<W>): void;
}

export class UpstreamPool<W> {
  readonly upstreams: readonly Upstream[];
  readonly #settings: UpstreamSettings;
  readonly #owner: UpstreamOwner<W>;
  readonly #events: QueryEvents;
  readonly #clock: Clock;
  /** The tries' sockets, each with the tries waiting on it. */
  readonly #ports: UdpPorts<Job<W>>;
  /** The TCP tries in flight, each with its job. */
  readonly #tcp = new Map<TcpSocket, Job<W>>();
  // FIFO of UDP try deadlines: a ring (three parallel arrays, `#head` the first entry, `#count` entries), so a try
  // costs no array growth or copy. A job that ends or moves on to another try (a SERVFAIL's next upstream, TCP after
  // TC) before its deadline takes itself out of its slot (#dequeue) and the answered entries at the head are dropped
  // at once: the FIFO then holds the tries still waiting, a handful at most, and its timer runs when the oldest of
  // them is due, not at every answered try's deadline (~1,000 timers a second at 1,000 upstream questions a second
  // when the head was only advanced by the timer). A job left in the FIFO after its answer would stay alive (its
  // query, its waiters and their clients) until its deadline, long enough to survive a scavenge or two and be
  // promoted: ~400 heap bytes kept per upstream question.
  #qJobs: (Job<W> | null)[] = new Array<Job<W> | null>(QUEUE_START).fill(null);
  #qSeq = new Float64Array(QUEUE_START);
  #qDeadline = new Float64Array(QUEUE_START);
  #head = 0;
  #count = 0;
  #timer: Timer | null = null;
  readonly #info = new ResponseInfo();
  /** Jobs not yet finished. */
  inFlight = 0;
  #closed = false;
  #onIdle: (() => void) | null = null;
  readonly #monitor: HealthMonitor;
  readonly #probe: Buffer;
  #probes = 0;

  constructor(
    settings: UpstreamSettings,
    owner: UpstreamOwner<W>,
    events: QueryEvents,
    log: Logger,
    clock: Clock = systemClock,
  ) {
    this.#settings = settings;
    this.#clock = clock;
    this.#owner = owner;
    this.#events = events;
    this.upstreams = Object.freeze(settings.upstreams.map((u, i) => new Upstream(i, u, new UpstreamHealth(settings))));
    this.#ports = new UdpPorts<Job<W>>(
      (slot, msg, rinfo) => this.#onMessage(slot, msg, rinfo),
      log,
      settings.maxSockets ?? MAX_SOCKETS,
    );
    this.#probe = probeQuery(settings.probe.name, PROBE_TYPES[settings.probe.type] ?? 2);
    this.#monitor = new HealthMonitor(this.upstreams, {
      intervalMs: settings.probe.intervalMs,
      clock,
      log,
      events,
      probe: (i, done) => this.#sendProbe(this.upstreams[i]!, done),
    });
    this.#monitor.start();
  }

  /** One probe of `u` (health.ts): the probe question, up to maxTries tries, all to `u`. */
  #sendProbe(u: Upstream, done: () => void): void {
    if (this.#closed) return done();
    const query = Buffer.from(this.#probe);
    const job = new Job<W>(`\0probe:${this.#probes++}`, query, query.length - 11);
    job.pinned = u;
    job.onProbeEnd = done;
    this.#nextTry(job);
  }

  /** Ends the pending UDP try of `job` (answer, timeout, TC or failure). */
  #unpend(job: Job<W>): void {
    const slot = job.slot;
    if (slot === null) return;
    slot.take(job.id);
    job.slot = null;
    this.#ports.release(slot);
  }

  /** Starts the first try of `job`. */
  start(job: Job<W>): void {
    this.inFlight++;
    this.#events.inFlight(this.inFlight);
    this.#nextTry(job);
  }

  /** The upstream for the next try: untried ones that are up, in order; else the best we have. */
  #pick(job: Job<W>): Upstream {
    const all = this.upstreams;
    // In configuration order, the first untried upstream that is up (a down one is the probes' until it is back).
    for (const u of all) {
      if ((job.tried & (1 << (u.index & 31))) !== 0) continue;
      if (!u.down) return u;
    }
    // Everything tried or down: retry a healthy one, round robin over the tries, else the least recently failed.
    let healthy = 0;
    for (const u of all) if (!u.down) healthy++;
    if (healthy > 0) {
      let k = job.tries % healthy;
      for (const u of all) {
        if (u.down) continue;
        if (k-- === 0) return u;
      }
    }
    let best = all[0]!;
    for (const u of all) if (u.health.lastFailureMs < best.health.lastFailureMs) best = u;
    return best;
  }

  #hasUntried(job: Job<W>): boolean {
    for (const u of this.upstreams) if ((job.tried & (1 << (u.index & 31))) === 0) return true;
    return false;
  }

  #nextTry(job: Job<W>): void {
    if (this.#closed || job.tries >= this.#settings.maxTries) {
      this.#finish(job, false);
      return;
    }
    // The previous try's deadline (a try answered SERVFAIL moves on before it) leaves the FIFO now: left there, it
    // would keep the job, finished or not, until that deadline.
    this.#dequeue(job);
    const u = job.pinned ?? this.#pick(job);
    job.tries++;
    job.tried |= 1 << (u.index & 31);
    job.upstream = u;
    job.seq++;
    job.tryStartedMs = this.#clock.now();
    this.#events.upstreamQuery(u.name, false);
    const slot = this.#ports.acquire(u.family);
    let id: number;
    do id = this.#ports.random16();
    while (slot.has(id));
    job.query[0] = id >> 8;
    job.query[1] = id & 0xff;
    job.state = UDP;
    job.slot = slot;
    job.id = id;
    slot.put(id, job);
    this.#ports.send(slot, job.query, u.port, u.host);
    if (this.#count === this.#qJobs.length) this.#growQueue();
    const at = (this.#head + this.#count++) & (this.#qJobs.length - 1);
    job.qPos = at;
    this.#qJobs[at] = job;
    this.#qSeq[at] = job.seq;
    this.#qDeadline[at] = job.tryStartedMs + this.#settings.timeoutMs;
    if (this.#timer === null) this.#arm(this.#settings.timeoutMs);
  }

  /** Twice the FIFO's room, its entries moved to the start in order (a power of two: slots are masked). */
  #growQueue(): void {
    const n = this.#qJobs.length;
    const jobs = new Array<Job<W> | null>(n * 2).fill(null);
    const seq = new Float64Array(n * 2);
    const deadline = new Float64Array(n * 2);
    for (let i = 0; i < this.#count; i++) {
      const from = (this.#head + i) & (n - 1);
      const job = this.#qJobs[from] ?? null;
      jobs[i] = job;
      seq[i] = this.#qSeq[from]!;
      deadline[i] = this.#qDeadline[from]!;
      if (job !== null && job.qPos === from) job.qPos = i;
    }
    // The old array lets go of its jobs (inflight.ts says why).
    this.#qJobs.fill(null);
    this.#qJobs = jobs;
    this.#qSeq = seq;
    this.#qDeadline = deadline;
    this.#head = 0;
  }

  /** Takes a finished job out of the deadline FIFO (its slot becomes empty), so nothing keeps it alive. */
  #dequeue(job: Job<W>): void {
    const at = job.qPos;
    job.qPos = -1;
    if (at < 0 || this.#qJobs[at] !== job) return;
    this.#qJobs[at] = null;
    // The entries at the head that are done go now, not when their deadline comes.
    const mask = this.#qJobs.length - 1;
    while (this.#count > 0 && this.#qJobs[this.#head] === null) {
      this.#head = (this.#head + 1) & mask;
      this.#count--;
    }
  }

  #arm(ms: number): void {
    this.#timer = this.#clock.setTimeout(() => this.#expire(), Math.max(1, Math.ceil(ms)));
  }

  /** Ends the tries whose deadline has passed (each goes on to its next try) and arms the timer for the next one. */
  #expire(): void {
    // #timer stays set (to the timer that just ran) through the loop, so a next try does not arm one of its own.
    const now = this.#clock.now();
    while (this.#count > 0) {
      const h = this.#head;
      const job = this.#qJobs[h] ?? null;
      if (job !== null && this.#qDeadline[h]! > now) break;
      const seq = this.#qSeq[h]!;
      this.#qJobs[h] = null;
      this.#head = (h + 1) & (this.#qJobs.length - 1);
      this.#count--;
      // Only the current try times out (a job that moves on or ends takes its entry out, so this is a guard). The
      // next try (below) may add to the FIFO or grow it: the loop reads the fields again each time.
      if (job !== null && job.seq === seq && job.state === UDP) {
        if (job.qPos === h) job.qPos = -1;
        this.#unpend(job);
        this.#events.upstreamError(job.upstream!.name, 'timeout');
        this.#failure(job.upstream!, job);
        this.#nextTry(job);
      }
    }
    this.#timer = null;
    if (this.#count > 0 && !this.#closed) this.#arm(this.#qDeadline[this.#head]! - now);
  }

  #onMessage(slot: PortSlot<Job<W>>, msg: Buffer, rinfo: RemoteInfo): void {
    if (msg.length < HEADER_BYTES) {
      this.#events.upstreamError('unknown', 'unexpected');
      return;
    }
    const job = slot.get((msg[0]! << 8) | msg[1]!);
    const u = job?.upstream;
    if (job === undefined || u === null || u === undefined || rinfo.port !== u.port || rinfo.address !== u.host) {
      this.#events.upstreamError(u?.name ?? 'unknown', 'unexpected');
      return;
    }
    if (!this.#check(job, msg)) {
      this.#events.upstreamError(u.name, 'malformed');
      return; // keep waiting: the try's timeout decides
    }
    this.#unpend(job);
    if ((this.#info.flags1 & F1_TC) !== 0) {
      this.#tcpTry(job, u);
      return;
    }
    this.#answered(job, u, msg, false);
  }

  /** scanResponse plus the question check against what `job` sent. */
  #check(job: Job<W>, msg: Buffer): boolean {
    const info = this.#info;
    if (!scanResponse(msg, msg.length, info)) return false;
    if (info.qEnd !== job.qEnd) return false;
    return equalFolded(msg, HEADER_BYTES, info.qEnd, job.query, HEADER_BYTES);
  }

  #answered(job: Job<W>, u: Upstream, msg: Buffer, tcp: boolean): void {
    const info = this.#info;
    const rcode = info.rcode;
    if (rcode === RCODE_SERVFAIL || rcode === RCODE_REFUSED || rcode === RCODE_NOTIMP) {
      this.#events.upstreamError(u.name, 'rcode');
      job.lastRcodeAnswer = msg;
      this.#success(u); // it answered: healthy
      if (job.pinned === null && this.#hasUntried(job)) this.#nextTry(job);
      else this.#finish(job, false);
      return;
    }
    this.#success(u);
    this.#events.upstreamAnswer(u.name, this.#clock.now() - job.tryStartedMs, tcp);
    if (job.pinned !== null) return this.#finish(job, true);
    job.state = DONE;
    this.#dequeue(job);
    this.inFlight--;
    this.#events.inFlight(this.inFlight);
    this.#owner.upstreamAnswer(job, msg, info);
    shed(job);
    this.#idleCheck();
  }

  /** RFC 7766 5: the truncated answer's question again, over TCP to the same upstream, with its own deadline. */
  #tcpTry(job: Job<W>, u: Upstream): void {
    // The TCP try has its own timer: the UDP try's deadline leaves the FIFO (see #nextTry).
    this.#dequeue(job);
    job.state = TCP;
    const seq = ++job.seq;
    job.tryStartedMs = this.#clock.now();
    this.#events.upstreamQuery(u.name, true);
    const frame = Buffer.allocUnsafe(job.query.length + 2);
    frame.writeUInt16BE(job.query.length, 0);
    job.query.copy(frame, 2);
    const id = (job.query[0]! << 8) | job.query[1]!;
    const sock = connect({ host: u.host, port: u.port, family: u.family });
    this.#tcp.set(sock, job);
    let got: Buffer = Buffer.alloc(0);
    let over = false;
    const end = (ok: boolean, error: 'timeout' | 'network' | 'malformed', msg?: Buffer): void => {
      if (over) return;
      over = true;
      this.#clock.clearTimeout(timer);
      sock.destroy();
      this.#tcp.delete(sock);
      if (job.seq !== seq || job.state !== TCP) return;
      if (ok && msg !== undefined) {
        this.#answered(job, u, msg, true);
        return;
      }
      this.#events.upstreamError(u.name, error);
      this.#failure(u, job);
      this.#nextTry(job);
    };
    const timer = this.#clock.setTimeout(() => end(false, 'timeout'), this.#settings.tcpTimeoutMs);
    sock.setNoDelay(true);
    sock.on('connect', () => sock.write(frame));
    sock.on('data', (chunk: Buffer) => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
      if (got.length < 2) return;
      const n = got.readUInt16BE(0);
      if (got.length < 2 + n) return;
      const msg = got.subarray(2, 2 + n);
      if (n < HEADER_BYTES || ((msg[0]! << 8) | msg[1]!) !== id || !this.#check(job, msg)) {
        end(false, 'malformed');
        return;
      }
      // TC over TCP: the answer is incomplete and cannot be asked for any bigger. A failed try, never passed on
      // (a TC loop would otherwise end as an empty answer: a NODATA the upstream never meant).
      if ((this.#info.flags1 & F1_TC) !== 0) {
        end(false, 'malformed');
        return;
      }
      end(true, 'network', msg);
    });
    sock.on('error', () => end(false, 'network'));
    sock.on('close', () => end(false, 'network'));
  }

  #success(u: Upstream): void {
    if (u.health.success(this.#clock.now())) this.#monitor.changed(u.index, true);
  }

  /** A failed try of `job`: its question (a probe, or a name whatever its case and type) counts once. */
  #failure(u: Upstream, job: Job<W>): void {
    const key = job.pinned !== null ? job.key : nameKey(job.query, job.qEnd);
    if (u.health.failure(key, job.tryStartedMs, this.#clock.now())) this.#monitor.changed(u.index, false);
  }

  #finish(job: Job<W>, _ok: boolean): void {
    if (job.state === DONE) return;
    this.#unpend(job);
    job.state = DONE;
    this.#dequeue(job);
    if (job.pinned !== null) {
      job.onProbeEnd?.();
      return;
    }
    this.inFlight--;
    this.#events.inFlight(this.inFlight);
    this.#owner.upstreamFailed(job);
    shed(job);
    this.#idleCheck();
  }

  #idleCheck(): void {
    if (this.inFlight === 0 && this.#onIdle !== null) {
      const fn = this.#onIdle;
      this.#onIdle = null;
      fn();
    }
  }

  /** Every upstream is marked down: a query now would most likely only wait for timeouts. */
  allDown(): boolean {
    for (const u of this.upstreams) if (!u.down) return false;
    return true;
  }

  /** Open UDP sockets (one per try waiting for its answer). */
  get sockets(): number {
    return this.#ports.size;
  }

  /** UDP sockets bound ahead of need, each for one try to come (udp-ports.ts). */
  get spareSockets(): number {
    return this.#ports.spares;
  }

  /** Closes once no job is in flight (used when a reload replaced this pool). */
  retire(): void {
    this.#monitor.stop();
    if (this.inFlight === 0) this.close();
    else this.#onIdle = () => this.close();
  }

  /** Fails every job in flight (their clients get SERVFAIL) and closes the sockets. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#monitor.stop();
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    // Every job in flight has a try waiting: on a UDP socket or on a TCP connection.
    const jobs = [...this.#ports.tries(), ...this.#tcp.values()];
    for (const j of jobs) this.#finish(j, false);
    for (const s of this.#tcp.keys()) s.destroy();
    this.#tcp.clear();
    this.#ports.close();
  }
}
