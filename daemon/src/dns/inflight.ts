/**
 * The upstream questions in flight, by cache key, so identical questions wait on one upstream job (server.ts).
 *
 * An open-addressing table (linear probing; a delete shifts the entries behind it back, so there are no tombstones)
 * in one array that only grows, not a Map: a Map that churns with every question has V8 rebuild its table every few
 * entries, and a dropped table in the old generation still points at the jobs it held; whatever it points at
 * survives every scavenge until a full collection (bench/README.md, "What keeps them: the registries' hash
 * tables"). Here a finished job's place is cleared in the array itself, and the array is replaced only when it
 * doubles. Written by hand for that reason alone; what it measured is in bench/README.md ("Tables that do not
 * churn").
 *
 * The hash is the caller's (cache.ts's hashKey over the key's octets: seeded per process, so which names share a
 * run of the table cannot be worked out from outside), kept on the job.
 */

/** What the table holds: a job with its key and the key's hash. */
export interface Keyed {
  readonly key: string;
  keyHash: number;
}

/** The first room (a power of two). */
const START = 64;

export class InflightTable<J extends Keyed> {
  #jobs: (J | null)[];
  #mask: number;
  #size = 0;

  constructor(capacity = START) {
    let n = START;
    while (n < capacity) n *= 2;
    this.#jobs = new Array<J | null>(n).fill(null);
    this.#mask = n - 1;
  }

  get size(): number {
    return this.#size;
  }

  /** The room (a power of two; doubled when half full, never shrunk). */
  get capacity(): number {
    return this.#mask + 1;
  }

  /** The job for `key` (whose hash is `hash`). */
  get(key: string, hash: number): J | undefined {
    const jobs = this.#jobs;
    const mask = this.#mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const j = jobs[i]!;
      if (j === null) return undefined;
      if (j.keyHash === hash && j.key === key) return j;
    }
  }

  /** Adds `job` under its key (the caller has found none there) and its keyHash. */
  add(job: J): void {
    if ((this.#size + 1) * 2 > this.#mask + 1) this.#grow();
    this.#place(this.#jobs, this.#mask, job);
    this.#size++;
  }

  /** Takes `job` out, if it is in the table (another job for the same key is left alone). */
  delete(job: J): boolean {
    const jobs = this.#jobs;
    const mask = this.#mask;
    let i = job.keyHash & mask;
    for (;;) {
      const j = jobs[i]!;
      if (j === null) return false;
      if (j === job) break;
      i = (i + 1) & mask;
    }
    // Backward shift: an entry further along the run moves into the hole when its home is not between the hole and
    // itself (cyclically), so every entry stays reachable from its home without a tombstone.
    for (let k = (i + 1) & mask; ; k = (k + 1) & mask) {
      const j = jobs[k]!;
      if (j === null) break;
      const home = j.keyHash & mask;
      if (((k - home) & mask) >= ((k - i) & mask)) {
        jobs[i] = j;
        i = k;
      }
    }
    jobs[i] = null;
    this.#size--;
    return true;
  }

  #place(jobs: (J | null)[], mask: number, job: J): void {
    let i = job.keyHash & mask;
    while (jobs[i] !== null) i = (i + 1) & mask;
    jobs[i] = job;
  }

  #grow(): void {
    const old = this.#jobs;
    const n = old.length * 2;
    const jobs = new Array<J | null>(n).fill(null);
    for (const j of old) if (j !== null) this.#place(jobs, n - 1, j);
    // The old array lets go of its jobs, for the same reason the table is not a Map.
    old.fill(null);
    this.#jobs = jobs;
    this.#mask = n - 1;
  }
}
