// minisign keys and signatures (SPEC.md 3), checked against the real `minisign` binary and its fixtures.
import { readFileSync, rmSync } from 'node:fs';
import { inspect } from 'node:util';

import fc from 'fast-check';
import t from 'tap';

import { minisign, needTool, type ToolRun as Run } from '../../test/helpers/tools.ts';
import { FormatError } from '../dist/errors.js';
import {
  DEFAULT_SIGNATURE_COMMENT,
  MinisignSecretKey,
  SCRYPT_LIMITS_TEST_ONLY,
  TrustStore,
  generateKeyPair,
  keyIdFromKeyNum,
  keyNumFromKeyId,
  parsePublicKey,
  parsePublicKeyFile,
  parseSecretKeyFile,
  parseSignatureFile,
  parseSignatureFileName,
  publicKeyToString,
  samePublicKey,
  scryptParamsFor,
  serializePublicKeyFile,
  serializeSecretKeyFile,
  sign,
  signatureFileName,
  verifySignature,
  verifyThreshold,
  type MinisignPublicKey,
} from '../dist/minisign.js';
import { SAMPLE, TC, fixture, keyInfo, pub, put, sec, workPath } from './minisign-helpers.ts';

const ALICE_SIG = fixture('sample.txt.minisig');
const BOB_SIG = fixture(`sample.txt.${keyInfo('bob').keyId}.minisig`);
const CAROL_SIG_TEXT = sign(SAMPLE, sec('carol'), TC);

/** The code of the FormatError `fn` throws, or undefined when it returns; any other exception fails the test. */
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof FormatError) return err.code;
    throw err;
  }
}

const minisignMissing = needTool('minisign');

/** minisign -V -H on a message and signature, with the key as a string; the trusted comment when it verifies. */
async function minisignVerify(message: Uint8Array, sigText: string | Uint8Array, pk: string): Promise<Run> {
  const m = put('msg', message);
  const x = put('msg.minisig', sigText);
  return minisign(['-V', '-H', '-m', m, '-x', x, '-P', pk]);
}

function trustedCommentPrinted(run: Run): string | undefined {
  return /^Trusted comment: (.*)$/m.exec(run.stdout)?.[1];
}

t.test('public keys', async (t) => {
  t.test('reads minisign .pub files and writes them back byte for byte', async (t) => {
    for (const name of ['alice', 'bob', 'carol', 'locked']) {
      const text = fixture(`${name}.pub`).toString('latin1');
      const parsed = parsePublicKeyFile(text);
      t.equal(parsed.publicKey.keyId, keyInfo(name).keyId, `${name}: key id as minisign prints it`);
      t.equal(parsed.untrustedComment, `minisign public key ${keyInfo(name).keyId}`);
      t.equal(serializePublicKeyFile(parsed.publicKey), text, `${name}: same bytes`);
      t.equal(publicKeyToString(parsed.publicKey), keyInfo(name).publicKey);
      t.ok(samePublicKey(parsePublicKey(keyInfo(name).publicKey), parsed.publicKey), 'bare string, same key');
      t.ok(samePublicKey(parsePublicKeyFile(fixture(`${name}.pub`)).publicKey, parsed.publicKey), 'bytes input');
    }
  });

  t.test('prints a key id as minisign does: the key number read as a little-endian integer', async (t) => {
    t.equal(keyIdFromKeyNum(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 0xab)), 'AB07060504030201');
    t.equal(keyIdFromKeyNum(new Uint8Array(8)), '0000000000000000', 'zero-padded to 16 digits');
    const alice = pub('alice');
    t.equal(Buffer.from(alice.keyNum).reverse().toString('hex').toUpperCase(), alice.keyId);
    t.same(keyNumFromKeyId(alice.keyId), alice.keyNum);
    t.equal(
      codeOf(() => keyNumFromKeyId(alice.keyId.toLowerCase())),
      'MALFORMED',
      'lower-case id refused',
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), (num) => {
        const id = keyIdFromKeyNum(num);
        return /^[0-9A-F]{16}$/.test(id) && Buffer.compare(Buffer.from(keyNumFromKeyId(id)), Buffer.from(num)) === 0;
      }),
      { numRuns: 500 },
    );
  });

  t.test(
    'writes a .pub file minisign reads, and minisign -R writes the file we write',
    { skip: minisignMissing },
    async (t) => {
      const sk = generateKeyPair();
      const ours = serializePublicKeyFile(sk.publicKey);
      t.match(ours, /^untrusted comment: minisign public key [0-9A-F]{16}\nRW[A-Za-z0-9+/]{54}\n$/);
      const keyPath = put('gen.key', serializeSecretKeyFile(sk));
      const pubPath = workPath('recreated.pub');
      const run = await minisign(['-R', '-s', keyPath, '-p', pubPath]);
      t.equal(run.code, 0, run.stderr);
      const recreated = readFileSync(pubPath, 'latin1');
      // minisign 0.11 prints the id without leading zeros in this untrusted comment; the key line is identical.
      t.equal(recreated.split('\n')[1], ours.split('\n')[1]);
      t.ok(samePublicKey(parsePublicKeyFile(recreated).publicKey, sk.publicKey));
    },
  );
});

