/**
 * Helpers of the reliability suite: an authoritative upstream that can go silent (an outage) and answer again on
 * the port it keeps, a rate-bounded load client that checks every answer against what it must be, and the built
 * daemon as a child process. Everything on 127.0.0.1, every wait bounded.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { bindUdpAndTcp } from '../../daemon/test/helpers/upstream.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The A address the upstream gives `name`: 192.0.2.x from a hash of the name (so a wrong answer shows). */
export function addressOf(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return `192.0.2.${1 + (h % 250)}`;
}

/** Wire form of a query for `name`/A with `id`, RD set, optionally with an OPT (EDNS 0, 1232). */
export function queryFor(name: string, id: number, edns = false): Buffer {
  const parts = [Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0])];
  for (const l of name.split('.')) parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'));
  parts.push(Buffer.from([0, 0, 1, 0, 1]));
  if (edns) parts.push(Buffer.from([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]));
  return Buffer.concat(parts);
}

/** The question name of a DNS message (uncompressed, as queries and our answers carry it), lower-cased. */
export function questionName(msg: Buffer): string {
  const labels: string[] = [];
  let p = 12;
  while (p < msg.length && msg[p] !== 0 && msg[p]! < 64) {
    labels.push(msg.toString('latin1', p + 1, p + 1 + msg[p]!));
    p += msg[p]! + 1;
  }
  return labels.join('.').toLowerCase();
}

/** The first A record's address in an answer (after the question), or null. */
export function firstA(msg: Buffer): string | null {
  if (msg.length < 12 || msg.readUInt16BE(6) === 0) return null;
  let p = 12;
  while (p < msg.length && msg[p] !== 0) p += msg[p]! >= 0xc0 ? 1 : msg[p]! + 1;
  p += 5;
  for (let i = 0; i < msg.readUInt16BE(6) && p + 10 <= msg.length; i++) {
    if (msg[p]! >= 0xc0) p += 2;
    else {
      while (p < msg.length && msg[p] !== 0) p += msg[p]! + 1;
      p++;
    }
    const type = msg.readUInt16BE(p);
    const rdlen = msg.readUInt16BE(p + 8);
    if (type === 1 && rdlen === 4) return [...msg.subarray(p + 10, p + 14)].join('.');
    p += 10 + rdlen;
  }
  return null;
}

/**
 * An authoritative server for one zone (`*.<zone>` A -> addressOf(name), TTL `ttl`), UDP and TCP on one port from
 * port 0. An outage is `silent`: the server drops every datagram and closes every TCP connection at once, but keeps
 * its sockets, so the port stays its own and the same server answers again when `silent` is cleared (a server
 * closed and bound again could find its port taken by another socket in the meantime).
 */
export class ZoneUpstream {
  readonly zone: string;
  ttl: number;
  port = 0;
  queries = 0;
  /** While true, nothing is answered (an outage); the sockets stay bound. */
  silent = false;
  #udp: UdpSocket | null = null;
  #tcp: Server | null = null;
  readonly #conns = new Set<Socket>();

