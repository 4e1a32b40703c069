import fc from 'fast-check';
import t from 'tap';

import { makeEntry, renderEntry } from '../dist/dns/answer.js';
import { PacketCache, type CacheEntry, type CacheSettings } from '../dist/dns/cache.js';
import { ParsedQuery, ResponseInfo, foldQuestion, parseQuery, scanResponse } from '../dist/dns/wire.js';
import { BLOCK, PASS_DECISION, type Decision } from '../dist/types/decision.js';
import { TYPE, query, ttlsOf, wireName, type QueryOptions } from './helpers/client.ts';

const SETTINGS: CacheSettings = {
  maxEntries: 1000,
  maxBytes: 1 << 30,
  minTtlSeconds: 0,
  maxTtlSeconds: 86400,
  maxNegativeTtlSeconds: 3600,
  serveStale: true,
  staleMaxAgeSeconds: 600,
  staleAnswerTtlSeconds: 30,
};

interface Rr {
  owner?: Buffer;
  type: number;
  ttl: number;
  rdata: Buffer;
}

function rr(r: Rr): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(r.type, 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(r.ttl, 4);
  fixed.writeUInt16BE(r.rdata.length, 8);
  return Buffer.concat([r.owner ?? Buffer.from([0xc0, 12]), fixed, r.rdata]);
}

interface AnswerShape {
  rcode?: number;
  answers?: Rr[];
  authority?: Rr[];
  /** The upstream's OPT RDATA (options), or null for an answer without OPT. */
  opt?: Buffer | null;
}

/** An upstream's answer to `name` (its case as given), type A. */
function upstreamAnswer(name: string, shape: AnswerShape = {}, qtype = TYPE.A): Buffer {
  const answers = shape.answers ?? [{ type: TYPE.A, ttl: 300, rdata: Buffer.from([192, 0, 2, 66]) }];
  const authority = shape.authority ?? [];
  const opt = shape.opt === undefined ? Buffer.alloc(0) : shape.opt;
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x4242, 0);
  h[2] = 0x85;
  h[3] = 0x80 | (shape.rcode ?? 0);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(answers.length, 6);
  h.writeUInt16BE(authority.length, 8);
  h.writeUInt16BE(opt === null ? 0 : 1, 10);
  const q = Buffer.alloc(4);
  q.writeUInt16BE(qtype, 0);
  q.writeUInt16BE(1, 2);
  const parts = [h, wireName(name), q, ...answers.map(rr), ...authority.map(rr)];
  if (opt !== null) {
    const o = Buffer.alloc(11);
    o.writeUInt16BE(41, 1);
    o.writeUInt16BE(1232, 3);
    o.writeUInt16BE(opt.length, 9);
    parts.push(o, opt);
  }
  return Buffer.concat(parts);
}

/** The client's query, parsed, and its cache key made as server.ts makes it. */
function asked(name: string, o: QueryOptions = {}, qtype = TYPE.A): { q: ParsedQuery; key: string; kb: Buffer } {
  const q = new ParsedQuery();
  if (parseQuery(query(name, qtype, o), q) !== 0) throw new Error('query did not parse');
  const kb = Buffer.alloc(512);
  const n = foldQuestion(q, kb, 4);
  kb[n] = 0x30 + (q.dnssecOk ? 1 : 0) + (q.cd ? 2 : 0);
  return { q, key: kb.toString('latin1', 0, n + 1), kb: kb.subarray(0, n + 1) };
}

const info = new ResponseInfo();
function entryOf(cache: PacketCache, msg: Buffer, nowMs: number, aliases: string[] | null = null): CacheEntry {
  if (!scanResponse(msg, msg.length, info)) throw new Error('answer did not scan');
  return makeEntry(cache.settings, msg, msg.length, info, 1232, nowMs, aliases, 7, PASS_DECISION);
}

