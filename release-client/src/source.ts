/**
 * Release sources over HTTP(S) (undici) and `file://`. Every byte is counted while it streams in: a body is cut
 * off at the cap or at the size the index gave, whatever `Content-Length` says. Bodies are never decompressed
 * (we ask for `identity` and refuse any other `Content-Encoding`), redirects are not followed, and every request
 * has a connect timeout and a total deadline.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import {
  FormatError,
  type ChunkSink,
  type FetchResult,
  type GetOptions,
  type ReleaseSource,
  type StreamOptions,
  type StreamResult,
} from '@hashwall/format';
import type * as UndiciModule from 'undici';
import type { Agent } from 'undici';

import { maskUrl } from './mask.js';

type Undici = typeof UndiciModule;
let undiciModule: Undici | undefined;

/**
 * undici, loaded the first time an HTTP source or pool is made: a process whose releases come from `file://` or
 * from a state directory never loads it. Loading it was ~85-100 ms of a list worker's start (twice that in a
 * development tree, where each workspace has its own copy), on the way to putting a stored list in force
 * (bench/README.md, "undici on first use").
 */
function undici(): Undici {
  return (undiciModule ??= createRequire(import.meta.url)('undici') as Undici);
}

/** A connection pool for {@link HttpSourceOptions.dispatcher}: undici's `Agent`, loaded on first use. */
export function httpPool(options: { connectTimeoutMs: number; connections?: number }): Agent {
  const U = undici();
  return new U.Agent({ connect: { timeout: options.connectTimeoutMs }, connections: options.connections ?? 4 });
}

export type { Agent as HttpPool };

export interface HttpSourceOptions {
  /** TCP and TLS connect timeout. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Deadline for one whole request, headers and body. Default 30000. */
  readonly totalTimeoutMs?: number;
  /** Sent as `User-Agent`. */
  readonly userAgent?: string;
  /** Shared connection pool; one is made per source when absent. */
  readonly dispatcher?: Agent;
  /**
   * Validators remembered by an earlier source for the same base URL ({@link HttpSource.validatorsSnapshot}), so
   * that a source made anew (in a new worker thread) still sends conditional requests.
   */
  readonly validators?: readonly (readonly [path: string, validators: Validators])[];
}

/** What a server sent to validate a cached answer: `ETag` and `Last-Modified`, as received. */
export interface Validators {
  readonly etag?: string;
  readonly lastModified?: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_TOTAL_TIMEOUT_MS = 30000;

function failed(location: string, path: string, why: string, cause?: unknown): FormatError {
  return new FormatError('FETCH_FAILED', `${location}${path}: ${why}`, { cause });
}

/** Checks the running total against the caps; returns the error to raise, if any. */
function overCap(total: number, options: StreamOptions, what: string): FormatError | undefined {
  if (options.exactSize !== undefined && total > options.exactSize) {
    return new FormatError('SIZE_MISMATCH', `${what}: more than the ${options.exactSize} bytes the index gave`);
  }
  if (total > options.maxBytes) {
    return new FormatError('TOO_LARGE', `${what}: over the cap of ${options.maxBytes} bytes`);
  }
  return undefined;
}

function checkShort(total: number, options: StreamOptions, what: string): void {
  if (options.exactSize !== undefined && total !== options.exactSize) {
    throw new FormatError('SIZE_MISMATCH', `${what}: ${total} bytes, the index gave ${options.exactSize}`);
  }
}

/** What one request gave: FetchResult, with the size of an `ok` body (and the body unless it was streamed). */
type Fetched =
  | { readonly status: 'ok'; readonly size: number; readonly body?: Buffer }
  | { readonly status: 'absent' }
  | { readonly status: 'not-modified' };

/** Bytes a FileSource reads per chunk when it streams. */
const FILE_CHUNK_BYTES = 256 * 1024;

/** What a sink threw: passed through unchanged (a source's own errors become FETCH_FAILED). */
class SinkError extends Error {
  readonly error: unknown;
  constructor(error: unknown) {
    super('the chunk sink failed');
    this.error = error;
  }
}

/** Calls a sink, marking what it throws so that the caller passes it through untouched. */
async function deliver(onChunk: ChunkSink, chunk: Uint8Array): Promise<void> {
  try {
    await onChunk(chunk);
  } catch (err) {
    throw new SinkError(err);
  }
}

/** A release served over HTTP or HTTPS from `baseUrl` (the folder that holds `index.hwl`). */
export class HttpSource implements ReleaseSource {
  readonly location: string;
  private readonly base: URL;
  private readonly agent: Agent;
  private readonly ownAgent: boolean;
  private readonly totalTimeoutMs: number;
  private readonly userAgent: string;
  /** Validators of the last `ok` answer per path, for conditional requests. */
  private readonly validators: Map<string, Validators>;
  /** From the base URL's user and password; never logged. */
  private readonly authorization: string | undefined;
  /** The base URL's query ("" or "?..."), sent with every file's request; never logged. */
  private readonly query: string;