t.test('secret keys', async (t) => {
  t.test('reads minisign -G -W keys (zero checksum) and they belong to their public keys', async (t) => {
    for (const name of ['alice', 'bob', 'carol']) {
      const file = parseSecretKeyFile(fixture(`${name}.key`));
      t.equal(file.encrypted, false);
      t.equal(file.secretKey.keyId, keyInfo(name).keyId);
      t.ok(samePublicKey(file.secretKey.publicKey, pub(name)), `${name}: public half`);
    }
  });

  t.test('never shows secret bytes when printed, serialized to JSON or in an error', async (t) => {
    const sk = sec('alice');
    const keyLine = fixture('alice.key').toString('latin1').split('\n')[1] ?? '';
    const secretB64 = Buffer.from(keyLine, 'base64').subarray(62, 94).toString('base64').slice(0, 20);
    const secretHex = Buffer.from(keyLine, 'base64').subarray(62, 94).toString('hex').slice(0, 20);
    for (const shown of [inspect(sk, { showHidden: true, depth: 5 }), JSON.stringify(sk), String(Object.keys(sk))]) {
      t.notMatch(shown, secretB64);
      t.notMatch(shown, secretHex);
      t.match(shown, /405F8B5BEF21B5F3|keyId/);
    }
    const locked = serializeSecretKeyFile(sk, { password: 'correct horse', scryptLimits: SCRYPT_LIMITS_TEST_ONLY });
    try {
      parseSecretKeyFile(locked, { password: 'wrong horse' });
      t.fail('a wrong password must throw');
    } catch (err) {
      t.ok(err instanceof FormatError && err.code === 'KEY_PASSWORD');
      t.notMatch(String((err as Error).message), /horse/, 'no password in the message');
      t.notMatch(inspect(err), /horse/, 'nor in the inspected error');
    }
  });

  t.test('round-trips a generated key through both forms', async (t) => {
    const sk = generateKeyPair();
    t.not(sk.keyId, generateKeyPair().keyId, 'random key ids');
    const plain = serializeSecretKeyFile(sk);
    t.match(plain, /^untrusted comment: minisign unencrypted secret key\nRWQAAEIy[A-Za-z0-9+/]{203}=\n$/);
    const back = parseSecretKeyFile(plain);
    t.equal(back.encrypted, false);
    t.equal(back.secretKey.keyId, sk.keyId);
    t.equal(serializeSecretKeyFile(back.secretKey), plain, 'unencrypted form is deterministic');
    const locked = serializeSecretKeyFile(sk, { password: 'pw', scryptLimits: SCRYPT_LIMITS_TEST_ONLY });
    t.match(locked, /^untrusted comment: minisign encrypted secret key\nRWRTY0Iy/);
    const opened = parseSecretKeyFile(locked, { password: 'pw' });
    t.equal(opened.encrypted, true);
    t.ok(samePublicKey(opened.secretKey.publicKey, sk.publicKey));
    t.not(serializeSecretKeyFile(sk, { password: 'pw', scryptLimits: SCRYPT_LIMITS_TEST_ONLY }), locked, 'fresh salt');
    t.equal(
      parseSecretKeyFile(serializeSecretKeyFile(sk, { untrustedComment: 'mine' })).untrustedComment,
      'mine',
      'custom comment',
    );
  });

  t.test('a wrong or missing password is KEY_PASSWORD; a password for a plain key is ignored', async (t) => {
    const sk = generateKeyPair();
    const locked = serializeSecretKeyFile(sk, { password: 'right', scryptLimits: SCRYPT_LIMITS_TEST_ONLY });
    t.equal(
      codeOf(() => parseSecretKeyFile(locked)),
      'KEY_PASSWORD',
    );
    t.equal(
      codeOf(() => parseSecretKeyFile(locked, { password: 'wrong' })),
      'KEY_PASSWORD',
    );
    t.equal(
      codeOf(() => parseSecretKeyFile(locked, { password: '' })),
      'KEY_PASSWORD',
    );
    t.equal(
      codeOf(() => parseSecretKeyFile(locked, { password: Buffer.from('right') })),
      undefined,
      'bytes password',
    );
    t.equal(
      codeOf(() => parseSecretKeyFile(serializeSecretKeyFile(sk), { password: 'x' })),
      undefined,
    );
    for (const bad of ['', 'a\nb', 'a\rb', 'a\0b', 'x'.repeat(1024), '\ud800']) {
      t.equal(
        codeOf(() => serializeSecretKeyFile(sk, { password: bad })),
        'KEY_PASSWORD',
        JSON.stringify(bad),
      );
    }
  });

  t.test('a corrupted unencrypted key is KEY_INVALID', async (t) => {
    const sk = generateKeyPair();
    const [comment, line] = serializeSecretKeyFile(sk).split('\n') as [string, string];
    const payload = Buffer.from(line, 'base64');
    for (const at of [54, 61, 62, 93, 94, 125, 126, 157]) {
      const bad = Buffer.from(payload);
      bad[at] = (bad[at] ?? 0) ^ 0x40;
      const text = `${comment}\n${bad.toString('base64')}\n`;
      t.equal(
        codeOf(() => parseSecretKeyFile(text)),
        'KEY_INVALID',
        `byte ${at}`,
      );
    }
    // With minisign's zero checksum, a changed public half or seed is still caught by deriving the public key.
    const zero = Buffer.from(fixture('alice.key').toString('latin1').split('\n')[1] ?? '', 'base64');
    for (const at of [62, 100, 125]) {
      const bad = Buffer.from(zero);
      bad[at] = (bad[at] ?? 0) ^ 0x01;
      t.equal(
        codeOf(() => parseSecretKeyFile(`untrusted comment: x\n${bad.toString('base64')}\n`)),
        'KEY_INVALID',
      );
    }
  });

  t.test('derives scrypt parameters from opslimit and memlimit as libsodium does', async (t) => {
    t.same(scryptParamsFor(33554432n, 1073741824n), { N: 2 ** 20, r: 8, p: 1 }, 'sensitive (minisign default)');
    t.same(scryptParamsFor(524288n, 16777216n), { N: 2 ** 14, r: 8, p: 1 }, 'interactive');
    t.same(scryptParamsFor(32768n, 16777216n), { N: 2 ** 10, r: 8, p: 1 }, 'minimum');
    t.same(scryptParamsFor(1n, 16777216n), { N: 2 ** 10, r: 8, p: 1 }, 'opslimit raised to 32768');
    t.same(scryptParamsFor(2n ** 18n, 2n ** 30n), { N: 2 ** 13, r: 8, p: 1 }, 'N bounded by opslimit');
    t.same(scryptParamsFor(2n ** 25n, 2n ** 24n), { N: 2 ** 14, r: 8, p: 64 }, 'p grows when memory is short');
    t.equal(
      codeOf(() => scryptParamsFor(2n ** 40n, 2n ** 40n)),
      'KEY_INVALID',
      'too expensive',
    );
    t.equal(
      codeOf(() => scryptParamsFor(2n ** 62n, 2n ** 62n)),
      'KEY_INVALID',
      'N past what libsodium takes',
    );
  });

  t.test(
    'minisign opens keys we encrypted with non-default limits (both libsodium branches)',
    { skip: minisignMissing },
    async (t) => {
      // libsodium's pickparams: opslimit >= memlimit / 32 bounds N by the memory and raises p (here N = 2^14,
      // p = 2); opslimit < memlimit / 32 bounds N by the operations, p = 1 (here N = 2^13). Cheap limits in each
      // branch: the real cost is minisign.slow.test.ts's.
      for (const scryptLimits of [
        { opslimit: 2 ** 20, memlimit: 2 ** 24 },
        { opslimit: 2 ** 18, memlimit: 2 ** 30 },
      ]) {
        const params = scryptParamsFor(BigInt(scryptLimits.opslimit), BigInt(scryptLimits.memlimit));
        t.same(params, scryptLimits.opslimit === 2 ** 20 ? { N: 2 ** 14, r: 8, p: 2 } : { N: 2 ** 13, r: 8, p: 1 });
        const sk = generateKeyPair();
        const keyPath = put('limits.key', serializeSecretKeyFile(sk, { password: 'pw-limits', scryptLimits }));
        const m = put('limits.txt', 'limits\n');
        const run = await minisign(['-S', '-H', '-s', keyPath, '-m', m, '-t', 'limits'], 'pw-limits\n');
        t.equal(run.code, 0, `${JSON.stringify(scryptLimits)}: ${run.stderr}`);
        const v = verifySignature(Buffer.from('limits\n'), readFileSync(`${m}.minisig`), sk.publicKey);
        t.equal(v.trustedComment, 'limits');
      }
    },
  );
});

