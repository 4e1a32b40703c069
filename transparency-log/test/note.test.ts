// signed-note, note keys, tlog-checkpoint and tlog-cosignature, against the vectors of the Go checksum database,
// the C2SP specifications, transparency-dev, Sigsum and production witnesses (fixtures/tlog/notes.json), and
// round trips of our own.
import t from 'tap';

import {
  EMPTY_ROOT,
  NoteSecretKey,
  SIG_TYPE_COSIGNATURE_V1,
  addSignatures,
  cosignCheckpoint,
  cosignatureMessage,
  cosignatureTimestamp,
  decodeBase64,
  formatAddCheckpoint,
  formatCheckpointText,
  openCheckpoint,
  parseAddCheckpoint,
  parseCheckpointText,
  parseCosignatureLines,
  parseCosignerKey,
  parseLogKey,
  parseNote,
  parseVerifierKey,
  serializeNote,
  signCheckpoint,
  signatureLine,
  verifyConsistency,
  verifyNote,
} from '../dist/index.js';
import { fixture, hex, utf8 } from './helpers.ts';

interface NoteVectors {
  goNote: {
    peterVkey: string;
    peterSkey: string;
    enochVkey: string;
    text: string;
    peterSignatureLine: string;
    enochSignatureLine: string;
    badVkeys: string[];
  };
  c2spExample: { vkey: string; note: string };
  sumdb: {
    vkey: string;
    origin: string;
    checkpoints: string[];
    extraVerifiers: string[];
    noteWithExtraSignatures: string;
  };
  keyPairs: { vkey: string; skey: string }[];
  cosignerVkeys: { vkey: string; note: string }[];
  cosignatureTimestamp: { base64: string; timestamp: number };
  armoredWitness: {
    ftlog: { logKey: string; origin: string; witnesses: string[]; note: string; timestamps: number[] };
    pixel: { origin: string; witnesses: string[]; note: string; timestamps: number[] };
  };
  sigsum: {
    publicKeyHex: string;
    origin: string;
    vkey: string;
    checkpoints: string[];
    consistency: { oldSize: number; newSize: number; proof: string[] };
  };
}
const v = fixture<NoteVectors>('notes.json');

t.test('Go sumdb/note: keys, the exact signature bytes, and verification', async (t) => {
  const g = v.goNote;
  const sk = NoteSecretKey.parse(g.peterSkey);
  t.equal(sk.vkey, g.peterVkey, 'the vkey derived from the skey');
  t.equal(sk.serialize(), g.peterSkey, 'the skey written back');
  const signer = sk.noteSigner();
  t.equal(signer.keyId, 0xc74f20a3);
  const note = serializeNote(g.text, [
    { name: signer.name, keyId: signer.keyId, signature: signer.sign(utf8(g.text)) },
  ]);
  t.equal(Buffer.from(note).toString('utf8'), `${g.text}\n${g.peterSignatureLine}`, 'Ed25519 is deterministic');
  const both = parseNote(utf8(`${g.text}\n${g.peterSignatureLine}${g.enochSignatureLine}`));
  t.equal(both.text, g.text);
  const peter = parseVerifierKey(g.peterVkey);
  const enoch = parseVerifierKey(g.enochVkey);
  t.same(
    verifyNote(both, [peter]).map((s) => s.verifier.name),
    ['PeterNeumann'],
    'an unknown key is ignored',
  );
  t.same(
    verifyNote(both, [enoch, peter]).map((s) => s.verifier.name),
    ['PeterNeumann', 'EnochRoot'],
  );
  t.same(verifyNote(both, []), [], 'nothing verified without keys');
  t.throws(
    () => verifyNote(both, [peter, parseVerifierKey(g.peterVkey)]),
    { code: 'LOG_KEY_INVALID' },
    'ambiguous keys',
  );
  const tampered = `${g.text}\n${g.peterSignatureLine.slice(0, 60)}ABCD${g.peterSignatureLine.slice(60)}`;
  t.throws(
    () => verifyNote(parseNote(utf8(tampered)), [peter]),
    { code: 'LOG_SIGNATURE_INVALID' },
    'a bad signature by a known key',
  );
  for (const bad of g.badVkeys) t.throws(() => parseVerifierKey(bad), { code: 'LOG_KEY_INVALID' }, bad);
  // Go's manglings: every proper substring and every byte bumped is refused.
  const b = Buffer.from(g.peterVkey);
  for (let i = 0; i < b.length; i++) {
    for (const d of [1, -1]) {
      const m = Buffer.from(b);
      m[i] = m[i]! + d;
      t.throws(() => parseVerifierKey(m.toString('latin1')), `byte ${i} ${d > 0 ? '+' : '-'}1`);
    }
  }
  for (let i = 0; i < b.length; i += 7) {
    for (let j = i + 1; j <= b.length; j += 5) {
      if (i === 0 && j === b.length) continue;
      t.throws(() => parseVerifierKey(b.subarray(i, j).toString('latin1')), `[${i}, ${j})`);
    }
  }
});

