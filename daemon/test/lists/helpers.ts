// Test helpers for the list sync: a release directory written with @hashwall/format's publisher, a real HTTP
// server on 127.0.0.1 serving it (with hooks to misbehave), settings, a clock, and a registry with a captured log.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, type Dirent } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';

import {
  INDEX_PATH,
  MatcherSet,
  buildRelease,
  entriesFromPairs,
  generateKeyPair,
  makeFull,
  publicKeyToString,
  type FullList,
  type ListKey,
  type MinisignSecretKey,
} from '@hashwall/format';

import { settingsFrom, type Settings } from '../../dist/config/load.js';
import { createLogger } from '../../dist/util/log.js';
import { ListRegistry, type ListRegistryOptions } from '../../dist/lists/registry.js';
import type { ListEventMap } from '../../dist/lists/types.js';
import type { ListView } from '../../dist/types/lists.js';
import { startDaemon } from '../../dist/daemon.js';
import { TEST_ACCESS } from '../helpers/daemon.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { plainNode } from '../../../test/helpers/tools.ts';
import { HANG_MS, within } from '../../../test/helpers/within.ts';

/** 2026-11-22T06:00:00Z, the format's test epoch. */
export const T0 = Date.UTC(2026, 10, 22, 6, 0, 0) / 1000;
export const DAY = 86400;

export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'hw-lists-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Temp files (spools among them) in a list's state directory: none once a poll, a commit or a start is done. */
export function spoolsIn(stateDir: string, listId = 'demo'): string[] {
  let names: string[];
  try {
    names = readdirSync(join(stateDir, listId));
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith('.tmp-'));
}

/** The names a test list blocks, as D entries, hashed with `key` (reserved names only). */
export function fullOf(
  listKey: ListKey,
  serial: number,
  names: readonly string[],
  options: { listId?: string; created?: number; expires?: number; kind?: 'D' | 'H' } = {},
): FullList {
  const hk = listKey.hashKey();
  const pairs = names.map((n) => [hk.hashHex(n), options.kind ?? 'D'] as const);
  return makeFull(
    {
      listId: options.listId ?? 'demo',
      serial,
      created: options.created ?? T0,
      expires: options.expires ?? T0 + 14 * DAY,
      hashKey: listKey.isPublic ? { mode: 'public', key: listKey.keyHex() } : { mode: 'licensed', id: listKey.id },
      extensions: [],
    },
    entriesFromPairs(pairs),
  );
}

export interface PublishOptions {
  readonly seq?: number;
  readonly created?: number;
  readonly expires?: number;
  readonly minPoll?: number;
  readonly signers?: readonly MinisignSecretKey[];
  /** Earlier FULLs to write deltas from (default: every one published before, below this serial). */
  readonly bases?: readonly FullList[];
}

/** A release directory on disk, published with the format library's buildRelease (index written last). */
export class ReleaseDir {
  readonly dir: string;
  readonly key: MinisignSecretKey;
  seq = 0;
  readonly published: FullList[] = [];

  constructor(dir: string, key: MinisignSecretKey = generateKeyPair()) {
    this.dir = dir;
    this.key = key;
    mkdirSync(dir, { recursive: true });
  }

  get url(): string {
    return pathToFileURL(this.dir).href + '/';
  }

  /** Publishes `full` with seq + 1 (or `seq`), returning every file written. */
  publish(full: FullList, o: PublishOptions = {}): Map<string, Uint8Array> {
    this.seq = o.seq ?? this.seq + 1;
    const { files } = buildRelease({
      full,
      bases: o.bases ?? this.published.filter((b) => b.header.serial < full.header.serial),
      seq: this.seq,
      created: o.created ?? T0,
      expires: o.expires ?? T0 + 7 * DAY,
      minPoll: o.minPoll ?? 900,
      signers: o.signers ?? [this.key],
    });
    // A publisher replaces a file's signatures with the new set: drop the old ones first.
    for (const path of files.keys()) {
      if (path.endsWith('.minisig')) continue;
      const dir = join(this.dir, dirname(path));
      const base = path.split('/').at(-1)!;
      for (const e of readdirSyncSafe(dir)) {
        if (e.name.startsWith(`${base}.`) && e.name.endsWith('.minisig')) rmSync(join(dir, e.name));
      }
    }
    // The index last, as a publisher does.
    const entries = [...files].sort(([a], [b]) => Number(a.startsWith(INDEX_PATH)) - Number(b.startsWith(INDEX_PATH)));
    for (const [path, bytes] of entries) this.write(path, bytes);
    if (!this.published.some((f) => f.header.serial === full.header.serial)) this.published.push(full);
    return files;
  }

