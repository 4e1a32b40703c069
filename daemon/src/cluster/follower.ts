/**
 * The lists of a DNS worker process (workers > 1): a ListProvider that never polls a mirror. The primary runs the
 * one list sync (one poller per list, one writer per state directory); a worker reads what the primary committed
 * to the state directory, re-verified, in a worker thread (store-reader.ts): at start, when the primary says a list
 * changed (IPC), and on reload. Between reads it keeps what it had (fail static), as the list sync does; a list
 * past its expiry is taken out of the view under onExpired: drop, and while a list set to `refuse` has never been
 * read, every query is refused, as in a single process.
 */
import { EventEmitter } from 'node:events';

import { ListMatcher } from '@hashwall/format';

import type { GuardSet, ResolvedList, Settings } from '../config/load.js';
import { ViewPublisher, dropped, hashKeyFor, listFingerprint, listTrust, refusing } from '../lists/view.js';
import type { ListProvider, ListView } from '../types/lists.js';
import type { Logger } from '../util/log.js';
import { ownCodeWorker } from '../util/worker.js';
import type { PrimaryMessage, ReaderConfig, ReaderReply } from './types.js';

const READER_URL = new URL('./store-reader.js', import.meta.url);
/** A read that takes longer (a stuck disk) is abandoned; the list in force stays. */
const READ_DEADLINE_MS = 120_000;
/** How often the expiry of the lists in force is checked (onExpired: drop). */
const CHECK_INTERVAL_MS = 5000;

/** One list as a follower holds it. */
class FollowedList {
  readonly id: string;
  readonly resolved: ResolvedList;
  readonly fingerprint: string;
  readonly #config: ReaderConfig;
  readonly #log: Logger;
  matcher: ListMatcher | undefined;
  serial = 0;
  bodySha256 = '';
  expires = 0;
  hadList = false;
  /**
   * The matcher came from the list's previous configuration (a reload changed it): it stays in force until this
   * configuration's first read, which builds a new one whatever it finds.
   */
  inherited = false;
  /** Reads run one at a time; a request during a read runs once more after it. */
  #reading: Promise<void> | null = null;
  #again = false;

  constructor(resolved: ResolvedList, stateDir: string, guard: GuardSet, log: Logger) {
    this.id = resolved.config.id;
    this.resolved = resolved;
    this.#config = listTrust(resolved, stateDir, guard);
    this.fingerprint = listFingerprint(resolved, stateDir, guard);
    this.#log = log.child({ list: this.id });
  }

