// Test helpers for the trust tests of the list sync: a release directory a maintainer runs with the real signer
// (its library, the code behind `hashwall-signer keyring init|next|sign|publish` and `publish`), keyed by names
// ("r0", "s1"), and a way to put on the mirror what the signer would refuse to write (a keyring signed by the wrong
// roots, an index signed by a revoked key), as a broken or hostile mirror serves it.
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  buildRelease,
  generateKeyPair,
  keyringPath,
  keyringTrustedComment,
  parseKeyring,
  publicKeyToString,
  serializeFull,
  serializeKeyring,
  sign,
  signatureFileName,
  type FullList,
  type Keyring,
  type ListKey,
  type MinisignSecretKey,
} from '@hashwall/format';
// The signer has no package entry point (it is a command): its library, as the demo loads it.
import { addKeyring, draftKeyring, publish, type LogConfig } from '../../../signer/dist/index.js';

import { plainNode } from '../../../test/helpers/tools.ts';
import { DAY, T0, fullOf } from './helpers.ts';

/** The maintainer's clock in these tests: an hour after T0 (the daemon's test Clock starts there too). */
export const NOW = T0 + 3600;
/** NOW as the signer's `--now` takes it. */
export const NOW_ISO = new Date(NOW * 1000).toISOString().replace('.000Z', 'Z');

/** Runs `node file ...args` (a built command) to its end, within 60 s: its exit code and output. */
export function runNode(
  file: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(...plainNode(file, args), { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

export class Maintainer {
  readonly dir: string;
  readonly listKey: ListKey;
  readonly keys = new Map<string, MinisignSecretKey>();
  /** The keyring versions written so far (the signer's or by hand), newest last. */
  readonly keyrings: Keyring[] = [];
  log: LogConfig | undefined;

  constructor(dir: string, listKey: ListKey, names: readonly string[]) {
    this.dir = dir;
    this.listKey = listKey;
    mkdirSync(dir, { recursive: true });
    for (const n of names) this.keys.set(n, generateKeyPair());
  }

  key(name: string): MinisignSecretKey {
    const k = this.keys.get(name);
    if (!k) throw new Error(`no key ${name}`);
    return k;
  }

  /** The `RW...` public keys of `names`, as an ISP configures them. */
  pubs(names: readonly string[]): string[] {
    return names.map((n) => publicKeyToString(this.key(n).publicKey));
  }

  /** A draft of the next keyring version (the signer's `keyring init` or `keyring next`): roots and signing keys. */
  draft(
    roots: readonly string[],
    rootThreshold: number,
    signKeys: readonly string[],
    signThreshold = 1,
    validitySeconds?: number,
  ): Keyring {
    const prev = this.keyrings.at(-1);
    return draftKeyring({
      ...(validitySeconds === undefined ? {} : { validitySeconds }),
      listId: 'demo',
      version: (prev?.header.version ?? 0) + 1,
      roots: roots.map((n) => this.key(n).publicKey),
      rootThreshold,
      signKeys: signKeys.map((n) => this.key(n).publicKey),
      signThreshold,
      created: T0 - DAY,
      ...(prev ? { previous: { roots: prev.roots, rootThreshold: prev.header.rootThreshold } } : {}),
    });
  }

  /** Each named root holder signs the draft (`keyring sign`); the signature texts. */
  signKeyring(k: Keyring, by: readonly string[]): Uint8Array[] {
    const bytes = serializeKeyring(k);
    return by.map((n) => Buffer.from(sign(bytes, this.key(n), keyringTrustedComment(k.header))));
  }

  /** `keyring publish`: the signer checks the draft as a daemon's walk would, and writes it. Throws if refused. */
  async publishKeyring(k: Keyring, by: readonly string[], anchor?: { roots: string[]; rootThreshold: number }) {
    const added = await addKeyring(
      this.dir,
      { bytes: serializeKeyring(k), signatures: this.signKeyring(k, by) },
      NOW,
      anchor && {
        listId: 'demo',
        roots: anchor.roots.map((n) => this.key(n).publicKey),
        rootThreshold: anchor.rootThreshold,
      },
    );
    this.keyrings.push(added.keyring);
    return added;
  }

  /**
   * Writes keyring `k` to the mirror as is, signed by `by`, bypassing the signer's checks: what a mistaken or
   * hostile mirror serves. `asVersion` files it under another version's path (a skipped or replayed version).
   */
  writeKeyringRaw(k: Keyring, by: readonly string[], asVersion = k.header.version): void {
    const path = keyringPath(asVersion);
    const bytes = serializeKeyring(k);
    mkdirSync(join(this.dir, 'keyring'), { recursive: true });
    this.signKeyring(k, by).forEach((sig, i) => {
      const name = i === 0 ? `${path}.minisig` : signatureFileName(path, this.key(by[i]!).keyId);
      writeFileSync(join(this.dir, name), sig);
    });
    writeFileSync(join(this.dir, path), bytes);
    if (asVersion === k.header.version) this.keyrings.push(parseKeyring(bytes));
  }

  /** The FULL of `serial` blocking `names` (D entries), hashed with the list key. */
  full(serial: number, names: readonly string[]): FullList {
    return fullOf(this.listKey, serial, names, { expires: T0 + 20 * DAY });
  }

  /** `hashwall-signer publish`: a new serial signed by `signers` under the current keyring (and logged, with `log`). */
  async publish(serial: number, names: readonly string[], signers: readonly string[], minPollSeconds = 900) {
    return this.publishFull(this.full(serial, names), signers, NOW, minPollSeconds);
  }

  /** `publish` on another clock (`now`, seconds): the FULL made a minute before it, valid 20 days. */
  async publishAt(serial: number, names: readonly string[], signers: readonly string[], now: number, minPoll = 900) {
    const full = fullOf(this.listKey, serial, names, { created: now - 60, expires: now + 20 * DAY });
    return this.publishFull(full, signers, now, minPoll);
  }

  private async publishFull(full: FullList, signers: readonly string[], now: number, minPollSeconds: number) {
    return publish({
      dir: this.dir,
      fullBytes: serializeFull(full),
      signers: signers.map((n) => this.key(n)),
      now,
      minPollSeconds,
      ...(this.log ? { log: this.log } : {}),
      warn: () => undefined,
    });
  }

  /**
   * An index (and its FULL) written with the format's publisher, bypassing the signer: signed by `signers` whoever
   * they are, naming keyring `keyring` (what a thief holding a revoked key would put on a mirror).
   */
  publishRaw(
    serial: number,
    names: readonly string[],
    signers: readonly string[],
    seq: number,
    keyring?: number,
  ): void {
    const { files } = buildRelease({
      full: this.full(serial, names),
      bases: [],
      seq,
      created: NOW,
      expires: NOW + 2 * DAY,
      minPoll: 900,
      signers: signers.map((n) => this.key(n)),
      ...(keyring === undefined ? {} : { keyring }),
    });
    // The index's signatures are replaced as a whole, as a publisher replaces them.
    for (const name of readdirSync(this.dir)) {
      if (name.startsWith('index.hwl.') && name.endsWith('.minisig')) rmSync(join(this.dir, name));
    }
    for (const [path, bytes] of files) {
      mkdirSync(join(this.dir, path, '..'), { recursive: true });
      writeFileSync(join(this.dir, path), bytes);
    }
  }
}
