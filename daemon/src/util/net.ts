/** Address and network syntax shared by the config and the listeners. */
import { isIP } from 'node:net';

export interface HostPort {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/**
 * Parses "192.0.2.1:53", "[2001:db8::1]:53", "192.0.2.1" or "2001:db8::1" (the port defaults to `defaultPort`).
 * Only IP literals: a daemon that resolved host names at start would depend on the DNS it provides.
 */
export function parseHostPort(s: string, defaultPort: number): HostPort {
  let host = s;
  let port = defaultPort;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (isIP(s) === 0) {
    const i = s.lastIndexOf(':');
    if (i > 0 && /^\d+$/.test(s.slice(i + 1))) {
      host = s.slice(0, i);
      port = Number(s.slice(i + 1));
    }
  }
  const family = isIP(host);
  if (family !== 4 && family !== 6) {
    throw new Error(`"${s}" is not an IP address with an optional port (IPv6 in brackets)`);
  }
  if (bracket && family !== 6) throw new Error(`"${s}": brackets are for IPv6 addresses`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`"${s}": port out of range`);
  return { host, port, family };
}

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 4 | 6;
}

/** Parses "10.0.0.0/8" or "fc00::/7" (a bare address is a /32 or /128). Host bits must be zero. */
export function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) throw new Error(`"${s}" is not a network (address/prefix)`);
  const max = family === 4 ? 32 : 128;
  const prefix = slash < 0 ? max : Number(s.slice(slash + 1));
  if (!/^\d{1,3}$/.test(slash < 0 ? String(max) : s.slice(slash + 1)) || prefix > max) {
    throw new Error(`"${s}": prefix length must be 0 to ${max}`);
  }
  const bytes = addressBytes(address);
  for (let bit = prefix; bit < max; bit++) {
    if ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) throw new Error(`"${s}": host bits are set below the prefix`);
  }
  return { address, prefix, family };
}

/** The 4 or 16 bytes of an IP literal. */
export function addressBytes(address: string): Uint8Array {
  const family = isIP(address);
  if (family === 4) return Uint8Array.from(address.split('.').map(Number));
  if (family !== 6) throw new Error(`not an IP address: ${address}`);
  let s = address;
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    tail = v4[1]!.split('.').map(Number);
    s = s.slice(0, -v4[1]!.length) + '0:0';
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const parts = (x: string): number[] => (x === '' ? [] : x.split(':').map((h) => parseInt(h, 16)));
  const hi = parts(head);
  const lo = rest === undefined ? [] : parts(rest);
  const words = [...hi, ...new Array<number>(8 - hi.length - lo.length).fill(0), ...lo];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 255;
  });
  if (v4) out.set(tail, 12);
  return out;
}

/** Why a socket could not be bound, in an operator's words (EADDRINUSE, EACCES, EADDRNOTAVAIL, else the message). */
export function bindFailure(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'EADDRINUSE':
      return 'address in use (another process listens there: `ss -lunp` and `ss -ltnp` name it)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE, which the systemd unit grants)';
    case 'EADDRNOTAVAIL':
      return 'no interface has this address';
    default:
      return e.message;
  }
}

/**
 * A configured address that could not be listened on, named by its configuration key (`listen.0`,
 * `metrics.listen`, `stopPage.listen.1`): a start-up error the operator fixes in the config or on the host, so the
 * daemon exits with the configuration error status.
 */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  readonly code = 'LISTEN_FAILED';
  /** The configuration key, e.g. `listen.0`. */
  readonly key: string;
  readonly address: string;

  constructor(key: string, address: string, cause: unknown) {
    super(`${key}: ${address}: ${bindFailure(cause)}`, { cause });
    this.key = key;
    this.address = address;
  }
}
