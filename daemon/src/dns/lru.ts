/**
 * A least-recently-used map bounded by entries and by a size the caller gives per entry. It was the packet cache's
 * store; the cache now keeps its own tables (cache.ts, arena.ts) and nothing in the daemon uses this any more (only
 * daemon/test/dns-lru.test.ts: both can go).
 *
 * Why not `lru-cache` (which this replaced): its get() and set() take an options object that defaults to a new `{}`
 * per call (and a status object when its diagnostics channel has subscribers); on the query path that was ~57 heap
 * bytes per query of the ~1,880 the process allocated at 10,000 q/s (`node bench/lib/query-path-bench.mjs --live
 * --sites`, Node 20). This one allocates nothing per get(), and per set() only what the key Map itself does.
 *
 * Layout: a Map from key to slot, and per slot its key, value, size and the two links of a doubly linked list in
 * recency order (typed arrays, grown by doubling up to `maxEntries`, so a large bound costs nothing until used).
 * Freed slots are reused.
 */
export class Lru<V> {
  readonly maxEntries: number;
  readonly maxSize: number;
  readonly #onEvict: ((value: V) => void) | null;
  readonly #slots = new Map<string, number>();
  #keys: (string | undefined)[] = [];
  #values: (V | undefined)[] = [];
  #sizes = new Float64Array(0);
  #prev = new Int32Array(0);
  #next = new Int32Array(0);
  /** Slots handed out so far (the high-water mark); freed ones wait in `#free`. */
  #used = 0;
  #free: number[] = [];
  /** Least recently used slot, or -1. */
  #head = -1;
  /** Most recently used slot, or -1. */
  #tail = -1;
  #size = 0;

  /** `onEvict` is called for each entry pushed out to stay within the bounds (not for delete, clear or a replace). */
  constructor(maxEntries: number, maxSize: number, onEvict: ((value: V) => void) | null = null) {
    if (!(maxEntries >= 1) || !(maxSize >= 1)) throw new RangeError('Lru: maxEntries and maxSize must be at least 1');
    this.maxEntries = maxEntries;
    this.maxSize = maxSize;
    this.#onEvict = onEvict;
  }

  /** Entries held. */
  get size(): number {
    return this.#slots.size;
  }

  /** The sum of the sizes of the entries held. */
  get calculatedSize(): number {
    return this.#size;
  }

  /** The value for `key` (which becomes the most recently used), or undefined. */
  get(key: string): V | undefined {
    const i = this.#slots.get(key);
    if (i === undefined) return undefined;
    if (i !== this.#tail) {
      this.#unlink(i);
      this.#linkTail(i);
    }
    return this.#values[i];
  }

  has(key: string): boolean {
    return this.#slots.has(key);
  }

  /**
   * Stores `value` under `key` as the most recently used entry, evicting the least recently used ones as the bounds
   * require. A `size` above maxSize is not stored (and an entry the key had is deleted); false then.
   */
  set(key: string, value: V, size: number): boolean {
    const old = this.#slots.get(key);
    if (size > this.maxSize) {
      if (old !== undefined) this.delete(key);
      return false;
    }
    if (old !== undefined) {
      this.#size += size - this.#sizes[old]!;
      this.#values[old] = value;
      this.#sizes[old] = size;
      if (old !== this.#tail) {
        this.#unlink(old);
        this.#linkTail(old);
      }
      while (this.#size > this.maxSize && this.#head !== old) this.#evict();
      return true;
    }
    while (this.#head >= 0 && (this.#slots.size >= this.maxEntries || this.#size + size > this.maxSize)) this.#evict();
    const i = this.#slot();
    this.#keys[i] = key;
    this.#values[i] = value;
    this.#sizes[i] = size;
    this.#size += size;
    this.#linkTail(i);
    this.#slots.set(key, i);
    return true;
  }

  /** Removes `key`; true if it was there. */
  delete(key: string): boolean {
    const i = this.#slots.get(key);
    if (i === undefined) return false;
    this.#remove(i);
    return true;
  }

  clear(): void {
    this.#slots.clear();
    this.#keys = [];
    this.#values = [];
    this.#sizes = new Float64Array(0);
    this.#prev = new Int32Array(0);
    this.#next = new Int32Array(0);
    this.#used = 0;
    this.#free = [];
    this.#head = -1;
    this.#tail = -1;
    this.#size = 0;
  }

  /** Keys from the least to the most recently used (for tests). */
  keys(): string[] {
    const out: string[] = [];
    for (let i = this.#head; i >= 0; i = this.#next[i]!) out.push(this.#keys[i]!);
    return out;
  }

  #evict(): void {
    const i = this.#head;
    const value = this.#values[i] as V;
    this.#remove(i);
    this.#onEvict?.(value);
  }

  #remove(i: number): void {
    this.#unlink(i);
    this.#slots.delete(this.#keys[i]!);
    this.#keys[i] = undefined;
    this.#values[i] = undefined;
    this.#size -= this.#sizes[i]!;
    this.#sizes[i] = 0;
    this.#free.push(i);
  }

  /** A free slot: a reused one, else a new one (growing the arrays by doubling, up to maxEntries). */
  #slot(): number {
    const f = this.#free.pop();
    if (f !== undefined) return f;
    const i = this.#used++;
    if (i >= this.#prev.length) {
      const cap = Math.min(this.maxEntries, Math.max(64, this.#prev.length * 2));
      const sizes = new Float64Array(cap);
      sizes.set(this.#sizes);
      this.#sizes = sizes;
      const prev = new Int32Array(cap);
      prev.set(this.#prev);
      this.#prev = prev;
      const next = new Int32Array(cap);
      next.set(this.#next);
      this.#next = next;
    }
    return i;
  }

  #unlink(i: number): void {
    const p = this.#prev[i]!;
    const n = this.#next[i]!;
    if (p >= 0) this.#next[p] = n;
    else this.#head = n;
    if (n >= 0) this.#prev[n] = p;
    else this.#tail = p;
  }

  #linkTail(i: number): void {
    const t = this.#tail;
    this.#prev[i] = t;
    this.#next[i] = -1;
    if (t >= 0) this.#next[t] = i;
    else this.#head = i;
    this.#tail = i;
  }
}
