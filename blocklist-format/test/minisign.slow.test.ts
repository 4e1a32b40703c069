// minisign's real scrypt cost (about 1 GiB of memory and seconds of CPU per key, by design), both ways: our reader
// opens a key the stock minisign encrypted, and minisign opens one we encrypted. minisign.test.ts checks the rest
// with libsodium's cheaper limits.
import { readFileSync } from 'node:fs';

import t from 'tap';

import { minisign, needTool } from '../../test/helpers/tools.ts';
import {
  generateKeyPair,
  parseSecretKeyFile,
  samePublicKey,
  serializeSecretKeyFile,
  sign,
  verifySignature,
} from '../dist/minisign.js';
import { SAMPLE, TC, fixture, keyInfo, manifest, pub, put } from './minisign-helpers.ts';

const minisignMissing = needTool('minisign');

t.test(
  'default scrypt cost: opens minisign`s password-protected key, and minisign opens ours',
  { skip: minisignMissing, timeout: 120_000 },
  async (t) => {
    const opened = parseSecretKeyFile(fixture('locked.key'), { password: manifest.password });
    t.equal(opened.encrypted, true);
    t.equal(opened.secretKey.keyId, keyInfo('locked').keyId);
    t.ok(samePublicKey(opened.secretKey.publicKey, pub('locked')));
    t.equal(sign(SAMPLE, opened.secretKey, TC), fixture('sample.txt.locked.minisig').toString('latin1'));

    const sk = generateKeyPair();
    const text = serializeSecretKeyFile(sk, { password: 'default-cost' });
    const payload = Buffer.from(text.split('\n')[1] ?? '', 'base64');
    t.equal(payload.readBigUInt64LE(38), 33554432n, 'opslimit SENSITIVE');
    t.equal(payload.readBigUInt64LE(46), 1073741824n, 'memlimit SENSITIVE');
    const keyPath = put('default.key', text);
    const m = put('default.txt', SAMPLE);
    const run = await minisign(['-S', '-H', '-s', keyPath, '-m', m, '-t', TC], 'default-cost\n');
    t.equal(run.code, 0, run.stderr);
    t.equal(verifySignature(SAMPLE, readFileSync(`${m}.minisig`), sk.publicKey).trustedComment, TC);
  },
);
