/**
 * A `TileReader` over a release source of @hashwall/format (`ReleaseSource`: what @hashwall/release-client gives
 * for `https://`, `http://` and `file://` mirrors, with its caps, timeouts and no redirects), for the log that
 * FORMAT.md 6 puts under the release directory's `log/`.
 */
import { isFormatError, type ReleaseSource } from '@hashwall/format';

import { TlogError } from './errors.js';
import type { TileReader } from './tiles.js';

/** FORMAT.md 6: the log's prefix in a release directory. */
export const RELEASE_LOG_PREFIX = 'log/';

/** Reads `<prefix><path>` from `source`; the source's TOO_LARGE and FETCH_FAILED become the log's codes. */
export function tileReaderFromSource(source: Pick<ReleaseSource, 'get'>, prefix = RELEASE_LOG_PREFIX): TileReader {
  return {
    async read(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
      let res;
      try {
        res = await source.get(`${prefix}${path}`, { maxBytes });
      } catch (err) {
        if (isFormatError(err, 'TOO_LARGE')) throw new TlogError('LOG_TOO_LARGE', err.message, { cause: err });
        if (isFormatError(err)) throw new TlogError('LOG_FETCH_FAILED', err.message, { cause: err });
        throw err;
      }
      if (res.status === 'ok') return res.body;
      if (res.status === 'absent') return undefined;
      throw new TlogError('LOG_FETCH_FAILED', `${prefix}${path}: an unconditional fetch answered "not modified"`);
    },
  };
}