const ede = (code: number, text: string): Buffer => {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(15, 0);
  b.writeUInt16BE(2 + text.length, 2);
  b.writeUInt16BE(code, 4);
  return Buffer.concat([b, Buffer.from(text, 'latin1')]);
};
const soa = (ttl: number, minimum: number): Rr => {
  const tail = Buffer.alloc(20);
  tail.writeUInt32BE(minimum, 16);
  return { type: TYPE.SOA, ttl, rdata: Buffer.concat([wireName('ns.dyn.test'), wireName('host.dyn.test'), tail]) };
};

const SHAPES: [string, AnswerShape][] = [
  ['one A record and an OPT', {}],
  ['no OPT from the upstream', { opt: null }],
  [
    'an OPT carrying an EDE and a cookie',
    { opt: Buffer.concat([ede(18, 'x'), Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])]) },
  ],
  [
    'a CNAME, two A records',
    {
      answers: [
        { type: TYPE.CNAME, ttl: 600, rdata: wireName('target.dyn.test') },
        { owner: wireName('target.dyn.test'), type: TYPE.A, ttl: 120, rdata: Buffer.from([192, 0, 2, 1]) },
        { owner: wireName('target.dyn.test'), type: TYPE.A, ttl: 120, rdata: Buffer.from([192, 0, 2, 2]) },
      ],
    },
  ],
  ['NXDOMAIN with a SOA', { rcode: 3, answers: [], authority: [soa(900, 60)] }],
  [
    'an answer longer than a cell (a record of its own)',
    {
      answers: Array.from({ length: 400 }, (_, i) => ({
        type: TYPE.A,
        ttl: 300,
        rdata: Buffer.from([198, 51, i >> 8, i & 0xff]),
      })),
    },
  ],
];

t.test('a stored answer renders as the entry it was made from, for every kind of client', async (t) => {
  const now = 1_000_000;
  for (const [what, shape] of SHAPES) {
    const cache = new PacketCache(SETTINGS);
    const own = entryOf(cache, upstreamAnswer('www.dyn.test', shape), now);
    t.ok(own.cacheable, `${what}: cacheable`);
    const clients: [string, QueryOptions][] = [
      ['EDNS', { edns: {}, id: 7 }],
      ['no EDNS', { id: 8, rd: false }],
      ['EDNS with DO, AD and CD', { edns: { do: true }, ad: true, cd: true, id: 9 }],
    ];
    // Stored under the key of the first asker's case; DO and CD make keys of their own.
    for (const [, o] of clients) cache.set(asked('Www.Dyn.TEST', o).key, own);
    t.equal(cache.size, 2);
    for (const [who, o] of clients) {
      const c = asked('wWW.dyn.Test', o);
      for (const [when, at, staleTtl] of [
        ['fresh', now + 500, 0],
        ['aged 61 s', now + 61_000, 0],
        ['stale', now + 400_000, 30],
      ] as const) {
        const e = cache.getWire(c.kb, c.kb.length, at);
        if (e === undefined) {
          t.fail(`${what}, ${who}, ${when}: a hit`);
          continue;
        }
        const want = renderEntry(own, c.q, at, staleTtl);
        const got = renderEntry(e, c.q, at, staleTtl);
        t.same(got, want, `${what}, ${who}, ${when}`);
        t.equal(got.readUInt16BE(0), o.id, 'the client ID');
        t.equal(got.toString('latin1', 13, 16), 'wWW', "the client's question case");
      }
    }
  }
});

t.test('TTLs are counted down from when the answer was stored', async (t) => {
  const cache = new PacketCache(SETTINGS);
  const c = asked('a.dyn.test', { edns: {} });
  const msg = upstreamAnswer('a.dyn.test', SHAPES[3]![1]);
  cache.set(c.key, entryOf(cache, msg, 5000));
  const e = cache.get(c.key, 5000 + 100_500);
  t.ok(e);
  t.same(ttlsOf(renderEntry(e!, c.q, 5000 + 100_500, 0)), [500, 20, 20]);
  t.same(ttlsOf(renderEntry(e!, c.q, 5000 + 100_500, 30)), [30, 30, 30], 'stale: the stale TTL');
  t.equal(e!.freshUntilMs, 5000 + 120_000);
  t.equal(e!.staleUntilMs, 5000 + 120_000 + 600_000);
  t.equal(cache.get(c.key, 5000 + 720_000), undefined, 'past the stale window: gone');
  t.equal(cache.size, 0, 'and deleted');
});

