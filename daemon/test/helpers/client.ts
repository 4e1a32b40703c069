/** A raw DNS client for tests: queries built byte by byte, sent over UDP or TCP, every wait bounded. */
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';

import { Packet } from 'dns2';

export interface QueryOptions {
  id?: number;
  rd?: boolean;
  cd?: boolean;
  ad?: boolean;
  /** Add an OPT record (default: none). */
  edns?: { size?: number; do?: boolean; version?: number; options?: { code: number; data: Buffer }[] };
  qclass?: number;
  opcode?: number;
}

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  RRSIG: 46,
  HTTPS: 65,
  ANY: 255,
};

/** The wire form of `name` (labels as given: no case change). */
export function wireName(name: string): Buffer {
  const parts = name
    .replace(/\.$/, '')
    .split('.')
    .filter((l) => l.length > 0);
  return Buffer.concat([
    ...parts.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])),
    Buffer.from([0]),
  ]);
}

export function query(name: string, qtype: number, o: QueryOptions = {}): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(o.id ?? 0x1234, 0);
  h[2] = ((o.opcode ?? 0) << 3) | (o.rd === false ? 0 : 1);
  h[3] = (o.cd ? 0x10 : 0) | (o.ad ? 0x20 : 0);
  h.writeUInt16BE(1, 4);
  const q = Buffer.alloc(4);
  q.writeUInt16BE(qtype, 0);
  q.writeUInt16BE(o.qclass ?? 1, 2);
  const parts = [h, wireName(name), q];
  if (o.edns) {
    h.writeUInt16BE(1, 10);
    const body = Buffer.concat(
      (o.edns.options ?? []).map((x) => {
        const oh = Buffer.alloc(4);
        oh.writeUInt16BE(x.code, 0);
        oh.writeUInt16BE(x.data.length, 2);
        return Buffer.concat([oh, x.data]);
      }),
    );
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(o.edns.size ?? 1232, 3);
    opt[6] = o.edns.version ?? 0;
    opt[7] = o.edns.do ? 0x80 : 0;
    opt.writeUInt16BE(body.length, 9);
    parts.push(opt, body);
  }
  return Buffer.concat(parts);
}

/** Sends one datagram and waits for one answer; null after `timeoutMs`. */
export function udpAsk(port: number, msg: Buffer, timeoutMs = 2000, host = '127.0.0.1'): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(null);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.on('error', () => undefined);
    s.send(msg, port, host);
  });
}

/**
 * Opens one TCP connection, writes every message framed (all at once: pipelining), and collects `expect` answers
 * (default: one per message); resolves with what arrived when they are all in, the connection closes, or after
 * `timeoutMs`.
 */
export function tcpAsk(
  port: number,
  msgs: Buffer[],
  o: { timeoutMs?: number; expect?: number; host?: string; raw?: Buffer } = {},
): Promise<Buffer[]> {
  const expect = o.expect ?? msgs.length;
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const s = connect({ port, host: o.host ?? '127.0.0.1' });
    let buf = Buffer.alloc(0);
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, o.timeoutMs ?? 3000);
    s.on('connect', () => {
      const frames = msgs.map((m) => {
        const l = Buffer.alloc(2);
        l.writeUInt16BE(m.length);
        return Buffer.concat([l, m]);
      });
      s.write(Buffer.concat([...frames, o.raw ?? Buffer.alloc(0)]));
    });
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= expect) done();
    });
    s.on('error', done);
    s.on('close', done);
  });
}

export function decode(buf: Buffer | null): Packet {
  if (buf === null) throw new Error('no answer');
  return Packet.parse(buf);
}

export const rcodeOf = (buf: Buffer): number => buf[3]! & 0x0f;
export const idOf = (buf: Buffer): number => buf.readUInt16BE(0);
export const flags = (
  buf: Buffer,
): { qr: boolean; aa: boolean; tc: boolean; rd: boolean; ra: boolean; ad: boolean; cd: boolean } => ({
  qr: (buf[2]! & 0x80) !== 0,
  aa: (buf[2]! & 0x04) !== 0,
  tc: (buf[2]! & 0x02) !== 0,
  rd: (buf[2]! & 0x01) !== 0,
  ra: (buf[3]! & 0x80) !== 0,
  ad: (buf[3]! & 0x20) !== 0,
  cd: (buf[3]! & 0x10) !== 0,
});

/** The OPT record of an answer, read by hand (options included): null when there is none. */
export function optOf(
  buf: Buffer,
): { size: number; extRcode: number; version: number; do: boolean; options: { code: number; data: Buffer }[] } | null {
  // Walk to the additional section by hand to keep every option.
  let off = 12;
  const skip = (o: number): number => {
    for (;;) {
      const l = buf[o]!;
      if (l === 0) return o + 1;
      if (l >= 0xc0) return o + 2;
      o += l + 1;
    }
  };
  const qd = buf.readUInt16BE(4);
  for (let i = 0; i < qd; i++) off = skip(off) + 4;
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  for (let i = 0; i < records; i++) {
    const owner = off;
    off = skip(off);
    const type = buf.readUInt16BE(off);
    const rdlen = buf.readUInt16BE(off + 8);
    if (type === 41 && buf[owner] === 0) {
      const options: { code: number; data: Buffer }[] = [];
      for (let o = off + 10; o < off + 10 + rdlen;) {
        const len = buf.readUInt16BE(o + 2);
        options.push({ code: buf.readUInt16BE(o), data: Buffer.from(buf.subarray(o + 4, o + 4 + len)) });
        o += 4 + len;
      }
      return {
        size: buf.readUInt16BE(off + 2),
        extRcode: buf[off + 4]!,
        version: buf[off + 5]!,
        do: (buf[off + 6]! & 0x80) !== 0,
        options,
      };
    }
    off += 10 + rdlen;
  }
  return null;
}

/** The TTLs of every record but OPT, in order. */
export function ttlsOf(buf: Buffer): number[] {
  const p = Packet.parse(buf);
  return [...p.answers, ...p.authorities, ...p.additionals].filter((r) => r.type !== 41).map((r) => r.ttl);
}

/** A copy of `buf` with every TTL but the OPT's set to 0 (to compare answers "but for the TTLs"). */
export function maskTtls(buf: Buffer): Buffer {
  const out = Buffer.from(buf);
  const skip = (o: number): number => {
    for (;;) {
      const l = out[o]!;
      if (l === 0) return o + 1;
      if (l >= 0xc0) return o + 2;
      o += l + 1;
    }
  };
  let off = 12;
  for (let i = 0; i < out.readUInt16BE(4); i++) off = skip(off) + 4;
  const records = out.readUInt16BE(6) + out.readUInt16BE(8) + out.readUInt16BE(10);
  for (let i = 0; i < records; i++) {
    off = skip(off);
    if (out.readUInt16BE(off) !== 41) out.writeUInt32BE(0, off + 4);
    off += 10 + out.readUInt16BE(off + 8);
  }
  return out;
}

export interface Hostile {
  readonly socket: Socket;
  closed: boolean;
}

/** A connection from `localAddress` that sends the first octet of a length prefix and nothing more. */
export function hostile(port: number, localAddress: string): Promise<Hostile> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    const h: Hostile = { socket, closed: false };
    socket.on('error', () => undefined);
    socket.on('close', () => {
      h.closed = true;
      resolve(h);
    });
    socket.on('connect', () => {
      socket.write(Buffer.from([0]));
      resolve(h);
    });
  });
}
