/**
 * Release sources over HTTP(S) (undici) and `file://`. Every byte is counted while it streams in: a body is cut
 * off at the cap or at the size the index gave, whatever `Content-Length` says. Bodies are never decompressed
 * (we ask for `identity` and refuse any other `Content-Encoding`), redirects are not followed, and every request
 * has a connect timeout and a total deadline.
 */
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { FormatError, type FetchResult, type GetOptions, type ReleaseSource } from '@hashwall/format';
import { Agent, request } from 'undici';

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
function overCap(total: number, options: GetOptions, what: string): FormatError | undefined {
  if (options.exactSize !== undefined && total > options.exactSize) {
    return new FormatError('SIZE_MISMATCH', `${what}: more than the ${options.exactSize} bytes the index gave`);
  }
  if (total > options.maxBytes) {
    return new FormatError('TOO_LARGE', `${what}: over the cap of ${options.maxBytes} bytes`);
  }
  return undefined;
}

function checkShort(total: number, options: GetOptions, what: string): void {
  if (options.exactSize !== undefined && total !== options.exactSize) {
    throw new FormatError('SIZE_MISMATCH', `${what}: ${total} bytes, the index gave ${options.exactSize}`);
  }
}

/** Strips credentials from a URL for logs. */
export function redactUrl(url: URL): string {
  const u = new URL(url.href);
  u.username = '';
  u.password = '';
  return u.href;
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

  constructor(baseUrl: string | URL, options: HttpSourceOptions = {}) {
    const base = new URL(baseUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new RangeError(`not an HTTP URL: ${base.protocol}`);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    base.search = '';
    base.hash = '';
    this.base = base;
    this.location = redactUrl(base);
    this.ownAgent = options.dispatcher === undefined;
    this.agent =
      options.dispatcher ??
      new Agent({
        connect: { timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
        connections: 4,
      });
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
    const url = new URL(path, this.base);
    if (!url.href.startsWith(this.base.href)) throw new RangeError(`path leaves the release: ${path}`);
    const headers: Record<string, string> = { 'user-agent': this.userAgent, 'accept-encoding': 'identity' };
    const known = this.validators.get(path);
    if (options.conditional && known) {
      if (known.etag !== undefined) headers['if-none-match'] = known.etag;
      if (known.lastModified !== undefined) headers['if-modified-since'] = known.lastModified;
    }
    // One deadline for the whole request; cleared when done so that it never fires on a finished body.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.totalTimeoutMs);
    try {
      return await this.fetchOnce(url, path, headers, options, known !== undefined, deadline.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  private async fetchOnce(
    url: URL,
    path: string,
    headers: Record<string, string>,
    options: GetOptions,
    haveValidators: boolean,
    signal: AbortSignal,
  ): Promise<FetchResult> {
    let res;
    try {
      res = await request(url, {
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
    const into = exact !== undefined ? Buffer.allocUnsafeSlow(exact) : undefined;
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
        if (into) into.set(b, at);
        else chunks.push(b);
      }
    } catch (err) {
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
    return { status: 'ok', body: into ?? Buffer.concat(chunks, total) };
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
    if (base.protocol !== 'file:') throw new RangeError(`not a file URL: ${base.href}`);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.base = base;
    this.location = base.href;
  }

  async get(path: string, options: GetOptions): Promise<FetchResult> {
    const url = new URL(path, this.base);
    if (!url.href.startsWith(this.base.href)) throw new RangeError(`path leaves the release: ${path}`);
    let handle;
    try {
      handle = await open(fileURLToPath(url), 'r');
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return { status: 'absent' };
      throw failed(this.location, path, errText(err), err);
    }
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
