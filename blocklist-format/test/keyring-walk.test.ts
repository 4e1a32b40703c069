// The keyring walk (SPEC.md 5.1, 5.2, 5.4), in the manner of TUF's key rotation conformance tests: each case is a
// history of root sets, thresholds and who signed each version; the walk from the anchor must end where it says.
import t from 'tap';

import { FormatError } from '../dist/errors.js';
import { keyringPath, keyringTrustStore, serializeKeyring } from '../dist/keyring.js';
import {
  MAX_KEYRING_STEPS,
  acceptKeyring,
  currentKeyringTrust,
  followKeyrings,
  keyringState,
  openStoredKeyring,
  type KeyringAnchor,
  type SignedKeyring,
} from '../dist/keyring-walk.js';
import type { MinisignSecretKey } from '../dist/minisign.js';
import { buildRelease } from '../dist/publish.js';
import { poll } from '../dist/release.js';
import type { FetchResult, GetOptions } from '../dist/source.js';
import { listOf } from './codec-helpers.ts';
import { DAY, K0, KEYS, SIGNERS, keyringOf, putKeyring, signed } from './keyring-helpers.ts';
import { MemorySource } from './release-helpers.ts';

/** One version of a history: its roots and threshold (indices into KEYS), and which KEYS signed it. */
interface Version {
  readonly roots: number[];
  readonly threshold: number;
  readonly sigs?: number[];
  /** The code the walk must stop with at this version (the last of its case). */
  readonly refused?: string;
}

const keys = (ids: readonly number[]): MinisignSecretKey[] => ids.map((i) => KEYS[i]!);
const anchorOf = (v: Version): KeyringAnchor => ({
  listId: 'demo',
  roots: keys(v.roots).map((k) => k.publicKey),
  rootThreshold: v.threshold,
});
const NOW = K0 + 100 * DAY;

// Version 0 of each case is the anchor an ISP configures; versions 1, 2, ... are published keyrings.
const CASES: Record<string, Version[]> = {
  'a 1 of 1 root replaced, the new version signed by old and new': [
    { roots: [1], threshold: 1 },
    { roots: [2], threshold: 1, sigs: [2, 1] },
    { roots: [2], threshold: 1, sigs: [2] },
  ],
  'signatures by keys that are no roots are ignored': [
    { roots: [1], threshold: 1 },
    { roots: [2], threshold: 1, sigs: [3, 2, 1, 4] },
    { roots: [2], threshold: 1, sigs: [3, 2, 4] },
  ],
  'refused: signed only by the new root': [
    { roots: [1], threshold: 1 },
    { roots: [2], threshold: 1, sigs: [2, 3, 4], refused: 'KEYRING_SIGNATURE' },
  ],
  'refused: signed only by the old root': [
    { roots: [1], threshold: 1 },
    { roots: [2], threshold: 1, sigs: [1, 3, 4], refused: 'KEYRING_SIGNATURE' },
  ],
  '1 of 1 to 2 of 3, and back to 1 of 1': [
    { roots: [1], threshold: 1 },
    { roots: [1, 2, 3], threshold: 2, sigs: [1, 3] },
    { roots: [4], threshold: 1, sigs: [2, 3, 4] },
  ],
  '3 of 5, signed by different combinations': [
    { roots: [0, 1, 2, 3, 4], threshold: 3 },
    { roots: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 2, 4] },
    { roots: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 4, 1] },
    { roots: [0, 1, 2, 3, 4], threshold: 3, sigs: [1, 2, 3] },
  ],
  '3 of 5, one root replaced': [
    { roots: [0, 1, 2, 3, 4], threshold: 3 },
    { roots: [0, 1, 3, 4, 5], threshold: 3, sigs: [0, 4, 1] },
  ],
  'refused: 3 of 5 with one root replaced, signed by only 2 of the new roots': [
    { roots: [0, 1, 2, 3, 4], threshold: 3 },
    { roots: [0, 1, 3, 4, 5], threshold: 3, sigs: [0, 2, 4], refused: 'KEYRING_SIGNATURE' },
  ],
  'refused: 3 of 5 with one root replaced, signed by only 2 of the old roots': [
    { roots: [0, 1, 2, 3, 4], threshold: 3 },
    { roots: [0, 1, 3, 4, 5], threshold: 3, sigs: [0, 4, 5], refused: 'KEYRING_SIGNATURE' },
  ],
  '3 of 5, every root replaced in one step (six signatures), then signed by the new roots alone': [
    { roots: [0, 1, 2, 3, 4], threshold: 3 },
    { roots: [5, 6, 7, 8, 9], threshold: 3, sigs: [0, 2, 4, 5, 6, 7] },
    { roots: [5, 6, 7, 8, 9], threshold: 3, sigs: [5, 6, 7] },
  ],
  'threshold raised from 1 of 3 to 2 of 3': [
    { roots: [1, 2, 3], threshold: 1 },
    { roots: [1, 2, 3], threshold: 2, sigs: [1, 2] },
  ],
  'refused: threshold raised to 2 of 3, signed by one root': [
    { roots: [1, 2, 3], threshold: 1 },
    { roots: [1, 2, 3], threshold: 2, sigs: [2], refused: 'KEYRING_SIGNATURE' },
  ],
  'threshold lowered from 2 of 3 to 1 of 3': [
    { roots: [1, 2, 3], threshold: 2 },
    { roots: [1, 2, 3], threshold: 1, sigs: [1, 2] },
    { roots: [1, 2, 3], threshold: 1, sigs: [3] },
  ],
  'refused: threshold lowered to 1 of 3, signed by one root (the old threshold is 2)': [
    { roots: [1, 2, 3], threshold: 2 },
    { roots: [1, 2, 3], threshold: 1, sigs: [1], refused: 'KEYRING_SIGNATURE' },
  ],
  '1 of 1 to 2 of 2': [
    { roots: [1], threshold: 1 },
    { roots: [1, 2], threshold: 2, sigs: [1, 2] },
  ],
  'refused: a root signed twice counts once': [
    { roots: [1, 2], threshold: 2 },
    { roots: [1, 2], threshold: 2, sigs: [1, 1], refused: 'KEYRING_SIGNATURE' },
  ],
};

