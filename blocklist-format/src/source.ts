/**
 * Where a release's files come from (SPEC.md 4). The format library never touches the network or the disk;
 * callers hand it a source: an HTTP mirror, a `file://` directory, or a test double over real files.
 */

/** The outcome of fetching one file of a release. */
export type FetchResult =
  | { readonly status: 'ok'; readonly body: Uint8Array }
  /** The file does not exist (HTTP 404 or 410, or no such file). */
  | { readonly status: 'absent' }
  /** A conditional fetch found the file unchanged since the last `ok` (HTTP 304). */
  | { readonly status: 'not-modified' };

export interface GetOptions {
  /** Refuse (TOO_LARGE) once more than this many bytes arrive, whatever the server announces. */
  readonly maxBytes: number;
  /** The size the index gave: refuse (SIZE_MISMATCH) any byte past it, and a shorter file. */
  readonly exactSize?: number;
  /** Ask the server whether the file changed since the last `ok` answer for this path. */
  readonly conditional?: boolean;
}

/** What {@link ReleaseSource.stream} takes: `get`'s caps (a stream is never conditional). */
export type StreamOptions = Omit<GetOptions, 'conditional'>;

/** The outcome of streaming one file: its length once every chunk was delivered, or absent. */
export type StreamResult = { readonly status: 'ok'; readonly size: number } | { readonly status: 'absent' };

/**
 * Receives a streamed file's chunks in order. A chunk is only valid until the call (or the promise it returns)
 * ends: the source may reuse its buffer. What it throws ends the stream and is what `stream` rejects with.
 */
export type ChunkSink = (chunk: Uint8Array) => void | Promise<void>;

export interface ReleaseSource {
  /** Where the files come from, for logs (a URL without credentials, or a directory). */
  readonly location: string;
  /**
   * Fetches `path` relative to the release root. Rejects with a FormatError: FETCH_FAILED (status, network,
   * timeout), TOO_LARGE or SIZE_MISMATCH.
   */
  get(path: string, options: GetOptions): Promise<FetchResult>;
  /**
   * Optional: fetches `path` as `get` does, but hands the bytes to `onChunk` as they arrive instead of returning
   * them, so a large FULL is never held whole. Same caps and errors as `get` (FETCH_FAILED, TOO_LARGE,
   * SIZE_MISMATCH): every chunk is counted before it is delivered, so no byte past a cap ever reaches `onChunk`
   * (a file that turns out short is refused after its last chunk). A source without it is read with `get`.
   */
  stream?(path: string, options: StreamOptions, onChunk: ChunkSink): Promise<StreamResult>;
}