t.test('without serve-stale an entry is gone when it is no longer fresh', async (t) => {
  const cache = new PacketCache({ ...SETTINGS, serveStale: false });
  const c = asked('a.dyn.test');
  cache.set(c.key, entryOf(cache, upstreamAnswer('a.dyn.test'), 0));
  t.ok(cache.get(c.key, 299_999));
  t.equal(cache.get(c.key, 300_000), undefined);
});

t.test("the policy's memo fields are kept per entry, through the view get() returns", async (t) => {
  const cache = new PacketCache(SETTINGS);
  const a = asked('a.dyn.test');
  const b = asked('b.dyn.test');
  cache.set(a.key, entryOf(cache, upstreamAnswer('a.dyn.test'), 0, ['x.dyn.test']));
  cache.set(b.key, entryOf(cache, upstreamAnswer('b.dyn.test'), 0));
  const blocked: Decision = { ...PASS_DECISION, action: BLOCK, listId: 'l' };
  const ea = cache.get(a.key, 1)!;
  t.equal(ea.nameGeneration, -1, 'no name decision yet');
  t.same(ea.aliases, ['x.dyn.test']);
  t.equal(ea.generation, 7);
  ea.nameGeneration = 12;
  ea.nameDecision = blocked;
  ea.generation = 13;
  ea.decision = blocked;
  const eb = cache.get(b.key, 1)!;
  t.equal(eb.nameGeneration, -1, "another entry's fields are its own");
  t.equal(eb.decision, PASS_DECISION);
  t.equal(eb.aliases, null);
  const again = cache.get(a.key, 1)!;
  t.equal(again.nameGeneration, 12);
  t.equal(again.nameDecision, blocked);
  t.equal(again.generation, 13);
  t.equal(again.decision, blocked);
});

t.test("references set, replaced, reset and freed: a reused slot never shows an earlier entry's", async (t) => {
  const cache = new PacketCache({ ...SETTINGS, maxEntries: 1 });
  const a = asked('a.dyn.test');
  const b = asked('b.dyn.test');
  const blocked: Decision = { ...PASS_DECISION, action: BLOCK, listId: 'l' };
  cache.set(a.key, entryOf(cache, upstreamAnswer('a.dyn.test'), 0, ['x.dyn.test']));
  const ea = cache.get(a.key, 1)!;
  ea.decision = blocked;
  ea.nameDecision = blocked;
  cache.set(a.key, ea);
  const kept = cache.get(a.key, 1)!;
  t.same([kept.aliases, kept.decision, kept.nameDecision], [['x.dyn.test'], blocked, blocked], 'stored again: kept');
  t.equal(kept.optOffset, ea.optOffset, 'the OPT offset beside the flags');
  kept.nameDecision = PASS_DECISION;
  const reset = cache.get(a.key, 1)!;
  t.same([reset.decision, reset.nameDecision], [blocked, PASS_DECISION], 'one reset, the other kept');
  cache.set(a.key, entryOf(cache, upstreamAnswer('a.dyn.test'), 0));
  const replaced = cache.get(a.key, 1)!;
  t.same([replaced.aliases, replaced.decision], [null, PASS_DECISION], 'replaced by an entry without them');
  replaced.decision = blocked;
  cache.set(b.key, entryOf(cache, upstreamAnswer('b.dyn.test'), 0));
  t.equal(cache.get(a.key, 1), undefined, 'a evicted (one entry at most)');
  const eb = cache.get(b.key, 1)!;
  t.same([eb.aliases, eb.decision, eb.nameDecision], [null, PASS_DECISION, PASS_DECISION], "a's slot, none of a's");
});
t.test('evicts the least recently used entry at the entry bound', async (t) => {
  const cache = new PacketCache({ ...SETTINGS, maxEntries: 3 });
  const names = ['a', 'b', 'c', 'd'].map((n) => `${n}.dyn.test`);
  const keys = names.map((n) => asked(n).key);
  for (let i = 0; i < 3; i++) cache.set(keys[i]!, entryOf(cache, upstreamAnswer(names[i]!), 0));
  t.ok(cache.get(keys[0]!, 1), 'a read makes a the most recently used');
  cache.set(keys[3]!, entryOf(cache, upstreamAnswer(names[3]!), 0));
  t.same(cache.keys(), [keys[2], keys[0], keys[3]]);
  t.equal(cache.evictions, 1);
  t.equal(cache.get(keys[1]!, 1), undefined);
});