for (const [name, versions] of Object.entries(CASES)) {
  t.test(name, async (t) => {
    const src = new MemorySource();
    versions.slice(1).forEach((v, i) => {
      putKeyring(src, keyringOf(i + 1, keys(v.roots), v.threshold), keys(v.sigs ?? []));
    });
    const walk = await followKeyrings({ source: src, anchor: anchorOf(versions[0]!), now: NOW });
    const last = versions[versions.length - 1]!;
    const good = last.refused === undefined ? versions.length - 1 : versions.length - 2;
    t.equal(walk.error?.code, last.refused, 'the walk stops as expected');
    t.same(
      walk.accepted.map((a) => a.keyring.header.version),
      Array.from({ length: good }, (_, i) => i + 1),
      'every version before it is accepted',
    );
    t.equal(walk.current?.keyring.header.version, good === 0 ? undefined : good, 'the current keyring');
    t.equal(walk.complete, last.refused === undefined);
    if (last.refused) t.throws(() => currentKeyringTrust(walk, NOW), { code: last.refused }, 'no index this poll');
    else t.equal(currentKeyringTrust(walk, NOW).get('demo')?.keyring, good);
  });
}

/** A chain of 1-of-1 keyrings over KEYS[0], versions 1..n, each signing key SIGNERS[0]. */
function chain(src: MemorySource, n: number, options: Parameters<typeof keyringOf>[3] = {}): void {
  for (let v = 1; v <= n; v++) putKeyring(src, keyringOf(v, [KEYS[0]!], 1, options), [KEYS[0]!]);
}
const ANCHOR: KeyringAnchor = { listId: 'demo', roots: [KEYS[0]!.publicKey], rootThreshold: 1 };

t.test('a skipped version is refused: keyring/2.hwk holding version 3 (KEYRING_VERSION)', async (t) => {
  const src = new MemorySource();
  chain(src, 1);
  const three = signed(keyringOf(3, [KEYS[0]!], 1), [KEYS[0]!]);
  src.files.set(keyringPath(2), three.bytes);
  src.files.set(`${keyringPath(2)}.minisig`, three.signatures[0]!);
  const walk = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW });
  t.equal(walk.error?.code, 'KEYRING_VERSION');
  t.equal(walk.current?.keyring.header.version, 1);
});

t.test('a replayed version is refused: keyring/3.hwk holding the bytes of version 2', async (t) => {
  const src = new MemorySource();
  chain(src, 2);
  src.files.set(keyringPath(3), src.files.get(keyringPath(2))!);
  src.files.set(`${keyringPath(3)}.minisig`, src.files.get(`${keyringPath(2)}.minisig`)!);
  const walk = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW });
  t.equal(walk.error?.code, 'KEYRING_VERSION');
  t.equal(walk.current?.keyring.header.version, 2);
});

t.test('a gap ends the walk: version 3 published without version 2 is never fetched', async (t) => {
  const src = new MemorySource();
  chain(src, 3);
  src.files.delete(keyringPath(2));
  const walk = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW });
  t.equal(walk.complete, true);
  t.equal(walk.current?.keyring.header.version, 1);
  t.notOk(src.fetched.includes(keyringPath(3)));
});

