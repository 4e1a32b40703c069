/**
 * The server side of one HTTP/2 connection (RFC 9113) over a TLS socket whose ALPN chose "h2", made for DNS over
 * HTTPS: requests are handed on whole-headed (H2Stream: method, target, fields, the body as it streams), answers
 * go out as one HEADERS frame and the DATA frames the peer's windows allow.
 *
 * Why not node:http2: measured on the DoH benchmark (bench/README.md, "Encrypted transports"), node:http2 and the
 * JavaScript around it cost 16-17 µs of CPU a request before any DNS, where a DoH query may cost about 21 µs in all
 * for hashwalld to serve half of what dnsdist does on one core; its per-stream Duplex, header objects and close
 * ticks are most of it. This layer does only what a DoH server needs, without an object per frame.
 *
 * What RFC 9113 asks of a server, and where:
 * - 3.4 the preface, then SETTINGS first both ways; 6.5.3 SETTINGS acknowledged. Ours: MAX_CONCURRENT_STREAMS (the
 *   cap of requests in flight), MAX_HEADER_LIST_SIZE, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE.
 * - 4.2 frames over our MAX_FRAME_SIZE: FRAME_SIZE_ERROR; 4.3 a field block is decoded whole (HEADERS and its
 *   CONTINUATIONs, nothing in between: PROTOCOL_ERROR), a decoding error is a COMPRESSION_ERROR.
 * - 5.1 the stream states: idle, open, half-closed either way, closed; a frame a state does not allow is a stream
 *   error (RST_STREAM) or a connection error (GOAWAY with the last stream processed, then the connection is
 *   closed), each as the RFC says. 5.1.1 client streams are odd and increasing; 5.1.2 streams beyond
 *   MAX_CONCURRENT_STREAMS are refused (REFUSED_STREAM).
 * - 5.2, 6.9 flow control both ways: the connection's and each stream's window for what we receive (replenished with
 *   WINDOW_UPDATE as bodies are taken), the peer's for what we send (DATA waits while a window is closed, and goes
 *   on at WINDOW_UPDATE or a larger SETTINGS_INITIAL_WINDOW_SIZE); windows past 2^31-1 are FLOW_CONTROL_ERROR.
 * - 6.1, 6.2 padding; 6.3 PRIORITY is read and ignored (RFC 9113 5.3.2 deprecates the scheme); 5.5 unknown frame
 *   types are ignored; 6.6 PUSH_PROMISE from a client is a PROTOCOL_ERROR; 6.7 PING is answered; 6.8 GOAWAY.
 * - 8.1 a response sent before the request is whole is followed by RST_STREAM(NO_ERROR); 8.1.1 a body whose
 *   length is not its content-length, 8.2 a field RFC 9113 forbids (upper case, connection-specific, CR/LF/NUL, 8.3
 *   pseudo-header rules) make the request malformed: stream error PROTOCOL_ERROR.
 *
 * Defences (RFC 9113 10.5): a header block is capped in octets and in frames (a CONTINUATION flood gets
 * ENHANCE_YOUR_CALM); the decoded list past MAX_HEADER_LIST_SIZE is kept no further (the request is answered 431
 * by its handler); the HPACK table is bounded by our SETTINGS_HEADER_TABLE_SIZE; streams reset before their answer
 * (CVE-2023-44487, "rapid reset"), and those we reset for a client's error, draw on a budget; so do PING and
 * SETTINGS, and frames that do nothing (PRIORITY, unknown types, empty DATA); a budget spent is ENHANCE_YOUR_CALM.
 * The budgets refill with time on the injected clock. Answers queued unread past 256 KiB stop the reading, as on
 * every stream transport (dns/stream.ts). A frame begun and not finished, or a header block left open, has the
 * frame deadline; a connection with no stream open is closed at the idle timeout (GOAWAY first).
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';

import type { Clock } from '../../util/clock.js';
import {
  CONTINUATION,
  DATA,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ENHANCE_YOUR_CALM,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PADDED,
  FLAG_PRIORITY,
  FLOW_CONTROL_ERROR,
  FRAME_HEADER_BYTES,
  FRAME_SIZE_ERROR,
  GOAWAY,
  HEADERS,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW,
  NO_ERROR,
  PING,
  PREFACE,
  PRIORITY,
  PROTOCOL_ERROR,
  PUSH_PROMISE,
  REFUSED_STREAM,
  RST_STREAM,
  SETTINGS,
  SETTINGS_ACK,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_HEADER_TABLE_SIZE,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE,
  STREAM_CLOSED,
  WINDOW_UPDATE,
  COMPRESSION_ERROR,
  goawayFrame,
  pingAck,
  settingsFrame,
  u32Frame,
  writeFrameHeader,
} from './frames.js';
import { HpackDecoder, HpackError, STATIC_TABLE } from './hpack.js';

/** The largest frame we accept (our SETTINGS_MAX_FRAME_SIZE): the RFC's initial value. */
const MAX_FRAME_BYTES = DEFAULT_MAX_FRAME_SIZE;
/** Our SETTINGS_INITIAL_WINDOW_SIZE: a stream may send this much body before we open its window further. */
const STREAM_WINDOW = DEFAULT_WINDOW;
/** The connection's receive window (the RFC's initial value, replenished as DATA is taken). */
const CONNECTION_WINDOW = DEFAULT_WINDOW;
/** Our SETTINGS_HEADER_TABLE_SIZE (the RFC's default): the largest HPACK table a client may make us keep. */
const HEADER_TABLE_BYTES = 4096;
/** The most header fields a request may carry (more: handled as a list too large, 431). */
const MAX_FIELDS = 64;
/** The most frames (HEADERS and CONTINUATIONs) of one header block. */
const MAX_BLOCK_FRAMES = 32;
/** Answers queued unread past this stop the reading until they drain (as dns/stream.ts). */
const MAX_QUEUED_BYTES = 256 * 1024;

