// The log's side of tlog-witness against real HTTP servers on 127.0.0.1 that answer as a test says: cosignatures
// checked against the witness's key, 409 answered with a proof from the witness's size, refusals final,
// unavailable witnesses retried until the wait is over, and a clear failure below the threshold.
import type { ServerResponse } from 'node:http';

import t from 'tap';

import {
  NoteSecretKey,
  TileHashReader,
  collectCosignatures,
  cosignCheckpoint,
  isTlogError,
  openCheckpoint,
  parseAddCheckpoint,
  parseCosignerKey,
  parseLogKey,
  parseNote,
  postAddCheckpoint,
  signatureLine,
  verifyConsistency,
  type CosignOptions,
  type NoteVerifier,
  type WitnessEndpoint,
} from '../dist/index.js';
import { MemoryTiles, entry } from './helpers.ts';
import { serve } from './http-helpers.ts';
import { TestLog } from './log-helpers.ts';

/** A log of 10 entries (checkpoints at 4 and 10, not cosigned) and a proof source read from its tiles. */
interface Setup {
  note: Uint8Array;
  proof: (n: number) => Promise<Uint8Array[]>;
  logKey: NoteVerifier;
  root4: Uint8Array;
  /** collectCosignatures for the checkpoint of size 10, the witnesses holding size 4, one cosignature needed. */
  collect: (witnesses: WitnessEndpoint[], more?: Partial<CosignOptions>) => ReturnType<typeof collectCosignatures>;
}

function setup(): Setup {
  const log = new TestLog();
  const four = log.publish(
    [0, 1, 2, 3].map((i) => entry(i)),
    0,
  );
  const note = log.publish(
    [4, 5, 6, 7, 8, 9].map((i) => entry(i)),
    0,
  );
  const tiles = new MemoryTiles();
  for (const [p, b] of log.files) if (p.startsWith('log/')) tiles.files.set(p.slice(4), b);
  const reader = new TileHashReader(tiles, 10);
  const logKey = parseLogKey(log.key.vkey);
  const root4 = openCheckpoint(four, { logKeys: [logKey] }).checkpoint.root;
  const proof = (n: number): Promise<Uint8Array[]> => reader.consistencyProof(n);
  const collect: Setup['collect'] = (witnesses, more = {}) =>
    collectCosignatures({ checkpoint: note, size: 10, witnesses, threshold: 1, oldSize: 4, proof, ...more });
  return { note, proof, logKey, root4, collect };
}

function cosign(res: ServerResponse, body: Buffer, w: NoteSecretKey, time = 1_800_000_123): void {
  const n = parseNote(parseAddCheckpoint(body).checkpoint);
  const sig = cosignCheckpoint(n, w.cosigner(), time);
  res.end(signatureLine(sig.name, sig.keyId, sig.signature));
}

function answer(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.end(body);
}

function endpoint(url: string, w: NoteSecretKey): WitnessEndpoint {
  return { url, key: parseCosignerKey(w.cosigner().vkey) };
}

t.test('a witness that checks the proof and cosigns; a 409 is answered with a proof from its size', async (t) => {
  const { note, proof, logKey, root4 } = setup();
  const w = NoteSecretKey.generate('witness.example/w1');
  const seen: number[] = [];
  const url = await serve(t, (req, body, res) => {
    if (req.method !== 'POST' || req.url !== '/prefix/add-checkpoint') return answer(res, 404, 'no');
    const r = parseAddCheckpoint(body);
    seen.push(r.oldSize);
    if (r.oldSize !== 4) return answer(res, 409, '4\n', 'text/x.tlog.size');
    const cp = openCheckpoint(r.checkpoint, { logKeys: [logKey] }).checkpoint;
    verifyConsistency(4, cp.size, root4, cp.root, r.proof);
    cosign(res, body, w);
  });
  const witness = endpoint(`${url}prefix`, w);
  const res = await collectCosignatures({
    checkpoint: note,
    size: 10,
    witnesses: [witness],
    threshold: 1,
    oldSize: 0,
    proof,
  });
  t.same(seen, [0, 4], 'old 0, then the size the 409 named');
  t.equal(res.cosignatures.length, 1);
  t.match(res.witnesses[0]!.detail, /cosigned \(time 1800000123\)/);
  const opened = openCheckpoint(res.checkpoint, { logKeys: [logKey], witnesses: [witness.key], witnessThreshold: 1 });
  t.equal(opened.cosignatures[0]!.timestamp, 1_800_000_123, 'the cosignature is on the checkpoint');
});

