// The streamed FULL: pollMatcher with a spool (each chunk to the spool while SHA-256 and the BLAKE2b-512 prehash are
// computed, the signatures checked on the prehash, then the spool parsed in pieces), openStoredMatcherFrom, and
// parseFullMatcherFrom. Each must accept and refuse exactly what the in-memory path accepts and refuses, with the
// same codes, wherever the chunk and piece boundaries fall.
import { createHash } from 'node:crypto';

import fc from 'fast-check';
import t from 'tap';

import { FormatError } from '../dist/errors.js';
import { parseFull, parseFullFrom, serializeFull, type FullList } from '../dist/full.js';
import { parseFullMatcher, parseFullMatcherFrom, type FullMatcher } from '../dist/fullmatcher.js';
import { fullPath, fullTrustedComment, indexTrustedComment, INDEX_PATH } from '../dist/indexfile.js';
import {
  generateKeyPair,
  prehash,
  TrustStore,
  verifyThreshold,
  verifyThresholdPrehashed,
  type MinisignSecretKey,
} from '../dist/minisign.js';
import { buildIndex, signatures } from '../dist/publish.js';
import {
  openStoredMatcher,
  openStoredMatcherFrom,
  poll,
  pollMatcher,
  type PollResult,
  type ReleaseContext,
} from '../dist/release.js';
import { T0, listOf } from './codec-helpers.ts';
import { NOW, publisher } from './release-helpers.ts';
import { MemorySpool, StreamingSource, cycledChunks, fileOf, fixedChunks, type Chunker } from './stream-helpers.ts';

const KEY = generateKeyPair();
const OTHER = generateKeyPair();
const TRUST = new TrustStore([['demo', { keys: [KEY.publicKey], threshold: 1 }]]);

function listFrom(serial: number, ids: readonly number[], seed: number): FullList {
  return listOf(
    serial,
    ids.map((id, i) => [id, (seed + i * 7) % 4] as const),
  );
}

/** Rewrites body-sha256 to the digest of the (altered) body, so that only the intended defect remains. */
function redigest(bytes: Uint8Array): Buffer {
  const out = Buffer.from(bytes);
  const text = out.toString('latin1');
  const bodyStart = text.indexOf('\n\n') + 2;
  const at = text.indexOf('\nbody-sha256: ');
  if (bodyStart < 2 || at < 0 || at + 14 + 64 > bodyStart) return out;
  out.write(createHash('sha256').update(out.subarray(bodyStart)).digest('hex'), at + 14, 'latin1');
  return out;
}

/**
 * A release of serial 1 whose FULL is `served` (what the mirror sends), signed over `signed` with the trusted
 * comment of `list`'s header, and named in the index by `indexed` (its size and SHA-256).
 */
function release(
  list: FullList,
  files: { served: Uint8Array; signed?: Uint8Array; indexed?: Uint8Array; signer?: MinisignSecretKey },
): StreamingSource {
  const source = new StreamingSource();
  const path = fullPath(list.header.serial);
  source.files.set(path, files.served);
  const sigs = signatures(path, files.signed ?? files.served, fullTrustedComment(list.header), [files.signer ?? KEY]);
  for (const [name, text] of sigs) source.files.set(name, Buffer.from(text));
  const { index, bytes } = buildIndex({
    listId: 'demo',
    seq: 1,
    serial: list.header.serial,
    created: T0,
    expires: T0 + 86400,
    minPoll: 900,
    fullBytes: files.indexed ?? files.served,
    deltas: [],
  });
  source.files.set(INDEX_PATH, bytes);
  for (const [name, text] of signatures(INDEX_PATH, bytes, indexTrustedComment(index.header), [KEY])) {
    source.files.set(name, Buffer.from(text));
  }
  return source;
}

/** What a poll gave, comparable across the two paths: the code, or the result with the FULL file's bytes. */
function describe(r: PollResult<FullMatcher>, spool: MemorySpool | undefined): unknown {
  if (r.kind !== 'updated') return r.kind;
  const file = r.spool ? (r.spool === spool ? spool.bytes() : 'another spool') : Buffer.from(r.fullBytes);
  return JSON.stringify({ state: r.state, via: r.via, full: r.full, file: Buffer.from(file).toString('hex') });
}

async function outcome(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof FormatError) return `code ${err.code}`;
    throw err;
  }
}

interface Paths {
  inMemory: unknown;
  streamed: unknown;
  spool: MemorySpool | undefined;
}