  constructor(baseUrl: string | URL, options: HttpSourceOptions = {}) {
    const base = new URL(baseUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new RangeError(`not an HTTP URL: ${base.protocol}`);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    // The user and password go as HTTP Basic authentication (RFC 7617), the query with every file's request; the
    // files' own URLs are made from what is left.
    if (base.username !== '' || base.password !== '') {
      const user = decodeURIComponent(base.username);
      const password = decodeURIComponent(base.password);
      this.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    }
    this.query = base.search;
    this.location = maskUrl(base).replace(/[?#].*$/, '');
    base.username = '';
    base.password = '';
    base.search = '';
    base.hash = '';
    this.base = base;
    this.ownAgent = options.dispatcher === undefined;
    this.agent =
      options.dispatcher ?? httpPool({ connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
    this.totalTimeoutMs = options.totalTimeoutMs ?? DEFAULT_TOTAL_TIMEOUT_MS;
    this.userAgent = options.userAgent ?? 'hashwall';
    this.validators = new Map(
      (options.validators ?? []).map(([path, v]): [string, Validators] => [
        path,
        {
          ...(typeof v.etag === 'string' ? { etag: v.etag } : {}),
          ...(typeof v.lastModified === 'string' ? { lastModified: v.lastModified } : {}),
        },
      ]),
    );
  }

  /** The validators of the last `ok` answer per path: plain data, to hand to a later source. */
  validatorsSnapshot(): [path: string, validators: Validators][] {
    return [...this.validators].map(([path, v]) => [path, { ...v }]);
  }

  async get(path: string, options: GetOptions): Promise<FetchResult> {
    const res = await this.fetch(path, options, undefined);
    if (res.status !== 'ok') return res;
    if (res.body === undefined) throw new Error('internal: a get keeps its body');
    return { status: 'ok', body: res.body };
  }

  /**
   * `get`, with the body handed to `onChunk` chunk by chunk as undici delivers it (each chunk counted against the
   * caps before it is delivered; the next is read once `onChunk` has returned), never joined in memory.
   */
  async stream(path: string, options: StreamOptions, onChunk: ChunkSink): Promise<StreamResult> {
    const res = await this.fetch(path, { maxBytes: options.maxBytes, exactSize: options.exactSize }, onChunk);
    if (res.status === 'not-modified') throw new Error('internal: a stream is never conditional');
    return res.status === 'ok' ? { status: 'ok', size: res.size } : res;
  }

  private async fetch(path: string, options: GetOptions, onChunk: ChunkSink | undefined): Promise<Fetched> {
    const url = new URL(path, this.base);
    if (!url.href.startsWith(this.base.href)) throw new RangeError(`path leaves the release: ${path}`);
    url.search = this.query;
    const headers: Record<string, string> = { 'user-agent': this.userAgent, 'accept-encoding': 'identity' };
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    const known = this.validators.get(path);
    if (options.conditional && known) {
      if (known.etag !== undefined) headers['if-none-match'] = known.etag;
      if (known.lastModified !== undefined) headers['if-modified-since'] = known.lastModified;
    }
    // One deadline for the whole request; cleared when done so that it never fires on a finished body.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.totalTimeoutMs);
    try {
      return await this.fetchOnce(url, path, headers, options, known !== undefined, deadline.signal, onChunk);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One request. With `onChunk`, the body goes to it and the `ok` result carries only its size. */
  private async fetchOnce(
    url: URL,
    path: string,
    headers: Record<string, string>,
    options: GetOptions,
    haveValidators: boolean,
    signal: AbortSignal,
    onChunk: ChunkSink | undefined,
  ): Promise<Fetched> {
    let res;
    try {
      res = await undici().request(url, {
        method: 'GET',
        headers,
        dispatcher: this.agent,
        signal,
        headersTimeout: this.totalTimeoutMs,
        bodyTimeout: this.totalTimeoutMs,
      });
    } catch (err) {
      throw failed(
        this.location,
        path,
        signal.aborted ? `no answer within ${this.totalTimeoutMs} ms` : errText(err),
        err,
      );
    }
    const { statusCode, body } = res;
    body.on('error', () => undefined); // errors surface through the reads below, or do not matter once we stop
    if (statusCode !== 200) {
      body.destroy();
      if (statusCode === 304 && options.conditional && haveValidators) return { status: 'not-modified' };
      if (statusCode === 404 || statusCode === 410) return { status: 'absent' };
      const redirect = statusCode >= 300 && statusCode < 400 ? ' (redirects are not followed)' : '';
      throw failed(this.location, path, `HTTP ${statusCode}${redirect}`);
    }
    const encoding = res.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      body.destroy();
      throw failed(this.location, path, `refusing Content-Encoding ${String(encoding)}`);
    }
    // When the index gave the exact size, the body goes straight into one buffer of that size (no chunk list and
    // no concatenated copy of a 64 MiB FULL); every chunk is checked against the caps before it is copied, so
    // nothing is written past the end. Otherwise (the index and signatures: small files) chunks are joined.
    const wanted = options.exactSize;
    const exact =
      wanted !== undefined && Number.isSafeInteger(wanted) && wanted >= 0 && wanted <= options.maxBytes
        ? wanted
        : undefined;
    // A stream hands every chunk on instead (after the same check), and keeps none.
    const into = exact !== undefined && !onChunk ? Buffer.allocUnsafeSlow(exact) : undefined;
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of body) {
        const b = chunk as Buffer;
        const at = total;
        total += b.length;
        const err = overCap(total, options, `${this.location}${path}`);
        if (err) {
          body.destroy();
          throw err;
        }
        if (onChunk) await deliver(onChunk, b);
        else if (into) into.set(b, at);
        else chunks.push(b);
      }
    } catch (err) {
      if (err instanceof SinkError) {
        body.destroy();
        throw err.error;
      }
      if (err instanceof FormatError) throw err;
      const why = signal.aborted ? `body not complete within ${this.totalTimeoutMs} ms` : errText(err);
      throw failed(this.location, path, why, err);
    }
    checkShort(total, options, `${this.location}${path}`);
    const etag = res.headers.etag;
    const lastModified = res.headers['last-modified'];
    this.validators.set(path, {
      ...(typeof etag === 'string' ? { etag } : {}),
      ...(typeof lastModified === 'string' ? { lastModified } : {}),
    });
    if (onChunk) return { status: 'ok', size: total };
    return { status: 'ok', size: total, body: into ?? Buffer.concat(chunks, total) };
  }

  /** Closes the connection pool (only when this source made it). */
  async close(): Promise<void> {
    if (this.ownAgent) await this.agent.close();
  }
}

function errText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** A release in a local directory (`file:///srv/release/`), read with the same caps as over HTTP. */
export class FileSource implements ReleaseSource {
  readonly location: string;
  private readonly base: URL;

  constructor(baseUrl: string | URL) {
    const base = new URL(baseUrl);
    if (base.protocol !== 'file:') throw new RangeError(`not a file URL: ${maskUrl(base)}`);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    base.search = '';
    base.hash = '';
    this.base = base;
    this.location = base.href;
  }

  /** Opens `path` under the base for reading; null when it does not exist. */
  async #open(path: string): Promise<FileHandle | null> {
    const url = new URL(path, this.base);
    if (!url.href.startsWith(this.base.href)) throw new RangeError(`path leaves the release: ${path}`);
    try {
      return await open(fileURLToPath(url), 'r');
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return null;
      throw failed(this.location, path, errText(err), err);
    }
  }

  async get(path: string, options: GetOptions): Promise<FetchResult> {
    const handle = await this.#open(path);
    if (handle === null) return { status: 'absent' };
    try {
      // Read at most one byte past the cap, so a file that grows while we read cannot slip past it.
      const limit = Math.min(options.maxBytes, options.exactSize ?? Infinity) + 1;
      const buf = Buffer.alloc(Math.min(limit, (await handle.stat()).size + 1));
      let total = 0;
      for (;;) {
        if (total === buf.length) break;
        const { bytesRead } = await handle.read(buf, total, buf.length - total, total);
        if (bytesRead === 0) break;
        total += bytesRead;
      }
      const err = overCap(total, options, `${this.location}${path}`);
      if (err) throw err;
      checkShort(total, options, `${this.location}${path}`);
      return { status: 'ok', body: buf.subarray(0, total) };
    } catch (err) {
      if (err instanceof FormatError) throw err;
      throw failed(this.location, path, errText(err), err);
    } finally {
      await handle.close();
    }
  }

  /**
   * `get`, with the file read in chunks of 256 KiB through one buffer (reused: a chunk is valid only during
   * `onChunk`), each counted against the caps before it is delivered.
   */
  async stream(path: string, options: StreamOptions, onChunk: ChunkSink): Promise<StreamResult> {
    const handle = await this.#open(path);
    if (handle === null) return { status: 'absent' };
    const what = `${this.location}${path}`;
    try {
      // As `get`: never more than one byte past the cap, so a file that grows while it is read is caught.
      const limit = Math.min(options.maxBytes, options.exactSize ?? Infinity) + 1;
      const buf = Buffer.allocUnsafe(Math.min(FILE_CHUNK_BYTES, limit));
      let total = 0;
      while (total < limit) {
        const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, limit - total), total);
        if (bytesRead === 0) break;
        total += bytesRead;
        const err = overCap(total, options, what);
        if (err) throw err;
        await deliver(onChunk, buf.subarray(0, bytesRead));
      }
      checkShort(total, options, what);
      return { status: 'ok', size: total };
    } catch (err) {
      if (err instanceof SinkError) throw err.error;
      if (err instanceof FormatError) throw err;
      throw failed(this.location, path, errText(err), err);
    } finally {
      await handle.close();
    }
  }
}

/** The source for a mirror base URL: `https://`, `http://` or `file://`. */
export function sourceFor(
  baseUrl: string,
  options: HttpSourceOptions = {},
): ReleaseSource & { close?(): Promise<void> } {
  const url = new URL(baseUrl);
  if (url.protocol === 'file:') return new FileSource(url);
  return new HttpSource(url, options);
}
