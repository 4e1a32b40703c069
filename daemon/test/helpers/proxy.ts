/**
 * PROXY protocol v2 headers built byte by byte for tests (haproxy's proxy-protocol.txt 2.2), the way dnsdist writes
 * them: a PROXY command with the client's and the front end's addresses, or LOCAL (its health checks).
 */
import { isIPv4 } from 'node:net';

import { addressBytes } from '../../dist/util/net.js';
import { crc32c } from '../../dist/dns/proxy.js';

export const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

export interface HeaderOptions {
  /** 'proxy' (default) or 'local'. */
  cmd?: 'proxy' | 'local';
  /** The client; its family decides AF_INET or AF_INET6 (default 10.1.2.3). */
  src?: string;
  srcPort?: number;
  dst?: string;
  dstPort?: number;
  /** 'stream' (default) or 'dgram'. */
  transport?: 'stream' | 'dgram';
  /** Extra TLVs after the addresses. */
  tlvs?: { type: number; value: Buffer }[];
  /** Add a CRC-32c TLV with the right checksum. */
  crc?: boolean;
}

function tlv(type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(3);
  h[0] = type;
  h.writeUInt16BE(value.length, 1);
  return Buffer.concat([h, value]);
}

/** A v2 header. */
export function proxyHeader(o: HeaderOptions = {}): Buffer {
  const cmd = o.cmd ?? 'proxy';
  const src = o.src ?? '10.1.2.3';
  const dst = o.dst ?? (isIPv4(src) ? '127.0.0.1' : '::1');
  const v4 = isIPv4(src);
  let addrs = Buffer.alloc(0);
  let famProto = 0;
  if (cmd === 'proxy' || o.src !== undefined) {
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(o.srcPort ?? 40000, 0);
    ports.writeUInt16BE(o.dstPort ?? 53, 2);
    addrs = Buffer.concat([Buffer.from(addressBytes(src)), Buffer.from(addressBytes(dst)), ports]);
    famProto = ((v4 ? 1 : 2) << 4) | (o.transport === 'dgram' ? 2 : 1);
  }
  let tail = Buffer.concat((o.tlvs ?? []).map((x) => tlv(x.type, x.value)));
  if (o.crc) tail = Buffer.concat([tail, tlv(0x03, Buffer.alloc(4))]);
  const fixed = Buffer.alloc(4);
  fixed[0] = 0x20 | (cmd === 'proxy' ? 1 : 0);
  fixed[1] = famProto;
  fixed.writeUInt16BE(addrs.length + tail.length, 2);
  const out = Buffer.concat([SIGNATURE, fixed, addrs, tail]);
  if (o.crc) out.writeUInt32BE(crc32c(out), out.length - 4);
  return out;
}