/** Polls `source` twice: in memory (no spool), then streamed into a MemorySpool cut by `chunker`. */
async function bothPaths(
  source: StreamingSource,
  chunker: Chunker,
  options: { maxRead?: number; maxListBytes?: number } = {},
): Promise<Paths> {
  const base: ReleaseContext = {
    source,
    trust: TRUST,
    listId: 'demo',
    now: NOW,
    ...(options.maxListBytes !== undefined ? { maxListBytes: options.maxListBytes } : {}),
  };
  const inMemory = await outcome(async () => describe(await pollMatcher(base), undefined));
  source.chunker = chunker;
  let spool: MemorySpool | undefined;
  const streamed = await outcome(async () =>
    describe(
      await pollMatcher({
        ...base,
        spool: () => {
          if (spool) throw new Error('a second spool in one poll');
          spool = new MemorySpool(options.maxRead);
          return spool;
        },
      }),
      spool,
    ),
  );
  return { inMemory, streamed, spool };
}

const chunkers: [string, Chunker][] = [
  ['1 byte', fixedChunks(1)],
  ['67 bytes', fixedChunks(67)],
  ['4096 bytes', fixedChunks(4096)],
  ['uneven', cycledChunks([5, 1, 300, 67, 2])],
];

t.test('a valid release gives the same result streamed as in memory, however it is cut', async (t) => {
  const list = listFrom(1, [3, 1, 4, 15, 92, 65, 35, 89, 79], 2);
  const bytes = serializeFull(list);
  for (const [name, chunker] of chunkers) {
    const source = release(list, { served: bytes });
    const r = await bothPaths(source, chunker, { maxRead: 13 });
    t.equal(r.streamed, r.inMemory, `chunks of ${name}`);
    t.match(r.inMemory, /"via":"full"/);
    t.ok(source.streamed.includes('full/1.hwl'), 'the FULL was streamed');
    t.equal(Buffer.compare(r.spool!.bytes(), bytes), 0, 'the spool holds the file');
  }
});

t.test('an empty list and a list of only U entries stream too', async (t) => {
  for (const list of [
    listOf(1, []),
    listOf(1, [[1, 2]]),
    listOf(1, [
      [1, 2],
      [2, 2],
      [3, 0],
    ]),
  ]) {
    const r = await bothPaths(release(list, { served: serializeFull(list) }), fixedChunks(67));
    t.equal(r.streamed, r.inMemory);
    t.match(r.streamed, /"via":"full"/);
  }
});

t.test('refusals come with the same codes: digest, signature, size, key, cap', async (t) => {
  const list = listFrom(1, [10, 20, 30, 40, 50], 1);
  const good = serializeFull(list);
  const bad = Buffer.from(good);
  bad[bad.length - 3] = bad[bad.length - 3]! ^ 1;
  const cases: [string, StreamingSource, string, { maxListBytes?: number }?][] = [
    ['the mirror altered the FULL', release(list, { served: bad, indexed: good, signed: good }), 'DIGEST_MISMATCH'],
    ['the index names bytes nobody signed', release(list, { served: bad, signed: good }), 'SIGNATURE_INVALID'],
    [
      'a longer file',
      release(list, { served: Buffer.concat([good, Buffer.from('x')]), indexed: good }),
      'SIZE_MISMATCH',
    ],
    ['a shorter file', release(list, { served: good.subarray(1), indexed: good }), 'SIZE_MISMATCH'],
    ['signed by another key', release(list, { served: good, signer: OTHER }), 'UNTRUSTED_KEY'],
    ['over the cap', release(list, { served: good }), 'TOO_LARGE', { maxListBytes: good.length - 1 }],
    ['a well signed FULL with a wrong body digest', release(list, { served: bad }), 'DIGEST_MISMATCH'],
    ['a well signed FULL with a bad line', release(list, { served: redigest(bad) }), 'MALFORMED'],
  ];
  const sig = release(list, { served: good });
  const sigText = Buffer.from(sig.files.get('full/1.hwl.minisig')!);
  sigText[sigText.length - 5] = 0x21; // not base64
  sig.files.set('full/1.hwl.minisig', sigText);
  cases.push(['a malformed signature file', sig, 'MALFORMED']);
  for (const [name, source, code, options] of cases) {
    for (const [cut, chunker] of chunkers.slice(1)) {
      const r = await bothPaths(source, chunker, options);
      t.equal(r.inMemory, `code ${code}`, `${name}: in memory`);
      t.equal(r.streamed, r.inMemory, `${name}: streamed in chunks of ${cut}`);
      if (r.spool) t.ok(r.spool.length <= good.length, `${name}: no byte past the listed size reached the spool`);
    }
  }
});

