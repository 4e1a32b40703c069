// Builders for keyring tests: the golden vectors of fixtures/keyring, and keyrings made and signed in memory.
import { readFileSync } from 'node:fs';

import { keyringPath, keyringTrustedComment, serializeKeyring, type Keyring } from '../dist/keyring.js';
import { type KeyringAnchor } from '../dist/keyring-walk.js';
import {
  generateKeyPair,
  parsePublicKey,
  parseSecretKeyFile,
  type MinisignPublicKey,
  type MinisignSecretKey,
} from '../dist/minisign.js';
import { signatures } from '../dist/publish.js';
import type { MemorySource } from './release-helpers.ts';

export const KEYRING_FIXTURES = new URL('../../fixtures/keyring/', import.meta.url);

export function keyringFixture(name: string): Buffer {
  return readFileSync(new URL(name, KEYRING_FIXTURES));
}

export interface KeyringManifest {
  keys: Record<string, { keyId: string; publicKey: string }>;
  anchor: { listId: string; roots: string[]; rootThreshold: number };
  keyrings: Record<
    string,
    {
      version: number;
      created: string;
      expires: string;
      rootThreshold: number;
      signThreshold: number;
      roots: string[];
      sign: string[];
      trustedComment: string;
      signatures: Record<string, string>;
    }
  >;
}

export const MANIFEST = JSON.parse(keyringFixture('fixtures.json').toString('utf8')) as KeyringManifest;

/** A fixture key pair by name (root-a, root-b, root-c, sign-a, sign-b). */
export function fixtureKeyPair(name: string): MinisignSecretKey {
  return parseSecretKeyFile(keyringFixture(`${name}.key`)).secretKey;
}

export function fixturePublicKey(name: string): MinisignPublicKey {
  return parsePublicKey(MANIFEST.keys[name]!.publicKey);
}

/** The fixtures' anchor: root-a, 1 of 1. */
export const FIXTURE_ANCHOR: KeyringAnchor = {
  listId: 'demo',
  roots: MANIFEST.anchor.roots.map(fixturePublicKey),
  rootThreshold: MANIFEST.anchor.rootThreshold,
};

/** 2026-12-01T00:00:00Z, the fixtures' first `created`. */
export const K0 = Date.UTC(2026, 11, 1) / 1000;
export const DAY = 86400;

/** Ten key pairs to build chains from (as TUF's key rotation tests do), made once per test file. */
export const KEYS: readonly MinisignSecretKey[] = Array.from({ length: 10 }, () => generateKeyPair());
/** Signing keys, never roots. */
export const SIGNERS: readonly MinisignSecretKey[] = Array.from({ length: 3 }, () => generateKeyPair());

export function keyringOf(
  version: number,
  roots: readonly MinisignSecretKey[],
  rootThreshold: number,
  options: {
    signKeys?: readonly MinisignSecretKey[];
    signThreshold?: number;
    created?: number;
    expires?: number;
    listId?: string;
  } = {},
): Keyring {
  const created = options.created ?? K0 + version * DAY;
  return {
    header: {
      listId: options.listId ?? 'demo',
      version,
      created,
      expires: options.expires ?? created + 365 * DAY,
      rootThreshold,
      signThreshold: options.signThreshold ?? 1,
      extensions: [],
    },
    roots: roots.map((k) => k.publicKey),
    signKeys: (options.signKeys ?? [SIGNERS[0]!]).map((k) => k.publicKey),
  };
}

/** A keyring's bytes and its signatures by `signers` (the first as X.minisig, the rest as X.<KEYID>.minisig). */
export function signed(
  keyring: Keyring,
  signers: readonly MinisignSecretKey[],
  comment?: string,
): { bytes: Buffer; files: Map<string, Uint8Array>; signatures: Uint8Array[] } {
  const bytes = serializeKeyring(keyring);
  const path = keyringPath(keyring.header.version);
  const files = new Map<string, Uint8Array>();
  if (signers.length > 0) {
    for (const [name, text] of signatures(path, bytes, comment ?? keyringTrustedComment(keyring.header), signers)) {
      files.set(name, Buffer.from(text));
    }
  }
  return { bytes, files, signatures: [...files.values()] };
}

/** Puts a signed keyring into a release served from memory. */
export function putKeyring(
  source: MemorySource,
  keyring: Keyring,
  signers: readonly MinisignSecretKey[],
  comment?: string,
): void {
  const s = signed(keyring, signers, comment);
  source.files.set(keyringPath(keyring.header.version), s.bytes);
  for (const [name, bytes] of s.files) source.files.set(name, bytes);
}
