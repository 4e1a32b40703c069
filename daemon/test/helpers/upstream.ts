/**
 * A real upstream DNS server for tests, on node:dgram and node:net on 127.0.0.1 (or ::1), port 0. Answers are
 * authored with dns2's Packet from a small zone; the server misbehaves on command so the daemon's upstream stage
 * can be tested against every failure it must survive.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';

import { Packet } from 'dns2';

export type Behaviour =
  /** Answer from the zone. */
  | 'normal'
  /** Never answer (UDP or TCP). */
  | 'silent'
  /** The right ID and QR, then random bytes. */
  | 'garbage'
  /** A good header and question, then an answer whose owner is a compression pointer loop. */
  | 'bad-pointer'
  /** A correct answer with another ID. */
  | 'wrong-id'
  /** The right ID, the answer for another name. */
  | 'wrong-question'
  /** UDP: TC=1 and no records; TCP: the full answer. */
  | 'tc'
  /** UDP: TC=1; TCP: accept and never answer. */
  | 'tc-silent-tcp'
  /** SERVFAIL. */
  | 'servfail'
  /** Answer after `delayMs`. */
  | 'slow';

export interface ReceivedQuery {
  readonly transport: 'udp' | 'tcp';
  /** The sender's source port. */
  readonly from: number;
  readonly raw: Buffer;
  readonly name: string;
  readonly type: number;
  /** The OPT record's fields, or null. */
  readonly opt: { size: number; version: number; do: boolean; options: { code: number; data: Buffer }[] } | null;
  readonly rd: boolean;
  readonly cd: boolean;
  readonly ad: boolean;
}

type Rec = Record<string, unknown> & { name: string; type: number; ttl: number };

const DNAME = 39;

/** Uncompressed wire form of a name (a DNAME's RDATA, which dns2 cannot encode). */
export function wire(name: string): Buffer {
  return Buffer.concat([
    ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])),
    Buffer.from([0]),
  ]);
}

/** A well-formed RRSIG RDATA (RFC 4034 3.1) with a dummy signature, by `signer` (default: the owner's last two labels). */
export function rrsig(covered: number, owner: string, signer = owner.split('.').slice(-2).join('.')): Buffer {
  const fixed = Buffer.alloc(18);
  fixed.writeUInt16BE(covered, 0);
  fixed[2] = 13; // ECDSAP256SHA256
  fixed[3] = owner.split('.').length;
  fixed.writeUInt32BE(300, 4);
  fixed.writeUInt32BE(1795000000, 8);
  fixed.writeUInt32BE(1790000000, 12);
  fixed.writeUInt16BE(12345, 16);
  return Buffer.concat([fixed, wire(signer), Buffer.alloc(64, 7)]);
}

/** Wire form of a TXT RDATA with one string. */
function txt(s: string): Buffer {
  return Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);
}

/**
 * The default zone. Names under example.test and blocked.test; blocked.test names are answered like any other, so a
 * test sees the difference when the daemon blocks.
 */
