// KEYRING files (SPEC.md 5): the golden vectors, round trips, the stock minisign binary, and the index's keyring
// check (SPEC.md 5.3) through the client's own poll.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import t from 'tap';

import { FormatError } from '../dist/errors.js';
import { formatTime, parseTime } from '../dist/header.js';
import {
  checkIndexKeyring,
  keyringPath,
  keyringTrustStore,
  keyringTrustedComment,
  parseKeyring,
  serializeKeyring,
  type Keyring,
} from '../dist/keyring.js';
import { acceptKeyring, currentKeyringTrust, followKeyrings } from '../dist/keyring-walk.js';
import { TrustStore, publicKeyToString, sign, verifySignature } from '../dist/minisign.js';
import { buildRelease } from '../dist/publish.js';
import { poll } from '../dist/release.js';
import { listOf } from './codec-helpers.ts';
import {
  FIXTURE_ANCHOR,
  K0,
  KEYS,
  MANIFEST,
  SIGNERS,
  fixtureKeyPair,
  fixturePublicKey,
  keyringFixture,
  keyringOf,
} from './keyring-helpers.ts';
import { MemorySource, NOW } from './release-helpers.ts';
import { needTool } from '../../test/helpers/tools.ts';

t.test('the golden keyrings parse to what fixtures.json says, and serialize back byte for byte', async (t) => {
  for (const [path, want] of Object.entries(MANIFEST.keyrings)) {
    const bytes = keyringFixture(path);
    const k = parseKeyring(bytes);
    t.same(
      {
        version: k.header.version,
        created: formatTime(k.header.created),
        expires: formatTime(k.header.expires),
        rootThreshold: k.header.rootThreshold,
        signThreshold: k.header.signThreshold,
      },
      {
        version: want.version,
        created: want.created,
        expires: want.expires,
        rootThreshold: want.rootThreshold,
        signThreshold: want.signThreshold,
      },
      path,
    );
    t.same(
      k.roots.map((r) => r.keyId),
      want.roots.map((n) => MANIFEST.keys[n]!.keyId),
      `${path}: roots in file order`,
    );
    t.same(
      k.signKeys.map((r) => r.keyId),
      want.sign.map((n) => MANIFEST.keys[n]!.keyId),
    );
    t.equal(keyringTrustedComment(k.header), want.trustedComment);
    t.equal(Buffer.compare(serializeKeyring(k), bytes), 0, `${path}: the one byte form`);
    t.equal(keyringPath(k.header.version), path);
  }
});

t.test('the golden chain walks from the anchor: signatures made by minisign -S -H verify with ours', async (t) => {
  const src = new MemorySource();
  for (const name of ['keyring/1.hwk', 'keyring/1.hwk.minisig', 'keyring/2.hwk', 'keyring/2.hwk.minisig']) {
    src.files.set(name, keyringFixture(name));
  }
  src.files.set('keyring/2.hwk.62697BC3A43F6626.minisig', keyringFixture('keyring/2.hwk.62697BC3A43F6626.minisig'));
  const now = parseTime('2027-02-01T00:00:00Z', 'now');
  const walk = await followKeyrings({ source: src, anchor: FIXTURE_ANCHOR, now });
  t.equal(walk.error, undefined);
  t.equal(walk.complete, true);
  t.same(
    walk.accepted.map((a) => a.keyring.header.version),
    [1, 2],
  );
  const trust = currentKeyringTrust(walk, now);
  t.same(
    trust.get('demo')?.keys.map((k) => k.keyId),
    [MANIFEST.keys['sign-b']!.keyId],
  );
  t.equal(trust.get('demo')?.keyring, 2);
  // Without root-b's signature, version 2 has only one of its own two roots.
  src.files.delete('keyring/2.hwk.62697BC3A43F6626.minisig');
  const short = await followKeyrings({ source: src, anchor: FIXTURE_ANCHOR, now });
  t.equal(short.error?.code, 'KEYRING_SIGNATURE');
  t.equal((short.error?.cause as FormatError).code, 'THRESHOLD_NOT_MET');
  t.same(
    short.accepted.map((a) => a.keyring.header.version),
    [1],
  );
});

