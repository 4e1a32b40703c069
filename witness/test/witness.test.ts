// The witness's rules (tlog-witness add-checkpoint) over a real state directory: every status the specification
// names, cosigning only consistent growth, evidence of forks, atomic persistence across restarts, and the race the
// specification warns about.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  EMPTY_ROOT,
  NoteSecretKey,
  formatAddCheckpoint,
  openCheckpoint,
  parseCosignatureLines,
  parseCosignerKey,
  parseLogKey,
  parseNote,
  signCheckpoint,
} from '@hashwall/tlog';
import t from 'tap';

import { Witness, WitnessStore, originHash, type Evidence } from '../dist/index.js';
import { ORIGIN, TestLog, body, entry, logsOf, proofFrom, tempDir } from './helpers.ts';

const NOW = 1_800_000_000;

function witnessFor(
  t: Parameters<typeof tempDir>[0],
  log: TestLog,
  options: {
    dir?: string;
    key?: NoteSecretKey;
    maxEvidence?: number;
    evidence?: [Evidence, string | undefined][];
  } = {},
): { witness: Witness; dir: string; key: NoteSecretKey } {
  const dir = options.dir ?? tempDir(t);
  const key = options.key ?? NoteSecretKey.generate('witness.example/w1');
  const witness = new Witness({
    key,
    logs: logsOf(log),
    store: new WitnessStore(dir, options.maxEvidence ?? 100),
    now: () => NOW,
    onEvidence: (e, p) => options.evidence?.push([e, p]),
  });
  return { witness, dir, key };
}

const text = (b: Uint8Array | string): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));

t.test('cosigns the first checkpoint, then only growth proved consistent; 409 names the size it holds', async (t) => {
  const log = new TestLog();
  log.publish(
    [0, 1, 2].map((i) => entry(i)),
    0,
  );
  const { witness, key } = witnessFor(t, log);
  await witness.init();
  const first = await witness.addCheckpoint(await body(log, 0));
  t.equal(first.status, 200, text(first.body));
  const [sig] = parseCosignatureLines(Buffer.from(first.body));
  const cosigner = parseCosignerKey(key.cosigner().vkey);
  t.ok(
    cosigner.verify(parseNote(log.checkpoints.get(3)!).textBytes, sig!.signature),
    'a cosignature/v1 over the checkpoint',
  );
  t.equal(witness.sizeOf(ORIGIN), 3);
  const again = await witness.addCheckpoint(await body(log, 0));
  t.equal(again.status, 409);
  t.equal(again.contentType, 'text/x.tlog.size');
  t.equal(again.body, '3\n');
  log.publish(
    Array.from({ length: 300 }, (_, i) => entry(3 + i)),
    0,
  );
  const grown = await witness.addCheckpoint(await body(log, 3));
  t.equal(grown.status, 200, 'consistent growth 3 -> 303');
  const same = await witness.addCheckpoint(await body(log, 303));
  t.equal(same.status, 200, 'the same checkpoint again is cosigned again');
  const stale = await witness.addCheckpoint(await body(log, 3, 3));
  t.equal(stale.status, 409, 'an older checkpoint from its own size: the witness holds 303');
  t.equal(stale.body, '303\n');
});

t.test('each refusal has the status tlog-witness gives it', async (t) => {
  const log = new TestLog();
  log.publish(
    [0, 1, 2, 3].map((i) => entry(i)),
    0,
  );
  const { witness } = witnessFor(t, log);
  await witness.init();
  const cp = log.checkpoints.get(4)!;
  const other = new TestLog(NoteSecretKey.generate(ORIGIN));
  other.publish([entry(0)], 0);
  const tampered = new Uint8Array(cp);
  tampered[tampered.length - 10] = tampered[tampered.length - 10] === 0x41 ? 0x42 : 0x41;
  const unknown = signCheckpoint({ origin: 'lists.example/unknown', size: 1, root: EMPTY_ROOT, extensions: [] }, [
    log.key.noteSigner(),
  ]);
  const emptyWithRoot = signCheckpoint(
    { origin: ORIGIN, size: 0, root: parseNote(cp).textBytes.subarray(0, 32), extensions: [] },
    [log.key.noteSigner()],
  );
  const cases: [string, Uint8Array, number, string][] = [
    ['not a request', Buffer.from('hello'), 400, 'malformed'],
    ['no checkpoint', Buffer.from('old 0\n\n'), 400, 'malformed'],
    ['a note that is not a note', Buffer.from('old 0\n\nnot a note\n'), 400, 'malformed'],
    ['an unknown origin', formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: unknown }), 404, 'unknown-log'],
    [
      'a bad signature by the log key',
      formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: tampered }),
      403,
      'bad-signature',
    ],
    ['signed by another key', await body(other, 0), 403, 'bad-signature'],
    ['old size above the size', formatAddCheckpoint({ oldSize: 5, proof: [], checkpoint: cp }), 400, 'malformed'],
    [
      'size 0 without the empty root',
      formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: emptyWithRoot }),
      422,
      'bad-proof',
    ],
    ['a proof from size 0', formatAddCheckpoint({ oldSize: 0, proof: [EMPTY_ROOT], checkpoint: cp }), 422, 'bad-proof'],
  ];
  for (const [what, b, status, outcome] of cases) {
    const r = await witness.addCheckpoint(b);
    t.equal(r.status, status, `${what}: ${r.status} ${text(r.body).trim()}`);
    t.equal(r.outcome, outcome, what);
  }
  t.equal(witness.sizeOf(ORIGIN), 0, 'nothing was cosigned');
  t.equal((await witness.addCheckpoint(await body(log, 0))).status, 200, 'the real one still is');
});