t.test('the C2SP signed-note example verifies', async (t) => {
  const n = parseNote(utf8(v.c2spExample.note));
  t.equal(n.text, 'This is an example message.\n');
  t.equal(verifyNote(n, [parseVerifierKey(v.c2spExample.vkey)]).length, 1);
});

t.test('sum.golang.org checkpoints open under its key, and other signatures are counted only when known', async (t) => {
  const key = parseLogKey(v.sumdb.vkey);
  for (const cp of v.sumdb.checkpoints) {
    const o = openCheckpoint(utf8(cp), { origin: v.sumdb.origin, logKeys: [key] });
    t.equal(o.checkpoint.origin, 'go.sum database tree');
    t.equal(formatCheckpointText(o.checkpoint), o.note.text, 'the text round-trips');
    t.throws(() => openCheckpoint(utf8(cp), { origin: 'example.com/other', logKeys: [key] }), {
      code: 'LOG_ORIGIN_MISMATCH',
    });
  }
  t.equal(openCheckpoint(utf8(v.sumdb.checkpoints[1]!), { logKeys: [key] }).checkpoint.size, 6476701);
  const extra = v.sumdb.extraVerifiers.map(parseVerifierKey);
  const all = parseNote(utf8(v.sumdb.noteWithExtraSignatures));
  t.equal(all.signatures.length, 5);
  t.equal(verifyNote(all, [key, ...extra]).length, 4, 'the log and three known signers; "random1" is unknown');
  t.throws(
    () => openCheckpoint(utf8(v.sumdb.noteWithExtraSignatures), { logKeys: [parseLogKey(v.goNote.peterVkey)] }),
    { code: 'LOG_UNTRUSTED_KEY' },
    'signed, but not by the log key asked for',
  );
});

t.test('published skey and vkey pairs match', async (t) => {
  for (const p of v.keyPairs) t.equal(NoteSecretKey.parse(p.skey).vkey, p.vkey, p.vkey);
});

t.test('cosigner keys: native type 0x04 vkeys and Ed25519 vkeys turned into cosigner keys', async (t) => {
  for (const c of v.cosignerVkeys) {
    const k = parseCosignerKey(c.vkey);
    t.equal(k.type, SIG_TYPE_COSIGNATURE_V1, c.note);
    t.equal(parseCosignerKey(k.vkey).vkey, k.vkey, 'its type 0x04 form parses back');
  }
  t.throws(
    () => parseLogKey(parseCosignerKey(v.cosignerVkeys[0]!.vkey).vkey),
    { code: 'LOG_KEY_INVALID' },
    'not a log key',
  );
  const sig = decodeBase64(v.cosignatureTimestamp.base64)!.subarray(4);
  t.equal(cosignatureTimestamp(sig), v.cosignatureTimestamp.timestamp);
  t.equal(cosignatureTimestamp(sig.subarray(1)), undefined, 'not 72 bytes');
});

t.test('production cosignature/v1 signatures (Armored Witness) verify', async (t) => {
  const f = v.armoredWitness.ftlog;
  const witnesses = f.witnesses.map(parseCosignerKey);
  const o = openCheckpoint(utf8(f.note), {
    origin: f.origin,
    logKeys: [parseLogKey(f.logKey)],
    witnesses,
    witnessThreshold: 2,
  });
  t.same(
    o.cosignatures.map((c) => c.timestamp),
    f.timestamps,
  );
  t.equal(o.checkpoint.size, 59);
  t.throws(
    () =>
      openCheckpoint(utf8(f.note), {
        origin: f.origin,
        logKeys: [parseLogKey(f.logKey)],
        witnesses,
        witnessThreshold: 3,
      }),
    { code: 'LOG_WITNESS_THRESHOLD' },
  );
  // As Ed25519 note keys (type 0x01) the same lines are someone else's: ignored, not failed.
  t.throws(
    () =>
      openCheckpoint(utf8(f.note), {
        origin: f.origin,
        logKeys: [parseLogKey(f.logKey)],
        witnesses: f.witnesses.map(parseVerifierKey),
        witnessThreshold: 1,
      }),
    { code: 'LOG_WITNESS_THRESHOLD' },
  );
  const p = v.armoredWitness.pixel;
  const verified = verifyNote(parseNote(utf8(p.note)), p.witnesses.map(parseCosignerKey));
  t.same(
    verified.map((s) => cosignatureTimestamp(s.signature.signature)),
    p.timestamps,
    'an ECDSA log signature is skipped',
  );
});