t.test('signing and verifying', async (t) => {
  t.test('verifies the signatures minisign made', async (t) => {
    t.same(verifySignature(SAMPLE, ALICE_SIG, pub('alice')), { trustedComment: TC, keyId: keyInfo('alice').keyId });
    t.same(verifySignature(SAMPLE, BOB_SIG.toString('latin1'), pub('bob')), {
      trustedComment: TC,
      keyId: keyInfo('bob').keyId,
    });
    t.equal(verifySignature(SAMPLE, fixture('sample.txt.locked.minisig'), pub('locked')).trustedComment, TC);
  });

  t.test('writes exactly what minisign writes for the same key and comment (Ed25519 is deterministic)', async (t) => {
    t.equal(sign(SAMPLE, sec('alice'), TC), ALICE_SIG.toString('latin1'));
    t.equal(sign(SAMPLE, sec('bob'), TC, DEFAULT_SIGNATURE_COMMENT), BOB_SIG.toString('latin1'));
    const text = sign(SAMPLE, sec('alice'), TC, 'my comment');
    t.match(
      text,
      /^untrusted comment: my comment\nRUTztSHvW4tfQ[A-Za-z0-9+/]{86}=\ntrusted comment: .*\n[A-Za-z0-9+/]{86}==\n$/,
    );
    t.equal(text.split('\n').length, 5, 'four lines and a final LF');
  });

  t.test(
    'a file we sign verifies with minisign -V -H, which prints the same trusted comment',
    { skip: minisignMissing },
    async (t) => {
      const sk = generateKeyPair();
      const message = Buffer.from('HWL1 FULL\nlist-id: demo\n');
      for (const comment of [TC, 'tab\tand UTF-8 \u00e9\u00df \u4e16', 'x'.repeat(1700)]) {
        const run = await minisignVerify(message, sign(message, sk, comment), publicKeyToString(sk.publicKey));
        t.equal(run.code, 0, run.stderr);
        t.equal(trustedCommentPrinted(run), comment);
      }
      const empty = await minisignVerify(
        Buffer.alloc(0),
        sign(Buffer.alloc(0), sk, TC),
        publicKeyToString(sk.publicKey),
      );
      t.equal(empty.code, 0, 'an empty file');
    },
  );

  t.test(
    'keys made by minisign -G -W sign with ours and verify with minisign',
    { skip: minisignMissing },
    async (t) => {
      const dir = put('gw', '');
      rmSync(dir);
      const pubPath = `${dir}.pub`;
      const keyPath = `${dir}.key`;
      const gen = await minisign(['-G', '-W', '-p', pubPath, '-s', keyPath]);
      t.equal(gen.code, 0, gen.stderr);
      const sk = parseSecretKeyFile(readFileSync(keyPath)).secretKey;
      const pk = parsePublicKeyFile(readFileSync(pubPath)).publicKey;
      t.ok(samePublicKey(sk.publicKey, pk));
      const run = await minisignVerify(SAMPLE, sign(SAMPLE, sk, TC), publicKeyToString(pk));
      t.equal(run.code, 0, run.stderr);
      t.equal(trustedCommentPrinted(run), TC);
    },
  );

  t.test(
    'keys we generate sign with minisign (plain, and encrypted with the password on stdin)',
    { skip: minisignMissing },
    async (t) => {
      const sk = generateKeyPair();
      const forms: [string, string, string][] = [
        ['plain', serializeSecretKeyFile(sk), ''],
        [
          'encrypted',
          serializeSecretKeyFile(sk, { password: 'stdin pw', scryptLimits: SCRYPT_LIMITS_TEST_ONLY }),
          'stdin pw\n',
        ],
      ];
      for (const [form, keyText, input] of forms) {
        const keyPath = put(`${form}.key`, keyText);
        const m = put(`${form}.txt`, SAMPLE);
        const pubPath = put(`${form}.pub`, serializePublicKeyFile(sk.publicKey));
        const run = await minisign(['-S', '-H', '-s', keyPath, '-p', pubPath, '-m', m, '-t', `${form} ${TC}`], input);
        t.equal(run.code, 0, `${form}: ${run.stderr}`);
        const v = verifySignature(SAMPLE, readFileSync(`${m}.minisig`), sk.publicKey);
        t.same(v, { trustedComment: `${form} ${TC}`, keyId: sk.keyId }, form);
      }
      const wrong = await minisign(
        ['-S', '-H', '-s', put('w.key', forms[1]?.[1] ?? ''), '-m', put('w.txt', SAMPLE), '-t', 'w'],
        'not the password\n',
      );
      t.not(wrong.code, 0, 'minisign refuses the wrong password too');
    },
  );

  t.test('refuses a signature by another key with UNTRUSTED_KEY', async (t) => {
    t.equal(
      codeOf(() => verifySignature(SAMPLE, ALICE_SIG, pub('bob'))),
      'UNTRUSTED_KEY',
    );
  });

  t.test(
    'refuses legacy Ed signatures: minisign -S -l, and one relabelled from ED',
    { skip: minisignMissing },
    async (t) => {
      const legacy = fixture('sample.txt.legacy.minisig');
      t.equal(parseSignatureFile(legacy).algorithm, 'Ed');
      t.equal(
        codeOf(() => verifySignature(SAMPLE, legacy, pub('alice'))),
        'LEGACY_SIGNATURE',
      );
      const run = await minisignVerify(SAMPLE, legacy, keyInfo('alice').publicKey);
      t.not(run.code, 0, 'minisign -V -H refuses it too');
      const lines = ALICE_SIG.toString('latin1').split('\n');
      const payload = Buffer.from(lines[1] ?? '', 'base64');
      payload.write('Ed', 0, 'latin1');
      lines[1] = payload.toString('base64');
      t.equal(
        codeOf(() => verifySignature(SAMPLE, lines.join('\n'), pub('alice'))),
        'LEGACY_SIGNATURE',
      );
    },
  );

  t.test('refuses trusted comments that are not one printable line', async (t) => {
    const sk = sec('alice');
    for (const bad of ['', 'a\nb', 'a\rb', 'nul\0', 'del\x7f', 'c1\u0085', 'esc\x1b[0m', 'lone \ud800']) {
      t.equal(
        codeOf(() => sign(SAMPLE, sk, bad)),
        'MALFORMED',
        JSON.stringify(bad),
      );
    }
    t.equal(
      codeOf(() => sign(SAMPLE, sk, TC, 'two\nlines')),
      'MALFORMED',
      'untrusted comment too',
    );
    t.equal(
      codeOf(() => sign(SAMPLE, sk, 'x'.repeat(2000))),
      'TOO_LARGE',
      'past what a verifier accepts',
    );
  });

  t.test('signs and verifies any message and comment (property)', async (t) => {
    const sk = generateKeyPair();
    const other = generateKeyPair();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2048, size: 'max' }),
        fc.string({ minLength: 1, maxLength: 200, unit: 'grapheme' }).filter((s) => !/[\p{Cc}]/u.test(s)),
        (message, comment) => {
          const text = sign(message, sk, comment);
          const ok = verifySignature(message, text, sk.publicKey).trustedComment === comment;
          const other1 = codeOf(() => verifySignature(message, text, other.publicKey)) === 'UNTRUSTED_KEY';
          const changed = Buffer.concat([Buffer.from(message), Buffer.of(0)]);
          const tampered = codeOf(() => verifySignature(changed, text, sk.publicKey)) === 'SIGNATURE_INVALID';
          return ok && other1 && tampered;
        },
      ),
      { numRuns: 300 },
    );
    t.pass('round trips held');
  });
});