  /** Reads the state directory now (coalesced with a read in progress); resolves when the view may have changed. */
  read(changed: () => void): Promise<void> {
    if (this.#reading) {
      this.#again = true;
      return this.#reading;
    }
    this.#reading = (async () => {
      do {
        this.#again = false;
        await this.#readOnce(changed);
      } while (this.#again);
      this.#reading = null;
    })();
    return this.#reading;
  }

  async #readOnce(changed: () => void): Promise<void> {
    let reply: ReaderReply;
    const w = ownCodeWorker(READER_URL, { workerData: this.#config, name: `hashwall-read-${this.id}` });
    try {
      reply = await new Promise<ReaderReply>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer within ${READ_DEADLINE_MS} ms`)), READ_DEADLINE_MS);
        w.once('message', (m: { reply: ReaderReply }) => {
          clearTimeout(timer);
          resolve(m.reply);
        });
        w.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        w.postMessage(1);
      });
    } catch (err) {
      reply = { status: 'unusable', message: (err as Error).message };
    } finally {
      // One thread per read: nothing of a read's memory stays in the worker process between updates.
      void w.terminate();
    }
    if (reply.status === 'absent') {
      if (!this.matcher) this.#log.info('no list in the state directory yet: waiting for the primary');
      return;
    }
    if (reply.status === 'unusable') {
      this.#log.warn(
        { reason: reply.message },
        'could not read the list the primary committed; the list in force stays (it is read again at the next update)',
      );
      return;
    }
    if (!this.inherited && this.matcher && reply.serial === this.serial && reply.bodySha256 === this.bodySha256) {
      this.expires = reply.expires;
      return;
    }
    this.inherited = false;
    this.matcher = new ListMatcher(this.id, hashKeyFor(reply.hashKey, this.resolved.listKey), reply.entries);
    this.serial = reply.serial;
    this.bodySha256 = reply.bodySha256;
    this.expires = reply.expires;
    this.hadList = true;
    this.#log.info(
      { serial: reply.serial, entries: reply.entries.size, exempted: reply.exempted },
      'list read from the state directory',
    );
    changed();
  }

  /** Keeps `prev`'s list in force until this one has read its own (as the list sync keeps the old matcher). */
  inherit(prev: FollowedList): this {
    if (prev.matcher === undefined) return this;
    this.matcher = prev.matcher;
    this.serial = prev.serial;
    this.bodySha256 = prev.bodySha256;
    this.expires = prev.expires;
    this.hadList = prev.hadList;
    this.inherited = true;
    return this;
  }

  /** The matcher this list puts in the view: none once expired under onExpired: drop (view.ts). */
  active(nowSeconds: number): ListMatcher | undefined {
    if (this.matcher === undefined || dropped(this.resolved.config, nowSeconds, this.expires)) return undefined;
    return this.matcher;
  }

  get refusing(): boolean {
    return refusing(this.resolved.config, this.hadList);
  }
}

export interface FollowerOptions {
  readonly logger: Logger;
  /** The clock in seconds (tests inject one). */
  readonly clock?: () => number;
}

export class FollowerLists extends EventEmitter<{ swap: [ListView] }> implements ListProvider {
  #lists: FollowedList[];
  #stateDir: string;
  readonly #publisher: ViewPublisher;
  readonly #log: Logger;
  readonly #clock: () => number;
  #timer: NodeJS.Timeout | null = null;
  readonly #onMessage = (m: unknown): void => {
    if ((m as PrimaryMessage | null)?.hashwall === 'lists') void this.readAll();
  };

  constructor(settings: Settings, options: FollowerOptions) {
    super();
    this.#log = options.logger;
    this.#clock = options.clock ?? (() => Date.now() / 1000);
    this.#stateDir = settings.config.stateDir;
    this.#lists = settings.lists.map((r) => new FollowedList(r, this.#stateDir, settings.guard, this.#log));
    this.#publisher = new ViewPublisher(
      this.#lists.some((l) => l.refusing),
      (view) => this.emit('swap', view),
    );
  }

  view(): ListView {
    return this.#publisher.view;
  }

  #recompute = (): void => {
    const now = this.#clock();
    this.#publisher.publish(
      this.#lists.flatMap((l) => {
        const m = l.active(now);
        return m ? [m] : [];
      }),
      this.#lists.some((l) => l.refusing),
    );
  };

  /** Reads every list's state directory (what the primary committed). */
  async readAll(): Promise<void> {
    await Promise.all(this.#lists.map((l) => l.read(this.#recompute)));
  }

  /** Reads the lists, then follows the primary's messages and the expiry clock. */
  async start(): Promise<void> {
    await this.readAll();
    process.on('message', this.#onMessage);
    this.#timer = setInterval(this.#recompute, CHECK_INTERVAL_MS);
    this.#timer.unref();
  }

  /**
   * New settings (SIGHUP): changed lists are read afresh (their old matcher in force until then), removed ones
   * leave the view, unchanged ones stay.
   */
  async reload(settings: Settings): Promise<void> {
    const stateDir = settings.config.stateDir;
    const old = new Map(this.#lists.map((l) => [l.id, l]));
    this.#stateDir = stateDir;
    this.#lists = settings.lists.map((r) => {
      const fresh = new FollowedList(r, stateDir, settings.guard, this.#log);
      const prev = old.get(r.config.id);
      if (prev === undefined) return fresh;
      return prev.fingerprint === fresh.fingerprint ? prev : fresh.inherit(prev);
    });
    this.#recompute();
    await this.readAll();
  }

  close(): Promise<void> {
    process.off('message', this.#onMessage);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    return Promise.resolve();
  }
}