t.test('every other answer is read as tlog-witness means it', async (t) => {
  const { note, collect } = setup();
  const w = NoteSecretKey.generate('witness.example/w1');
  const other = NoteSecretKey.generate('witness.example/other');
  const cases: [string, (res: ServerResponse, body: Buffer) => void, string | RegExp][] = [
    ['403', (res) => answer(res, 403, 'invalid signature'), 'refused'],
    ['404', (res) => answer(res, 404, 'unknown log'), 'refused'],
    ['422', (res) => answer(res, 422, 'bad consistency proof'), 'refused'],
    ['400', (res) => answer(res, 400, 'malformed'), 'refused'],
    ['500', (res) => answer(res, 500, 'oops'), 'unavailable'],
    ['409 without a size', (res) => answer(res, 409, 'conflict'), 'refused'],
    ['409 with a size', (res) => answer(res, 409, '11\n', 'text/x.tlog.size'), 'conflict'],
    ['another key cosigns', (res, body) => cosign(res, body, other), /no cosignature by witness.example\/w1/],
    ['garbage for 200', (res) => answer(res, 200, 'hello\n'), 'refused'],
    [
      'a cosignature over other bytes',
      (res) => {
        const sig = w.cosigner().cosign(Buffer.from('x\n'), 5);
        res.end(signatureLine(w.name, parseCosignerKey(w.cosigner().vkey).keyId, sig));
      },
      /does not verify/,
    ],
    ['an endless answer', (res) => res.end(Buffer.alloc(70 * 1024, 0x41)), /answer over/],
  ];
  for (const [what, handle, want] of cases) {
    const url = await serve(t, (_req, body, res) => handle(res, body));
    const out = await postAddCheckpoint(
      endpoint(url, w),
      { oldSize: 0, proof: [], checkpoint: note },
      { timeoutMs: 5000 },
    );
    if (typeof want === 'string') t.equal(out.kind, want, what);
    else t.match(out.kind === 'refused' || out.kind === 'unavailable' ? out.message : out.kind, want, what);
  }
  const larger = await serve(t, (_req, _body, res) => answer(res, 409, '11\n', 'text/x.tlog.size'));
  const err = await collect([endpoint(larger, w)]).catch((e: unknown) => e);
  t.ok(isTlogError(err, 'LOG_WITNESS_FAILED'));
  t.match(
    String(err),
    /witness.example\/w1 at http:\/\/127\.0\.0\.1:\d+\/: refused: HTTP 409: the witness holds a larger tree/,
  );
});

t.test('a silent witness times out; unavailable witnesses are retried until the wait is over', async (t) => {
  const { note, collect } = setup();
  const w1 = NoteSecretKey.generate('witness.example/w1');
  const w2 = NoteSecretKey.generate('witness.example/w2');
  const silent = await serve(t, () => new Promise<void>(() => undefined));
  const out = await postAddCheckpoint(
    endpoint(silent, w1),
    { oldSize: 0, proof: [], checkpoint: note },
    { timeoutMs: 300 },
  );
  t.same(out, { kind: 'unavailable', message: 'no answer within 300 ms' });
  let calls = 0;
  const flaky = await serve(t, (_req, body, res) => {
    calls++;
    if (calls < 3) return answer(res, 503, 'busy');
    cosign(res, body, w1);
  });
  const refusing = await serve(t, (_req, _body, res) => answer(res, 422, 'no'));
  // An injected clock: each sleep moves it; no real waiting.
  let clock = 0;
  const sleeps: number[] = [];
  const res = await collect([endpoint(flaky, w1), endpoint(refusing, w2)], {
    waitMs: 60_000,
    retryDelayMs: 5000,
    now: () => clock,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
  });
  t.equal(calls, 3, 'asked until it answered');
  t.same(sleeps, [5000, 5000]);
  t.same(
    res.witnesses.map((x) => x.ok),
    [true, false],
  );
  t.match(res.witnesses[1]!.detail, /HTTP 422/);
  calls = -100;
  clock = 0;
  const err = await collect([endpoint(flaky, w1)], {
    waitMs: 12_000,
    retryDelayMs: 5000,
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
    },
  }).catch((e: unknown) => e);
  t.ok(isTlogError(err, 'LOG_WITNESS_FAILED'), 'gave up after the wait');
  t.equal(clock, 10_000, 'two pauses fit in 12 s, a third would not');
  t.match(String(err), /0 of 1 witnesses cosigned; 1 needed .*unavailable: HTTP 503: busy/);
  const none = await collect([], { threshold: 0 });
  t.same(none.checkpoint, note, 'no witnesses, threshold 0: the checkpoint as it was');
});
