/**
 * HTTP/2 frames (RFC 9113 4, 6): the frame header, the frame types, flags, error codes and settings a server of
 * DNS over HTTPS meets, and the few frames it sends whose shape never varies. Everything is written straight into
 * Buffers: no object per frame.
 */
import { Buffer } from 'node:buffer';

/** RFC 9113 3.4: the client connection preface. */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** RFC 9113 4.1: the frame header's length. */
export const FRAME_HEADER_BYTES = 9;

// RFC 9113 6: frame types.
export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

// RFC 9113 6: flags.
export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

// RFC 9113 7: error codes.
export const NO_ERROR = 0x0;
export const PROTOCOL_ERROR = 0x1;
export const INTERNAL_ERROR = 0x2;
export const FLOW_CONTROL_ERROR = 0x3;
export const SETTINGS_TIMEOUT = 0x4;
export const STREAM_CLOSED = 0x5;
export const FRAME_SIZE_ERROR = 0x6;
export const REFUSED_STREAM = 0x7;
export const CANCEL = 0x8;
export const COMPRESSION_ERROR = 0x9;
export const CONNECT_ERROR = 0xa;
export const ENHANCE_YOUR_CALM = 0xb;
export const INADEQUATE_SECURITY = 0xc;
export const HTTP_1_1_REQUIRED = 0xd;

// RFC 9113 6.5.2: settings.
export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** RFC 9113 6.5.2: the initial value of SETTINGS_MAX_FRAME_SIZE, and the largest value it may take. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_MAX_FRAME_SIZE = 16_777_215;
/** RFC 9113 6.9.1, 6.9.2: every flow-control window starts at 65,535 octets and may not exceed 2^31-1. */
export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 0x7fff_ffff;

/** Writes a frame header at `at` of `buf` (RFC 9113 4.1); the stream identifier's reserved bit is 0. */
export function writeFrameHeader(
  buf: Buffer,
  at: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  buf[at] = (length >>> 16) & 0xff;
  buf[at + 1] = (length >>> 8) & 0xff;
  buf[at + 2] = length & 0xff;
  buf[at + 3] = type;
  buf[at + 4] = flags;
  buf.writeUInt32BE(streamId, at + 5);
}

/** A SETTINGS frame of `pairs` (identifier, value, ...). RFC 9113 6.5.1. */
export function settingsFrame(pairs: readonly number[]): Buffer {
  const n = pairs.length >> 1;
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 6 * n);
  writeFrameHeader(out, 0, 6 * n, SETTINGS, 0, 0);
  for (let i = 0; i < n; i++) {
    out.writeUInt16BE(pairs[2 * i]!, FRAME_HEADER_BYTES + 6 * i);
    out.writeUInt32BE(pairs[2 * i + 1]!, FRAME_HEADER_BYTES + 6 * i + 2);
  }
  return out;
}

/** RFC 9113 6.5.3: the acknowledgement of the peer's SETTINGS. Never changes: one buffer for every connection. */
export const SETTINGS_ACK = Buffer.from([0, 0, 0, SETTINGS, FLAG_ACK, 0, 0, 0, 0]);

/** RFC 9113 6.7: the answer to a PING, its eight octets echoed. */
export function pingAck(payload: Buffer, at: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8);
  writeFrameHeader(out, 0, 8, PING, FLAG_ACK, 0);
  payload.copy(out, FRAME_HEADER_BYTES, at, at + 8);
  return out;
}

/** A frame whose payload is one 32-bit value: RST_STREAM (RFC 9113 6.4, its error code), WINDOW_UPDATE (6.9). */
export function u32Frame(type: number, streamId: number, value: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(out, 0, 4, type, 0, streamId);
  out.writeUInt32BE(value, FRAME_HEADER_BYTES);
  return out;
}

/** RFC 9113 6.8: GOAWAY with the last stream processed and an error code (no debug data). */
export function goawayFrame(lastStreamId: number, code: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8);
  writeFrameHeader(out, 0, 8, GOAWAY, 0, 0);
  out.writeUInt32BE(lastStreamId & MAX_WINDOW, FRAME_HEADER_BYTES);
  out.writeUInt32BE(code, FRAME_HEADER_BYTES + 4);
  return out;
}
