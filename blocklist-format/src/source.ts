/**
 * Where a release's files come from (FORMAT.md 4). The format library never touches the network or the disk;
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

export interface ReleaseSource {
  /** Where the files come from, for logs (a URL without credentials, or a directory). */
  readonly location: string;
  /**
   * Fetches `path` relative to the release root. Rejects with a FormatError: FETCH_FAILED (status, network,
   * timeout), TOO_LARGE or SIZE_MISMATCH.
   */
  get(path: string, options: GetOptions): Promise<FetchResult>;
}