export function defaultZone(): Rec[] {
  const A = Packet.TYPE.A;
  const AAAA = Packet.TYPE.AAAA;
  const r: Rec[] = [
    { name: 'a.example.test', type: A, ttl: 300, address: '192.0.2.1' },
    { name: 'a.example.test', type: AAAA, ttl: 300, address: '2001:db8::1' },
    { name: 'mx.example.test', type: Packet.TYPE.MX, ttl: 300, exchange: 'mail.example.test', priority: 10 },
    { name: 'txt.example.test', type: Packet.TYPE.TXT, ttl: 300, data: txt('hello world') },
    { name: 'alias.example.test', type: Packet.TYPE.CNAME, ttl: 300, domain: 'mid.example.test' },
    { name: 'mid.example.test', type: Packet.TYPE.CNAME, ttl: 200, domain: 'target.example.test' },
    { name: 'target.example.test', type: A, ttl: 100, address: '192.0.2.2' },
    { name: 'to-blocked.example.test', type: Packet.TYPE.CNAME, ttl: 300, domain: 'cdn.blocked.test' },
    { name: 'to-host.example.test', type: Packet.TYPE.CNAME, ttl: 300, domain: 'host.listed.test' },
    { name: 'dname.example.test', type: DNAME, ttl: 300, target: 'blocked.test' },
    { name: 'cdn.blocked.test', type: A, ttl: 300, address: '192.0.2.66' },
    { name: 'www.blocked.test', type: A, ttl: 300, address: '192.0.2.67' },
    { name: 'www.blocked.test', type: AAAA, ttl: 300, address: '2001:db8::67' },
    { name: 'blocked.test', type: A, ttl: 300, address: '192.0.2.68' },
    { name: 'host.listed.test', type: A, ttl: 300, address: '192.0.2.69' },
    { name: 'sub.host.listed.test', type: A, ttl: 300, address: '192.0.2.70' },
    { name: 'partial.test', type: A, ttl: 300, address: '192.0.2.71' },
    { name: 'partial.test', type: Packet.TYPE.MX, ttl: 300, exchange: 'mail.partial.test', priority: 5 },
    { name: 'ok.allowed.test', type: A, ttl: 300, address: '192.0.2.72' },
    { name: 'short.example.test', type: A, ttl: 2, address: '192.0.2.3' },
    { name: 'zero.example.test', type: A, ttl: 0, address: '192.0.2.4' },
    { name: 'long.example.test', type: A, ttl: 999999, address: '192.0.2.5' },
  ];
  // 40 TXT strings of 100 octets: ~4.5 KB, over any UDP limit.
  for (let i = 0; i < 40; i++)
    r.push({ name: 'big.example.test', type: Packet.TYPE.TXT, ttl: 300, data: txt(String(i).padEnd(100, 'x')) });
  return r;
}

/** SOA of the zone holding `name`: its last two labels. */
export function soaFor(name: string): Rec {
  const apex = name.split('.').slice(-2).join('.');
  return {
    name: apex,
    type: Packet.TYPE.SOA,
    ttl: 60,
    primary: `ns.${apex}`,
    admin: `hostmaster.${apex}`,
    serial: 2026112201,
    refresh: 3600,
    retry: 600,
    expiration: 86400,
    minimum: 30,
  };
}

/** Parses what the test server needs from a query, by hand (dns2 drops EDNS options it does not know). */
function parseRaw(raw: Buffer, transport: 'udp' | 'tcp', from = 0): ReceivedQuery | null {
  if (raw.length < 12) return null;
  let p = 12;
  const labels: string[] = [];
  while (p < raw.length && raw[p] !== 0) {
    const n = raw[p]!;
    if (n > 63) return null;
    labels.push(raw.toString('latin1', p + 1, p + 1 + n));
    p += n + 1;
  }
  p++;
  if (p + 4 > raw.length) return null;
  const type = raw.readUInt16BE(p);
  p += 4;
  let opt: ReceivedQuery['opt'] = null;
  const records = raw.readUInt16BE(6) + raw.readUInt16BE(8) + raw.readUInt16BE(10);
  for (let i = 0; i < records && p < raw.length; i++) {
    if (raw[p] !== 0) return null; // the daemon's records are all owned by the root
    const t = raw.readUInt16BE(p + 1);
    const rdlen = raw.readUInt16BE(p + 9);
    if (t === 41) {
      const options: { code: number; data: Buffer }[] = [];
      for (let o = p + 11; o < p + 11 + rdlen;) {
        const len = raw.readUInt16BE(o + 2);
        options.push({ code: raw.readUInt16BE(o), data: raw.subarray(o + 4, o + 4 + len) });
        o += 4 + len;
      }
      opt = { size: raw.readUInt16BE(p + 3), version: raw[p + 6]!, do: (raw[p + 7]! & 0x80) !== 0, options };
    }
    p += 11 + rdlen;
  }
  return {
    transport,
    from,
    raw,
    name: labels.join('.'),
    type,
    opt,
    rd: (raw[2]! & 1) !== 0,
    ad: (raw[3]! & 0x20) !== 0,
    cd: (raw[3]! & 0x10) !== 0,
  };
}