/**
 * Budgets (a burst, then so many a second): streams reset before their answer, by the client or by us for its
 * error (CVE-2023-44487); PING and SETTINGS; frames that do nothing. Beyond one: ENHANCE_YOUR_CALM. A client that
 * behaves never comes near them (a stub resolver resets a stream when a user cancels a page, not a thousand times).
 */
const RESET_BURST = 1000;
const RESETS_PER_SECOND = 33;
const CONTROL_BURST = 1000;
const CONTROL_PER_SECOND = 100;
const IDLE_FRAME_BURST = 10_000;
const IDLE_FRAMES_PER_SECOND = 1000;

/** The limits of one connection, read when it opens. */
export interface H2Settings {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: requests in flight at once. */
  readonly maxConcurrentStreams: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: the decoded header list, RFC 9113 6.5.2 octets. */
  readonly maxHeaderListBytes: number;
  readonly idleTimeoutMs: number;
}

/** What a connection answers to: its listener. */
export interface H2Host {
  /** A request whose header block is whole. Its body, if any, streams to the sink `readBody` is given. */
  request(stream: H2Stream): void;
  /** A connection closed by the idle timeout or a frame deadline. */
  timedOut(reason: 'idle' | 'frame-timeout'): void;
  /** Calls `onTimeout` unless the returned function is called within the frame deadline. */
  deadline(onTimeout: () => void): () => void;
  readonly clock: Clock;
}

/** Where a request body goes as it arrives. Exactly one of `end` and `close` ends it. */
export interface BodySink {
  data(chunk: Buffer): void;
  /** The body is whole. */
  end(): void;
  /** The request is gone (reset, the connection closed) before its body was whole. */
  close(): void;
}

/** A budget of events: `burst`, refilled at `perSecond` on `clock`. */
class Budget {
  #tokens: number;
  #at: number;
  readonly #burst: number;
  readonly #perMs: number;
  readonly #clock: Clock;

  constructor(burst: number, perSecond: number, clock: Clock) {
    this.#burst = burst;
    this.#tokens = burst;
    this.#perMs = perSecond / 1000;
    this.#clock = clock;
    this.#at = clock.now();
  }

  /** Spends one; false when none is left. */
  take(): boolean {
    if (this.#tokens < 1) {
      const now = this.#clock.now();
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#perMs);
      this.#at = now;
      if (this.#tokens < 1) return false;
    }
    this.#tokens--;
    return true;
  }
}

// RFC 7541 Appendix A: the static indexes of the :status values it has, for responses.
const STATUS_INDEX = new Map<number, number>();
const NAME_INDEX = new Map<string, number>();
for (const [i, [name, value]] of STATIC_TABLE.entries()) {
  if (name === ':status') STATUS_INDEX.set(Number(value), i + 1);
  else if (!NAME_INDEX.has(name)) NAME_INDEX.set(name, i + 1);
}

/** The header block of a response, written into `block` from 0; its length. Literals without indexing, no Huffman. */
function encodeResponse(
  block: Buffer,
  status: number,
  headers: ResponseHeaders,
  contentLength: number,
  sizeUpdate: boolean,
): number {
  let at = 0;
  // RFC 7541 4.2, 6.3: after the peer changed SETTINGS_HEADER_TABLE_SIZE, the next block starts with the table's
  // size; ours is 0, whatever the peer allows (the encoder keeps no dynamic table).
  if (sizeUpdate) block[at++] = 0x20;
  const index = STATUS_INDEX.get(status);
  if (index !== undefined) {
    block[at++] = 0x80 | index; // RFC 7541 6.1
  } else {
    block[at++] = 0x08; // RFC 7541 6.2.2: literal without indexing, name :status (8)
    block[at++] = 3;
    at += block.write(String(status), at, 'latin1');
  }
  let length = false;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (name === 'content-length') length = true;
    at = literal(block, at, name, typeof v === 'string' ? v : String(v));
  }
  if (!length) at = literal(block, at, 'content-length', String(contentLength));
  return at;
}

/** RFC 7541 6.2.2: a literal field without indexing, its name indexed from the static table where it is there. */
function literal(block: Buffer, at: number, name: string, value: string): number {
  const index = NAME_INDEX.get(name);
  if (index === undefined) {
    block[at++] = 0;
    at = stringLiteral(block, at, name);
  } else if (index < 15) {
    block[at++] = index;
  } else {
    block[at++] = 0x0f;
    block[at++] = index - 15;
  }
  return stringLiteral(block, at, value);
}