t.test('a fork of the log is refused and both notes are kept as evidence', async (t) => {
  const honest = new TestLog();
  honest.publish(
    [0, 1, 2, 3, 4].map((i) => entry(i)),
    0,
  );
  const evidence: [Evidence, string | undefined][] = [];
  const { witness, dir } = witnessFor(t, honest, { evidence });
  await witness.init();
  t.equal((await witness.addCheckpoint(await body(honest, 0))).status, 200);
  // Same origin and key, a different leaf 2: same size, and grown past it.
  const fork = new TestLog(honest.key, []);
  fork.publish([entry(0), entry(1), Buffer.from('another index'), entry(3), entry(4)], 0);
  const sameSize = await witness.addCheckpoint(await body(fork, 5));
  t.equal(sameSize.status, 422);
  t.equal(sameSize.outcome, 'fork');
  fork.publish([entry(5), entry(6)], 0);
  const grown = await witness.addCheckpoint(await body(fork, 5));
  t.equal(grown.status, 422, 'a proof from the fork does not extend what was cosigned');
  t.equal(grown.outcome, 'bad-proof');
  const from0 = await witness.addCheckpoint(await body(fork, 0));
  t.equal(from0.status, 409, 'pretending to start over: told the size it holds');
  t.equal(witness.sizeOf(ORIGIN), 5, 'the cosigned checkpoint did not move');
  t.same(
    evidence.map(([e]) => e.kind),
    ['split-view', 'inconsistent'],
  );
  const files = readdirSync(join(dir, 'evidence', originHash(ORIGIN))).sort();
  t.equal(files.length, 2);
  const kept = JSON.parse(
    readFileSync(
      join(
        dir,
        'evidence',
        originHash(ORIGIN),
        files.find((f) => f.includes('split-view'))!,
      ),
      'utf8',
    ),
  ) as Evidence;
  const logKey = parseLogKey(honest.key.vkey);
  const a = openCheckpoint(Buffer.from(kept.cosigned), { logKeys: [logKey] }).checkpoint;
  const b = openCheckpoint(Buffer.from(kept.submitted), { logKeys: [logKey] }).checkpoint;
  t.equal(a.size, b.size, 'two notes signed by the log key, one size');
  t.not(Buffer.from(a.root).toString('hex'), Buffer.from(b.root).toString('hex'), 'two roots');
  t.match(kept.request, /^old 5\n\n/);
});

t.test('the evidence kept per log is capped', async (t) => {
  const honest = new TestLog();
  honest.publish([entry(0), entry(1)], 0);
  const evidence: [Evidence, string | undefined][] = [];
  const { witness } = witnessFor(t, honest, { evidence, maxEvidence: 1 });
  await witness.init();
  await witness.addCheckpoint(await body(honest, 0));
  for (const salt of ['a', 'b', 'c']) {
    const fork = new TestLog(honest.key, []);
    fork.publish([entry(0), Buffer.from(salt)], 0);
    t.equal((await witness.addCheckpoint(await body(fork, 2))).status, 422);
  }
  t.same(
    evidence.map(([, p]) => p !== undefined),
    [true, false, false],
  );
});

t.test('the cosigned checkpoint survives a restart; a damaged one stops the start', async (t) => {
  const log = new TestLog();
  log.publish(
    [0, 1, 2].map((i) => entry(i)),
    0,
  );
  const first = witnessFor(t, log);
  await first.witness.init();
  await first.witness.addCheckpoint(await body(log, 0));
  const second = witnessFor(t, log, { dir: first.dir, key: first.key });
  await second.witness.init();
  t.equal(second.witness.sizeOf(ORIGIN), 3);
  const stored = second.witness.checkpointByHash(originHash(ORIGIN))!;
  const opened = openCheckpoint(stored, {
    logKeys: [parseLogKey(log.key.vkey)],
    witnesses: [parseCosignerKey(first.key.cosigner().vkey)],
    witnessThreshold: 1,
  });
  t.equal(opened.checkpoint.size, 3, 'served to monitors with the log signature and the cosignature');
  t.equal(second.witness.checkpointByHash('0'.repeat(64)), undefined);
  t.equal((await second.witness.addCheckpoint(await body(log, 0))).status, 409, 'it remembers');
  // Another witness key cannot vouch for the stored state.
  await t.rejects(witnessFor(t, log, { dir: first.dir }).witness.init(), /no cosignature of ours/);
  const path = join(first.dir, 'checkpoints', originHash(ORIGIN));
  writeFileSync(path, readFileSync(path).subarray(0, 40));
  await t.rejects(witnessFor(t, log, { dir: first.dir, key: first.key }).witness.init(), /cannot be used/);
  t.same(
    readdirSync(join(first.dir, 'checkpoints')).filter((n) => n.startsWith('.tmp-')),
    [],
    'no temp file left',
  );
});

t.test(
  'checking the old size and storing the new checkpoint are one step per log (the race tlog-witness names)',
  async (t) => {
    const log = new TestLog();
    log.publish(
      [0, 1, 2].map((i) => entry(i)),
      0,
    );
    const { witness } = witnessFor(t, log);
    await witness.init();
    await witness.addCheckpoint(await body(log, 0));
    log.publish([entry(3)], 0);
    log.publish([entry(4), entry(5)], 0);
    const a = await body(log, 3, 4);
    const b = await body(log, 3, 6);
    const replies = await Promise.all([witness.addCheckpoint(b), witness.addCheckpoint(a), witness.addCheckpoint(a)]);
    t.same(
      replies.map((r) => r.status),
      [200, 409, 409],
    );
    t.equal(witness.sizeOf(ORIGIN), 6, 'never rolled back to 4');
    t.equal(replies[1].body, '6\n');
    t.ok(await proofFrom(log, 4, 6));
  },
);