t.test('evicts by bytes; an entry larger than maxBytes is not stored and drops the one it replaces', async (t) => {
  const probe = new PacketCache(SETTINGS);
  const a = asked('a.dyn.test');
  probe.set(a.key, entryOf(probe, upstreamAnswer('a.dyn.test'), 0));
  const one = probe.bytes;
  t.ok(one > 100 && one < 300, `one small entry counts ${one} bytes`);
  const cache = new PacketCache({ ...SETTINGS, maxBytes: one * 2 });
  const names = ['a', 'b', 'c'].map((n) => `${n}.dyn.test`);
  for (const n of names) cache.set(asked(n).key, entryOf(cache, upstreamAnswer(n), 0));
  t.same(cache.keys(), [asked('b.dyn.test').key, asked('c.dyn.test').key]);
  t.equal(cache.bytes, one * 2);
  t.equal(cache.evictions, 1);
  const big = entryOf(cache, upstreamAnswer('c.dyn.test', SHAPES[5]![1]), 0);
  cache.set(asked('c.dyn.test').key, big);
  t.same(cache.keys(), [asked('b.dyn.test').key], 'too large: not stored, and the old c is gone');
  t.equal(cache.bytes, one);
  t.equal(cache.evictions, 1, 'not counted as an eviction');
});

t.test('a replaced entry keeps its slot, is the most recently used, and is counted at its new size', async (t) => {
  const cache = new PacketCache(SETTINGS);
  const a = asked('a.dyn.test');
  const b = asked('b.dyn.test');
  cache.set(a.key, entryOf(cache, upstreamAnswer('a.dyn.test'), 0));
  const one = cache.bytes;
  cache.set(b.key, entryOf(cache, upstreamAnswer('b.dyn.test'), 0));
  cache.set(a.key, entryOf(cache, upstreamAnswer('a.dyn.test', SHAPES[3]![1]), 1000));
  t.equal(cache.size, 2);
  t.same(cache.keys(), [b.key, a.key]);
  t.ok(cache.bytes > 2 * one);
  const e = cache.get(a.key, 1000)!;
  t.equal(e.storedAtMs, 1000);
  t.same(ttlsOf(renderEntry(e, a.q, 1000, 0)), [600, 120, 120], 'the new answer');
  cache.set(a.key, e);
  t.same(ttlsOf(renderEntry(cache.get(a.key, 1000)!, a.q, 1000, 0)), [600, 120, 120], 'set with its own view');
});