t.test('random releases and tampered ones: the streamed path agrees with the in-memory one', async (t) => {
  const chunkArb = fc.oneof(
    fc.constantFrom(1, 67, 4096).map((n) => fixedChunks(n)),
    fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 6 }).map((s) => cycledChunks(s)),
  );
  const seen = new Set<string>();
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 0, max: 1e6 }), { maxLength: 60 }),
      fc.nat(),
      fc.constantFrom('valid', 'served', 'indexed', 'resigned', 'redigested', 'truncated', 'extended'),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
      chunkArb,
      fc.oneof(fc.constant(Infinity), fc.integer({ min: 1, max: 200 })),
      async (ids, seed, mode, edits, chunker, maxRead) => {
        const list = listFrom(1, ids, seed);
        const good = serializeFull(list);
        const edited = Buffer.from(good);
        for (const [at, value] of edits) edited[at % edited.length] = value;
        const files =
          mode === 'valid'
            ? { served: good }
            : mode === 'served'
              ? { served: edited, signed: good, indexed: good }
              : mode === 'indexed'
                ? { served: edited, signed: good }
                : mode === 'resigned'
                  ? { served: edited }
                  : mode === 'redigested'
                    ? { served: redigest(edited) }
                    : mode === 'truncated'
                      ? { served: good.subarray(0, edits[0]![0] % good.length), indexed: good }
                      : { served: Buffer.concat([good, edited.subarray(0, 1 + (edits[0]![0] % 90))]), indexed: good };
        const r = await bothPaths(release(list, files), chunker, { maxRead });
        seen.add(typeof r.inMemory === 'string' && r.inMemory.startsWith('code ') ? r.inMemory : 'accepted');
        return r.streamed === r.inMemory;
      },
    ),
    { numRuns: 100 },
  );
  t.pass('every run agreed');
  t.comment(`outcomes seen: ${[...seen].sort().join(', ')}`);
  for (const o of ['accepted', 'code DIGEST_MISMATCH', 'code SIGNATURE_INVALID', 'code SIZE_MISMATCH']) {
    t.ok(seen.has(o), `the runs include ${o}`);
  }
});

t.test('a FULL of several ~1 MiB pieces: same result, and a bad line in a later piece is found', async (t) => {
  const ids = Array.from({ length: 40_000 }, (_, i) => i);
  const list = listFrom(1, ids, 0);
  const good = serializeFull(list);
  const ok = await bothPaths(release(list, { served: good }), fixedChunks(65_536), { maxRead: 300_000 });
  t.equal(ok.streamed, ok.inMemory);
  t.match(ok.streamed, /"via":"full"/);
  const bodyStart = good.indexOf('\n\n') + 2;
  const bad = Buffer.from(good);
  bad[bodyStart + 30_000 * 67 + 66] = 0x20; // line 30,001 (in the second piece) loses its LF
  const r = await bothPaths(release(list, { served: redigest(bad) }), fixedChunks(65_536));
  t.equal(r.inMemory, 'code MALFORMED');
  t.equal(r.streamed, 'code MALFORMED');
});

t.test('without a spool, or from a source that cannot stream, the FULL is read into memory', async (t) => {
  const list = listFrom(1, [1, 2, 3], 0);
  const source = release(list, { served: serializeFull(list) });
  const plain = await pollMatcher({ source, trust: TRUST, listId: 'demo', now: NOW });
  t.ok(plain.kind === 'updated' && plain.fullBytes && !plain.spool, 'no spool: fullBytes');
  t.same(source.streamed, [], 'nothing streamed');
  const noStream = { location: source.location, get: source.get.bind(source) };
  let made = 0;
  const r = await pollMatcher({
    source: noStream,
    trust: TRUST,
    listId: 'demo',
    now: NOW,
    spool: () => {
      made++;
      return new MemorySpool();
    },
  });
  t.ok(r.kind === 'updated' && r.fullBytes, 'a source without stream: fullBytes');
  t.equal(made, 0, 'the spool was never made');
  const list2 = await poll({ source, trust: TRUST, listId: 'demo', now: NOW, spool: () => new MemorySpool() });
  t.ok(list2.kind === 'updated' && list2.fullBytes.length > 0, 'poll (entry lists) never spools');
});

