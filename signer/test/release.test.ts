// End to end with the built CLI: a sample source built, published over three serials, co-signed, heartbeated
// and checked with the stock minisign binary and with `verify` over a real HTTP server on 127.0.0.1.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { parseIndex } from '@hashwall/format';

import { needTool } from '../../test/helpers/tools.ts';
import {
  NOW,
  T0,
  cli,
  dataFiles,
  files,
  fixtureKey,
  iso,
  minisign,
  publishSerials,
  staticServer,
  world,
} from './helpers.ts';

const minisignTool = { skip: needTool('minisign') };

t.test('every file of a release verifies with minisign -V -H, and with verify over HTTP', minisignTool, async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1, 2, 3]);
  t.same(dataFiles(w.rel), [
    'delta/1-2.hwld',
    'delta/1-3.hwld',
    'delta/2-3.hwld',
    'full/1.hwl',
    'full/2.hwl',
    'full/3.hwl',
    'index.hwl',
  ]);
  const index = parseIndex(readFileSync(join(w.rel, 'index.hwl')));
  t.equal(index.header.seq, 3);
  t.equal(index.header.serial, 3);
  t.same(
    index.deltas.map((d) => d.baseSerial),
    [1, 2],
  );

  // The stock tool, on every file, with the key as minisign prints it.
  for (const f of dataFiles(w.rel)) {
    const r = await minisign(['-V', '-H', '-m', join(w.rel, f), '-P', w.alice.pubString]);
    t.equal(r.code, 0, `minisign -V -H accepts ${f}: ${r.stderr}`);
    t.match(r.stdout, /Trusted comment: hwl1 type=(full|delta|index) list=demo /, `${f}: trusted comment`);
  }

  // A second maintainer co-signs; minisign accepts their X.<KEYID>.minisig files too.
  const add = await cli(['sign', '--add', '--dir', w.rel, '--key', w.bob.key, '--pub', w.alice.pub, '--now', NOW]);
  t.equal(add.code, 0, add.stderr);
  for (const f of dataFiles(w.rel)) {
    const sig = join(w.rel, `${f}.${w.bob.keyId}.minisig`);
    if (f === 'delta/1-2.hwld') {
      t.notOk(existsSync(sig), 'a delta the index no longer names is not co-signed');
      continue;
    }
    const r = await minisign(['-V', '-H', '-m', join(w.rel, f), '-x', sig, '-P', w.bob.pubString]);
    t.equal(r.code, 0, `minisign accepts bob's signature of ${f}: ${r.stderr}`);
  }

  // The release served by a real HTTP server, checked exactly as a daemon will.
  const url = await staticServer(t, w.rel);
  const ok = await cli([
    'verify',
    url,
    '--pub',
    w.alice.pub,
    '--pub',
    w.bob.pub,
    '--threshold',
    '2',
    '--now',
    NOW,
    '--timeout-ms',
    '5000',
  ]);
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, /ok +index\.hwl: seq 3, serial 3/);
  t.match(ok.stdout, /ok +full\/3\.hwl: 16 entries/);
  t.match(ok.stdout, /ok +delta\/1-3\.hwld: applies/);
  t.match(ok.stdout, /ok +delta\/2-3\.hwld: applies/);
  t.match(ok.stdout, /verified: all 4 checks passed/);

  // A key the release is not signed by, alone: refused.
  const carol = fixtureKey(w.dir, 'carol');
  const wrong = await cli(['verify', url, '--pub', carol.pub, '--now', NOW, '--timeout-ms', '5000']);
  t.equal(wrong.code, 1);
  t.match(wrong.stdout, /FAIL +index and FULL: UNTRUSTED_KEY/);
});

