/**
 * Where the packet cache keeps its records: slabs of 32 KiB (each a Buffer of its own memory, not a slice of Node's
 * shared pool), carved into cells of one size class each, so that a stored answer costs its bytes (rounded up to
 * its class) and no JavaScript object. A record is named by a handle, `slab * SLAB_BYTES + offset` (an int32).
 *
 * Classes: 16-octet steps up to 512 (the usual answer with its key is ~100), then 128-octet steps up to 4,096.
 * A record above 4,096 octets (only TCP answers can be) gets a slab of its own, at offset 0, dropped when it is
 * freed. Freed cells go on their class's free list and are reused first; a class's slabs are kept once made (a
 * cache that is full stays full, so they are wanted again), so what the arena holds is what its classes held at
 * their peak: `reservedBytes`.
 */
import { Buffer } from 'node:buffer';

/** Octets per slab; a handle's offset is below it. */
export const SLAB_BYTES = 32768;
/** The largest record kept in a slab cell; larger ones get a slab each. */
export const MAX_CELL_BYTES = 4096;
/** Slabs one arena may hold (handles stay below 2^31): 2 GiB of records. */
const MAX_SLABS = 65535;
const SMALL_STEP = 16;
const SMALL_MAX = 512;
const LARGE_STEP = 128;
const CLASSES = SMALL_MAX / SMALL_STEP + (MAX_CELL_BYTES - SMALL_MAX) / LARGE_STEP + 1;
const NO_SLAB = Buffer.alloc(0);

/** The size class of a record of `size` octets (1..MAX_CELL_BYTES). */
function classOf(size: number): number {
  return size <= SMALL_MAX
    ? (size + SMALL_STEP - 1) >> 4
    : SMALL_MAX / SMALL_STEP + ((size - SMALL_MAX + LARGE_STEP - 1) >> 7);
}

/** The cell size of class `c`. */
function cellOf(c: number): number {
  const small = SMALL_MAX / SMALL_STEP;
  return c <= small ? c * SMALL_STEP : SMALL_MAX + (c - small) * LARGE_STEP;
}

export class Arena {
  /** The slabs by index (NO_SLAB where a record's own slab was dropped). Read them with a handle: see slabOf. */
  readonly slabs: Buffer[] = [];
  /** Octets of slabs held. */
  reservedBytes = 0;
  /** Indexes of dropped slabs, reused first. */
  readonly #freeSlabs: number[] = [];
  /** Freed cells (handles) per class. */
  readonly #freeCells: number[][] = Array.from({ length: CLASSES }, () => []);
  /** Per class: the slab cells are still being cut from (-1: none), and where the next cell starts. */
  readonly #bumpSlab = new Int32Array(CLASSES).fill(-1);
  readonly #bumpAt = new Int32Array(CLASSES);

  /** The cell size a record of `size` octets takes. */
  static cellBytes(size: number): number {
    return size > MAX_CELL_BYTES ? size : cellOf(classOf(size));
  }

  /** A handle to `size` (>= 1) octets, or -1 when the arena holds as many slabs as it may. */
  alloc(size: number): number {
    if (size > MAX_CELL_BYTES) {
      const s = this.#newSlab(size);
      return s < 0 ? -1 : s * SLAB_BYTES;
    }
    const c = classOf(size);
    const reuse = this.#freeCells[c]!.pop();
    if (reuse !== undefined) return reuse;
    const cell = cellOf(c);
    let s = this.#bumpSlab[c]!;
    let at = this.#bumpAt[c]!;
    if (s < 0 || at + cell > SLAB_BYTES) {
      s = this.#newSlab(SLAB_BYTES);
      if (s < 0) return -1;
      this.#bumpSlab[c] = s;
      at = 0;
    }
    this.#bumpAt[c] = at + cell;
    return s * SLAB_BYTES + at;
  }

  /** Gives back the record `handle` of `size` octets (the size it was allocated with). */
  free(handle: number, size: number): void {
    if (size > MAX_CELL_BYTES) {
      const s = (handle / SLAB_BYTES) | 0;
      this.reservedBytes -= this.slabs[s]!.length;
      this.slabs[s] = NO_SLAB;
      this.#freeSlabs.push(s);
      return;
    }
    this.#freeCells[classOf(size)]!.push(handle);
  }

  /** Drops every slab. */
  clear(): void {
    this.slabs.length = 0;
    this.reservedBytes = 0;
    this.#freeSlabs.length = 0;
    for (const f of this.#freeCells) f.length = 0;
    this.#bumpSlab.fill(-1);
    this.#bumpAt.fill(0);
  }

  #newSlab(size: number): number {
    const b = Buffer.allocUnsafeSlow(size);
    this.reservedBytes += size;
    const s = this.#freeSlabs.pop();
    if (s !== undefined) {
      this.slabs[s] = b;
      return s;
    }
    if (this.slabs.length >= MAX_SLABS) {
      this.reservedBytes -= size;
      return -1;
    }
    this.slabs.push(b);
    return this.slabs.length - 1;
  }
}

/** The slab holding `handle`. */
export function slabIndex(handle: number): number {
  return (handle / SLAB_BYTES) | 0;
}

/** Where `handle`'s record starts in its slab. */
export function slabOffset(handle: number): number {
  return handle & (SLAB_BYTES - 1);
}