t.test('a Sigsum log key signs checkpoints readable here, and its consistency proof verifies', async (t) => {
  const s = v.sigsum;
  const key = parseLogKey(s.vkey);
  t.equal(hex(key.publicKey), s.publicKeyHex);
  const [a, b] = s.checkpoints.map((c) => openCheckpoint(utf8(c), { origin: s.origin, logKeys: [key] }).checkpoint);
  verifyConsistency(
    s.consistency.oldSize,
    s.consistency.newSize,
    a!.root,
    b!.root,
    s.consistency.proof.map((x) => decodeBase64(x)!),
  );
  t.pass('1 -> 3');
});

t.test('our keys, checkpoints and cosignatures round-trip', async (t) => {
  const log = NoteSecretKey.generate('lists.example/demo');
  t.equal(NoteSecretKey.parse(log.serialize()).vkey, log.vkey, 'skey round trip');
  t.notMatch(JSON.stringify(log), /PRIVATE/, 'JSON shows no secret');
  t.notMatch(String((await import('node:util')).inspect(log)), /PRIVATE/, 'inspect shows no secret');
  const cp = { origin: 'lists.example/demo', size: 0, root: EMPTY_ROOT, extensions: ['x-ext one'] };
  t.same(parseCheckpointText(formatCheckpointText(cp)), cp, 'parse(format(x)) = x');
  const signed = signCheckpoint(cp, [log.noteSigner()]);
  t.equal(Buffer.from(signed).toString('utf8').split('\n')[4], '', 'the blank line after the extension');
  const w1 = NoteSecretKey.generate('witness.example/w1');
  const w2 = NoteSecretKey.generate('witness.example/w2');
  const note = parseNote(signed);
  const cos1 = cosignCheckpoint(note, w1.cosigner(), 1_800_000_000);
  const cos2 = cosignCheckpoint(note, w2.cosigner(), 1_800_000_001);
  const withBoth = addSignatures(note, [cos1, cos2]);
  const policy = {
    origin: cp.origin,
    logKeys: [parseLogKey(log.vkey)],
    witnesses: [parseCosignerKey(w1.cosigner().vkey), parseCosignerKey(w2.vkey)],
    witnessThreshold: 2,
  };
  const o = openCheckpoint(withBoth, policy);
  t.same(
    o.cosignatures.map((c) => c.timestamp),
    [1_800_000_000, 1_800_000_001],
  );
  const again = addSignatures(parseNote(withBoth), [cosignCheckpoint(note, w1.cosigner(), 1_800_000_005)]);
  t.equal(parseNote(again).signatures.length, 3, 'a newer cosignature by the same key replaces the older');
  // A cosignature is over "cosignature/v1\ntime <t>\n" + the text: moved to another checkpoint, it fails.
  const other = parseNote(signCheckpoint({ ...cp, size: 0, extensions: [] }, [log.noteSigner()]));
  t.throws(() => openCheckpoint(addSignatures(other, [cos1]), policy), { code: 'LOG_SIGNATURE_INVALID' });
  // A witness's plain Ed25519 signature is no cosignature.
  const plain = { name: w1.name, keyId: policy.witnesses[0]!.keyId, signature: w1.noteSigner().sign(note.textBytes) };
  t.throws(() => openCheckpoint(addSignatures(note, [plain]), policy), { code: 'LOG_SIGNATURE_INVALID' });
  t.equal(signatureLine('a', 1, new Uint8Array([1])), '\u2014 a AAAAAQE=\n');
});

t.test(
  "the C2SP specifications' own examples parse, and the cosignature example carries the example's time",
  async (t) => {
    const e = fixture<{
      c2spSpecExamples: {
        checkpoint: string;
        cosignatureLine: string;
        cosignatureMessage: string;
        addCheckpointRequest: string;
        addCheckpointResponse: string;
      };
    }>('notes.json').c2spSpecExamples;
    const cp = parseCheckpointText(parseNote(utf8(e.checkpoint)).text);
    t.same([cp.origin, cp.size], ['example.com/behind-the-sofa', 20852163]);
    const [line] = parseCosignatureLines(utf8(e.cosignatureLine));
    t.equal(line!.name, 'witness.example.com/w1');
    t.equal(cosignatureTimestamp(line!.signature), 1679315147, 'the 8-byte big-endian timestamp');
    const text = parseNote(utf8(e.checkpoint)).textBytes;
    t.equal(
      Buffer.from(cosignatureMessage(1679315147, text)).toString('utf8'),
      e.cosignatureMessage,
      'the signed message',
    );
    const req = parseAddCheckpoint(utf8(e.addCheckpointRequest));
    t.same([req.oldSize, req.proof.length], [20852014, 4]);
    t.equal(parseNote(req.checkpoint).signatures.length, 2);
    t.same(
      Buffer.from(formatAddCheckpoint(req)).toString('utf8'),
      e.addCheckpointRequest,
      'written back byte for byte',
    );
    t.same(
      parseCosignatureLines(utf8(e.addCheckpointResponse)).map((s) => s.name),
      ['witness.example/w1', 'witness.example/w1', 'witness.example/w2'],
    );
  },
);