/** Appends an OPT record (raw, so that any option survives) and bumps ARCOUNT. */
export function appendOpt(
  msg: Buffer,
  size: number,
  dnssecOk: boolean,
  options: { code: number; data: Buffer }[],
): Buffer {
  const body = Buffer.concat(
    options.map((o) => {
      const h = Buffer.alloc(4);
      h.writeUInt16BE(o.code, 0);
      h.writeUInt16BE(o.data.length, 2);
      return Buffer.concat([h, o.data]);
    }),
  );
  const opt = Buffer.alloc(11);
  opt.writeUInt16BE(41, 1);
  opt.writeUInt16BE(size, 3);
  opt[7] = dnssecOk ? 0x80 : 0;
  opt.writeUInt16BE(body.length, 9);
  const out = Buffer.concat([msg, opt, body]);
  out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
  return out;
}

/**
 * A UDP socket bound to port 0 on `host` and a TCP server on the same port, both kept by the caller (never given up
 * and bound again). When another socket already holds that port for TCP, both are closed and the kernel is asked
 * for another port, up to ten times.
 */
export async function bindUdpAndTcp(
  host: string,
  onUdp: (msg: Buffer, rinfo: RemoteInfo) => void,
  onTcp: (s: Socket) => void,
): Promise<{ udp: UdpSocket; tcp: Server; port: number }> {
  let last: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    udp.on('message', onUdp);
    await new Promise<void>((resolve) => udp.bind(0, host, resolve));
    const port = udp.address().port;
    const tcp = createServer(onTcp);
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, host, () => resolve());
      });
      return { udp, tcp, port };
    } catch (err) {
      last = err;
      udp.close();
    }
  }
  throw last;
}