t.test('a FULL over the cap is refused before a spool is made; a failing spool fails the poll', async (t) => {
  const list = listFrom(1, [1, 2, 3], 0);
  const bytes = serializeFull(list);
  let made = 0;
  await t.rejects(
    pollMatcher({
      source: release(list, { served: bytes }),
      trust: TRUST,
      listId: 'demo',
      now: NOW,
      maxListBytes: bytes.length - 1,
      spool: () => {
        made++;
        return new MemorySpool();
      },
    }),
    { code: 'TOO_LARGE' },
  );
  t.equal(made, 0);
  const full: Error = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
  await t.rejects(
    pollMatcher({
      source: release(list, { served: bytes }),
      trust: TRUST,
      listId: 'demo',
      now: NOW,
      spool: () => ({
        write: () => {
          throw full;
        },
        read: () => 0,
      }),
    }),
    full,
  );
});

t.test('a delta still comes in memory when a spool is offered', async (t) => {
  const p = publisher();
  const one = listFrom(1, [1, 2, 3], 0);
  const two = listFrom(2, [1, 2, 4], 0);
  p.publish(one);
  const a = await pollMatcher({ source: p.source, trust: p.trust, listId: 'demo', now: NOW });
  if (a.kind !== 'updated') throw new Error('expected an update');
  p.publish(two);
  let made = 0;
  const b = await pollMatcher(
    {
      source: p.source,
      trust: p.trust,
      listId: 'demo',
      now: NOW,
      spool: () => {
        made++;
        return new MemorySpool();
      },
    },
    a.state,
    () => one,
  );
  t.equal(b.kind === 'updated' && b.via, 'delta');
  t.equal(Buffer.compare(Buffer.from((b.kind === 'updated' && b.fullBytes) || []), serializeFull(two)), 0);
  t.equal(made, 0);
});

t.test(
  'parseFullMatcherFrom and parseFullFrom agree with the in-memory parses for every piece size and short reads',
  async (t) => {
    const base = serializeFull(
      listFrom(
        4,
        Array.from({ length: 80 }, (_, i) => i * 3),
        1,
      ),
    );
    const bodyStart = base.indexOf('\n\n') + 2;
    const code = (parse: () => unknown): unknown => {
      try {
        return JSON.stringify(parse());
      } catch (err) {
        if (err instanceof FormatError) return `code ${err.code}`;
        throw err;
      }
    };
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.boolean(),
        fc.oneof(fc.constantFrom(1, 67, 134, 4096, 1 << 20), fc.integer({ min: 1, max: 3000 })),
        fc.oneof(fc.constant(Infinity), fc.integer({ min: 1, max: 500 })),
        fc.option(fc.integer({ min: 0, max: base.length + 10 })),
        (edits, keepDigest, pieceBytes, maxRead, cut) => {
          let bytes: Buffer = Buffer.from(base);
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          if (keepDigest && edits.every(([at]) => at % bytes.length >= bodyStart)) bytes = redigest(bytes);
          if (cut !== null) bytes = bytes.subarray(0, cut);
          const a = code(() => parseFullMatcher(bytes));
          const b = code(() => parseFullMatcherFrom(fileOf(bytes, maxRead), { pieceBytes }));
          const c = code(() => parseFullMatcherFrom(fileOf(bytes), { pieceBytes, maxBytes: bytes.length }));
          // The entry arrays' parse: the same result either way, and the same refusals as the matcher's.
          const d = code(() => parseFull(bytes));
          const e = code(() => parseFullFrom(fileOf(bytes, maxRead), { pieceBytes }));
          const refused = (x: unknown): boolean => typeof x === 'string' && x.startsWith('code ');
          return a === b && a === c && d === e && (refused(d) ? d === a : !refused(a));
        },
      ),
      { numRuns: 500 },
    );
    t.equal(
      (() => {
        try {
          parseFullMatcherFrom(fileOf(base), { maxBytes: base.length - 1 });
          return 'accepted';
        } catch (err) {
          return (err as FormatError).code;
        }
      })(),
      'TOO_LARGE',
    );
  },
);