t.test('flipped bytes', { skip: minisignMissing }, async (t) => {
  const alice = keyInfo('alice').publicKey;
  const pk = pub('alice');

  t.test(
    'a flipped bit anywhere in the .minisig fails minisign and ours, except in the untrusted comment',
    async (t) => {
      const firstLf = ALICE_SIG.indexOf(0x0a);
      const commentStart = 'untrusted comment: '.length;
      let accepted = 0;
      for (let i = 0; i < ALICE_SIG.length; i++) {
        const flipped = Buffer.from(ALICE_SIG);
        flipped[i] = (flipped[i] ?? 0) ^ 0x01;
        const ours = codeOf(() => verifySignature(SAMPLE, flipped, pk));
        const theirs = (await minisignVerify(SAMPLE, flipped, alice)).code === 0;
        const untrusted = i >= commentStart && i < firstLf;
        if (untrusted) {
          accepted++;
          if (ours !== undefined || !theirs) t.fail(`byte ${i} of the untrusted comment should not matter`);
        } else if (ours === undefined || theirs) {
          t.fail(`byte ${i}: ours ${ours ?? 'accepted'}, minisign ${theirs ? 'accepted' : 'refused'}`);
        }
      }
      t.equal(accepted, firstLf - commentStart, `${ALICE_SIG.length} positions tried`);
    },
  );

  t.test('a flipped byte in the message fails minisign and ours', async (t) => {
    const positions = [0, 1, SAMPLE.length >> 1, SAMPLE.length - 2, SAMPLE.length - 1];
    for (let i = 0; i < 10; i++) positions.push(Math.floor(Math.random() * SAMPLE.length));
    for (const i of positions) {
      const flipped = Buffer.from(SAMPLE);
      flipped[i] = (flipped[i] ?? 0) ^ 0x80;
      t.equal(
        codeOf(() => verifySignature(flipped, ALICE_SIG, pk)),
        'SIGNATURE_INVALID',
        `byte ${i}`,
      );
      t.not((await minisignVerify(flipped, ALICE_SIG, alice)).code, 0, `minisign, byte ${i}`);
    }
    t.equal(
      codeOf(() => verifySignature(SAMPLE.subarray(1), ALICE_SIG, pk)),
      'SIGNATURE_INVALID',
      'shortened',
    );
  });

  t.test('a flipped bit anywhere in the public key fails minisign and ours', async (t) => {
    for (let i = 0; i < alice.length; i++) {
      const flipped = Buffer.from(alice, 'latin1');
      flipped[i] = (flipped[i] ?? 0) ^ 0x01;
      const s = flipped.toString('latin1');
      const ours = codeOf(() => verifySignature(SAMPLE, ALICE_SIG, parsePublicKey(s)));
      t.ok(ours === 'KEY_INVALID' || ours === 'UNTRUSTED_KEY' || ours === 'SIGNATURE_INVALID', `char ${i}: ${ours}`);
      t.not((await minisignVerify(SAMPLE, ALICE_SIG, s)).code, 0, `minisign, char ${i}`);
    }
  });

  t.test('base64 with non-zero padding bits is refused here (minisign ignores those bits)', async (t) => {
    const lines = ALICE_SIG.toString('latin1').split('\n');
    const global = lines[3] ?? '';
    const last = global.charAt(global.length - 3);
    const table = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    lines[3] = global.slice(0, -3) + table.charAt(table.indexOf(last) | 1) + '==';
    const text = lines.join('\n');
    t.equal(
      codeOf(() => verifySignature(SAMPLE, text, pk)),
      'MALFORMED',
    );
    const theirs = await minisignVerify(SAMPLE, text, alice);
    t.comment(`minisign ${theirs.code === 0 ? 'accepts' : 'refuses'} the same file`);
  });
});