t.test('verify fails with the code of each problem, and never passes a damaged release', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1, 2]);
  const verify = (...extra: string[]): ReturnType<typeof cli> =>
    cli(['verify', w.rel, '--pub', w.alice.pub, '--now', NOW, ...extra]);
  t.equal((await verify()).code, 0);

  const threshold = await cli([
    'verify',
    w.rel,
    '--pub',
    w.alice.pub,
    '--pub',
    w.bob.pub,
    '--threshold',
    '2',
    '--now',
    NOW,
  ]);
  t.equal(threshold.code, 1, 'one signature where two are required');
  t.match(threshold.stdout, /THRESHOLD_NOT_MET/);

  const late = await verify('--now', iso(T0 + 3 * 86400));
  t.equal(late.code, 1, 'past the index expiry');
  t.match(late.stdout, /EXPIRED/);

  const otherList = await verify('--list-id', 'other');
  t.equal(otherList.code, 1);
  t.match(otherList.stdout, /UNTRUSTED_KEY|LIST_MISMATCH/);

  const wrongKey = join(w.dir, 'other.listkey');
  writeFileSync(wrongKey, `hwl1-list-key\nhash-key-id: other-key\nhash-key: ${'01'.repeat(32)}\n`, { mode: 0o600 });
  const unknown = await verify('--list-key', wrongKey);
  t.equal(unknown.code, 1);
  t.match(unknown.stdout, /UNKNOWN_HASH_KEY/);

  // Damage a delta: the index and FULL still pass, the delta check fails.
  const delta = join(w.rel, 'delta/1-2.hwld');
  const good = readFileSync(delta);
  const bad = Buffer.from(good);
  bad[bad.length - 2] = bad[bad.length - 2] === 0x44 ? 0x48 : 0x44;
  writeFileSync(delta, bad);
  const r1 = await verify();
  t.equal(r1.code, 1);
  t.match(r1.stdout, /FAIL +delta\/1-2\.hwld: DIGEST_MISMATCH/);
  t.match(r1.stdout, /ok +full\/2\.hwl/);
  writeFileSync(delta, good);

  // Damage the FULL's signature.
  const sig = join(w.rel, 'full/2.hwl.minisig');
  const sigText = readFileSync(sig, 'utf8');
  writeFileSync(sig, sigText.replace('trusted comment: hwl1', 'trusted comment: hwl2'));
  const r2 = await verify();
  t.equal(r2.code, 1);
  t.match(r2.stdout, /FAIL +index and FULL: SIGNATURE_INVALID/);
  writeFileSync(sig, sigText);

  // A missing FULL.
  const missing = await cli(['verify', join(w.dir, 'nowhere'), '--pub', w.alice.pub, '--now', NOW]);
  t.equal(missing.code, 3, 'no index at all: I/O error');
  t.match(missing.stderr, /FETCH_FAILED/);
  t.equal((await verify()).code, 0, 'restored');
});

t.test('heartbeat: the same FULL, seq + 1, a new validity, and stale co-signatures removed', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1, 2]);
  const add = await cli(['sign', '--add', '--dir', w.rel, '--key', w.bob.key, '--pub', w.alice.pub, '--now', NOW]);
  t.equal(add.code, 0, add.stderr);
  const before = parseIndex(readFileSync(join(w.rel, 'index.hwl')));
  const fullBefore = readFileSync(join(w.rel, 'full/2.hwl'));
  const later = iso(T0 + 86400);
  const hb = await cli(['heartbeat', '--dir', w.rel, '--key', w.alice.key, '--now', later]);
  t.equal(hb.code, 0, hb.stderr);
  t.match(hb.stdout, /heartbeat demo serial 2 as seq 3/);
  const after = parseIndex(readFileSync(join(w.rel, 'index.hwl')));
  t.equal(after.header.seq, before.header.seq + 1);
  t.equal(after.header.serial, before.header.serial);
  t.equal(after.header.created, T0 + 86400);
  t.same(after.full, before.full, 'the same FULL, size and digest');
  t.same(after.deltas, before.deltas);
  t.ok(readFileSync(join(w.rel, 'full/2.hwl')).equals(fullBefore));
  t.notOk(existsSync(join(w.rel, `index.hwl.${w.bob.keyId}.minisig`)), "bob's signature of the old index is gone");
  t.ok(existsSync(join(w.rel, `full/2.hwl.${w.bob.keyId}.minisig`)), "bob's signatures of immutable files stay");
  const v = await cli(['verify', w.rel, '--pub', w.alice.pub, '--pub', w.bob.pub, '--now', later]);
  t.equal(v.code, 0, v.stdout);
  const v2 = await cli(['verify', w.rel, '--pub', w.alice.pub, '--pub', w.bob.pub, '--threshold', '2', '--now', later]);
  t.equal(v2.code, 1, 'threshold 2 needs bob again');
  const again = await cli(['sign', '--add', '--dir', w.rel, '--key', w.bob.key, '--pub', w.alice.pub, '--now', later]);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /1 signature\(s\) added/, 'only the index needed a new signature');
  const v3 = await cli(['verify', w.rel, '--pub', w.alice.pub, '--pub', w.bob.pub, '--threshold', '2', '--now', later]);
  t.equal(v3.code, 0, v3.stdout);

  // Two keys at once (a rotation overlap): both sign the index, old and new clients accept it.
  const both = await cli(['heartbeat', '--dir', w.rel, '--key', w.alice.key, '--key', w.bob.key, '--now', later]);
  t.equal(both.code, 0, both.stderr);
  t.ok(existsSync(join(w.rel, 'index.hwl.minisig')));
  t.ok(existsSync(join(w.rel, `index.hwl.${w.bob.keyId}.minisig`)));
  for (const pub of [w.alice.pub, w.bob.pub]) {
    t.equal((await cli(['verify', w.rel, '--pub', pub, '--now', later])).code, 0, `a client trusting only ${pub}`);
  }
});

