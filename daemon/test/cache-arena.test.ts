import t from 'tap';

import { Arena, MAX_CELL_BYTES, SLAB_BYTES, slabIndex, slabOffset } from '../dist/dns/arena.js';

/** Fills the record `h` of `size` octets with `tag`. */
function fill(a: Arena, h: number, size: number, tag: number): void {
  a.slabs[slabIndex(h)]!.fill(tag, slabOffset(h), slabOffset(h) + size);
}

/** Whether the record `h` of `size` octets still holds `tag` in every octet. */
function holds(a: Arena, h: number, size: number, tag: number): boolean {
  const s = a.slabs[slabIndex(h)]!;
  for (let i = slabOffset(h); i < slabOffset(h) + size; i++) if (s[i] !== tag) return false;
  return true;
}

t.test('records of every size get cells that do not overlap', async (t) => {
  const a = new Arena();
  const got: [number, number, number][] = [];
  for (let n = 0; n < 3000; n++) {
    const size = 1 + ((n * 7919) % MAX_CELL_BYTES);
    const h = a.alloc(size);
    if (h < 0) throw new Error(`no cell for ${size} octets`);
    fill(a, h, size, n & 0xff);
    got.push([h, size, n & 0xff]);
  }
  t.ok(
    got.every(([h, size, tag]) => holds(a, h, size, tag)),
    'each record keeps what was written to it',
  );
  t.equal(a.reservedBytes % SLAB_BYTES, 0, 'slabs of 32 KiB');
});

t.test('cells round up to their class: 16-octet steps to 512, 128-octet steps to 4096', async (t) => {
  t.equal(Arena.cellBytes(1), 16);
  t.equal(Arena.cellBytes(16), 16);
  t.equal(Arena.cellBytes(17), 32);
  t.equal(Arena.cellBytes(75), 80);
  t.equal(Arena.cellBytes(512), 512);
  t.equal(Arena.cellBytes(513), 640);
  t.equal(Arena.cellBytes(4096), 4096);
  t.equal(Arena.cellBytes(4097), 4097, "above the largest cell: the record's own size");
});

t.test('a freed cell is reused before the arena grows', async (t) => {
  const a = new Arena();
  const hs = Array.from({ length: 1000 }, () => a.alloc(100));
  const reserved = a.reservedBytes;
  t.equal(reserved, Math.ceil(1000 / Math.floor(SLAB_BYTES / 112)) * SLAB_BYTES, 'as many slabs as the cells need');
  for (const h of hs.slice(0, 500)) a.free(h, 100);
  const again = Array.from({ length: 500 }, () => a.alloc(97));
  t.same(new Set(again), new Set(hs.slice(0, 500)), 'the same class gets the freed cells back');
  t.equal(a.reservedBytes, reserved, 'no new slab');
  const other = a.alloc(300);
  t.notOk(hs.includes(other), 'another class does not take them');
});

t.test('a record above the largest cell gets a slab of its own, dropped when freed', async (t) => {
  const a = new Arena();
  const small = a.alloc(50);
  const big = a.alloc(20000);
  t.equal(slabOffset(big), 0);
  t.not(slabIndex(big), slabIndex(small));
  t.equal(a.reservedBytes, SLAB_BYTES + 20000);
  fill(a, big, 20000, 7);
  t.ok(holds(a, big, 20000, 7));
  a.free(big, 20000);
  t.equal(a.reservedBytes, SLAB_BYTES);
  const big2 = a.alloc(65600);
  t.equal(slabIndex(big2), slabIndex(big), "the dropped slab's index is reused");
  t.equal(a.reservedBytes, SLAB_BYTES + 65600);
  a.clear();
  t.equal(a.reservedBytes, 0);
  t.equal(a.slabs.length, 0);
  t.ok(a.alloc(10) >= 0, 'usable after clear');
});