t.test('a file that changes while it is read back is refused', async (t) => {
  const bytes = serializeFull(listFrom(1, [1, 2, 3, 4, 5, 6], 0));
  const fileSha256 = createHash('sha256').update(bytes).digest('hex');
  t.ok(parseFullMatcherFrom(fileOf(bytes), { fileSha256 }), 'unchanged: accepted');
  const copy = Buffer.from(bytes);
  const changing = fileOf(copy, 67, (reads) => {
    if (reads === 3) copy[copy.length - 2] = 0x48; // D -> H in the last line, after the header was read
  });
  t.throws(() => parseFullMatcherFrom(changing, { fileSha256, pieceBytes: 67 }), { code: 'DIGEST_MISMATCH' });
  t.same(parseFullFrom(fileOf(bytes), { fileSha256 }), parseFull(bytes), 'parseFullFrom: unchanged, the same list');
  const again = Buffer.from(bytes);
  const changingAgain = fileOf(again, 67, (reads) => {
    if (reads === 3) again[again.length - 2] = 0x48;
  });
  t.throws(() => parseFullFrom(changingAgain, { fileSha256, pieceBytes: 67 }), { code: 'DIGEST_MISMATCH' });
  const short = fileOf(bytes.subarray(0, bytes.length - 67));
  const shrinking = { size: bytes.length, read: (at: number, into: Uint8Array) => short.read(at, into) };
  t.throws(() => parseFullMatcherFrom(shrinking), { code: 'DIGEST_MISMATCH' }, 'a file shorter than its size');
});

t.test('openStoredMatcherFrom re-opens and refuses exactly what openStoredMatcher does', async (t) => {
  const p = publisher();
  const one = listFrom(1, [5, 6, 7, 8, 9], 3);
  p.publish(one);
  const a = await poll({ source: p.source, trust: p.trust, listId: 'demo', now: NOW });
  if (a.kind !== 'updated') throw new Error('expected an update');
  const ctx = { trust: p.trust, listId: 'demo' };
  const both = (full: Uint8Array, state = a.state, maxRead = Infinity): [unknown, unknown] => {
    const run = (f: () => unknown): unknown => {
      try {
        return JSON.stringify(f());
      } catch (err) {
        if (err instanceof FormatError) return `code ${err.code}`;
        throw err;
      }
    };
    const stored = { indexBytes: a.indexBytes, indexSignatures: a.indexSignatures };
    return [
      run(() => openStoredMatcher(ctx, { ...stored, fullBytes: full }, state)),
      run(() => openStoredMatcherFrom(ctx, { ...stored, full: fileOf(full, maxRead) }, state)),
    ];
  };
  const [m, f] = both(a.fullBytes, a.state, 7);
  t.equal(f, m, 'the stored list');
  t.match(m, /"state"/);
  for (const at of [0, 10, a.fullBytes.length >> 1, a.fullBytes.length - 2]) {
    const altered = Buffer.from(a.fullBytes);
    altered[at] = altered[at]! ^ 4;
    const [x, y] = both(altered);
    t.equal(x, 'code DIGEST_MISMATCH', `altered at ${at}`);
    t.equal(y, x);
  }
  const [s1, s2] = both(a.fullBytes.subarray(1));
  t.equal(s1, 'code DIGEST_MISMATCH', 'a shorter file');
  t.equal(s2, s1);
  const [w1, w2] = both(a.fullBytes, { ...a.state, seq: 9 });
  t.equal(w1, 'code MALFORMED', 'a state that disagrees');
  t.equal(w2, w1);
});

t.test('verifyThresholdPrehashed gives what verifyThreshold gives, from the prehash', async (t) => {
  const message = Buffer.from('HWL1 FULL\nsomething signed\n');
  const sigs = [...signatures('x', message, 'hwl1 comment', [KEY]).values()];
  t.same(
    verifyThresholdPrehashed(prehash(message), sigs, TRUST, 'demo'),
    verifyThreshold(message, sigs, TRUST, 'demo'),
  );
  const other = prehash(Buffer.from('something else'));
  t.throws(() => verifyThresholdPrehashed(other, sigs, TRUST, 'demo'), { code: 'SIGNATURE_INVALID' });
  t.throws(() => verifyThresholdPrehashed(other.subarray(1), sigs, TRUST, 'demo'), { code: 'MALFORMED' });
  const foreign = [...signatures('x', message, 'hwl1 comment', [OTHER]).values()];
  t.throws(() => verifyThresholdPrehashed(prehash(message), foreign, TRUST, 'demo'), { code: 'UNTRUSTED_KEY' });
});
