import { chmodSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { generateKeyPair, generateListKey, publicKeyToString, serializeListKey } from '@hashwall/format';
import t from 'tap';

import { ConfigError, effectiveConfig, loadSettings, settingsFromYaml } from '../dist/config/load.js';
import { parseCidr, parseHostPort } from '../dist/util/net.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function problems(yaml: string, dir = tmpdir()): string[] {
  try {
    settingsFromYaml(yaml, dir);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

t.test('an empty file gives the documented defaults, frozen', async (t) => {
  const s = settingsFromYaml('', '/etc/hashwall');
  t.same(s.config.listen, ['127.0.0.1:53', '[::1]:53']);
  t.equal(s.config.blocking.mode, 'nxdomain');
  t.equal(s.config.blocking.edeCode, 16);
  t.equal(s.config.cache.serveStale, true);
  t.ok(s.config.access.allow.includes('10.0.0.0/8'), 'private ranges are allowed by default');
  t.notOk(s.config.access.allow.includes('0.0.0.0/0'), 'not an open resolver');
  t.equal(s.config.stateDir, '/var/lib/hashwall');
  t.ok(Object.isFrozen(s.config) && Object.isFrozen(s.config.cache) && Object.isFrozen(s.config.listen));
});

t.test('the example config in examples/ is valid', async (t) => {
  const s = loadSettings(join(root, 'examples', 'hashwalld.yaml'));
  t.equal(s.config.upstream.timeoutMs, 1500);
});

t.test('unknown keys, wrong types and impossible values name the key path', async (t) => {
  t.same(problems('listn: [127.0.0.1:53]'), ['listn: unknown key']);
  t.same(problems('cache:\n  maxEntires: 5'), ['cache.maxEntires: unknown key']);
  t.match(problems('cache:\n  maxEntries: lots'), [/^cache\.maxEntries: .*number/]);
  t.match(problems('upstream:\n  timeoutMs: -5'), [/^upstream\.timeoutMs: /]);
  t.match(problems('listen: ["localhost:53"]'), [/^listen\.0: .*not an IP address/]);
  t.match(problems('listen: ["127.0.0.1:99999"]'), [/^listen\.0: .*port/]);
  t.match(problems('access:\n  allow: [10.0.0.1/8]'), [/^access\.allow\.0: .*host bits/]);
  t.match(problems('blocking:\n  mode: sinkhole'), [/^blocking\.mode: /]);
  t.match(problems('blocking:\n  edeCode: 18'), [/^blocking\.edeCode: /]);
  t.match(problems('blocking:\n  mode: stop-page'), [/^blocking\.stopPageIpv4: .*stop page address/]);
  t.match(problems('a: 1\na: 2'), [/^\(YAML\) .*[Mm]ap keys must be unique/]);
  t.equal(problems('listn: 1\ncache:\n  maxEntries: x').length, 2, 'all problems at once');
});

t.test('lists: keys, thresholds, schedules and hash key files are checked at start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hw-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = generateKeyPair();
  const pub = publicKeyToString(key.publicKey);
  writeFileSync(join(dir, 'demo.key'), serializeListKey(generateListKey('demo-2026a')));
  chmodSync(join(dir, 'demo.key'), 0o600);
  const list = (extra: string) =>
    `lists:\n  - id: demo\n    mirrors: [file:///srv/demo/]\n    keys: [${pub}]\n${extra}`;
  const ok = settingsFromYaml(list('    hashKeyFile: demo.key\n'), dir);
  t.equal(ok.lists[0]?.listKey?.id, 'demo-2026a');
  t.equal(ok.lists[0]?.trust.get('demo')?.threshold, 1);
  t.same(JSON.stringify(effectiveConfig(ok)).includes(pub), true, 'public keys are not secret');
  chmodSync(join(dir, 'demo.key'), 0o644);
  t.match(problems(list('    hashKeyFile: demo.key\n'), dir), [/^lists\.0\.hashKeyFile: .*chmod 600/]);
  t.match(problems(list('    threshold: 2\n')), [/^lists\.0\.threshold: /]);
  t.match(problems(list('    schedule: every minute\n')), [/^lists\.0\.schedule: /]);
  t.match(problems(`lists:\n  - id: demo\n    mirrors: [ftp://x.example/]\n    keys: [${pub}]\n`), [
    /^lists\.0\.mirrors\.0: /,
  ]);
  t.match(problems(`lists:\n  - id: demo\n    mirrors: [file:///x/]\n    keys: [RWQnotakey]\n`), [
    /^lists\.0\.keys\.0: /,
  ]);
  t.match(problems(`lists:\n  - id: Demo\n    mirrors: [file:///x/]\n    keys: [${pub}]\n`), [/^lists\.0\.id: /]);
  const inline = settingsFromYaml(list(`    hashKey: { id: demo-2026a, key: "${'ab'.repeat(32)}" }\n`), dir);
  t.notMatch(JSON.stringify(effectiveConfig(inline)), /abab/, 'the inline hash key is masked in the effective config');
});

t.test('host:port and network syntax', async (t) => {
  t.same(parseHostPort('[::1]:5353', 53), { host: '::1', port: 5353, family: 6 });
  t.same(parseHostPort('::1', 53), { host: '::1', port: 53, family: 6 });
  t.same(parseHostPort('192.0.2.1', 53), { host: '192.0.2.1', port: 53, family: 4 });
  t.throws(() => parseHostPort('[192.0.2.1]:53', 53));
  t.same(parseCidr('fc00::/7'), { address: 'fc00::', prefix: 7, family: 6 });
  t.throws(() => parseCidr('fc00::1/7'));
  t.throws(() => parseCidr('10.0.0.0/33'));
});

t.test('DNS sections: upstream.tcpTimeoutMs has a default and bounds', async (t) => {
  t.equal(settingsFromYaml('', '/etc/hashwall').config.upstream.tcpTimeoutMs, 3000);
  t.equal(settingsFromYaml('upstream:\n  tcpTimeoutMs: 800\n', '/etc/hashwall').config.upstream.tcpTimeoutMs, 800);
  t.match(problems('upstream:\n  tcpTimeoutMs: 10'), [/^upstream\.tcpTimeoutMs: /]);
});

t.test('readiness.requireLists names configured lists, or says all or none', async (t) => {
  t.equal(settingsFromYaml('', tmpdir()).config.readiness.requireLists, 'none', 'none by default');
  t.same(problems('readiness: { requireLists: all }'), []);
  t.same(problems('readiness: { requireLists: [nope] }'), ['readiness.requireLists.0: no list "nope" is configured']);
  t.match(problems('readiness: { requireLists: some }'), [/^readiness\.requireLists/]);
});

t.test('upstream.probe: a host name or the root, a known type', async (t) => {
  const p = settingsFromYaml('', tmpdir()).config.upstream.probe;
  t.same(p, { name: '.', type: 'NS', intervalMs: 2000 });
  t.same(problems('upstream: { probe: { name: a.example.test, type: A, intervalMs: 500 } }'), []);
  t.match(problems('upstream: { probe: { name: "not a name" } }'), [/^upstream\.probe\.name/]);
  t.match(problems(`upstream: { probe: { name: ${'a'.repeat(64)}.test } }`), [/^upstream\.probe\.name/]);
  t.match(problems('upstream: { probe: { type: ANY } }'), [/^upstream\.probe\.type/]);
});