  write(path: string, bytes: Uint8Array | string): void {
    const file = join(this.dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, bytes);
  }

  read(path: string): Buffer {
    return readFileSync(join(this.dir, path));
  }

  /** Flips one bit of one byte (default: the last). */
  tamper(path: string, at = -1): void {
    const b = this.read(path);
    const i = at < 0 ? b.length + at : at;
    b[i] = b[i]! ^ 0x01;
    this.write(path, b);
  }

  /** Saves every file so that it can be served again later (a rollback). */
  snapshot(): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    const walk = (rel: string): void => {
      for (const e of readdirSyncSafe(join(this.dir, rel))) {
        const p = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(p);
        else out.set(p, this.read(p));
      }
    };
    walk('');
    return out;
  }

  restore(files: Map<string, Buffer>): void {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    for (const [p, b] of files) this.write(p, b);
  }
}

/**
 * A release in `dir` of serial 1 with `names`, valid now: for tests of the built daemon, which reads the real clock
 * (the other helpers publish at T0).
 */
export function currentRelease(dir: string, listKey: ListKey, names: readonly string[]): ReleaseDir {
  const now = Math.floor(Date.now() / 1000);
  const release = new ReleaseDir(dir);
  release.publish(fullOf(listKey, 1, names, { created: now - 3600, expires: now + 7 * DAY }), {
    created: now - 3600,
    expires: now + 2 * DAY,
  });
  return release;
}

function readdirSyncSafe(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse, file: Buffer | undefined) => void;

/**
 * A real HTTP server on 127.0.0.1 serving a release directory under /rel/, with an ETag per file (so conditional
 * GETs get 304), a log of requested paths, and per-path handlers to misbehave.
 */
export class ReleaseServer {
  readonly release: ReleaseDir;
  readonly requests: string[] = [];
  readonly routes = new Map<string, Handler>();
  private server = createServer((req, res) => this.handle(req, res));
  port = 0;