  constructor(zone: string, ttl = 300) {
    this.zone = zone;
    this.ttl = ttl;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  answer(q: Buffer): Buffer | null {
    if (q.length < 17 || (q[2]! & 0x80) !== 0) return null;
    let p = 12;
    while (p < q.length && q[p] !== 0) p += q[p]! + 1;
    const qEnd = p + 5;
    if (qEnd > q.length) return null;
    const name = questionName(q);
    const inZone = name === this.zone || name.endsWith('.' + this.zone);
    const h = Buffer.from(q.subarray(0, 12));
    h[2] = 0x84 | (q[2]! & 0x01); // QR AA RD
    h[3] = inZone ? 0x80 : 0x85; // RA, NOERROR or REFUSED
    h.writeUInt16BE(1, 4);
    h.writeUInt16BE(inZone ? 1 : 0, 6);
    h.writeUInt16BE(0, 8);
    h.writeUInt16BE(0, 10);
    const parts = [h, q.subarray(12, qEnd)];
    if (inZone) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0);
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(this.ttl, 6);
      rr.writeUInt16BE(4, 10);
      addressOf(name)
        .split('.')
        .forEach((x, i) => (rr[12 + i] = Number(x)));
      parts.push(rr);
    }
    return Buffer.concat(parts);
  }

  /** UDP on port 0, then TCP on the same port (bindUdpAndTcp), both kept until close(). */
  async start(): Promise<void> {
    const bound = await bindUdpAndTcp(
      '127.0.0.1',
      (m, r) => {
        this.queries++;
        if (this.silent) return;
        const a = this.answer(m);
        if (a) bound.udp.send(a, r.port, r.address);
      },
      (s) => this.#onTcp(s),
    );
    this.#udp = bound.udp;
    this.#tcp = bound.tcp;
    this.port = bound.port;
  }

  #onTcp(s: Socket): void {
    if (this.silent) {
      s.destroy();
      return;
    }
    this.#conns.add(s);
    s.on('close', () => this.#conns.delete(s));
    s.on('error', () => s.destroy());
    let buf = Buffer.alloc(0);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const a = this.silent ? null : this.answer(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        if (a) s.write(Buffer.concat([Buffer.from([a.length >> 8, a.length & 255]), a]));
      }
    });
  }

  /** Goes silent and drops the TCP connections open now (the start of an outage). */
  goSilent(): void {
    this.silent = true;
    for (const s of this.#conns) s.destroy();
  }

  close(): void {
    try {
      this.#udp?.close();
    } catch {
      // already closed
    }
    this.#udp = null;
    if (this.#tcp?.listening) this.#tcp.close();
    for (const s of this.#conns) s.destroy();
    this.#tcp = null;
  }
}

/** What a query must get: an rcode, and for NOERROR the A address (null: any answer with that rcode). */
export interface Expect {
  readonly rcode: number;
  readonly address?: string | null;
}

export interface LoadReport {
  sent: number;
  answered: number;
  lost: number;
  wrong: number;
  /** Answers per rcode. */
  rcodes: Record<number, number>;
  /** Up to 10 wrong answers, described. */
  wrongSamples: string[];
  /** Queries that got no answer, by the second (from the start) they were sent in. */
  lostAt: number[];
  /**
   * Queries the rate asked for but not sent because `maxInFlight` queries were still unanswered: the daemon, or the
   * machine it shares with this load, did not keep up with the rate.
   */
  throttled: number;
}

/**
 * Sends queries at `qps` from `sockets` UDP sockets for `durationMs` (every 10 ms, what the rate owes by then), each
 * from `next()` (a name and what it must get, or a function deciding at answer time), and waits up to `timeoutMs`
 * for the last answers. `judge` may return null to accept any answer (e.g. during a list swap).
 */
export async function runLoad(o: {
  port: number;
  qps: number;
  durationMs: number;
  next: (i: number) => { name: string; judge: (answer: Buffer) => string | null };
  sockets?: number;
  timeoutMs?: number;
  bindAddress?: string;
  edns?: boolean;
  /** Ends the load before durationMs when it returns true (checked every 10 ms). */
  stopWhen?: () => boolean;
  /**
   * At most this many queries unanswered at once (default: no limit). A machine too busy to answer at the rate then
   * gets fewer queries (counted as `throttled`) rather than a backlog that overflows the sockets' buffers.
   */
  maxInFlight?: number;
}): Promise<LoadReport> {
  const r: LoadReport = {
    sent: 0,
    answered: 0,
    lost: 0,
    wrong: 0,
    rcodes: {},
    wrongSamples: [],
    lostAt: [],
    throttled: 0,
  };
  let inFlight = 0;
  const n = o.sockets ?? 4;
  const socks: UdpSocket[] = [];
  const pending: Map<number, { judge: (a: Buffer) => string | null; at: number }>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = createSocket('udp4');
    const map = new Map<number, { judge: (a: Buffer) => string | null; at: number }>();
    s.on('message', (m) => {
      if (m.length < 12) return;
      const p = map.get(m.readUInt16BE(0));
      if (!p) return;
      map.delete(m.readUInt16BE(0));
      inFlight--;
      r.answered++;
      const rc = m[3]! & 15;
      r.rcodes[rc] = (r.rcodes[rc] ?? 0) + 1;
      const why = p.judge(m);
      if (why !== null) {
        r.wrong++;
        if (r.wrongSamples.length < 10) r.wrongSamples.push(why);
      }
    });
    s.on('error', () => undefined);
    await new Promise<void>((res) => s.bind(0, o.bindAddress ?? '127.0.0.1', () => res()));
    // Room for the answers to a burst (queries owed after a stall of the machine) until this process reads them.
    s.setRecvBufferSize(4 * 1024 * 1024);
    socks.push(s);
    pending.push(map);
  }
  let id = 1;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - t0;
      if (elapsed >= o.durationMs || (o.stopWhen?.() ?? false)) {
        clearInterval(tick);
        resolve();
        return;
      }
      // What the rate asks for by now, from the clock rather than from the ticks: on a busy machine a timer fires
      // late or not at all for a while, and the queries it owed go out in the next tick (up to maxInFlight).
      let due = Math.floor((o.qps * elapsed) / 1000) - r.sent - r.throttled;
      while (due-- > 0) {
        if (inFlight >= (o.maxInFlight ?? Infinity)) {
          r.throttled += due + 1;
          break;
        }
        const k = r.sent % n;
        const map = pending[k]!;
        id = (id % 65535) + 1;
        if (map.has(id)) {
          // an ID still pending on this socket (a lost query): it counts as lost now
          const lost = map.get(id)!;
          map.delete(id);
          inFlight--;
          r.lost++;
          r.lostAt.push(Math.floor(lost.at / 1000));
        }
        const q = o.next(r.sent);
        map.set(id, { judge: q.judge, at: elapsed });
        inFlight++;
        socks[k]!.send(queryFor(q.name, id, o.edns ?? false), o.port, '127.0.0.1');
        r.sent++;
      }
    }, 10);
  });
  await new Promise((res) => setTimeout(res, o.timeoutMs ?? 2000));
  for (const map of pending) {
    for (const p of map.values()) {
      r.lost++;
      r.lostAt.push(Math.floor(p.at / 1000));
    }
  }
  for (const s of socks) s.close();
  return r;
}

/** Judges an answer: the rcode, and for NOERROR the A address the upstream gives the name. */
export function judgeAs(name: string, e: Expect): (a: Buffer) => string | null {
  return (a) => {
    const rc = a[3]! & 15;
    if (questionName(a) !== name.toLowerCase()) return `${name}: answer for ${questionName(a)}`;
    if (rc !== e.rcode) return `${name}: rcode ${rc}, wanted ${e.rcode}`;
    if (e.address !== undefined && e.address !== null && firstA(a) !== e.address)
      return `${name}: A ${firstA(a)}, wanted ${e.address}`;
    return null;
  };
}

/** VmRSS of a process in MiB. */
export function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

export { startChild, type Child } from '../../daemon/test/helpers/child.ts';

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