t.test('created more than 300 s ahead is NOT_YET_VALID; exactly 300 s is accepted', async (t) => {
  const k = keyringOf(1, [KEYS[0]!], 1, { created: NOW + 301 });
  t.throws(() => acceptKeyring(ANCHOR, signed(k, [KEYS[0]!]), NOW), { code: 'NOT_YET_VALID' });
  const ok = keyringOf(1, [KEYS[0]!], 1, { created: NOW + 300 });
  t.equal(acceptKeyring(ANCHOR, signed(ok, [KEYS[0]!]), NOW).keyring.header.version, 1);
});

t.test('another list-id, a wrong trusted comment, a file that does not parse', async (t) => {
  const other = keyringOf(1, [KEYS[0]!], 1, { listId: 'other' });
  t.throws(() => acceptKeyring(ANCHOR, signed(other, [KEYS[0]!]), NOW), { code: 'LIST_MISMATCH' });
  const k = keyringOf(1, [KEYS[0]!], 1);
  const wrong = signed(k, [KEYS[0]!], 'hwl1 type=keyring list=demo version=1 expires=2099-01-01T00:00:00Z');
  t.throws(() => acceptKeyring(ANCHOR, wrong, NOW), { code: 'COMMENT_MISMATCH' });
  const garbage = Buffer.from('HWL1 KEYRING\nlist-id: demo\n\n');
  const sig = signed(k, [KEYS[0]!]).files;
  t.throws(() => acceptKeyring(ANCHOR, { bytes: garbage, signatures: [...sig.values()] }, NOW), {
    code: 'KEYRING_SIGNATURE',
  });
  // Signed garbage: the signature holds, the parse refuses.
  const { sign } = await import('../dist/minisign.js');
  const sg = Buffer.from(sign(garbage, KEYS[0]!, 'hwl1 type=keyring list=demo version=1 expires=x'));
  t.throws(() => acceptKeyring(ANCHOR, { bytes: garbage, signatures: [sg] }, NOW), { code: 'MALFORMED' });
});

t.test('an expired keyring on the way is a link of the chain; the current one must not be expired', async (t) => {
  const src = new MemorySource();
  putKeyring(src, keyringOf(1, [KEYS[0]!], 1, { created: K0, expires: K0 + 10 * DAY }), [KEYS[0]!]);
  putKeyring(src, keyringOf(2, [KEYS[0]!], 1, { created: K0 + DAY, expires: K0 + 200 * DAY }), [KEYS[0]!]);
  const walk = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW });
  t.equal(walk.current?.keyring.header.version, 2, 'version 1 expired at day 10, the walk went through it');
  t.ok(currentKeyringTrust(walk, K0 + 200 * DAY - 1));
  t.throws(() => currentKeyringTrust(walk, K0 + 200 * DAY), { code: 'KEYRING_EXPIRED' }, 'at expires exactly');
  // With version 2 withdrawn from the mirror, version 1 is current and expired: fail static.
  src.files.delete(keyringPath(2));
  const stale = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW });
  t.throws(() => currentKeyringTrust(stale, NOW), { code: 'KEYRING_EXPIRED' });
});

t.test('no keyring published: the walk is complete at version 0 and no index is accepted', async (t) => {
  const walk = await followKeyrings({ source: new MemorySource(), anchor: ANCHOR, now: NOW });
  t.same([walk.complete, walk.current, walk.accepted.length], [true, undefined, 0]);
  t.throws(() => currentKeyringTrust(walk, NOW), { code: 'KEYRING_WITHHELD' });
});

t.test(`at most ${MAX_KEYRING_STEPS} steps a poll; the next walk goes on from the stored keyring`, async (t) => {
  const src = new MemorySource();
  chain(src, MAX_KEYRING_STEPS + 4);
  const first = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW });
  t.same([first.complete, first.accepted.length, first.error], [false, MAX_KEYRING_STEPS, undefined]);
  const second = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW }, first.current);
  t.same([second.complete, second.accepted.length], [true, 4]);
  t.equal(second.current?.keyring.header.version, MAX_KEYRING_STEPS + 4);
});

/** A source that fails (as a network error does) for the paths given. */
class FailingSource extends MemorySource {
  constructor(readonly failing: Set<string>) {
    super();
  }
  override async get(path: string, options: GetOptions): Promise<FetchResult> {
    if (this.failing.has(path)) throw new FormatError('FETCH_FAILED', `${path}: connection reset`);
    return super.get(path, options);
  }
}

t.test('a failed fetch is never read as "no newer keyring"', async (t) => {
  for (const failing of [keyringPath(2), `${keyringPath(2)}.minisig`, `${keyringPath(2)}.${KEYS[0]!.keyId}.minisig`]) {
    const src = new FailingSource(new Set([failing]));
    chain(src, 2);
    const walk = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW });
    t.equal(walk.error?.code, 'FETCH_FAILED', failing);
    t.equal(walk.complete, false);
    t.equal(walk.current?.keyring.header.version, 1, 'version 1 stands and is to be committed');
    t.throws(() => currentKeyringTrust(walk, NOW), { code: 'FETCH_FAILED' });
  }
});

