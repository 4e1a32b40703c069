import { chmodSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  generateKeyPair,
  generateListKey,
  publicKeyToString,
  serializeListKey,
  serializePublicKeyFile,
  serializeSecretKeyFile,
} from '@hashwall/format';
import { NoteSecretKey } from '@hashwall/tlog';
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

t.test('a value with several allowed forms says what is allowed, never a bare "Invalid input"', async (t) => {
  for (const yaml of [
    'workers: many',
    'workers: [2]',
    'blocking:\n  edeCode: 18',
    'blocking:\n  edeCode: censored',
    'metrics:\n  listen: 5',
    'stopPage:\n  listNames: {Demo: x}',
  ]) {
    const [p, ...rest] = problems(yaml);
    t.same(rest, [], yaml);
    t.notMatch(p, /Invalid input$/, yaml);
  }
  t.same(problems('workers: many'), ['workers: a whole number of processes from 1 to 256, or "auto" (one per core)']);
  t.match(problems('blocking:\n  edeCode: 18'), [/^blocking\.edeCode: one of 16 \(Censored\), 15 \(Blocked\), 17/]);
  t.match(problems('metrics:\n  listen: 5'), [/^metrics\.listen: an IP address .* or "" for no listener$/]);
  t.same(problems('lists:\n  - id: demo\n'), ['lists.0.mirrors: missing (required: array)']);
});

t.test('problems across keys are reported in the same run as the schema problems', async (t) => {
  t.same(
    problems(
      'workers: x\nblocking:\n  edeCode: 1\n  mode: stop-page\ncache:\n  minTtlSeconds: 9\n  maxTtlSeconds: 5\n',
    ),
    [
      'blocking.edeCode: one of 16 (Censored), 15 (Blocked), 17 (Filtered), or 0 for no extended error (RFC 8914 4)',
      'workers: a whole number of processes from 1 to 256, or "auto" (one per core)',
      'blocking.stopPageIpv4: mode stop-page needs at least one stop page address',
      'cache.minTtlSeconds: is above maxTtlSeconds',
    ],
  );
  t.same(
    problems('lists:\n  - id: BAD\n    mirrors: [file:///x/]\n  - id: two\n    mirrors: [file:///y/]\n'),
    [
      'lists.0.id: a list id is [a-z0-9][a-z0-9-]{0,62}',
      'lists.1.keys: at least one trusted key is needed (keys or keyFiles; or rootKeys for a keyring)',
    ],
    'a list that does not parse leaves the others checked',
  );
  t.same(problems('blocking: {mode: stop-page, nope: 1}'), [
    'blocking.nope: unknown key',
    'blocking.stopPageIpv4: mode stop-page needs at least one stop page address',
  ]);
});