t.test('threshold verification scoped to a list-id', async (t) => {
  const [alice, bob, carol] = [pub('alice'), pub('bob'), pub('carol')];
  const store = new TrustStore({
    demo: { keys: [alice, bob], threshold: 2 },
    solo: { keys: [alice, bob], threshold: 1 },
    other: { keys: [carol], threshold: 1 },
  });
  const ids = (names: string[]): string[] => names.map((n) => keyInfo(n).keyId);

  t.test('two trusted keys meet a threshold of two', async (t) => {
    const r = verifyThreshold(SAMPLE, [ALICE_SIG, BOB_SIG], store, 'demo');
    t.same(r, { trustedComment: TC, keyIds: ids(['alice', 'bob']) });
  });

  t.test('one of two signatures is not enough', async (t) => {
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [ALICE_SIG], store, 'demo')),
      'THRESHOLD_NOT_MET',
    );
    t.same(verifyThreshold(SAMPLE, [BOB_SIG], store, 'solo').keyIds, ids(['bob']), 'enough for a threshold of one');
  });

  t.test('the same key twice counts once', async (t) => {
    const again = sign(SAMPLE, sec('alice'), TC, 'another untrusted comment');
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [ALICE_SIG, ALICE_SIG], store, 'demo')),
      'THRESHOLD_NOT_MET',
    );
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [ALICE_SIG, again], store, 'demo')),
      'THRESHOLD_NOT_MET',
    );
    t.same(verifyThreshold(SAMPLE, [ALICE_SIG, again, BOB_SIG], store, 'demo').keyIds, ids(['alice', 'bob']));
  });

  t.test('a key trusted for another list-id does not count', async (t) => {
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [ALICE_SIG, CAROL_SIG_TEXT], store, 'demo')),
      'THRESHOLD_NOT_MET',
    );
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [CAROL_SIG_TEXT], store, 'demo')),
      'UNTRUSTED_KEY',
    );
    t.same(verifyThreshold(SAMPLE, [CAROL_SIG_TEXT, ALICE_SIG], store, 'other').keyIds, ids(['carol']));
  });

  t.test('an untrusted extra signature is ignored', async (t) => {
    const stranger = sign(SAMPLE, generateKeyPair(), 'anything at all');
    const r = verifyThreshold(SAMPLE, [stranger, ALICE_SIG, CAROL_SIG_TEXT, BOB_SIG], store, 'demo');
    t.same(r.keyIds, ids(['alice', 'bob']));
    const legacyByStranger = fixture('sample.txt.legacy.minisig');
    t.same(verifyThreshold(SAMPLE, [legacyByStranger, CAROL_SIG_TEXT], store, 'other').keyIds, ids(['carol']));
  });

  t.test('a trusted key`s bad or legacy signature fails the whole check', async (t) => {
    const tampered = Buffer.from(SAMPLE);
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    const badBob = sign(tampered, sec('bob'), TC);
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [ALICE_SIG, badBob], store, 'solo')),
      'SIGNATURE_INVALID',
    );
    const legacy = fixture('sample.txt.legacy.minisig');
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [BOB_SIG, legacy], store, 'solo')),
      'LEGACY_SIGNATURE',
    );
  });

  t.test('counted signatures must carry the same trusted comment', async (t) => {
    const bobOther = sign(SAMPLE, sec('bob'), `${TC} x-other=1`);
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [ALICE_SIG, bobOther], store, 'demo')),
      'COMMENT_MISMATCH',
    );
    const aliceOther = sign(SAMPLE, sec('alice'), `${TC} x-other=1`);
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [ALICE_SIG, aliceOther], store, 'solo')),
      'COMMENT_MISMATCH',
    );
    const carolOther = sign(SAMPLE, sec('carol'), 'a stranger may say anything');
    t.same(verifyThreshold(SAMPLE, [ALICE_SIG, carolOther], store, 'solo').trustedComment, TC, 'untrusted ignored');
  });

  t.test('no signatures, an unknown list-id, more than 8 texts', async (t) => {
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [], store, 'demo')),
      'UNTRUSTED_KEY',
    );
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [ALICE_SIG, BOB_SIG], store, 'nobody')),
      'UNTRUSTED_KEY',
    );
    const nine = Array.from({ length: 9 }, () => ALICE_SIG);
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, nine, store, 'solo')),
      'TOO_LARGE',
    );
    t.same(verifyThreshold(SAMPLE, nine.slice(1), store, 'solo').keyIds, ids(['alice']), 'eight are allowed');
    t.equal(
      codeOf(() => verifyThreshold(SAMPLE, [ALICE_SIG, 'junk'], store, 'solo')),
      'MALFORMED',
    );
  });

  t.test('refuses trust stores that cannot work', async (t) => {
    const build = (entries: Record<string, { keys: MinisignPublicKey[]; threshold: number }>) => () =>
      new TrustStore(entries);
    t.equal(codeOf(build({ demo: { keys: [alice], threshold: 0 } })), 'MALFORMED', 'threshold 0');
    t.equal(codeOf(build({ demo: { keys: [alice], threshold: 2 } })), 'MALFORMED', 'threshold above key count');
    t.equal(codeOf(build({ demo: { keys: [alice, bob], threshold: 1.5 } })), 'MALFORMED', 'fractional');
    t.equal(codeOf(build({ demo: { keys: [], threshold: 1 } })), 'MALFORMED', 'no keys');
    t.equal(codeOf(build({ Demo: { keys: [alice], threshold: 1 } })), 'MALFORMED', 'list-id syntax');
    t.equal(codeOf(build({ demo: { keys: [alice, alice], threshold: 1 } })), 'KEY_INVALID', 'same key twice');
    const nine = Array.from({ length: 9 }, () => generateKeyPair().publicKey);
    t.equal(codeOf(build({ demo: { keys: nine, threshold: 9 } })), 'MALFORMED', 'threshold above 8');
    t.equal(codeOf(build({ demo: { keys: nine, threshold: 8 } })), undefined, 'nine keys, eight must sign');
    const fromMap = new TrustStore(new Map([['demo', { keys: [alice], threshold: 1 }]]));
    t.same(fromMap.listIds(), ['demo']);
    t.equal(fromMap.get('demo')?.threshold, 1);
  });
});

