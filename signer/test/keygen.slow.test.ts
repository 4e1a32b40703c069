// keygen at minisign's real scrypt cost (about 1 GiB of memory and seconds of CPU per key, by design): a key made
// from a password file that the stock minisign opens, and the password prompt on a terminal. The other keygen tests
// (keygen.test.ts) use unencrypted keys or libsodium's cheapest cost.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { parseSecretKeyFile } from '@hashwall/format';

import { needTool } from '../../test/helpers/tools.ts';
import { cli, cliOnPty, minisign, tempDir, writeSource } from './helpers.ts';

const PASSWORD = 'correct horse battery staple';
const minisignTool = { skip: needTool('minisign') };

t.test(
  'a password-protected key (minisign scrypt cost) from --password-file works with minisign',
  minisignTool,
  async (t) => {
    const dir = tempDir(t);
    const pw = join(dir, 'pw');
    writeFileSync(pw, `${PASSWORD}\n`, { mode: 0o600 });
    const r = await cli(['keygen', '--out', 'locked', '--password-file', pw], { cwd: dir });
    t.equal(r.code, 0, r.stderr);
    t.notMatch(r.stdout + r.stderr, PASSWORD);
    const key = join(dir, 'locked.key');
    const parsed = parseSecretKeyFile(readFileSync(key), { password: PASSWORD });
    t.equal(parsed.encrypted, true);
    const msg = writeSource(dir, 'msg.txt', 'hello\n');
    const s = await minisign(['-S', '-H', '-s', key, '-m', msg, '-t', 'hwl1 test'], `${PASSWORD}\n`);
    t.equal(s.code, 0, `minisign opens the key with the password: ${s.stderr}`);
    t.equal((await minisign(['-V', '-H', '-m', msg, '-p', join(dir, 'locked.pub')])).code, 0);
  },
);

// util-linux's `script` gives the CLI a pseudo-terminal.
const noPty = needTool('script');

t.test('prompts on a terminal without echo, twice for a new key; Ctrl-C interrupts', { skip: noPty }, async (t) => {
  const dir = tempDir(t);
  const onPty = (args: string[], answers: [string, string][]) => cliOnPty(dir, args, answers);
  const secret = 'pty-secret-password';
  const made = await onPty(
    ['keygen', '--out', 'p'],
    [
      ['Password for the new key: ', `${secret}\r`],
      ['The same password again: ', `${secret}\r`],
    ],
  );
  t.equal(made.code, 0, made.out);
  t.notMatch(made.out, secret, 'the password is not echoed');
  t.equal(parseSecretKeyFile(readFileSync(join(dir, 'p.key')), { password: secret }).encrypted, true);

  const differ = await onPty(
    ['keygen', '--out', 'q'],
    [
      ['Password for the new key: ', 'one\r'],
      ['The same password again: ', 'two\r'],
    ],
  );
  t.equal(differ.code, 2);
  t.match(differ.out, /KEY_PASSWORD: the two passwords differ/);

  const interrupted = await onPty(['keygen', '--out', 'r'], [['Password for the new key: ', 'abc\u0003']]);
  t.equal(interrupted.code, 130);
  t.match(interrupted.out, /INTERRUPTED/);
  t.throws(() => statSync(join(dir, 'r.key')), 'nothing written');
});