t.test('lists: keys, thresholds, schedules and hash key files are checked at start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hw-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = generateKeyPair();
  const pub = publicKeyToString(key.publicKey);
  writeFileSync(join(dir, 'demo-2026a.listkey'), serializeListKey(generateListKey('demo-2026a')));
  chmodSync(join(dir, 'demo-2026a.listkey'), 0o600);
  const list = (extra: string) =>
    `lists:\n  - id: demo\n    mirrors: [file:///srv/demo/]\n    keys: [${pub}]\n${extra}`;
  const ok = settingsFromYaml(list('    hashKeyFile: demo-2026a.listkey\n'), dir);
  t.equal(ok.lists[0]?.listKey?.id, 'demo-2026a');
  t.equal(ok.lists[0]?.trust?.get('demo')?.threshold, 1);
  t.same(JSON.stringify(effectiveConfig(ok)).includes(pub), true, 'public keys are not secret');
  chmodSync(join(dir, 'demo-2026a.listkey'), 0o644);
  t.match(problems(list('    hashKeyFile: demo-2026a.listkey\n'), dir), [/^lists\.0\.hashKeyFile: .*chmod 600/]);
  t.match(problems(list('    threshold: 2\n')), [/^lists\.0\.threshold: /]);
  t.match(problems(list('    schedule: every minute\n')), [/^lists\.0\.schedule: /]);
  t.match(problems(`lists:\n  - id: demo\n    mirrors: [ftp://x.example/]\n    keys: [${pub}]\n`), [
    /^lists\.0\.mirrors\.0: /,
  ]);
  t.match(problems(`lists:\n  - id: demo\n    mirrors: [file:///x/]\n    keys: [RWQnotakey]\n`), [
    /^lists\.0\.keys\.0: /,
  ]);
  t.match(problems(`lists:\n  - id: Demo\n    mirrors: [file:///x/]\n    keys: [${pub}]\n`), [/^lists\.0\.id: /]);
  // A key of the wrong kind is named for what it is: above all the maintainer's secret signing key.
  writeFileSync(join(dir, 'maint.key'), serializeSecretKeyFile(key), { mode: 0o600 });
  writeFileSync(join(dir, 'maint.pub'), serializePublicKeyFile(key.publicKey), { mode: 0o600 });
  t.match(problems(list('    hashKeyFile: maint.key\n'), dir), [
    /^lists\.0\.hashKeyFile: .*maint\.key is a minisign SECRET signing key, which no ISP should hold: delete it .* tell the list maintainer .* the list hash key file \(NAME\.listkey\)$/,
  ]);
  t.match(problems(list('    hashKeyFile: maint.pub\n'), dir), [
    /maint\.pub is a minisign public key \(NAME\.pub\): it belongs in keyFiles/,
  ]);
  t.match(problems(list('    keyFiles: [maint.key]\n'), dir), [
    /^lists\.0\.keyFiles\.0: .*maint\.key is a minisign SECRET signing key.* the public key file \(NAME\.pub\)$/,
  ]);
  chmodSync(join(dir, 'demo-2026a.listkey'), 0o600);
  t.match(problems(list('    keyFiles: [demo-2026a.listkey]\n'), dir), [
    /is a list hash key \(NAME\.listkey\): it belongs in hashKeyFile/,
  ]);
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

t.test('lists anchored on root keys, release logs and the guard set are checked at start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hw-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [r1, r2] = [generateKeyPair(), generateKeyPair()].map((k) => publicKeyToString(k.publicKey));
  const list = (extra: string) => `lists:\n  - id: demo\n    mirrors: [file:///srv/demo/]\n${extra}`;
  const ok = settingsFromYaml(list(`    rootKeys: [${r1}, ${r2}]\n    rootThreshold: 2\n`), dir);
  t.equal(ok.lists[0]?.anchor?.rootThreshold, 2);
  t.equal(ok.lists[0]?.anchor?.roots.length, 2);
  t.equal(ok.lists[0]?.trust, undefined, 'no plain signing keys: the keyrings give them');
  t.match(problems(list(`    keys: [${r1}]\n    rootKeys: [${r2}]\n`)), [/^lists\.0\.rootKeys: .*not both/]);
  t.match(problems(list(`    rootKeys: [${r1}]\n    threshold: 1\n`)), [/^lists\.0\.threshold: .*keyring/]);
  t.match(problems(list(`    rootKeys: [${r1}]\n    rootThreshold: 2\n`)), [/^lists\.0\.rootThreshold: .*above/]);
  t.match(problems(list(`    keys: [${r1}]\n    rootThreshold: 1\n`)), [/^lists\.0\.rootThreshold: .*needs rootKeys/]);
  t.match(problems(list(`    rootKeys: [RWQnot-a-key]\n`)), [/^lists\.0\.rootKeys\.0: not a minisign public key/]);
  t.match(problems(list(`    rootKeys: [${r1}, ${r1}]\n`)), [/^lists\.0\.rootKeys: /], 'a root listed twice');

  const logKey = NoteSecretKey.generate('lists.example/demo').vkey;
  const w = NoteSecretKey.generate('witness.example/w1').cosigner().vkey;
  const logged = settingsFromYaml(
    list(`    keys: [${r1}]\n    log:\n      key: ${logKey}\n      witnesses: [${w}]\n`),
    dir,
  );
  t.same(logged.lists[0]?.log, { origin: 'lists.example/demo', key: logKey, witnesses: [w], witnessThreshold: 1 });
  const bad = (log: string) => problems(list(`    keys: [${r1}]\n    log:\n${log}`));
  t.match(bad(`      key: not-a-key\n`), [/^lists\.0\.log\.key: not a log key/]);
  t.match(bad(`      key: ${w}\n`), [/^lists\.0\.log\.key: not a log key/], 'a cosigner key is no log key');
  t.match(bad(`      key: ${logKey}\n      witnesses: [nope]\n`), [/^lists\.0\.log\.witnesses\.0: /]);
  t.match(bad(`      key: ${logKey}\n      witnesses: [${w}]\n      witnessThreshold: 2\n`), [
    /^lists\.0\.log\.witnessThreshold: is above/,
  ]);
  t.match(bad(`      key: ${logKey}\n      witnesses: [${w}, ${w}]\n`), [/^lists\.0\.log\.witnesses\.1: .*twice/]);

  writeFileSync(join(dir, 'critical.txt'), '# ours\nbank.example\nnot a name\n');
  t.match(problems('guard:\n  namesFiles: [critical.txt]\n', dir), [
    /^guard\.namesFiles\.0: .*critical\.txt:3: not a host name/,
  ]);
  t.match(problems('guard:\n  namesFiles: [absent.txt]\n', dir), [/^guard\.namesFiles\.0: cannot read/]);
  writeFileSync(join(dir, 'critical.txt'), 'Bank.Example.\n');
  const g = settingsFromYaml(
    'guard:\n  topSites: false\n  namesFiles: [critical.txt]\nblocking:\n  allowlist: [ok.example]\n',
    dir,
  );
  t.same(
    g.guard.names.map((n) => n.name),
    ['bank.example', 'ok.example'],
    'canonical names from the file, then the allowlist',
  );
  t.ok(settingsFromYaml('', dir).guard.names.length > 400, 'the bundled popular names by default');
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
