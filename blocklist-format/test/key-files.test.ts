// keyFileKind: each kind of key file is told apart from the others (the golden minisign files of fixtures/, made by
// the stock minisign, and keys made here), an encrypted secret key without its password, and anything else is
// "unknown" without an exception.
import { readFileSync } from 'node:fs';

import t from 'tap';

import { keyFileKind } from '../dist/key-files.js';
import { generateListKey, serializeListKey } from '../dist/hash.js';
import { generateKeyPair, serializePublicKeyFile, serializeSecretKeyFile } from '../dist/index.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../../fixtures/minisign/${name}`, import.meta.url));

t.test('tells a list hash key, a public key and a secret key apart', async (t) => {
  t.equal(keyFileKind(Buffer.from(serializeListKey(generateListKey('demo-2026a')))), 'list-key');
  t.equal(keyFileKind(fixture('alice.pub')), 'public-key', "minisign's own .pub");
  t.equal(keyFileKind(fixture('alice.key')), 'secret-key', "minisign's own unencrypted .key");
  t.equal(keyFileKind(fixture('locked.key')), 'secret-key', 'an encrypted .key, without its password');
  const k = generateKeyPair();
  t.equal(keyFileKind(Buffer.from(serializePublicKeyFile(k.publicKey))), 'public-key');
  t.equal(keyFileKind(Buffer.from(serializeSecretKeyFile(k))), 'secret-key');
});

t.test('anything else is unknown, never an exception', async (t) => {
  for (const text of ['', 'hello\n', 'untrusted comment: x\nRWQ\n', '\u0000\u00ff', 'hwl1-list-key\n'.repeat(200)]) {
    t.equal(keyFileKind(Buffer.from(text, 'latin1')), 'unknown', JSON.stringify(text.slice(0, 20)));
  }
});
