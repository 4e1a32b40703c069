// The release log of a list anchored on root keys: after a signing-key rotation the log holds indexes signed under
// older keyrings, and `verify --root ... --log` checks each leaf under the keyring it names (the walk's), not the
// current one, whose keys never signed them. Real parts: the CLI, one hashwall-witness process, the release
// directory and a static HTTP server.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { parseIndex } from '@hashwall/format';
import t from 'tap';

import { newWitness, startWitness } from '../../witness/test/helpers.ts';
import { NOW, buildFull, cli, staticServer } from './helpers.ts';
import { init, next, ok, publishKeyring, pubs, setup, signDraft, type Ring } from './keyring-helpers.ts';

const ORIGIN = 'lists.example/demo';

/** Builds and publishes `serial` signed by `key`, logged. No deltas: a delta's base FULL signed under an older
 * keyring is what `verify` reports apart (docs/maintainers.md, "Rotating a signing key"). */
async function publishLogged(t: Parameters<typeof ok>[0], w: Ring, serial: number, key: string, config: string) {
  writeFileSync(w.source, `${readFileSync(w.source, 'utf8')}domain added-${serial}.example\n`);
  const full = await buildFull(t, w.dir, w.source, w.listKey, serial, join(w.dir, `f${serial}.hwl`));
  const args = ['publish', full, '--dir', w.rel, '--key', `${w.k(key)}.key`, '--deltas', '0'];
  return ok(t, [...args, '--now', NOW, '--log', config]);
}

t.test('after a rotation, verify checks each log leaf under the keyring it names', async (t) => {
  const w = await setup(t, ['root1', 'sign1', 'sign2']);
  await ok(t, ['keygen', '--log-key', '--origin', ORIGIN, '--out', join(w.dir, 'log')]);
  const logVkey = readFileSync(join(w.dir, 'log.vkey'), 'utf8').trim();
  const witness = await newWitness(t, 'witness.example/w1', [{ origin: ORIGIN, vkey: logVkey }]);
  const running = await startWitness(t, witness.config);
  const config = join(w.dir, 'log.yaml');
  writeFileSync(config, `key: log.skey\nwitnesses:\n  - url: ${running.url}\n    key: ${witness.vkey}\nthreshold: 1\n`);

  await init(t, w, ['root1'], 1, ['sign1']);
  await publishLogged(t, w, 1, 'sign1', config);
  // Keyring 2 replaces sign1 by sign2 (a revocation): sign1's signatures no longer count for a new index.
  const d2 = await next(t, w, 2, [...pubs(w, '--sign', ['sign2']), '--sign-threshold', '1']);
  await signDraft(t, w, d2, ['root1']);
  t.equal((await publishKeyring(d2, w)).code, 0);
  await publishLogged(t, w, 2, 'sign2', config);
  const index = parseIndex(readFileSync(join(w.rel, 'index.hwl'))).header;
  t.match(index, { keyring: 2, logIndex: 1 }, 'the second leaf is under keyring 2');

  const url = await staticServer(t, w.rel);
  const args = ['verify', url, ...pubs(w, '--root', ['root1']), '--root-threshold', '1', '--now', NOW];
  const v = await cli([...args, '--log', config]);
  t.equal(v.code, 0, v.stdout + v.stderr);
  t.match(v.stdout, /ok\s+keyring\/2\.hwk/);
  t.match(v.stdout, /ok\s+log leaves: 2 indexes of list demo, signed, in order/);
  t.notMatch(v.stdout, /FAIL/);

  // The leaf signed under keyring 1 does not verify under keyring 2's keys: that is what the audit must not do.
  const plain = await cli(['verify', url, '--pub', `${w.k('sign2')}.pub`, '--now', NOW, '--log', config]);
  t.equal(plain.code, 1, 'checked under the current signing key alone, the first leaf fails');
  t.match(plain.stdout, /FAIL\s+log leaf 0/);
});