t.test('round trip: parse(serialize(k)) is k and serializing again gives the same bytes', async () => {
  const keys = fc.uniqueArray(fc.integer({ min: 0, max: KEYS.length - 1 }), { minLength: 2, maxLength: 10 });
  fc.assert(
    fc.property(
      keys,
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 400 * 86400 }),
      fc.integer({ min: 1, max: 1000 }),
      (ids, nr, ts, validity, version) => {
        const roots = ids.slice(0, Math.min(nr, ids.length - 1, 8)).map((i) => KEYS[i]!);
        const signers = ids.slice(roots.length, roots.length + 8).map((i) => KEYS[i]!);
        const k = keyringOf(version, roots, Math.min(ts, roots.length), {
          signKeys: signers,
          signThreshold: Math.min(ts, signers.length),
          created: K0,
          expires: K0 + validity,
        });
        const bytes = serializeKeyring(k);
        const back = parseKeyring(bytes);
        if (Buffer.compare(serializeKeyring(back), bytes) !== 0) return false;
        const sorted = (ks: readonly { keyId: string }[]): string[] =>
          ks.map((x) => publicKeyToString(x as never)).sort();
        return (
          JSON.stringify(back.header) === JSON.stringify(k.header) &&
          JSON.stringify(sorted(back.roots)) === JSON.stringify(sorted(k.roots)) &&
          JSON.stringify(sorted(back.signKeys)) === JSON.stringify(sorted(k.signKeys))
        );
      },
    ),
    { numRuns: 200 },
  );
});

t.test('serializeKeyring sorts each group and keeps x- keys in order', async (t) => {
  const k: Keyring = {
    ...keyringOf(3, [KEYS[0]!, KEYS[1]!, KEYS[2]!], 2),
    header: {
      ...keyringOf(3, [KEYS[0]!], 1).header,
      rootThreshold: 2,
      extensions: [['x-note', 'rotation after review']],
    },
  };
  const text = serializeKeyring(k).toString('latin1');
  const lines = text.split('\n\n')[1]!.trimEnd().split('\n');
  const roots = lines.filter((l) => l.startsWith('root '));
  t.same(roots, [...roots].sort());
  t.match(text, /\nsign-threshold: 1\nx-note: rotation after review\n\n/);
  t.same(parseKeyring(Buffer.from(text, 'latin1')).header.extensions, [['x-note', 'rotation after review']]);
});

t.test('serializeKeyring refuses what parseKeyring would refuse', async (t) => {
  const base = keyringOf(1, [KEYS[0]!], 1);
  t.throws(() => serializeKeyring({ ...base, header: { ...base.header, version: 0 } }), RangeError);
  t.throws(() => serializeKeyring({ ...base, header: { ...base.header, rootThreshold: 2 } }), RangeError);
  t.throws(() => serializeKeyring({ ...base, signKeys: [KEYS[0]!.publicKey] }), RangeError, 'a root as signing key');
  t.throws(() => serializeKeyring({ ...base, roots: KEYS.slice(0, 9).map((k) => k.publicKey) }), RangeError);
  t.throws(
    () => serializeKeyring({ ...base, header: { ...base.header, expires: base.header.created + 401 * 86400 } }),
    FormatError,
  );
});