t.test('more than 8 signature files for a keyring is TOO_LARGE', async (t) => {
  const src = new MemorySource();
  const roots = KEYS.slice(0, 8);
  const anchor: KeyringAnchor = { listId: 'demo', roots: [KEYS[9]!.publicKey], rootThreshold: 1 };
  // Eight roots of its own and the anchor's root: nine files.
  putKeyring(src, keyringOf(1, roots, 1), [KEYS[9]!, ...roots]);
  const walk = await followKeyrings({ source: src, anchor, now: NOW });
  t.equal(walk.error?.code, 'TOO_LARGE');
});

t.test('openStoredKeyring re-opens what was committed and refuses what disagrees with the state', async (t) => {
  const src = new MemorySource();
  chain(src, 2);
  const walk = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW });
  const stored = walk.current!;
  const state = keyringState(stored);
  t.same(state, { version: 2, sha256: stored.sha256 });
  const back = openStoredKeyring(ANCHOR, { bytes: stored.bytes, signatures: stored.signatures }, state);
  t.equal(back.keyring.header.version, 2);
  t.throws(() => openStoredKeyring(ANCHOR, stored, { ...state, sha256: '0'.repeat(64) }), { code: 'MALFORMED' });
  t.throws(() => openStoredKeyring(ANCHOR, stored, { ...state, version: 3 }), { code: 'MALFORMED' });
  t.throws(() => openStoredKeyring({ listId: 'other' }, stored, state), { code: 'LIST_MISMATCH' });
  t.throws(() => openStoredKeyring(ANCHOR, { bytes: stored.bytes, signatures: [] }, state), {
    code: 'KEYRING_SIGNATURE',
  });
  // The walk goes on from it as from the one it accepted.
  putKeyring(src, keyringOf(3, [KEYS[0]!], 1), [KEYS[0]!]);
  const next = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW }, back);
  t.same(
    next.accepted.map((a: SignedKeyring) => a.keyring.header.version),
    [3],
  );
});

/** A release of `serial` signed by `signers`, its index naming `keyring`, into `src`. */
function publishInto(src: MemorySource, serial: number, seq: number, signers: MinisignSecretKey[], keyring: number) {
  const { files } = buildRelease({
    full: listOf(serial, [[serial, 0]], { created: NOW - 60, expires: NOW + 7 * DAY }),
    bases: [],
    seq,
    created: NOW - 60,
    expires: NOW + DAY,
    minPoll: 900,
    signers,
    keyring,
  });
  for (const [p, b] of files) src.files.set(p, b);
}

t.test('a revoked signing key still signing: refused once the keyring that drops it is current', async (t) => {
  const src = new MemorySource();
  const stolen = SIGNERS[0]!;
  const fresh = SIGNERS[1]!;
  putKeyring(src, keyringOf(1, [KEYS[0]!], 1, { signKeys: [stolen] }), [KEYS[0]!]);
  publishInto(src, 1, 1, [stolen], 1);
  const walk1 = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW });
  const first = await poll({ source: src, trust: currentKeyringTrust(walk1, NOW), listId: 'demo', now: NOW });
  t.equal(first.kind, 'updated');
  if (first.kind !== 'updated') return;

  // The maintainer revokes the stolen key with keyring 2 and publishes under it.
  putKeyring(src, keyringOf(2, [KEYS[0]!], 1, { signKeys: [fresh] }), [KEYS[0]!]);
  const walk2 = await followKeyrings({ source: src, anchor: ANCHOR, now: NOW }, walk1.current);
  const trust = currentKeyringTrust(walk2, NOW);
  t.same(
    trust.get('demo')?.keys.map((k) => k.keyId),
    [fresh.keyId],
  );
  const ctx = { source: src, trust, listId: 'demo', now: NOW };
  // The thief signs a new serial naming the old keyring, then one naming the new keyring: both refused.
  publishInto(src, 2, 2, [stolen], 1);
  await t.rejects(poll(ctx, first.state, first.full), { code: 'UNTRUSTED_KEY' });
  publishInto(src, 2, 2, [stolen], 2);
  await t.rejects(poll(ctx, first.state, first.full), { code: 'UNTRUSTED_KEY' });
  // The maintainer's own release under keyring 2 is accepted.
  publishInto(src, 2, 2, [fresh], 2);
  const ok = await poll(ctx, first.state, first.full);
  t.equal(ok.kind, 'updated');
  // A keyring whose trust store is built directly agrees with the walk's.
  t.same(keyringTrustStore(walk2.current!.keyring).get('demo'), trust.get('demo'));
  t.equal(serializeKeyring(walk2.current!.keyring).length, walk2.current!.bytes.length);
});