t.test('grows through many doublings, finds every entry, and reuses what delete frees', async (t) => {
  // 64 slots made at once (not all 20,000 it can hold), so that it grows.
  const cache = new PacketCache({ ...SETTINGS, maxEntries: 20000 }, 64);
  t.equal(cache.slotCapacity, 64);
  const n = 20000;
  const name = (i: number): string => `u${i}-abcdefgh.dyn.test`;
  // Every 1,000th entry has an alias and its decisions set: references in every array of them (4,096 slots each).
  const blocked: Decision = { ...PASS_DECISION, action: BLOCK, listId: 'l' };
  for (let i = 0; i < n; i++) {
    cache.set(
      asked(name(i)).key,
      entryOf(cache, upstreamAnswer(name(i)), 0, i % 1000 === 0 ? [`x${i}.dyn.test`] : null),
    );
    if (i % 1000 === 0) {
      const e = cache.get(asked(name(i)).key, 0)!;
      e.decision = blocked;
      e.nameDecision = { ...blocked, listId: `l${i}` };
    }
  }
  t.equal(cache.size, n);
  t.equal(cache.slotCapacity, n, 'grown by doubling, to maxEntries');
  t.same(
    cache.keys(),
    Array.from({ length: n }, (_, i) => asked(name(i)).key),
    'the recency order survives the doublings',
  );
  for (let i = 0; i < n; i += 1000) {
    const e = cache.get(asked(name(i)).key, 1)!;
    t.same(
      [e.aliases, e.decision, e.nameDecision.listId],
      [[`x${i}.dyn.test`], blocked, `l${i}`],
      `${name(i)}: its references`,
    );
    const next = cache.get(asked(name(i + 1)).key, 1)!;
    t.same([next.aliases, next.decision], [null, PASS_DECISION], `${name(i + 1)}: its own`);
  }
  for (let i = 0; i < n; i += 97) {
    const a = asked(name(i));
    const e = cache.get(a.key, 1)!;
    t.equal(e.freshUntilMs, entryOf(cache, upstreamAnswer(name(i)), 0).freshUntilMs, `${name(i)}: its times`);
    t.same(
      renderEntry(e, a.q, 1, 0),
      renderEntry(entryOf(cache, upstreamAnswer(name(i)), 0), a.q, 1, 0),
      `${name(i)}: its answer`,
    );
  }
  let found = 0;
  for (let i = 0; i < n; i++) if (cache.get(asked(name(i)).key, 1) !== undefined) found++;
  t.equal(found, n, 'every entry found after the rehashes');
  const arena = cache.arenaBytes;
  const bytes = cache.bytes;
  for (let i = 0; i < n; i += 2) cache.delete(asked(name(i)).key);
  t.equal(cache.size, n / 2);
  t.equal(cache.bytes, bytes / 2);
  for (let i = 0; i < n; i += 2) cache.set(asked(name(i)).key, entryOf(cache, upstreamAnswer(name(i)), 0));
  t.equal(cache.size, n);
  t.equal(cache.arenaBytes, arena, 'the freed cells were reused: the arena did not grow');
  t.equal(cache.evictions, 0);
  cache.set(asked('one-more.dyn.test').key, entryOf(cache, upstreamAnswer('one-more.dyn.test'), 0));
  t.equal(cache.size, n, 'at maxEntries: one in, one out');
  t.equal(cache.evictions, 1);
  cache.clear();
  t.equal(cache.size, 0);
  t.equal(cache.bytes, 0);
  t.equal(cache.arenaBytes, 0);
  t.equal(cache.get(asked(name(1)).key, 1), undefined);
  cache.set(asked(name(1)).key, entryOf(cache, upstreamAnswer(name(1)), 0));
  t.ok(cache.get(asked(name(1)).key, 1), 'usable after clear');
});

t.test('its tables are made with it, for all it can hold: no doubling while it fills', async (t) => {
  const cache = new PacketCache({ ...SETTINGS, maxEntries: 20000 });
  t.equal(cache.slotCapacity, 20000, 'maxEntries slots before the first entry');
  for (let i = 0; i < 20000; i++) {
    const name = `u${i}-abcdefgh.dyn.test`;
    cache.set(asked(name).key, entryOf(cache, upstreamAnswer(name), 0));
  }
  t.equal(cache.size, 20000);
  t.equal(cache.slotCapacity, 20000, 'none made since');
  cache.clear();
  t.equal(cache.slotCapacity, 20000, 'made again by clear()');
  // maxBytes allows fewer entries than maxEntries: as many slots as the smallest entries would fill.
  const bytesBound = new PacketCache({ ...SETTINGS, maxEntries: 1000000, maxBytes: 130 * 500 });
  t.equal(bytesBound.slotCapacity, 500);
  t.equal(new PacketCache({ ...SETTINGS, maxEntries: 0 }).slotCapacity, 0, 'none with the cache off');
});

