/**
 * A raw HTTP/2 client for conformance tests: a TLS socket (ALPN h2) that writes frames as the test crafts them and
 * collects the frames the server sends, so a test can check each error gets the GOAWAY or RST_STREAM code RFC 9113
 * names. Header blocks are made with the daemon's own HPACK encoder (its decoder's round trips are checked against
 * the RFC's examples and nghttp2 elsewhere).
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

import { HpackEncoder, type EncodeOptions } from '../../dist/dns/h2/hpack.js';
import { TLS_NAME, pem } from './tls.ts';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const T = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const E = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  FLOW_CONTROL_ERROR: 3,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const;

export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const PADDED = 0x8;
export const PRIORITY_FLAG = 0x20;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly id: number;
  readonly payload: Buffer;
}

export function frame(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(id, 5);
  return Buffer.concat([h, payload]);
}

export function settings(...pairs: number[]): Buffer {
  const p = Buffer.alloc(3 * pairs.length);
  for (let i = 0; i < pairs.length; i += 2) {
    p.writeUInt16BE(pairs[i]!, 3 * i);
    p.writeUInt32BE(pairs[i + 1]!, 3 * i + 2);
  }
  return frame(T.SETTINGS, 0, 0, p);
}

export const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};

export class RawH2 {
  readonly socket: TLSSocket;
  readonly frames: Frame[] = [];
  readonly encoder = new HpackEncoder();
  /** Resolves when the server closes the connection (or it errs). */
  readonly closed: Promise<void>;
  #buf = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  #isClosed = false;

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#isClosed = true;
        resolve();
        this.#wake();
      });
    });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, chunk]);
      while (this.#buf.length >= 9) {
        const len = this.#buf.readUIntBE(0, 3);
        if (this.#buf.length < 9 + len) break;
        this.frames.push({
          type: this.#buf[3]!,
          flags: this.#buf[4]!,
          id: this.#buf.readUInt32BE(5) & 0x7fffffff,
          payload: Buffer.from(this.#buf.subarray(9, 9 + len)),
        });
        this.#buf = this.#buf.subarray(9 + len);
      }
      this.#wake();
    });
  }

  /** Connects with ALPN h2; by default sends the preface and an empty SETTINGS. */
  static connect(port: number, ca: string, o: { preface?: boolean } = {}): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: pem(ca), servername: TLS_NAME, ALPNProtocols: ['h2'] });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error('raw h2 connect: timeout'));
      }, 5000);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        const c = new RawH2(s);
        if (o.preface !== false) c.write(PREFACE, settings());
        resolve(c);
      });
      s.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  write(...bufs: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(bufs));
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** The first frame (from `from`) that `pred` accepts; rejects after `timeoutMs` or when closed without one. */
  async next(pred: (f: Frame) => boolean, timeoutMs = 5000, from = 0): Promise<Frame> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const f = this.frames.slice(from).find(pred);
      if (f !== undefined) return f;
      if (this.#isClosed) throw new Error('closed without the frame');
      const left = deadline - performance.now();
      if (left <= 0) throw new Error('no such frame in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The server's GOAWAY: its last stream id and error code. */
  async goaway(timeoutMs = 5000): Promise<{ lastStreamId: number; code: number }> {
    const f = await this.next((f) => f.type === T.GOAWAY, timeoutMs);
    return { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
  }

  /** The error code of the server's RST_STREAM on stream `id`. */
  async rst(id: number, timeoutMs = 5000): Promise<number> {
    const f = await this.next((f) => f.type === T.RST_STREAM && f.id === id, timeoutMs);
    return f.payload.readUInt32BE(0);
  }

  /** A header block of `fields`. */
  block(fields: [string, string][], o: EncodeOptions = {}): Buffer {
    return this.encoder.encode(fields, o);
  }

  /** A HEADERS frame (END_HEADERS) of `fields` on stream `id`. */
  headers(id: number, fields: [string, string][], flags = END_STREAM): Buffer {
    return frame(T.HEADERS, flags | END_HEADERS, id, this.block(fields));
  }

  /** The response on stream `id`: its :status and body, once its END_STREAM is in. */
  async response(id: number, timeoutMs = 5000): Promise<{ status: number; body: Buffer }> {
    await this.next(
      (f) => f.id === id && (f.type === T.DATA || f.type === T.HEADERS) && (f.flags & END_STREAM) !== 0,
      timeoutMs,
    );
    const h = this.frames.find((f) => f.id === id && f.type === T.HEADERS)!;
    // Our own responses: :status is the first field, indexed or a literal with an indexed name (RFC 7541).
    const b = h.payload;
    const STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };
    const status = b[0]! >= 0x80 ? STATUS[b[0]! & 0x7f]! : Number(b.subarray(2, 5).toString('latin1'));
    const body = Buffer.concat(this.frames.filter((f) => f.id === id && f.type === T.DATA).map((f) => f.payload));
    return { status, body };
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The request fields of a DoH GET of `msg`. */
export function getFields(msg: Buffer, path = '/dns-query'): [string, string][] {
  return [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':authority', TLS_NAME],
    [':path', `${path}?dns=${msg.toString('base64url')}`],
  ];
}

/** The request fields of a DoH POST. */
export function postFields(extra: [string, string][] = []): [string, string][] {
  return [
    [':method', 'POST'],
    [':scheme', 'https'],
    [':authority', TLS_NAME],
    [':path', '/dns-query'],
    ['content-type', 'application/dns-message'],
    ...extra,
  ];
}