function runMinisign(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('minisign', args, { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(err.message, { cause: err }));
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

t.test(
  'interop: a keyring signed by us verifies with minisign -V -H; one signed by minisign -S -H with ours',
  { skip: needTool('minisign') },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hashwall-keyring-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const rootA = fixtureKeyPair('root-a');
    const k = keyringOf(1, [rootA], 1, { signKeys: [fixtureKeyPair('sign-a')] });
    const bytes = serializeKeyring(k);
    const comment = keyringTrustedComment(k.header);
    writeFileSync(join(dir, '1.hwk'), bytes);
    writeFileSync(join(dir, '1.hwk.minisig'), sign(bytes, rootA, comment));
    const ok = await runMinisign(['-V', '-H', '-m', join(dir, '1.hwk'), '-P', MANIFEST.keys['root-a']!.publicKey]);
    t.equal(ok.code, 0, ok.stderr);
    t.match(ok.stdout, `Trusted comment: ${comment}`);

    // The other way: minisign signs a keyring we serialized; the walk accepts it.
    writeFileSync(join(dir, 'root-a.key'), keyringFixture('root-a.key'), { mode: 0o600 });
    const made = await runMinisign([
      '-S',
      '-H',
      '-s',
      join(dir, 'root-a.key'),
      '-m',
      join(dir, '1.hwk'),
      '-x',
      join(dir, 'by-minisign.minisig'),
      '-t',
      comment,
    ]);
    t.equal(made.code, 0, made.stderr);
    const sig = execFileSync('cat', [join(dir, 'by-minisign.minisig')]);
    const accepted = acceptKeyring(FIXTURE_ANCHOR, { bytes, signatures: [sig] }, K0 + 86400);
    t.equal(accepted.keyring.header.version, 1);
    t.equal(verifySignature(bytes, sig, fixturePublicKey('root-a')).trustedComment, comment);
  },
);

t.test(
  'checkIndexKeyring: equal passes, lower is ROLLBACK, higher KEYRING_WITHHELD, absent KEYRING_REQUIRED',
  async (t) => {
    const policy = keyringTrustStore(keyringOf(3, [KEYS[0]!], 1)).get('demo');
    t.doesNotThrow(() => checkIndexKeyring({ keyring: 3 }, policy));
    t.throws(() => checkIndexKeyring({ keyring: 2 }, policy), { code: 'ROLLBACK' });
    t.throws(() => checkIndexKeyring({ keyring: 4 }, policy), { code: 'KEYRING_WITHHELD' });
    t.throws(() => checkIndexKeyring({}, policy), { code: 'KEYRING_REQUIRED' });
    // A list trusted by plain signing keys ignores the line (SPEC.md 5).
    const plain = new TrustStore([['demo', { keys: [KEYS[1]!.publicKey], threshold: 1 }]]).get('demo');
    t.doesNotThrow(() => checkIndexKeyring({ keyring: 9 }, plain));
    t.doesNotThrow(() => checkIndexKeyring({}, plain));
    t.throws(() => new TrustStore([['demo', { keys: [KEYS[1]!.publicKey], threshold: 1, keyring: 0 }]]), {
      code: 'MALFORMED',
    });
  },
);

/** A release of serial 1 signed by `signers`, its index naming `keyring` (or none). */
function release(signers: typeof SIGNERS, keyring: number | undefined): MemorySource {
  const src = new MemorySource();
  const { files } = buildRelease({
    full: listOf(1, [
      [1, 0],
      [2, 1],
    ]),
    bases: [],
    seq: 1,
    created: NOW - 60,
    expires: NOW + 86400,
    minPoll: 900,
    signers,
    ...(keyring === undefined ? {} : { keyring }),
  });
  for (const [p, b] of files) src.files.set(p, b);
  return src;
}

t.test('a poll under a keyring: the index must name it and be signed by its sign keys', async (t) => {
  const k2 = keyringOf(2, [KEYS[0]!], 1, { signKeys: [SIGNERS[1]!, SIGNERS[2]!], signThreshold: 2 });
  const trust = keyringTrustStore(k2);
  const ctx = (source: MemorySource) => ({ source, trust, listId: 'demo', now: NOW });
  const good = await poll(ctx(release([SIGNERS[1]!, SIGNERS[2]!], 2)));
  t.equal(good.kind, 'updated');
  await t.rejects(poll(ctx(release([SIGNERS[1]!, SIGNERS[2]!], 1))), { code: 'ROLLBACK' });
  await t.rejects(poll(ctx(release([SIGNERS[1]!, SIGNERS[2]!], undefined))), { code: 'KEYRING_REQUIRED' });
  await t.rejects(poll(ctx(release([SIGNERS[1]!], 2))), { code: 'THRESHOLD_NOT_MET' }, 'each key counted once');
  // Signed by the keys of a keyring the mirror does not serve: refused, and named for what it is.
  const withheld = poll(ctx(release([SIGNERS[0]!], 3)));
  await t.rejects(withheld, { code: 'KEYRING_WITHHELD' });
  const failure = await withheld.then(
    () => undefined,
    (e: FormatError) => e,
  );
  t.equal((failure?.cause as FormatError | undefined)?.code, 'UNTRUSTED_KEY');
  // The same index naming the current keyring is an ordinary signature failure.
  await t.rejects(poll(ctx(release([SIGNERS[0]!], 2))), { code: 'UNTRUSTED_KEY' });
});
