// The witness's configuration: validated at start, every problem named by its key, the key file's mode checked,
// and the shipped template valid.
import { chmodSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { NoteSecretKey } from '@hashwall/tlog';
import t from 'tap';

import { ConfigError, loadSettings, parseListen, settingsFrom } from '../dist/index.js';
import { tempDir } from './helpers.ts';

const LOG = NoteSecretKey.generate('lists.example/demo');

function withKey(t: Parameters<typeof tempDir>[0], mode = 0o600): string {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'w.key'), `${NoteSecretKey.generate('witness.example/w1').serialize()}\n`);
  chmodSync(join(dir, 'w.key'), mode);
  return dir;
}

function problems(raw: unknown, dir: string): string[] {
  try {
    settingsFrom(raw, dir, 'test.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

const good = { key: 'w.key', stateDir: 'state', logs: [{ origin: 'lists.example/demo', keys: [LOG.vkey] }] };

t.test('a valid config resolves paths from its folder and loads the keys', async (t) => {
  const dir = withKey(t);
  const s = settingsFrom(good, dir, 'test.yaml');
  t.equal(s.config.stateDir, join(dir, 'state'));
  t.equal(s.config.listen, '127.0.0.1:7380', 'the default address');
  t.equal(s.config.limits.maxBodyBytes, 65536);
  t.equal(s.logs.get('lists.example/demo')!.keys[0]!.vkey, LOG.vkey);
  t.ok(Object.isFrozen(s.config.limits));
  t.same(
    problems({ ...good, logs: [{ origin: 'go.sum database tree', keys: [LOG.vkey] }] }, dir),
    [],
    'an origin with spaces is allowed (tlog-checkpoint only recommends URLs)',
  );
});

t.test('every problem is named by its key, all at once', async (t) => {
  const dir = withKey(t);
  t.same(problems({ ...good, bogus: 1 }, dir), ['bogus: unknown key']);
  t.match(problems({ ...good, listen: 'localhost:80' }, dir), [/^listen: .*not an IP address/]);
  t.match(problems({ ...good, listen: '[192.0.2.1]:80' }, dir), [/^listen: /]);
  t.match(problems({ ...good, logs: [] }, dir), [/^logs: /]);
  t.match(problems({ ...good, logs: [{ origin: 'a', keys: ['nope'] }] }, dir), [
    /^logs\.0\.keys\.0: not an Ed25519 note key/,
  ]);
  const cosigner = NoteSecretKey.generate('w').cosigner().vkey;
  t.match(
    problems({ ...good, logs: [{ origin: 'a', keys: [cosigner] }] }, dir),
    [/^logs\.0\.keys\.0: /],
    'a cosigner key is no log key',
  );
  t.match(
    problems(
      {
        ...good,
        logs: [
          { origin: 'a', keys: [LOG.vkey] },
          { origin: 'a', keys: [LOG.vkey] },
        ],
      },
      dir,
    ),
    [/^logs\.1\.origin: "a" is configured twice/],
  );
  t.match(problems({ ...good, logs: [{ origin: ' a', keys: [LOG.vkey] }] }, dir), [
    /^logs\.0\.origin: leading or trailing space/,
  ]);
  t.match(problems({ ...good, limits: { maxBodyBytes: 10 } }, dir), [/^limits\.maxBodyBytes: /]);
  t.match(problems({ ...good, key: 'missing.key' }, dir), [/^key: cannot use .*missing\.key/]);
  const { key: _key, ...noKey } = good;
  t.match(problems(noKey, dir), [/^key: the witness key file is required/]);
  t.equal(problems({ ...good, bogus: 1, listen: 'x', logs: [] }, dir).length, 3, 'all at once');
});

t.test('a key file readable by others is refused', async (t) => {
  const dir = withKey(t, 0o644);
  t.match(problems(good, dir), [/^key: .* readable by group or others: chmod 600 it/]);
});

t.test('listen addresses are IP literals with a port', async (t) => {
  t.same(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.same(parseListen('[::1]:7380'), { host: '::1', port: 7380 });
  for (const bad of ['127.0.0.1', '::1:80', '127.0.0.1:65536', 'example.org:80', '[::1]'])
    t.throws(() => parseListen(bad), bad);
});

t.test('the config template in examples/ is valid', async (t) => {
  const dir = withKey(t);
  const template = fileURLToPath(new URL('../../examples/hashwall-witness.yaml', import.meta.url));
  copyFileSync(template, join(dir, 'witness.yaml'));
  const s = loadSettings(join(dir, 'witness.yaml'), join(dir, 'w.key'));
  t.ok(s.logs.size >= 1);
  t.throws(() => loadSettings(join(dir, 'nothing.yaml')), ConfigError);
});
