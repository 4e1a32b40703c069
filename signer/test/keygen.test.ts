// keygen and key loading: files the stock minisign reads, modes, no overwrite, password sources (file, environment),
// and no secret in any output. A key at minisign's real scrypt cost and the terminal prompt: keygen.slow.test.ts.
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import {
  SCRYPT_LIMITS_TEST_ONLY,
  generateKeyPair,
  parseListKey,
  parsePublicKeyFile,
  parseSecretKeyFile,
  serializeSecretKeyFile,
} from '@hashwall/format';

import { needTool } from '../../test/helpers/tools.ts';
import { CLI, NOW, buildFull, cli, minisign, tempDir, vectorListKey, writeSource } from './helpers.ts';

const PASSWORD = 'correct horse battery staple';
const minisignTool = { skip: needTool('minisign') };

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

t.test('makes an unencrypted key pair that minisign signs and verifies with', minisignTool, async (t) => {
  const dir = tempDir(t);
  const r = await cli(['keygen', '--out', 'alice', '--no-password'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const key = join(dir, 'alice.key');
  const pub = join(dir, 'alice.pub');
  t.equal(mode(key), 0o600, 'the secret key is mode 0600');
  t.equal(mode(pub), 0o644);
  const sk = parseSecretKeyFile(readFileSync(key));
  t.equal(sk.encrypted, false);
  const pk = parsePublicKeyFile(readFileSync(pub)).publicKey;
  t.equal(pk.keyId, sk.secretKey.keyId);
  t.match(r.stdout, new RegExp(`key id ${pk.keyId}`));
  t.notMatch(r.stdout + r.stderr, readFileSync(key, 'utf8').split('\n')[1]!, 'the secret key is not printed');
  const msg = writeSource(dir, 'msg.txt', 'hello\n');
  const s = await minisign(['-S', '-H', '-s', key, '-m', msg, '-t', 'hwl1 test']);
  t.equal(s.code, 0, `minisign signs with our key: ${s.stderr}`);
  const v = await minisign(['-V', '-H', '-m', msg, '-p', pub]);
  t.equal(v.code, 0, `minisign verifies with our .pub: ${v.stderr}`);
});

t.test('refuses to overwrite key files unless --force', async (t) => {
  const dir = tempDir(t);
  t.equal((await cli(['keygen', '--out', 'k', '--no-password'], { cwd: dir })).code, 0);
  const before = readFileSync(join(dir, 'k.key'));
  const again = await cli(['keygen', '--out', 'k', '--no-password'], { cwd: dir });
  t.equal(again.code, 1);
  t.match(again.stderr, /EXISTS: .*k\.key exists/);
  t.ok(readFileSync(join(dir, 'k.key')).equals(before), 'unchanged');
  // Only the .pub exists: still refused, and no .key is made.
  rmSync(join(dir, 'k.key'));
  const half = await cli(['keygen', '--out', 'k', '--no-password'], { cwd: dir });
  t.equal(half.code, 1);
  t.throws(() => statSync(join(dir, 'k.key')), 'no key written next to an existing .pub');
  const forced = await cli(['keygen', '--out', 'k', '--no-password', '--force'], { cwd: dir });
  t.equal(forced.code, 0, forced.stderr);
  t.equal(mode(join(dir, 'k.key')), 0o600, 'a replaced key is mode 0600 too');
});

t.test('makes a list key (mode 0600) and never prints it', async (t) => {
  const dir = tempDir(t);
  const r = await cli(['keygen', '--list-key', '--id', 'demo-2026b', '--out', 'demo-2026b.listkey'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /wrote list hash key "demo-2026b" to demo-2026b\.listkey \(mode 0600\): for licensed ISPs/);
  const path = join(dir, 'demo-2026b.listkey');
  t.equal(mode(path), 0o600);
  const key = parseListKey(readFileSync(path));
  t.equal(key.id, 'demo-2026b');
  t.notMatch(r.stdout + r.stderr, key.keyHex());
  t.equal(
    (await cli(['keygen', '--list-key', '--id', 'demo-2026b', '--out', 'demo-2026b.listkey'], { cwd: dir })).code,
    1,
  );
  t.equal((await cli(['keygen', '--list-key', '--id', 'Bad_Id', '--out', 'x.listkey'], { cwd: dir })).code, 2);
  t.equal((await cli(['keygen', '--list-key', '--out', 'x.listkey'], { cwd: dir })).code, 2, '--id is required');
  const inspect = await cli(['inspect', path]);
  t.match(inspect.stdout, /hash-key-id demo-2026b \(the key itself is not shown\)/);
  t.notMatch(inspect.stdout, key.keyHex());
});

t.test('the names keep the secret signing key, its public half and the list hash key apart', async (t) => {
  const dir = tempDir(t);
  const pair = await cli(['keygen', '--out', 'maint', '--no-password'], { cwd: dir });
  t.match(pair.stdout, /wrote maint\.key \(SECRET signing key, mode 0600, NOT encrypted: it never leaves you\)/);
  t.match(pair.stdout, /wrote maint\.pub \(public signing key: give it to every ISP\)/);
  for (const out of ['demo.key', 'demo.pub']) {
    const r = await cli(['keygen', '--list-key', '--id', 'demo-2026a', '--out', out], { cwd: dir });
    t.equal(r.code, 2, `a list hash key named ${out} is refused`);
    t.match(r.stderr, /USAGE: .*name a list hash key FILE\.listkey/);
  }
  for (const out of ['other.key', 'other.pub', 'other.listkey']) {
    const r = await cli(['keygen', '--out', out, '--no-password'], { cwd: dir });
    t.equal(r.code, 2, `a key pair named ${out} is refused`);
  }
  t.equal((await cli(['keygen', '--list-key', '--id', 'demo-2026a', '--out', 'demo.listkey'], { cwd: dir })).code, 0);
  writeSource(dir, 's.txt', 'domain example.com\n');
  // Each kind where another is asked for: said plainly, KEY_INVALID (exit 2).
  const asList = await cli(
    ['build', 's.txt', '--list-key', 'maint.key', '--list-id', 'demo', '--serial', '1', '--out', 'o.hwl'],
    { cwd: dir },
  );
  t.equal(asList.code, 2);
  t.match(asList.stderr, /KEY_INVALID: maint\.key is a minisign SECRET signing key \(NAME\.key\), not a list hash key/);
  const asPub = await cli(['verify', dir, '--pub', 'demo.listkey'], { cwd: dir });
  t.match(asPub.stderr, /demo\.listkey is a list hash key \(NAME\.listkey\), not a minisign public key/);
  const asSecret = await cli(['heartbeat', '--dir', dir, '--key', 'maint.pub'], { cwd: dir });
  t.match(asSecret.stderr, /maint\.pub is a minisign public key \(NAME\.pub\), not a minisign SECRET signing key/);
});

t.test('reads the password of an encrypted key from a file, the environment, or refuses', async (t) => {
  const dir = tempDir(t);
  // A cheap scrypt cost keeps this test fast; the real cost is covered in keygen.slow.test.ts.
  const sk = generateKeyPair();
  const key = writeSource(
    dir,
    'k.key',
    serializeSecretKeyFile(sk, { password: PASSWORD, scryptLimits: SCRYPT_LIMITS_TEST_ONLY }),
  );
  chmodSync(key, 0o600);
  const full = await buildFull(
    t,
    dir,
    writeSource(dir, 's.txt', 'domain a.example\n'),
    vectorListKey(dir),
    1,
    join(dir, 'f.hwl'),
  );
  const publish = (rel: string, extra: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof cli> =>
    cli(['publish', full, '--dir', join(dir, rel), '--key', key, '--now', NOW, ...extra], { env });

  const pw = join(dir, 'pw');
  writeFileSync(pw, `${PASSWORD}\n`, { mode: 0o600 });
  const fromFile = await publish('r1', ['--password-file', pw]);
  t.equal(fromFile.code, 0, fromFile.stderr);
  // Process substitution: the password comes through a pipe and never touches the disk.
  const fromPipe = spawnSync(
    'bash',
    [
      '-c',
      `env -u NODE_OPTIONS "$0" "$1" publish "$2" --dir "$3" --key "$4" --now "$5" --password-file <(printf '%s\\n' "$6")`,
      process.execPath,
      CLI,
      full,
      join(dir, 'r0'),
      key,
      NOW,
      PASSWORD,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  t.equal(fromPipe.status, 0, `a pipe works as a password file: ${fromPipe.stderr}`);
  t.notMatch(fromPipe.stderr, /readable by group or others/);
  const fromEnv = await publish('r2', [], { HASHWALL_SIGNER_PASSWORD: PASSWORD });
  t.equal(fromEnv.code, 0, fromEnv.stderr);

  const wrongPw = join(dir, 'wrong');
  writeFileSync(wrongPw, 'not it\n', { mode: 0o600 });
  const wrong = await publish('r3', ['--password-file', wrongPw]);
  t.equal(wrong.code, 2);
  t.match(wrong.stderr, /KEY_PASSWORD: .*wrong password/);
  t.notMatch(wrong.stderr, 'not it');

  const none = await publish('r4', []);
  t.equal(none.code, 2, 'no terminal, no file, no environment');
  t.match(none.stderr, /KEY_PASSWORD: .*--password-file or HASHWALL_SIGNER_PASSWORD/);

  const open = join(dir, 'open-pw');
  writeFileSync(open, `${PASSWORD}\n`, { mode: 0o644 });
  const wide = await publish('r5', ['--password-file', open]);
  t.equal(wide.code, 0);
  t.match(wide.stderr, /password file .* is readable by group or others/);

  const twoLines = join(dir, 'two');
  writeFileSync(twoLines, `${PASSWORD}\nsecond\n`, { mode: 0o600 });
  t.equal((await publish('r6', ['--password-file', twoLines])).code, 2);
  t.equal((await publish('r7', ['--password-file', pw, '--password-file', pw])).code, 2, 'more files than keys');
});