t.test('heartbeat refuses a FULL that expired, and a release whose files changed', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1]);
  const expired = await cli(['heartbeat', '--dir', w.rel, '--key', w.alice.key, '--now', iso(T0 + 7 * 86400)]);
  t.equal(expired.code, 1);
  t.match(expired.stderr, /EXPIRED/);
  const clamped = await cli(['heartbeat', '--dir', w.rel, '--key', w.alice.key, '--now', iso(T0 + 6 * 86400)]);
  t.equal(clamped.code, 0, clamped.stderr);
  t.match(clamped.stderr, /the index expires with the FULL/);
  t.equal(parseIndex(readFileSync(join(w.rel, 'index.hwl'))).header.expires, T0 + 7 * 86400);
  appendFileSync(join(w.rel, 'full/1.hwl'), 'x');
  const changed = await cli(['heartbeat', '--dir', w.rel, '--key', w.alice.key, '--now', NOW]);
  t.equal(changed.code, 1);
  t.match(changed.stderr, /SIZE_MISMATCH/);
  const none = await cli(['heartbeat', '--dir', join(w.dir, 'empty'), '--key', w.alice.key, '--now', NOW]);
  t.equal(none.code, 3);
});

t.test('sign --add refuses a release the given keys did not sign', async (t) => {
  const w = world(t);
  await publishSerials(t, w, [1]);
  const carol = fixtureKey(w.dir, 'carol');
  const r = await cli(['sign', '--add', '--dir', w.rel, '--key', w.bob.key, '--pub', carol.pub, '--now', NOW]);
  t.equal(r.code, 1);
  t.match(r.stderr, /UNTRUSTED_KEY/);
  t.notOk(
    files(w.rel).some((f) => f.includes(w.bob.keyId)),
    'nothing signed',
  );
  const noPub = await cli(['sign', '--add', '--dir', w.rel, '--key', w.bob.key, '--now', NOW]);
  t.equal(noPub.code, 2);
  const noAdd = await cli(['sign', '--dir', w.rel, '--key', w.bob.key, '--pub', w.alice.pub]);
  t.equal(noAdd.code, 2);
  // A tampered FULL: the co-signer refuses to sign it.
  const full = join(w.rel, 'full/1.hwl');
  const bytes = readFileSync(full);
  bytes[bytes.length - 2] = bytes[bytes.length - 2] === 0x44 ? 0x48 : 0x44;
  writeFileSync(full, bytes);
  const tampered = await cli(['sign', '--add', '--dir', w.rel, '--key', w.bob.key, '--pub', w.alice.pub, '--now', NOW]);
  t.equal(tampered.code, 1);
  t.match(tampered.stderr, /DIGEST_MISMATCH/);
  t.notOk(
    files(w.rel).some((f) => f.includes(w.bob.keyId)),
    'nothing signed',
  );
});