  constructor(release: ReleaseDir) {
    this.release = release;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/rel/`;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').replace(/^\/rel\//, '');
    this.requests.push(path);
    let file: Buffer | undefined;
    try {
      file = this.release.read(path);
    } catch {
      file = undefined;
    }
    const route = this.routes.get(path);
    if (route) return route(req, res, file);
    if (!file) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    const etag = `"${createHash('sha256').update(file).digest('hex').slice(0, 16)}"`;
    res.setHeader('etag', etag);
    if (req.headers['if-none-match'] === etag) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.end(file);
  }

  count(path: string): number {
    return this.requests.filter((p) => p === path).length;
  }

  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return within(closed, 'release server close');
  }
}

/** A mutable wall clock in seconds. */
export class Clock {
  now: number;
  constructor(now = T0 + 3600) {
    this.now = now;
  }
  readonly read = (): number => this.now;
}

export interface ListOptions {
  readonly id?: string;
  readonly mirrors: readonly string[];
  readonly keys: readonly MinisignSecretKey[];
  readonly listKey?: ListKey;
  readonly [key: string]: unknown;
}

/** The raw (YAML-shaped) config with the given lists, each with test-friendly timings, state in `stateDir`. */
export function rawSettings(
  stateDir: string,
  lists: readonly ListOptions[],
  top: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ...top,
    stateDir,
    lists: lists.map(({ id, mirrors, keys, listKey, ...rest }) => ({
      id: id ?? 'demo',
      mirrors,
      keys: keys.map((k) => publicKeyToString(k.publicKey)),
      ...(listKey ? { hashKey: { id: listKey.id, key: listKey.keyHex() } } : {}),
      // Never by the clock in a test: polls come from start() and pollNow().
      schedule: '0 0 1 1 *',
      jitterSeconds: 0,
      connectTimeoutMs: 500,
      totalTimeoutMs: 1500,
      retryMinMs: 1000,
      retryMaxMs: 2000,
      onStartWithoutList: 'serve-unfiltered',
      ...rest,
    })),
  };
}

/** Validated settings (the daemon's own loader) for `rawSettings`. */
export function settingsWith(
  stateDir: string,
  lists: readonly ListOptions[],
  top: Record<string, unknown> = {},
): Settings {
  return settingsFrom(rawSettings(stateDir, lists, top), stateDir);
}

/** Log lines captured as parsed JSON objects. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      this.raw.push(line);
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    cb();
  }
}

export interface Harness {
  readonly registry: ListRegistry;
  /** The daemon's query path on 127.0.0.1, serving this registry's lists (after `withDns`). */
  dns?: { readonly port: number; readonly upstream: TestUpstream };
  readonly log: LogSink;
  readonly events: { name: keyof ListEventMap; args: unknown }[];
  /** The events of one name, in order. */
  of<K extends keyof ListEventMap>(name: K): ListEventMap[K][0][];
}

const EVENT_NAMES: (keyof ListEventMap)[] = [
  'swap',
  'loaded',
  'updated',
  'heartbeat',
  'unchanged',
  'not-modified',
  'rejected',
  'delta-fallback',
  'round-failed',
  'stale',
  'expired',
  'store-unusable',
  'start-timeout',
  'canary-missing',
  'held',
  'released',
  'keyring',
  'split-view',
];

/**
 * A registry with a captured log and event record; closed at teardown. Its lists' cores run on the test's thread
 * (inlineCore: the sync rules are the same, without a worker's ~0.3 s start per registry); a test of what the
 * worker itself does (its deadline, its priority, ending it) passes `inlineCore: false`.
 */
export function harness(
  t: { teardown(fn: () => unknown): void },
  settings: Settings,
  clock: Clock,
  extra: Partial<ListRegistryOptions> = {},
): Harness {
  const log = new LogSink();
  const logger = createLogger({ level: 'debug' }, log);
  const registry = new ListRegistry(settings, {
    logger,
    inlineCore: true,
    ...extra,
    // Worker deadlines below the tests' hang bound (HANG_MS): a stuck poll fails the test with WORKER_FAILED, and
    // a poll slowed by a busy machine still ends in time.
    timing: {
      clock: clock.read,
      checkIntervalMs: 3_600_000,
      pollDeadlineMs: HANG_MS * 0.75,
      openDeadlineMs: HANG_MS * 0.75,
      ...extra.timing,
    },
  });
  const events: { name: keyof ListEventMap; args: unknown }[] = [];
  for (const name of EVENT_NAMES) {
    registry.on(name, (...args: unknown[]) => events.push({ name, args: args[0] }));
  }
  t.teardown(() => registry.close());
  return {
    registry,
    log,
    events,
    of: <K extends keyof ListEventMap>(name: K) =>
      events.filter((e) => e.name === name).map((e) => e.args as ListEventMap[K][0]),
  };
}

/**
 * Starts the daemon's real query path (server.ts) on 127.0.0.1 port 0 with the registry as its list provider and
 * a test upstream (the DNS helpers' TestUpstream) behind it; stopped at teardown.
 */
export async function withDns(t: { teardown(fn: () => unknown): void }, h: Harness): Promise<Harness> {
  const upstream = await TestUpstream.start();
  const settings = settingsFrom(
    {
      listen: ['127.0.0.1:0'],
      upstreams: [upstream.address],
      upstream: { timeoutMs: 300, maxTries: 1 },
      shutdown: { drainTimeoutMs: 200 },
      access: TEST_ACCESS,
    },
    tmpdir(),
  );
  const daemon = await startDaemon(settings, {
    logger: createLogger({ level: 'error' }, new LogSink()),
    lists: h.registry,
  });
  t.teardown(async () => {
    await within(daemon.close(), 'daemon close');
    upstream.close();
  });
  h.dns = { port: daemon.addresses.udp[0]!.port, upstream };
  return h;
}

/** The verdict for `name` over a view's matchers (the real matcher: what a DNS query would get). */
export function verdictOf(view: ListView, name: string): string | null {
  const v = new MatcherSet(view.matchers).verdict(name);
  return v ? `${v.kind}:${v.listId}` : null;
}

export { HANG_MS, within };

/** The crash child (commit-child.mjs): what the kill -9 tests run and kill. */
const CHILD = fileURLToPath(new URL('./commit-child.mjs', import.meta.url));

/** Runs the crash child with `args` and SIGKILLs it `afterMs` after it printed `marker`. */
export function killDuring(args: string[], marker: string, afterMs: number): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const child = spawn(...plainNode(CHILD, args), { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(marker)) setTimeout(() => child.kill('SIGKILL'), afterMs);
      });
      child.on('error', reject);
      child.on('exit', (_code, signal) => resolve(`${signal ?? ''} ${out}`));
    }),
    'crash child',
  );
}