t.test('signature file names (SPEC.md 3)', async (t) => {
  const id = keyInfo('bob').keyId;
  t.equal(signatureFileName('index.hwl'), 'index.hwl.minisig');
  t.equal(signatureFileName('full/2026112201.hwl', id), `full/2026112201.hwl.${id}.minisig`);
  t.equal(
    codeOf(() => signatureFileName('index.hwl', id.toLowerCase())),
    'MALFORMED',
  );
  t.equal(
    codeOf(() => signatureFileName('index.hwl', 'ABC')),
    'MALFORMED',
  );
  t.same(parseSignatureFileName(`sample.txt.${id}.minisig`), { fileName: 'sample.txt', keyId: id });
  t.same(parseSignatureFileName('sample.txt.minisig'), { fileName: 'sample.txt', keyId: undefined });
  t.same(parseSignatureFileName('delta/1-2.hwld.minisig'), { fileName: 'delta/1-2.hwld', keyId: undefined });
  t.equal(parseSignatureFileName('sample.txt'), undefined);
  t.equal(parseSignatureFileName('.minisig'), undefined);
  for (const name of ['index.hwl', 'full/1.hwl', 'delta/1-2.hwld']) {
    for (const k of [undefined, id])
      t.same(parseSignatureFileName(signatureFileName(name, k)), { fileName: name, keyId: k });
  }
});

t.test('a secret key built from parts checks its public half', async (t) => {
  const payload = Buffer.from(fixture('alice.key').toString('latin1').split('\n')[1] ?? '', 'base64');
  const keyNum = payload.subarray(54, 62);
  const seed = payload.subarray(62, 94);
  const sk = new MinisignSecretKey(keyNum, seed, payload.subarray(94, 126));
  t.equal(sign(SAMPLE, sk, TC), ALICE_SIG.toString('latin1'));
  t.equal(
    codeOf(() => new MinisignSecretKey(keyNum, seed, new Uint8Array(32))),
    'KEY_INVALID',
  );
  t.equal(
    codeOf(() => new MinisignSecretKey(keyNum.subarray(1), seed)),
    'KEY_INVALID',
  );
});