/** RFC 7541 5.2: a string without Huffman coding (its length as a 7-bit-prefix integer; our strings are short). */
function stringLiteral(block: Buffer, at: number, s: string): number {
  const n = s.length;
  if (n < 127) {
    block[at++] = n;
  } else {
    block[at++] = 127;
    let v = n - 127;
    while (v >= 128) {
      block[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    block[at++] = v;
  }
  return at + block.write(s, at, 'latin1');
}

/** Octets to leave free before an answer's body: respond() then writes its two frame headers and header block there. */
export const RESPONSE_RESERVE = 128;

/** A response's headers: lower-case names (doh.ts writes them so). */
export type ResponseHeaders = Readonly<Record<string, string | number | undefined>>;

/** Scratch for a response's header block: each response is encoded and copied before the next. */
let blockScratch = Buffer.allocUnsafe(1024);

// RFC 9113 8.2.2: fields a request must not carry.
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** One request stream. */
export class H2Stream {
  readonly id: number;
  method = '';
  /** :path, the request target. */
  target = '';
  /** RFC 9113 6.5.2: the header list's size. */
  headerBytes = 0;
  /** The regular fields: name, value, name, value... */
  fields: string[] = [];
  readonly address: string;
  readonly port: number;
  /** content-length as the request gave it; -1: none. */
  contentLength = -1;
  /** Body octets received (DATA payloads less padding). */
  received = 0;
  /** Our window for its DATA, and the peer's for our answer. */
  recvWindow = STREAM_WINDOW;
  sendWindow: number;
  /** The client sent END_STREAM; we sent ours (or queued it behind the window); a response was given. */
  remoteEnded = false;
  localEnded = false;
  answered = false;
  /** Gone: closed, reset, or its connection closed. */
  closed = false;
  sink: BodySink | null = null;
  /** The answer's body waiting for window, from `pendingAt`. */
  pending: Buffer | null = null;
  pendingAt = 0;
  pendingEnd = 0;
  waiting = false;
  readonly #connection: H2Connection;

  constructor(connection: H2Connection, id: number, sendWindow: number) {
    this.#connection = connection;
    this.id = id;
    this.sendWindow = sendWindow;
    this.address = connection.address;
    this.port = connection.port;
  }

  /** A request field (lower-case name), the first of that name. */
  header(name: string): string | undefined {
    const f = this.fields;
    for (let i = 0; i < f.length; i += 2) if (f[i] === name) return f[i + 1];
    return undefined;
  }

  /** Takes the body as it arrives (what came before this call is not kept). */
  readBody(sink: BodySink): void {
    if (this.closed) sink.close();
    else this.sink = sink;
  }

  /**
   * Sends the response (once; later calls, and calls once the stream is gone, do nothing). `bodyAt`: where the
   * body starts in `body` when it is a Buffer; the frames are then written in place before it when it leaves room.
   */
  respond(status: number, headers: ResponseHeaders, body: Buffer | string, _close = false, bodyAt = 0): void {
    if (this.answered || this.closed) return;
    this.answered = true;
    const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    this.#connection.respond(this, status, headers, b, bodyAt);
  }
}

/** One HTTP/2 connection. */
export class H2Connection {
  readonly address: string;
  readonly port: number;
  readonly #socket: Socket;
  readonly #host: H2Host;
  readonly #settings: H2Settings;
  readonly #decoder: HpackDecoder;
  readonly #streams = new Map<number, H2Stream>();
  /** Bytes of an unfinished frame (or preface) kept from the last read. */
  #buf: Buffer | null = null;
  #preface = false;
  #peerSettings = false;
  /** The highest client stream id seen (RFC 9113 5.1.1), and the last one processed as GOAWAY reports it. */
  #lastStreamId = 0;
  #goawaySent = false;
  /** No more input: a connection error was sent, or the socket closed. */
  #dead = false;
  /** The header block being received: its stream (0: none), END_STREAM of its HEADERS, its parts. */
  #blockStream = 0;
  #blockEndStream = false;
  #blockBad = false;
  #blockParts: Buffer[] = [];
  #blockBytes = 0;
  #blockFrames = 0;
  /** The largest header block (compressed octets) we decode. */
  readonly #maxBlockBytes: number;
  #sendWindow = DEFAULT_WINDOW;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = DEFAULT_MAX_FRAME_SIZE;
  /** The next response block starts with a dynamic table size update (RFC 7541 4.2). */
  #sizeUpdate = false;
  #recvWindow = CONNECTION_WINDOW;
  /** Streams whose answer waits for window, in order. */
  #waiting: H2Stream[] = [];
  /** Output of this turn, written at its end (one write, one TLS record where it fits). */
  #out: Buffer[] = [];
  #outBytes = 0;
  #reading = false;
  #flushScheduled = false;
  #paused = false;
  #frameTimer: (() => void) | null = null;
  readonly #resets: Budget;
  readonly #control: Budget;
  readonly #idleFrames: Budget;
  readonly #flushSoon = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  /** Called once when the connection is gone. */
  onClose: (() => void) | null = null;

  constructor(socket: Socket, host: H2Host, settings: H2Settings) {
    this.#socket = socket;
    this.#host = host;
    this.#settings = settings;
    this.address = socket.remoteAddress ?? '';
    this.port = socket.remotePort ?? 0;
    this.#decoder = new HpackDecoder(HEADER_TABLE_BYTES, settings.maxHeaderListBytes, MAX_FIELDS);
    // Room for a list at the cap in any coding (Huffman can take 30 bits for an octet) and more for the 431.
    this.#maxBlockBytes = Math.max(MAX_FRAME_BYTES, 4 * settings.maxHeaderListBytes + 1024);
    const clock = host.clock;
    this.#resets = new Budget(RESET_BURST, RESETS_PER_SECOND, clock);
    this.#control = new Budget(CONTROL_BURST, CONTROL_PER_SECOND, clock);
    this.#idleFrames = new Budget(IDLE_FRAME_BURST, IDLE_FRAMES_PER_SECOND, clock);
    socket.setNoDelay(true);
    socket.setTimeout(settings.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('timeout', () => this.#onIdle());
    socket.on('error', () => socket.destroy());
    socket.on('drain', () => this.#resume());
    socket.once('close', () => this.#onClose());
    // RFC 9113 3.4: the server's preface is a SETTINGS frame, sent at once.
    this.#push(
      settingsFrame([
        SETTINGS_MAX_CONCURRENT_STREAMS,
        settings.maxConcurrentStreams,
        SETTINGS_INITIAL_WINDOW_SIZE,
        STREAM_WINDOW,
        SETTINGS_MAX_FRAME_SIZE,
        MAX_FRAME_BYTES,
        SETTINGS_MAX_HEADER_LIST_SIZE,
        settings.maxHeaderListBytes,
      ]),
    );
    this.#flush();
    this.#armFrameTimer(); // the preface has a frame's deadline
  }

  /** Streams open (requests not yet answered and closed). */
  get streams(): number {
    return this.#streams.size;
  }

  /** Stops taking requests (GOAWAY, NO_ERROR): the streams open are answered, then the connection is closed. */
  stop(): void {
    if (this.#dead || this.#goawaySent) return;
    this.#goawaySent = true;
    // Written with this turn's answers (one write: a connection closed right after loses none of them).
    this.#push(goawayFrame(this.#lastStreamId, NO_ERROR));
    this.#finishIfDone();
  }

  /** Closes the connection now (what is queued for this turn written first: answers given on the way out). */
  destroy(): void {
    this.#flush();
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#dead) return;
    const buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#buf = null;
    let pos = 0;
    this.#reading = true;
    try {
      if (!this.#preface) {
        const n = Math.min(buf.length, PREFACE.length);
        // RFC 9113 3.4: anything else is a connection error (PROTOCOL_ERROR).
        if (buf.compare(PREFACE, 0, n, 0, n) !== 0) return this.#connectionError(PROTOCOL_ERROR);
        if (n < PREFACE.length) {
          this.#buf = buf;
          return;
        }
        this.#preface = true;
        pos = n;
      }
      pos = this.#frames(buf, pos);
      if (!this.#dead && pos < buf.length) this.#buf = pos === 0 ? buf : buf.subarray(pos);
    } catch (err) {
      // RFC 7541 2.4, RFC 9113 4.3: a decoding error ends the connection; anything else is our fault.
      if (err instanceof HpackError) this.#connectionError(COMPRESSION_ERROR);
      else this.#socket.destroy();
    } finally {
      this.#reading = false;
      this.#flush();
      if (!this.#dead) {
        if ((this.#buf !== null || this.#blockStream !== 0) && !this.#paused) this.#armFrameTimer();
        else this.#clearFrameTimer();
      }
    }
  }

  /** Handles the whole frames of `buf` from `pos`; the position of what is left. */
  #frames(buf: Buffer, pos: number): number {
    const end = buf.length;
    while (end - pos >= FRAME_HEADER_BYTES && !this.#dead && !this.#paused) {
      const length = (buf[pos]! << 16) | (buf[pos + 1]! << 8) | buf[pos + 2]!;
      // RFC 9113 4.2: larger than our SETTINGS_MAX_FRAME_SIZE.
      if (length > MAX_FRAME_BYTES) {
        this.#connectionError(FRAME_SIZE_ERROR);
        return end;
      }
      if (end - pos - FRAME_HEADER_BYTES < length) break;
      const type = buf[pos + 3]!;
      const flags = buf[pos + 4]!;
      const id = buf.readUInt32BE(pos + 5) & MAX_WINDOW; // RFC 9113 4.1: the reserved bit is ignored
      const p = pos + FRAME_HEADER_BYTES;
      pos = p + length;
      this.#frame(type, flags, id, buf, p, pos);
    }
    return pos;
  }

  #frame(type: number, flags: number, id: number, buf: Buffer, p: number, end: number): void {
    // RFC 9113 6.10: a header block is continued by CONTINUATION frames of its stream and nothing else.
    if (this.#blockStream !== 0 && type !== CONTINUATION) return this.#connectionError(PROTOCOL_ERROR);
    // RFC 9113 3.4: the client's preface ends with a SETTINGS frame.
    if (!this.#peerSettings && (type !== SETTINGS || (flags & FLAG_ACK) !== 0))
      return this.#connectionError(PROTOCOL_ERROR);
    switch (type) {
      case DATA:
        return this.#data(flags, id, buf, p, end);
      case HEADERS:
        return this.#headers(flags, id, buf, p, end);
      case PRIORITY:
        return this.#priority(id, buf, p, end);
      case RST_STREAM:
        return this.#rstStream(id, buf, p, end);
      case SETTINGS:
        return this.#settingsFrame(flags, id, buf, p, end);
      case PUSH_PROMISE:
        return this.#connectionError(PROTOCOL_ERROR); // RFC 9113 8.4: a client cannot push
      case PING:
        return this.#ping(flags, id, buf, p, end);
      case GOAWAY:
        return this.#goaway(id, end - p);
      case WINDOW_UPDATE:
        return this.#windowUpdate(id, buf, p, end);
      case CONTINUATION:
        return this.#continuation(flags, id, buf, p, end);
      default:
        // RFC 9113 5.5: unknown frame types are ignored.
        if (!this.#idleFrames.take()) this.#connectionError(ENHANCE_YOUR_CALM);
    }
  }

  /** RFC 9113 6.1. */
  #data(flags: number, id: number, buf: Buffer, p: number, end: number): void {
    if (id === 0) return this.#connectionError(PROTOCOL_ERROR);
    const length = end - p;
    // RFC 9113 6.9: the whole payload, padding included, counts against the windows.
    this.#recvWindow -= length;
    if (this.#recvWindow < 0) return this.#connectionError(FLOW_CONTROL_ERROR);
    let q = p;
    let dataEnd = end;
    if ((flags & FLAG_PADDED) !== 0) {
      if (length < 1) return this.#connectionError(FRAME_SIZE_ERROR);
      const pad = buf[q++]!;
      // RFC 9113 6.1: padding as long as the payload or longer.
      if (pad >= length) return this.#connectionError(PROTOCOL_ERROR);
      dataEnd = end - pad;
    }
    // The connection's window is given back as DATA is taken (each stream's body goes to its sink, or nowhere).
    if (this.#recvWindow <= CONNECTION_WINDOW / 2) {
      this.#push(u32Frame(WINDOW_UPDATE, 0, CONNECTION_WINDOW - this.#recvWindow));
      this.#recvWindow = CONNECTION_WINDOW;
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      // RFC 9113 5.1: DATA on an idle stream is a connection error; on a closed one, a stream error.
      if (id > this.#lastStreamId) return this.#connectionError(PROTOCOL_ERROR);
      return this.#resetId(id, STREAM_CLOSED);
    }
    if (stream.remoteEnded) return this.#reset(stream, STREAM_CLOSED); // RFC 9113 5.1: half-closed (remote)
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) return this.#reset(stream, FLOW_CONTROL_ERROR);
    const n = dataEnd - q;
    stream.received += n;
    // RFC 9113 8.1.1: more than its content-length is malformed.
    if (stream.contentLength >= 0 && stream.received > stream.contentLength) return this.#reset(stream, PROTOCOL_ERROR);
    if (n > 0) stream.sink?.data(buf.subarray(q, dataEnd));
    else if ((flags & FLAG_END_STREAM) === 0 && !this.#idleFrames.take())
      return this.#connectionError(ENHANCE_YOUR_CALM);
    if (stream.closed) return;
    if ((flags & FLAG_END_STREAM) !== 0) return this.#remoteEnd(stream);
    if (stream.recvWindow <= STREAM_WINDOW / 2 && !stream.answered) {
      this.#push(u32Frame(WINDOW_UPDATE, id, STREAM_WINDOW - stream.recvWindow));
      stream.recvWindow = STREAM_WINDOW;
    }
  }

  /** RFC 9113 6.2. */
  #headers(flags: number, id: number, buf: Buffer, p: number, end: number): void {
    // RFC 9113 5.1.1: a client's streams are odd.
    if (id === 0 || (id & 1) === 0) return this.#connectionError(PROTOCOL_ERROR);
    let q = p;
    let pad = 0;
    if ((flags & FLAG_PADDED) !== 0) {
      if (end - q < 1) return this.#connectionError(FRAME_SIZE_ERROR);
      pad = buf[q++]!;
    }
    let bad = false;
    if ((flags & FLAG_PRIORITY) !== 0) {
      if (end - q < 5) return this.#connectionError(FRAME_SIZE_ERROR);
      // RFC 9113 5.3.1: a stream cannot depend on itself (a stream error, once the block is decoded).
      if ((buf.readUInt32BE(q) & MAX_WINDOW) === id) bad = true;
      q += 5;
    }
    const fragmentEnd = end - pad;
    // RFC 9113 6.2: padding as long as what is left of the payload.
    if (fragmentEnd < q) return this.#connectionError(PROTOCOL_ERROR);
    this.#blockStream = id;
    this.#blockEndStream = (flags & FLAG_END_STREAM) !== 0;
    this.#blockBad = bad;
    if ((flags & FLAG_END_HEADERS) !== 0) return this.#block(buf, q, fragmentEnd);
    this.#blockFrames = 1;
    this.#blockBytes = 0;
    this.#fragment(buf, q, fragmentEnd);
  }

  /** RFC 9113 6.10. */
  #continuation(flags: number, id: number, buf: Buffer, p: number, end: number): void {
    if (this.#blockStream === 0 || id !== this.#blockStream) return this.#connectionError(PROTOCOL_ERROR);
    if (++this.#blockFrames > MAX_BLOCK_FRAMES) return this.#connectionError(ENHANCE_YOUR_CALM);
    this.#fragment(buf, p, end);
    if (this.#dead || (flags & FLAG_END_HEADERS) === 0) return;
    const parts = this.#blockParts;
    const block = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.#blockBytes);
    this.#blockParts = [];
    this.#blockBytes = 0;
    this.#block(block, 0, block.length);
  }

  #fragment(buf: Buffer, p: number, end: number): void {
    this.#blockBytes += end - p;
    // A block larger than any request we would serve, however it is split: a CONTINUATION flood.
    if (this.#blockBytes > this.#maxBlockBytes) return this.#connectionError(ENHANCE_YOUR_CALM);
    this.#blockParts.push(Buffer.from(buf.subarray(p, end)));
  }

  /** A whole header block for #blockStream: decoded, then a new request, trailers, or an error. */
  #block(buf: Buffer, start: number, end: number): void {
    const id = this.#blockStream;
    const endStream = this.#blockEndStream;
    this.#blockStream = 0;
    const d = this.#decoder;
    // Decoded whatever becomes of the stream: the table must follow the client's encoder (RFC 7541 2.2).
    d.decode(buf, start, end);
    const open = this.#streams.get(id);
    if (open !== undefined) {
      // RFC 9113 8.1: trailers end the stream; a second block on a stream that ended is STREAM_CLOSED.
      if (open.remoteEnded) return this.#reset(open, STREAM_CLOSED);
      if (!endStream || this.#blockBad || d.overflow || d.malformed) return this.#reset(open, PROTOCOL_ERROR);
      for (let i = 0; i < d.count; i++)
        if (d.names[i]!.charCodeAt(0) === 0x3a) return this.#reset(open, PROTOCOL_ERROR);
      return this.#remoteEnd(open);
    }
    // RFC 9113 5.1.1: a new stream's id is larger than every one before it; a lower one was used and closed.
    if (id <= this.#lastStreamId) return this.#connectionError(STREAM_CLOSED);
    // RFC 9113 6.8: after our GOAWAY, new streams are ignored.
    if (this.#goawaySent) return;
    this.#lastStreamId = id;
    if (this.#blockBad) return this.#resetId(id, PROTOCOL_ERROR);
    // RFC 9113 5.1.2: streams beyond our SETTINGS_MAX_CONCURRENT_STREAMS are refused.
    if (this.#streams.size >= this.#settings.maxConcurrentStreams) return this.#resetId(id, REFUSED_STREAM);
    const stream = new H2Stream(this, id, this.#peerInitialWindow);
    stream.headerBytes = d.listBytes;
    stream.remoteEnded = endStream;
    // A list past the cap is handed on as it is (the handler answers 431); its fields are not all there to check.
    if (!d.overflow && !this.#request(stream, d)) return this.#resetId(id, PROTOCOL_ERROR);
    this.#streams.set(id, stream);
    this.#host.request(stream);
    if (endStream && !stream.closed) {
      const sink = stream.sink;
      stream.sink = null;
      sink?.end();
    }
  }

  /** RFC 9113 8.3.1, 8.2: the request's pseudo-header fields and its fields; false when it is malformed. */
  #request(stream: H2Stream, d: HpackDecoder): boolean {
    if (d.malformed) return false;
    let scheme = false;
    let authority = false;
    let path = false;
    let method = false;
    let regular = false;
    const fields: string[] = [];
    for (let i = 0; i < d.count; i++) {
      const name = d.names[i]!;
      const value = d.values[i]!;
      if (name.charCodeAt(0) === 0x3a) {
        if (regular) return false; // pseudo-header fields come first
        switch (name) {
          case ':method':
            if (method) return false;
            method = true;
            stream.method = value;
            break;
          case ':path':
            if (path || value === '') return false;
            path = true;
            stream.target = value;
            break;
          case ':scheme':
            if (scheme) return false;
            scheme = true;
            break;
          case ':authority':
            if (authority) return false;
            authority = true;
            break;
          default:
            return false; // :status, :protocol, anything else
        }
        continue;
      }
      regular = true;
      if (CONNECTION_SPECIFIC.has(name)) return false;
      if (name === 'te' && value !== 'trailers') return false;
      if (name === 'content-length') {
        if (!/^[0-9]{1,15}$/.test(value)) return false;
        const n = Number(value);
        if (stream.contentLength >= 0 && stream.contentLength !== n) return false;
        stream.contentLength = n;
      }
      fields.push(name, value);
    }
    stream.fields = fields;
    if (!method) return false;
    // RFC 9113 8.5: CONNECT has neither :scheme nor :path, and has :authority.
    if (stream.method === 'CONNECT') return !scheme && !path && authority;
    if (!scheme || !path) return false;
    // RFC 9113 8.1.1: a request that ends with its headers has no body, whatever its content-length says.
    return !(stream.remoteEnded && stream.contentLength > 0);
  }

  /** The client sent END_STREAM on `stream`. */
  #remoteEnd(stream: H2Stream): void {
    stream.remoteEnded = true;
    // RFC 9113 8.1.1: a body shorter than its content-length is malformed.
    if (stream.contentLength >= 0 && stream.received !== stream.contentLength)
      return this.#reset(stream, PROTOCOL_ERROR);
    const sink = stream.sink;
    stream.sink = null;
    sink?.end();
    if (stream.localEnded && stream.pending === null) this.#close(stream);
  }

  /** RFC 9113 6.3. */
  #priority(id: number, buf: Buffer, p: number, end: number): void {
    if (id === 0) return this.#connectionError(PROTOCOL_ERROR);
    if (end - p !== 5) return this.#resetId(id, FRAME_SIZE_ERROR);
    if ((buf.readUInt32BE(p) & MAX_WINDOW) === id) {
      const s = this.#streams.get(id);
      return s === undefined ? this.#resetId(id, PROTOCOL_ERROR) : this.#reset(s, PROTOCOL_ERROR);
    }
    if (!this.#idleFrames.take()) this.#connectionError(ENHANCE_YOUR_CALM);
  }

  /** RFC 9113 6.4. */
  #rstStream(id: number, buf: Buffer, p: number, end: number): void {
    if (id === 0) return this.#connectionError(PROTOCOL_ERROR);
    if (end - p !== 4) return this.#connectionError(FRAME_SIZE_ERROR);
    if (id > this.#lastStreamId) return this.#connectionError(PROTOCOL_ERROR); // idle
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      if (!this.#idleFrames.take()) this.#connectionError(ENHANCE_YOUR_CALM);
      return;
    }
    const early = !stream.localEnded;
    this.#close(stream);
    // CVE-2023-44487: a stream reset before its answer cost us its request for nothing.
    if (early && !this.#resets.take()) this.#connectionError(ENHANCE_YOUR_CALM);
  }

  /** RFC 9113 6.5. */
  #settingsFrame(flags: number, id: number, buf: Buffer, p: number, end: number): void {
    if (id !== 0) return this.#connectionError(PROTOCOL_ERROR);
    const length = end - p;
    if ((flags & FLAG_ACK) !== 0) {
      if (length !== 0) return this.#connectionError(FRAME_SIZE_ERROR);
      return;
    }
    if (length % 6 !== 0) return this.#connectionError(FRAME_SIZE_ERROR);
    if (this.#peerSettings && !this.#control.take()) return this.#connectionError(ENHANCE_YOUR_CALM);
    this.#peerSettings = true;
    let opened = false;
    for (let q = p; q < end; q += 6) {
      const setting = buf.readUInt16BE(q);
      const value = buf.readUInt32BE(q + 2);
      switch (setting) {
        case SETTINGS_HEADER_TABLE_SIZE:
          this.#sizeUpdate = true; // our encoder keeps no dynamic table, and says so in the next block
          break;
        case SETTINGS_ENABLE_PUSH:
          if (value > 1) return this.#connectionError(PROTOCOL_ERROR);
          break;
        case SETTINGS_INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) return this.#connectionError(FLOW_CONTROL_ERROR);
          // RFC 9113 6.9.2: the change applies to every stream's window, and may take one past 2^31-1.
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const s of this.#streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) return this.#connectionError(FLOW_CONTROL_ERROR);
          }
          if (delta > 0) opened = true;
          break;
        }
        case SETTINGS_MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE)
            return this.#connectionError(PROTOCOL_ERROR);
          this.#peerMaxFrame = value;
          break;
        default:
          break; // MAX_CONCURRENT_STREAMS and MAX_HEADER_LIST_SIZE bind what we open and send: nothing here
      }
    }
    this.#push(SETTINGS_ACK);
    if (opened) this.#pumpWaiting();
  }

  /** RFC 9113 6.7. */
  #ping(flags: number, id: number, buf: Buffer, p: number, end: number): void {
    if (id !== 0) return this.#connectionError(PROTOCOL_ERROR);
    if (end - p !== 8) return this.#connectionError(FRAME_SIZE_ERROR);
    if ((flags & FLAG_ACK) !== 0) return; // we send none; an unsolicited ACK is ignored
    if (!this.#control.take()) return this.#connectionError(ENHANCE_YOUR_CALM);
    this.#push(pingAck(buf, p));
  }

  /** RFC 9113 6.8: the client will open no more streams; the open ones are answered, then the connection closed. */
  #goaway(id: number, length: number): void {
    if (id !== 0) return this.#connectionError(PROTOCOL_ERROR);
    if (length < 8) return this.#connectionError(FRAME_SIZE_ERROR);
    if (!this.#goawaySent) this.stop();
  }

  /** RFC 9113 6.9. */
  #windowUpdate(id: number, buf: Buffer, p: number, end: number): void {
    if (end - p !== 4) return this.#connectionError(FRAME_SIZE_ERROR);
    const increment = buf.readUInt32BE(p) & MAX_WINDOW;
    if (id === 0) {
      if (increment === 0) return this.#connectionError(PROTOCOL_ERROR);
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW) return this.#connectionError(FLOW_CONTROL_ERROR);
      if (this.#waiting.length > 0) this.#pumpWaiting();
      else if (!this.#idleFrames.take()) this.#connectionError(ENHANCE_YOUR_CALM);
      return;
    }
    if (id > this.#lastStreamId) return this.#connectionError(PROTOCOL_ERROR); // idle
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      if (!this.#idleFrames.take()) this.#connectionError(ENHANCE_YOUR_CALM);
      return; // closed: a WINDOW_UPDATE may cross our END_STREAM
    }
    if (increment === 0) return this.#reset(stream, PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) return this.#reset(stream, FLOW_CONTROL_ERROR);
    if (stream.pending !== null) this.#pump(stream);
    else if (!this.#idleFrames.take()) this.#connectionError(ENHANCE_YOUR_CALM);
  }

  /** Sends `stream`'s response: HEADERS, then DATA as the windows allow. */
  respond(stream: H2Stream, status: number, headers: ResponseHeaders, body: Buffer, bodyAt: number): void {
    if (this.#dead) return;
    const bodyLength = body.length - bodyAt;
    let block = blockScratch;
    let blockLength: number;
    for (;;) {
      try {
        blockLength = encodeResponse(block, status, headers, bodyLength, this.#sizeUpdate);
        this.#sizeUpdate = false;
        break;
      } catch {
        // RangeError: the scratch is too small for these headers.
        block = blockScratch = Buffer.allocUnsafe(block.length * 4);
      }
    }
    const headersFrame = FRAME_HEADER_BYTES + blockLength;
    if (bodyLength === 0) {
      const out = Buffer.allocUnsafe(headersFrame);
      writeFrameHeader(out, 0, blockLength, HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, stream.id);
      block.copy(out, FRAME_HEADER_BYTES, 0, blockLength);
      this.#push(out);
      return this.#localEnd(stream);
    }
    if (
      bodyLength <= this.#peerMaxFrame &&
      bodyLength <= this.#sendWindow &&
      bodyLength <= stream.sendWindow &&
      bodyAt >= headersFrame + FRAME_HEADER_BYTES
    ) {
      // The common case: both frames written in place before the body, one buffer for the answer.
      const start = bodyAt - FRAME_HEADER_BYTES - headersFrame;
      writeFrameHeader(body, start, blockLength, HEADERS, FLAG_END_HEADERS, stream.id);
      block.copy(body, start + FRAME_HEADER_BYTES, 0, blockLength);
      writeFrameHeader(body, bodyAt - FRAME_HEADER_BYTES, bodyLength, DATA, FLAG_END_STREAM, stream.id);
      this.#sendWindow -= bodyLength;
      stream.sendWindow -= bodyLength;
      this.#push(start === 0 ? body : body.subarray(start));
      return this.#localEnd(stream);
    }
    const out = Buffer.allocUnsafe(headersFrame);
    writeFrameHeader(out, 0, blockLength, HEADERS, FLAG_END_HEADERS, stream.id);
    block.copy(out, FRAME_HEADER_BYTES, 0, blockLength);
    this.#push(out);
    stream.pending = body;
    stream.pendingAt = bodyAt;
    stream.pendingEnd = body.length;
    this.#pump(stream);
  }

  /** Sends what the windows allow of `stream`'s waiting body; waits for more window when they close. */
  #pump(stream: H2Stream): void {
    const body = stream.pending;
    if (body === null || stream.closed) return;
    while (stream.pendingAt < stream.pendingEnd) {
      const n = Math.min(stream.pendingEnd - stream.pendingAt, this.#peerMaxFrame, this.#sendWindow, stream.sendWindow);
      if (n <= 0) {
        if (!stream.waiting) {
          stream.waiting = true;
          this.#waiting.push(stream);
        }
        return;
      }
      const last = stream.pendingAt + n === stream.pendingEnd;
      const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
      writeFrameHeader(header, 0, n, DATA, last ? FLAG_END_STREAM : 0, stream.id);
      this.#push(header);
      this.#push(body.subarray(stream.pendingAt, stream.pendingAt + n));
      stream.pendingAt += n;
      this.#sendWindow -= n;
      stream.sendWindow -= n;
    }
    stream.pending = null;
    this.#localEnd(stream);
  }

  #pumpWaiting(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const s of waiting) {
      s.waiting = false;
      this.#pump(s);
    }
  }

  /** We sent END_STREAM on `stream`. */
  #localEnd(stream: H2Stream): void {
    stream.localEnded = true;
    if (stream.remoteEnded) return this.#close(stream);
    // RFC 9113 8.1: answered before the request was whole: the client may stop sending it.
    this.#push(u32Frame(RST_STREAM, stream.id, NO_ERROR));
    this.#close(stream);
  }

  /** `stream` is done with (answered, reset either way, or its connection gone). */
  #close(stream: H2Stream): void {
    if (stream.closed) return;
    stream.closed = true;
    stream.pending = null;
    this.#streams.delete(stream.id);
    const sink = stream.sink;
    stream.sink = null;
    sink?.close();
    this.#finishIfDone();
  }

  /** A stream error (RFC 9113 5.4.2) on an open stream: RST_STREAM, and the stream is closed. */
  #reset(stream: H2Stream, code: number): void {
    this.#close(stream);
    this.#resetId(stream.id, code);
  }

  /** RST_STREAM for a stream we hold nothing of; each draws on the reset budget. */
  #resetId(id: number, code: number): void {
    this.#push(u32Frame(RST_STREAM, id, code));
    if (!this.#resets.take()) this.#connectionError(ENHANCE_YOUR_CALM);
  }

  /** A connection error (RFC 9113 5.4.1): GOAWAY with the last stream processed and `code`, then the close. */
  #connectionError(code: number): void {
    if (this.#dead) return;
    this.#push(goawayFrame(this.#lastStreamId, code));
    this.#end();
  }

  /** No more input: what is queued is written, then the connection ends. */
  #end(): void {
    this.#dead = true;
    this.#clearFrameTimer();
    for (const s of [...this.#streams.values()]) this.#close(s);
    this.#waiting = [];
    this.#flush();
    this.#socket.end();
  }

  /** After GOAWAY (ours or the client's): the connection ends once no stream is left. */
  #finishIfDone(): void {
    if (this.#goawaySent && !this.#dead && this.#streams.size === 0) this.#end();
  }

  #onIdle(): void {
    if (this.#dead) {
      this.#socket.destroy(); // a peer that never closes its side after ours
      return;
    }
    // A connection with requests in flight is not idle (as RFC 7766 6.2.3 has it for DNS over TCP): looked at again.
    if (this.#streams.size > 0) {
      this.#socket.setTimeout(this.#settings.idleTimeoutMs);
      return;
    }
    this.#host.timedOut('idle');
    this.#connectionError(NO_ERROR);
  }

  #push(buf: Buffer): void {
    this.#out.push(buf);
    this.#outBytes += buf.length;
    if (!this.#reading && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flushSoon);
    }
  }

  /** Writes this turn's output in one write. */
  #flush(): void {
    const out = this.#out;
    if (out.length === 0) return;
    const data = out.length === 1 ? out[0]! : Buffer.concat(out, this.#outBytes);
    this.#out = [];
    this.#outBytes = 0;
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) return;
    socket.write(data);
    if (!this.#paused && socket.writableLength > MAX_QUEUED_BYTES) {
      this.#paused = true;
      socket.pause();
      this.#clearFrameTimer(); // not read while paused: a frame's deadline runs only while it can arrive
    }
  }

  #resume(): void {
    if (!this.#paused || this.#dead || this.#socket.writableLength > MAX_QUEUED_BYTES) return;
    this.#paused = false;
    this.#socket.resume();
    // What was read before the pause and not handled yet.
    if (this.#buf !== null) {
      const buf = this.#buf;
      this.#buf = null;
      this.#onData(buf);
    }
  }

  #armFrameTimer(): void {
    if (this.#frameTimer !== null) return;
    this.#frameTimer = this.#host.deadline(() => {
      this.#frameTimer = null;
      this.#host.timedOut('frame-timeout');
      this.#dead = true;
      this.#socket.destroy();
    });
  }

  #clearFrameTimer(): void {
    if (this.#frameTimer !== null) {
      this.#frameTimer();
      this.#frameTimer = null;
    }
  }

  #onClose(): void {
    this.#dead = true;
    this.#clearFrameTimer();
    for (const s of [...this.#streams.values()]) this.#close(s);
    this.#waiting = [];
    this.#out = [];
    this.onClose?.();
  }
}
