// Hostile inputs every parser of @hashwall/tlog must refuse with its code, never crash on: signed notes, keys,
// checkpoints, tlog-witness bodies, tile paths and bundles, and random bytes.
import fc from 'fast-check';
import t from 'tap';

import {
  NoteSecretKey,
  isTlogError,
  openCheckpoint,
  parseAddCheckpoint,
  parseBundle,
  parseCheckpointText,
  parseCosignatureLines,
  parseCosignerKey,
  parseLogKey,
  parseNote,
  parseSizeBody,
  parseTilePath,
  parseVerifierKey,
} from '../dist/index.js';
import { fixture, utf8 } from './helpers.ts';

const g = fixture<{ goNote: { text: string; peterSignatureLine: string; peterVkey: string; peterSkey: string } }>(
  'notes.json',
).goNote;
const text = g.text;
const sig = g.peterSignatureLine;
const CP = 'lists.example/demo\n3\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=\n';

t.test('signed notes that break signed-note are MALFORMED', async (t) => {
  const bad: [string, string | Uint8Array][] = [
    ['no signature block', text],
    ['a blank line and nothing', `${text}\n`],
    ['no final newline', `${text}\n${sig.slice(0, -1)}`],
    ['a control character', `\x01${text}\n${sig}`],
    ['invalid UTF-8', Buffer.concat([Buffer.from([0xff]), Buffer.from(`${text}\n${sig}`)])],
    ['an overlong UTF-8 form', Buffer.concat([Buffer.from([0xc0, 0xaf]), Buffer.from(`${text}\n${sig}`)])],
    [
      'a space in the name',
      `${text}\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
    ],
    ['a line after the signatures', `${text}\n${sig}Unexpected line.\n`],
    ['a hyphen for the em dash', `${text}\n${sig.replace('\u2014', '-')}`],
    ['two spaces', `${text}\n${sig.replace(' ', '  ')}`],
    ['no signature', `${text}\n\u2014 PeterNeumann \n`],
    ['a key id alone', `${text}\n\u2014 PeterNeumann x08gow==\n`],
    ['unused base64 bits set', `${text}\n${sig.replace('AM=\n', 'AN=\n')}`],
    ['base64 without padding', `${text}\n${sig.replace('=\n', '\n')}`],
    [
      'a plus in the name',
      `${text}\n\u2014 Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
    ],
    [
      'a no-break space in the name',
      `${text}\n\u2014 Peter\u00a0N x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
    ],
    ['CRLF', `${text}\n${sig}`.replace(/\n/g, '\r\n')],
    ['empty', ''],
  ];
  for (const [what, input] of bad) {
    t.throws(() => parseNote(typeof input === 'string' ? utf8(input) : input), { code: 'LOG_MALFORMED' }, what);
  }
  t.throws(() => parseNote(utf8(`${text}\n${sig.repeat(101)}`)), { code: 'LOG_TOO_LARGE' }, '101 signatures');
  t.throws(() => parseNote(utf8(`${text}\n${sig}`), { maxBytes: 100 }), { code: 'LOG_TOO_LARGE' }, 'over the cap');
  t.equal(parseNote(utf8(`${text}\n${sig.repeat(100)}`)).signatures.length, 100, '100 is accepted');
  t.equal(parseNote(utf8(`a\n\nb\n\n${sig}`)).text, 'a\n\nb\n', 'the last blank line separates');
  t.equal(
    parseNote(utf8(`${text}\n${sig}\n${sig}`)).text,
    `${text}\n${sig}`,
    'even from lines that look like signatures',
  );
});

t.test('keys that break the vkey and skey encodings are KEY_INVALID', async (t) => {
  const badV = [
    '',
    'PeterNeumann',
    'PeterNeumann+c74f20a3',
    'PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    '+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n',
    'PeterNeumann+c74f20a3+ ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX',
    'PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    // A small-order key (the identity point): anyone could forge its signatures.
    'x+5b0f2a6b+AQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  ];
  for (const k of badV) t.throws(() => parseVerifierKey(k), { code: 'LOG_KEY_INVALID' }, JSON.stringify(k));
  t.throws(() => parseVerifierKey('x'.repeat(2000)), { code: 'LOG_TOO_LARGE' });
  t.throws(() => parseLogKey('remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2'), {
    code: 'LOG_KEY_INVALID',
  });
  t.throws(() => parseCosignerKey('x+12345678+AwEB'), { code: 'LOG_KEY_INVALID' }, 'an unknown type');
  const badS = [
    g.peterVkey,
    `PRIVATE+KEY+${g.peterVkey}`,
    g.peterSkey.replace('PRIVATE', 'private'),
    g.peterSkey.replace('+c74f20a3+', '+c74f20a4+'),
    g.peterSkey.slice(0, -1),
    `${g.peterSkey}\n`,
    g.peterSkey.replace('+AYEK', '+BYEK'),
  ];
  for (const k of badS)
    t.throws(() => NoteSecretKey.parse(k), { code: 'LOG_KEY_INVALID' }, JSON.stringify(k.slice(0, 30)));
  t.throws(() => NoteSecretKey.generate('a b'), { code: 'LOG_KEY_INVALID' });
});

t.test('checkpoint texts that break tlog-checkpoint are MALFORMED', async (t) => {
  const bad = [
    '',
    'lists.example/demo\n3\n',
    'lists.example/demo\n3\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=',
    '\n3\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=\n',
    'lists.example/demo\n03\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=\n',
    'lists.example/demo\n-3\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=\n',
    'lists.example/demo\n3.0\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=\n',
    'lists.example/demo\n0x3\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=\n',
    'lists.example/demo\n9007199254740992\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=\n',
    'lists.example/demo\n3\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0\n',
    'lists.example/demo\n3\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl1=\n',
    'lists.example/demo\n3\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iw==\n',
    `${CP}\n`,
    `${CP}ext\n\n`,
    'lists.example/demo\n 3\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=\n',
  ];
  for (const s of bad) t.throws(() => parseCheckpointText(s), { code: 'LOG_MALFORMED' }, JSON.stringify(s));
  t.same(parseCheckpointText(`${CP}one\ntwo\n`).extensions, ['one', 'two']);
  const k = NoteSecretKey.generate('lists.example/demo');
  const signed = (body: string): Uint8Array => {
    const sig = k.noteSigner().sign(utf8(body));
    return utf8(`${body}\n\u2014 ${k.name} ${Buffer.concat([Buffer.from([0, 0, 0, 0]), sig]).toString('base64')}\n`);
  };
  // Signatures are checked first: a note signed by no known key is refused before its text is read.
  t.throws(() => openCheckpoint(signed('garbage\n'), { logKeys: [parseLogKey(k.vkey)] }), {
    code: 'LOG_UNTRUSTED_KEY',
  });
  t.throws(() => openCheckpoint(utf8(`${CP}\n${'x'.repeat(17000)}`), { logKeys: [parseLogKey(k.vkey)] }), {
    code: 'LOG_TOO_LARGE',
  });
});

t.test('tlog-witness bodies that break the protocol are MALFORMED', async (t) => {
  const h = 'RcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=';
  const bad = [
    '',
    'old 1',
    'old 1\n',
    `old 1\n${h}\n`,
    'old 01\n\ncheckpoint',
    'old -1\n\ncheckpoint',
    'old\n\ncheckpoint',
    'Old 1\n\ncheckpoint',
    'old  1\n\ncheckpoint',
    'old 1\r\n\r\ncheckpoint',
    'old 1\n\n',
    `old 1\n${h.slice(1)}\n\ncheckpoint`,
    `old 1\n${h} \n\ncheckpoint`,
    `old 1\n${`${h}\n`.repeat(64)}\ncheckpoint`,
  ];
  for (const b of bad)
    t.throws(() => parseAddCheckpoint(utf8(b)), { code: 'LOG_MALFORMED' }, JSON.stringify(b.slice(0, 40)));
  t.equal(parseAddCheckpoint(utf8(`old 1\n${`${h}\n`.repeat(63)}\nx`)).proof.length, 63, '63 proof lines are allowed');
  for (const b of ['', '1', '01\n', '-1\n', '1 \n', '18446744073709551616\n']) {
    t.throws(() => parseSizeBody(utf8(b)), { code: 'LOG_MALFORMED' }, JSON.stringify(b));
  }
  for (const b of [
    '',
    '\n',
    'hello\n',
    `${g.peterSignatureLine}\n${g.peterSignatureLine}`,
    g.peterSignatureLine.slice(0, -1),
  ]) {
    t.throws(() => parseCosignatureLines(utf8(b)), { code: 'LOG_MALFORMED' }, JSON.stringify(b.slice(0, 40)));
  }
});

t.test('random bytes never crash a parser: they are refused with a code', async (t) => {
  const parsers: [string, (b: Uint8Array) => unknown][] = [
    ['note', (b) => parseNote(b)],
    ['checkpoint', (b) => parseCheckpointText(Buffer.from(b).toString('utf8'))],
    ['add-checkpoint', (b) => parseAddCheckpoint(b)],
    ['size', (b) => parseSizeBody(b)],
    ['cosignatures', (b) => parseCosignatureLines(b)],
    ['bundle', (b) => parseBundle(b, 3)],
    ['tile path', (b) => parseTilePath(Buffer.from(b).toString('latin1'))],
    ['vkey', (b) => parseVerifierKey(Buffer.from(b).toString('latin1'))],
  ];
  const pieces = fc.oneof(
    fc.uint8Array({ maxLength: 300, size: 'max' }),
    fc
      .array(
        fc.constantFrom(
          'old 1\n',
          '\n',
          '\u2014 ',
          'a ',
          CP,
          g.peterSignatureLine,
          'tile/',
          '0/',
          'x001/',
          '+',
          'AAAA',
        ),
        {
          maxLength: 12,
        },
      )
      .map((parts) => utf8(parts.join(''))),
  );
  fc.assert(
    fc.property(pieces, (bytes) => {
      for (const [, parse] of parsers) {
        try {
          parse(bytes);
        } catch (err) {
          if (!isTlogError(err)) throw err;
        }
      }
    }),
    { numRuns: 3000 },
  );
  t.pass('3000 inputs x 8 parsers');
});
