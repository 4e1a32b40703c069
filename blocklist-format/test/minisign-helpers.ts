/** The minisign fixtures (keys, signatures and their manifest, made by the stock minisign) and a temp folder. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import {
  parsePublicKeyFile,
  parseSecretKeyFile,
  type MinisignPublicKey,
  type MinisignSecretKey,
} from '../dist/minisign.js';

const FIXTURES = new URL('../../fixtures/minisign/', import.meta.url);
export const fixture = (name: string): Buffer => readFileSync(new URL(name, FIXTURES));

interface Manifest {
  password: string;
  keys: Record<string, { keyId: string; publicKey: string; encrypted: boolean }>;
  trustedComment: string;
}
export const manifest = JSON.parse(fixture('fixtures.json').toString('utf8')) as Manifest;
export const keyInfo = (name: string): { keyId: string; publicKey: string; encrypted: boolean } => {
  const k = manifest.keys[name];
  if (k === undefined) throw new Error(`fixture key ${name} missing`);
  return k;
};
export const TC = manifest.trustedComment;
export const SAMPLE = fixture('sample.txt');
export const pub = (name: string): MinisignPublicKey => parsePublicKeyFile(fixture(`${name}.pub`)).publicKey;
export const sec = (name: string): MinisignSecretKey => parseSecretKeyFile(fixture(`${name}.key`)).secretKey;

const work = mkdtempSync(join(tmpdir(), 'hashwall-minisign-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
let seq = 0;

/** Writes a file into the test file's temp folder (removed at its end) and returns its path. */
export function put(name: string, data: string | Uint8Array): string {
  const path = join(work, `${seq++}-${name}`);
  writeFileSync(path, data);
  return path;
}

/** The path `put` would give a file named `name` that something else writes. */
export function workPath(name: string): string {
  return join(work, `${seq++}-${name}`);
}