export class TestUpstream {
  readonly host: string;
  port = 0;
  behaviour: Behaviour = 'normal';
  /** Behaviour per lower-case query name, over `behaviour`. */
  readonly byName = new Map<string, Behaviour>();
  delayMs = 300;
  /** Leave every n-th UDP query unanswered (0: none), whatever the behaviour; counted in `dropped`. */
  dropEvery = 0;
  dropped = 0;
  #udpCount = 0;
  readonly queries: ReceivedQuery[] = [];
  readonly zone: Rec[];
  /** Records put in the authority and additional sections of every answer for a name (lower case). */
  readonly extra = new Map<string, { authority?: Rec[]; additional?: Rec[]; answer?: Rec[] }>();
  /** Extra EDNS options put in every answer's OPT (the daemon must not pass them on, but for EDE). */
  answerOptions: { code: number; data: Buffer }[] = [
    { code: 10, data: Buffer.from('0123456789abcdef0123456789abcdef', 'hex') }, // COOKIE (client + server)
    { code: 3, data: Buffer.from('upstream-nsid') }, // NSID
  ];
  #udp: UdpSocket | null = null;
  #tcp: Server | null = null;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(host: string, zone: Rec[]) {
    this.host = host;
    this.zone = zone;
  }

  static async start(options: { host?: string; zone?: Rec[] } = {}): Promise<TestUpstream> {
    const u = new TestUpstream(options.host ?? '127.0.0.1', options.zone ?? defaultZone());
    await u.#listen();
    return u;
  }

  /** "127.0.0.1:5300" or "[::1]:5300", as the config's upstreams want it. */
  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  /** UDP on port 0, then TCP on the same port (bindUdpAndTcp), both kept until close(). */
  async #listen(): Promise<void> {
    const bound = await bindUdpAndTcp(
      this.host,
      (msg, rinfo) => this.#onUdp(msg, rinfo.address, rinfo.port),
      (s) => this.#onTcp(s),
    );
    this.#udp = bound.udp;
    this.#tcp = bound.tcp;
    this.port = bound.port;
  }

  #behaviourFor(q: ReceivedQuery): Behaviour {
    return this.byName.get(q.name.toLowerCase()) ?? this.behaviour;
  }

  #onUdp(msg: Buffer, address: string, port: number): void {
    const q = parseRaw(msg, 'udp', port);
    if (q === null) return;
    this.queries.push(q);
    if (this.dropEvery > 0 && ++this.#udpCount % this.dropEvery === 0) {
      this.dropped++;
      return;
    }
    const b = this.#behaviourFor(q);
    const send = (out: Buffer): void => {
      this.#udp?.send(out, port, address);
    };
    switch (b) {
      case 'silent':
        return;
      case 'slow': {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          send(this.answer(msg, q));
        }, this.delayMs);
        this.#timers.add(timer);
        return;
      }
      case 'tc':
      case 'tc-silent-tcp': {
        const out = this.answer(msg, q);
        const cut = Buffer.from(out.subarray(0, 12 + (msg.indexOf(0, 12) - 12) + 5));
        cut[2]! |= 0x02;
        cut.writeUInt16BE(0, 6);
        cut.writeUInt16BE(0, 8);
        cut.writeUInt16BE(0, 10);
        return send(cut);
      }
      default:
        return send(this.misbehave(b, msg, q));
    }
  }

  #onTcp(s: Socket): void {
    this.#sockets.add(s);
    s.on('close', () => this.#sockets.delete(s));
    s.on('error', () => s.destroy());
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const q = parseRaw(Buffer.from(msg), 'tcp', s.remotePort ?? 0);
        if (q === null) continue;
        this.queries.push(q);
        const b = this.#behaviourFor(q);
        if (b === 'silent' || b === 'tc-silent-tcp') continue;
        const out = b === 'tc' ? this.answer(msg, q) : this.misbehave(b, msg, q);
        const len = Buffer.alloc(2);
        len.writeUInt16BE(out.length);
        s.write(Buffer.concat([len, out]));
      }
    });
  }

  misbehave(b: Behaviour, msg: Buffer, q: ReceivedQuery): Buffer {
    const good = (): Buffer => this.answer(msg, q);
    switch (b) {
      case 'garbage': {
        const out = Buffer.alloc(60);
        for (let i = 0; i < out.length; i++) out[i] = (i * 73 + 41) & 0xff;
        msg.copy(out, 0, 0, 2);
        out[2] = 0x81;
        out[3] = 0x80;
        out.writeUInt16BE(1, 4);
        out.writeUInt16BE(3, 6);
        return out;
      }
      case 'bad-pointer': {
        // Header + the question, then one answer whose owner is a pointer to itself.
        const qEnd = msg.indexOf(0, 12) + 5;
        const out = Buffer.alloc(qEnd + 16);
        msg.copy(out, 0, 0, qEnd);
        out[2] = 0x81;
        out[3] = 0x80;
        out.writeUInt16BE(1, 6);
        out.writeUInt16BE(0, 8);
        out.writeUInt16BE(0, 10);
        out[qEnd] = 0xc0;
        out[qEnd + 1] = qEnd;
        out.writeUInt16BE(1, qEnd + 2);
        out.writeUInt16BE(1, qEnd + 4);
        out.writeUInt32BE(300, qEnd + 6);
        out.writeUInt16BE(4, qEnd + 10);
        return out;
      }
      case 'wrong-id': {
        const out = good();
        out.writeUInt16BE((out.readUInt16BE(0) + 1) & 0xffff, 0);
        return out;
      }
      case 'wrong-question': {
        const other = Buffer.from(msg);
        // Change the first letter of the name.
        other[13] = other[13] === 0x7a ? 0x79 : 0x7a;
        const q2 = parseRaw(other, q.transport)!;
        return this.answer(other, q2);
      }
      case 'servfail': {
        const p = new Packet();
        const req = Packet.parse(msg);
        p.header.id = req.header.id;
        p.header.qr = 1;
        p.header.rd = req.header.rd;
        p.header.ra = 1;
        p.header.rcode = 2;
        p.questions = req.questions;
        return p.toBuffer();
      }
      default:
        return good();
    }
  }

  /** The zone's answer to `msg` (dns2-authored), with an OPT (carrying options to be stripped) if asked with one. */
  answer(msg: Buffer, q: ReceivedQuery): Buffer {
    const req = Packet.parse(msg);
    const p = new Packet();
    p.header.id = req.header.id;
    p.header.qr = 1;
    p.header.rd = req.header.rd;
    p.header.ra = 1;
    p.questions = req.questions; // echoes the case as sent
    const want = q.name.toLowerCase();
    const type = q.type;
    const byName = (n: string): Rec[] => this.zone.filter((r) => r.name === n);
    let cur = want;
    let found = false;
    for (let i = 0; i < 8; i++) {
      const here = byName(cur);
      // ANY: every record of the name but a CNAME (RFC 1034 3.7.1: a name with a CNAME has no other data).
      const exact = here.filter((r) => r.type === type || (type === 255 && r.type !== Packet.TYPE.CNAME));
      if (exact.length > 0) {
        for (const r of exact) p.answers.push({ ...r, class: 1 } as unknown as Packet['answers'][number]);
        found = true;
        break;
      }
      const cname = here.find((r) => r.type === Packet.TYPE.CNAME);
      if (cname !== undefined) {
        p.answers.push({ ...cname, class: 1 } as unknown as Packet['answers'][number]);
        cur = cname.domain as string;
        continue;
      }
      // RFC 6672: a DNAME at an ancestor: the DNAME, then the CNAME it synthesizes.
      const dname = this.zone.find((r) => r.type === DNAME && cur.endsWith(`.${r.name}`));
      if (dname === undefined) break;
      const target = `${cur.slice(0, -dname.name.length)}${dname.target as string}`;
      p.answers.push({
        name: dname.name,
        type: DNAME,
        class: 1,
        ttl: dname.ttl,
        data: wire(dname.target as string),
      } as unknown as Packet['answers'][number]);
      p.answers.push({
        name: cur,
        type: Packet.TYPE.CNAME,
        class: 1,
        ttl: dname.ttl,
        domain: target,
      } as unknown as Packet['answers'][number]);
      cur = target;
    }
    if (!found) {
      const exists = this.zone.some((r) => r.name === cur || r.name.endsWith(`.${cur}`));
      p.header.rcode = exists ? 0 : 3;
      p.authorities.push({ ...soaFor(cur), class: 1 } as unknown as Packet['authorities'][number]);
    }
    // DNSSEC-looking answer: AD set when the client asked with DO or AD, an RRSIG-typed record when DO.
    // dns2's Header type has no `ad` field (dns2.md 4) though the encoder writes it.
    if (q.opt?.do === true || q.ad) (p.header as unknown as { ad: number }).ad = 1;
    if (q.opt?.do === true && found) {
      p.answers.push({
        name: want,
        type: Packet.TYPE.RRSIG,
        class: 1,
        ttl: 300,
        data: rrsig(type, want),
      } as unknown as Packet['answers'][number]);
    }
    const extra = this.extra.get(want);
    for (const r of extra?.answer ?? []) p.answers.push({ ...r, class: 1 } as unknown as Packet['answers'][number]);
    for (const r of extra?.authority ?? [])
      p.authorities.push({ ...r, class: 1 } as unknown as Packet['authorities'][number]);
    for (const r of extra?.additional ?? [])
      p.additionals.push({ ...r, class: 1 } as unknown as Packet['additionals'][number]);
    const out = p.toBuffer();
    if (q.opt === null) return out;
    const ede = { code: 15, data: Buffer.from([0, 0, ...Buffer.from('upstream says hi')]) }; // EDE 0 Other
    return appendOpt(out, 1232, q.opt.do, [...this.answerOptions, ede]);
  }

  close(): void {
    for (const t of this.#timers) clearTimeout(t);
    for (const s of this.#sockets) s.destroy();
    try {
      this.#udp?.close();
    } catch {
      // already closed
    }
    this.#udp = null;
    if (this.#tcp?.listening) this.#tcp.close();
    this.#tcp = null;
  }
}
