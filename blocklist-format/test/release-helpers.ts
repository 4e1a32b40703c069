// A release built in memory with the format's own publisher, served through the ReleaseSource interface.
import type { FullList } from '../dist/full.js';
import type { MinisignSecretKey } from '../dist/minisign.js';
import { generateKeyPair, TrustStore } from '../dist/minisign.js';
import { buildRelease } from '../dist/publish.js';
import type { FetchResult, GetOptions, ReleaseSource } from '../dist/source.js';
import { T0, listOf } from './codec-helpers.ts';

/** Serves a map of files with the caps a real source applies. */
export class MemorySource implements ReleaseSource {
  readonly location = 'memory:';
  readonly files = new Map<string, Uint8Array>();
  readonly fetched: string[] = [];

  async get(path: string, options: GetOptions): Promise<FetchResult> {
    this.fetched.push(path);
    const body = this.files.get(path);
    if (body === undefined) return { status: 'absent' };
    const { FormatError } = await import('../dist/errors.js');
    if (options.exactSize !== undefined && body.length !== options.exactSize) {
      throw new FormatError('SIZE_MISMATCH', `${path}: ${body.length} bytes, expected ${options.exactSize}`);
    }
    if (body.length > options.maxBytes) throw new FormatError('TOO_LARGE', `${path} over the cap`);
    return { status: 'ok', body: Uint8Array.from(body) };
  }

  /** Flips one byte of a file. */
  tamper(path: string, at = -1): void {
    const b = Uint8Array.from(this.files.get(path)!);
    const i = at < 0 ? b.length + at : at;
    b[i] = b[i]! ^ 0x01;
    this.files.set(path, b);
  }
}

export interface Publisher {
  readonly key: MinisignSecretKey;
  readonly source: MemorySource;
  readonly trust: TrustStore;
  seq: number;
  readonly published: FullList[];
  /** Publishes `full` with deltas from every earlier serial and seq + 1. */
  publish(full: FullList, options?: { created?: number; expires?: number; signers?: MinisignSecretKey[] }): void;
}

export function publisher(listId = 'demo', key: MinisignSecretKey = generateKeyPair()): Publisher {
  const source = new MemorySource();
  const p: Publisher = {
    key,
    source,
    trust: new TrustStore([[listId, { keys: [key.publicKey], threshold: 1 }]]),
    seq: 0,
    published: [],
    publish(full, options = {}) {
      p.seq++;
      const { files } = buildRelease({
        full,
        bases: p.published.filter((b) => b.header.serial < full.header.serial),
        seq: p.seq,
        created: options.created ?? T0,
        expires: options.expires ?? T0 + 7 * 86400,
        minPoll: 900,
        signers: options.signers ?? [key],
      });
      for (const [path, bytes] of files) source.files.set(path, bytes);
      p.published.push(full);
    },
  };
  return p;
}

/** The clock the poll tests run at: an hour after the fixtures were created. */
export const NOW = T0 + 3600;

/** Two successive lists of one publisher (serials 1 and 2): an entry kept, one changed kind, one gone, one new. */
export const ONE = listOf(1, [
  [1, 0],
  [2, 1],
  [3, 3],
]);
export const TWO = listOf(2, [
  [1, 0],
  [2, 0],
  [4, 2],
]);