t.test('a large answer gets its own slab, given back when the entry goes', async (t) => {
  const cache = new PacketCache(SETTINGS);
  const a = asked('a.dyn.test');
  cache.set(a.key, entryOf(cache, upstreamAnswer('a.dyn.test'), 0));
  const small = cache.arenaBytes;
  const b = asked('b.dyn.test');
  cache.set(b.key, entryOf(cache, upstreamAnswer('b.dyn.test', SHAPES[5]![1]), 0));
  t.ok(cache.arenaBytes > small + 4096);
  cache.delete(b.key);
  t.equal(cache.arenaBytes, small);
});

t.test('keys differ by DO and CD; a key that does not fit the answer is not stored', async (t) => {
  const cache = new PacketCache(SETTINGS);
  const plain = asked('a.dyn.test');
  const withDo = asked('a.dyn.test', { edns: { do: true } });
  cache.set(plain.key, entryOf(cache, upstreamAnswer('a.dyn.test'), 0));
  t.equal(cache.get(withDo.key, 1), undefined);
  cache.set(asked('ab.dyn.test').key, entryOf(cache, upstreamAnswer('a.dyn.test'), 0));
  t.equal(cache.size, 1, 'a key longer than the answer question is refused');
  const off = new PacketCache({ ...SETTINGS, maxEntries: 0 });
  off.set(plain.key, entryOf(off, upstreamAnswer('a.dyn.test'), 0));
  t.equal(off.size, 0, 'maxEntries 0: no cache');
  t.equal(off.get(plain.key, 1), undefined);
});

t.test('behaves as a reference LRU model under random operations (bounded property)', async (t) => {
  const names = 'abcdefghij'.split('').map((c, i) => `${c.repeat(1 + i)}.dyn.test`);
  const keys = names.map((n) => asked(n).key);
  const sizeOf = names.map((n, i) => {
    const probe = new PacketCache(SETTINGS);
    probe.set(keys[i]!, entryOf(probe, upstreamAnswer(n), 0));
    return probe.bytes;
  });
  type Op = { k: 'get' | 'set' | 'delete' | 'clear'; i: number };
  const op = fc.record({
    k: fc.constantFrom<Op['k']>('get', 'set', 'set', 'delete', 'clear'),
    i: fc.integer({ min: 0, max: names.length - 1 }),
  });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 150, max: 1000 }),
      fc.array(op, { maxLength: 80, size: 'max' }),
      (maxEntries, maxBytes, ops) => {
        const cache = new PacketCache({ ...SETTINGS, maxEntries, maxBytes });
        let model: number[] = []; // name indexes, least recently used first
        const total = (): number => model.reduce((s, i) => s + sizeOf[i]!, 0);
        for (const o of ops) {
          const at = model.indexOf(o.i);
          if (o.k === 'get') {
            if (at >= 0) model.push(...model.splice(at, 1));
            const e = cache.get(keys[o.i]!, 1);
            if ((e !== undefined) !== at >= 0) throw new Error(`get ${o.i}`);
            // The names' lengths differ: an entry found under another name's key would show.
            if (e !== undefined && e.length !== upstreamAnswer(names[o.i]!).length) throw new Error(`got ${o.i}`);
          } else if (o.k === 'set') {
            if (at >= 0) model.splice(at, 1);
            if (sizeOf[o.i]! <= maxBytes) {
              while (model.length > 0 && (model.length >= maxEntries || total() + sizeOf[o.i]! > maxBytes))
                model.shift();
              model.push(o.i);
            }
            cache.set(keys[o.i]!, entryOf(cache, upstreamAnswer(names[o.i]!), 0));
          } else if (o.k === 'delete') {
            if (at >= 0) model.splice(at, 1);
            cache.delete(keys[o.i]!);
          } else {
            model = [];
            cache.clear();
          }
          if (cache.keys().join() !== model.map((i) => keys[i]).join()) throw new Error('order');
          if (cache.size !== model.length || cache.bytes !== total()) throw new Error('size');
        }
        return true;
      },
    ),
    { numRuns: 5000 },
  );
  t.pass('matches the model');
});
