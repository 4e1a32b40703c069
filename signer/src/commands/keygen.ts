/**
 * `hashwall-signer keygen --out NAME`: a minisign Ed25519 key pair, `NAME.key` (mode 0600, password-protected
 * with minisign's own scrypt cost unless --no-password) and `NAME.pub`, readable by the stock `minisign`.
 * `hashwall-signer keygen --list-key --id ID --out FILE.listkey`: a new 32-byte list hash key (SPEC.md 1.3), mode
 * 0600. The names keep the three kinds apart: `.key` is only ever the secret signing key (which never leaves the
 * maintainer), `.pub` its public half (for every ISP), `.listkey` the list hash key (for licensed ISPs); a list key
 * named `.key` or `.pub`, or a key pair NAME that already ends in one, is refused.
 * `hashwall-signer keygen --log-key --origin ORIGIN --out NAME`: the release log's note key (SPEC.md 6), NAME.skey
 * (mode 0600) and NAME.vkey; the vkey is printed, for ISPs and witnesses.
 * Existing files are never overwritten without --force. Nothing secret is printed.
 */
import {
  generateKeyPair,
  generateListKey,
  isListId,
  serializeListKey,
  serializePublicKeyFile,
  serializeSecretKeyFile,
} from '@hashwall/format';

import { EXIT_CODES_HELP, parseCommand, required, type Io } from '../cli-support.js';
import { EXIT_OK, usage } from '../errors.js';
import { exists, writeNewFile } from '../files.js';
import { PASSWORD_ENV, newPassword } from '../keys.js';
import { writeLogKey } from '../log.js';
import { SignerError } from '../errors.js';

export interface KeygenResult {
  readonly keyId: string;
  readonly secretPath: string;
  readonly publicPath: string;
  readonly encrypted: boolean;
}

/** Writes a new signing key pair. `password` undefined means unencrypted. */
export async function writeSigningKeyPair(
  out: string,
  password: Uint8Array | undefined,
  force: boolean,
): Promise<KeygenResult> {
  const secretPath = `${out}.key`;
  const publicPath = `${out}.pub`;
  if (!force) {
    // Check both before writing either, so a refusal leaves nothing half-made.
    for (const p of [secretPath, publicPath]) {
      if (await exists(p)) throw new SignerError('EXISTS', `${p} exists; refusing to overwrite it (use --force)`);
    }
  }
  const key = generateKeyPair();
  const secret = serializeSecretKeyFile(key, password === undefined ? {} : { password });
  await writeNewFile(secretPath, secret, 0o600, force);
  await writeNewFile(publicPath, serializePublicKeyFile(key.publicKey), 0o644, force);
  return { keyId: key.keyId, secretPath, publicPath, encrypted: password !== undefined };
}

/** Writes a new list key file (mode 0600). */
export async function writeListKey(out: string, id: string, force: boolean): Promise<{ id: string; path: string }> {
  const key = generateListKey(id);
  await writeNewFile(out, serializeListKey(key), 0o600, force);
  return { id: key.id, path: out };
}

const HELP = `Usage: hashwall-signer keygen --out NAME [--no-password] [--password-file FILE] [--force]
       hashwall-signer keygen --list-key --id ID --out FILE.listkey [--force]
       hashwall-signer keygen --log-key --origin ORIGIN --out NAME [--force]

The first form makes a minisign Ed25519 signing key pair: NAME.key, the SECRET signing key (mode 0600), which
never leaves you, and NAME.pub, the public key every ISP needs. The secret key is encrypted with a password
(minisign's scrypt cost: about 1 GiB of memory and a few seconds to open) unless --no-password is given, which
is meant for automation on a machine that is itself protected. Both files work with the stock minisign tool.
Print nothing secret; the key id is shown.

The second form makes a new random 32-byte list hash key (SPEC.md 1.3) named ID (the list's hash-key-id; the
id "public" makes a public-mode key, which the list then carries in its header). Mode 0600. Name it
FILE.listkey: it is what licensed ISPs get (over a channel you trust); .key is only ever the secret signing key.

The third form makes the release log's key (SPEC.md 6): an Ed25519 note key (c2sp.org/signed-note) named ORIGIN,
the log's checkpoint origin (for example lists.example/demo; no spaces or "+"). NAME.skey is the secret (mode
0600, one line, the Go checksum database's format); NAME.vkey and the printed line are the verifier key to give
ISPs (their daemon's log key) and witnesses. The secret is not password-protected: publish and heartbeat use it
unattended; keep it mode 0600 on the publishing machine.

Options:
  --out NAME             where to write (NAME.key and NAME.pub; or the list key file, FILE.listkey)
  --no-password          do not encrypt the secret key
  --password-file FILE   read the new password from FILE (first line) instead of asking twice
  --list-key             make a list hash key instead of a signing key
  --id ID                the list key's id ([a-z0-9][a-z0-9-]{0,62}, or "public")
  --log-key              make the release log's key instead of a signing key
  --origin ORIGIN        the log's origin, the log key's name
  --force                replace existing files
  -h, --help             this help

The password comes from --password-file, else ${PASSWORD_ENV}, else a prompt (twice, no echo).
${EXIT_CODES_HELP}
`;

const SPEC = {
  name: 'keygen',
  help: HELP,
  positionals: [0, 0] as const,
  options: {
    out: { type: 'string' },
    'no-password': { type: 'boolean' },
    'password-file': { type: 'string' },
    'list-key': { type: 'boolean' },
    id: { type: 'string' },
    'log-key': { type: 'boolean' },
    origin: { type: 'string' },
    force: { type: 'boolean' },
  },
} as const;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommand(SPEC, argv, io);
  if (!args) return EXIT_OK;
  const v = args.values;
  const out = required(v.out, 'out', 'keygen');
  const force = v.force ?? false;
  if (v['log-key']) {
    if (v['list-key'] || v.id !== undefined || v['no-password'] || v['password-file'] !== undefined) {
      throw usage('keygen --log-key: only --origin, --out and --force apply');
    }
    const r = await writeLogKey(out, required(v.origin, 'origin', 'keygen --log-key'), force);
    io.out(`wrote ${r.secretPath} (secret, mode 0600, not encrypted)`);
    io.out(`wrote ${r.publicPath}`);
    io.out(`log key: ${r.vkey}`);
    return EXIT_OK;
  }
  if (v.origin !== undefined) throw usage('keygen: --origin is for --log-key');
  if (v['list-key']) {
    if (v['no-password'] || v['password-file'] !== undefined) {
      throw usage('keygen --list-key: a list key file is not password-protected (keep it mode 0600)');
    }
    const id = required(v.id, 'id', 'keygen --list-key');
    if (!isListId(id)) throw usage('--id: not [a-z0-9][a-z0-9-]{0,62}');
    if (/\.(key|pub|skey|vkey)$/.test(out)) {
      throw usage(
        `--out ${out}: name a list hash key FILE.listkey (.key is the secret signing key, .pub its public half)`,
      );
    }
    const r = await writeListKey(out, id, force);
    io.out(
      r.id === 'public'
        ? `wrote list hash key "${r.id}" to ${r.path} (mode 0600) for a public-mode list`
        : `wrote list hash key "${r.id}" to ${r.path} (mode 0600): for licensed ISPs, over a channel you trust`,
    );
    return EXIT_OK;
  }
  if (v.id !== undefined) throw usage('keygen: --id is for --list-key');
  if (/\.(key|pub|listkey|skey|vkey)$/.test(out)) {
    throw usage(`--out ${out}: give NAME without an extension; keygen writes NAME.key and NAME.pub`);
  }
  if (v['no-password'] && v['password-file'] !== undefined) {
    throw usage('keygen: --no-password and --password-file exclude each other');
  }
  if (!force) {
    for (const p of [`${out}.key`, `${out}.pub`]) {
      if (await exists(p)) throw new SignerError('EXISTS', `${p} exists; refusing to overwrite it (use --force)`);
    }
  }
  const password = v['no-password'] ? undefined : await newPassword(v['password-file'], io);
  try {
    const r = await writeSigningKeyPair(out, password, force);
    io.out(
      `wrote ${r.secretPath} (SECRET signing key, mode 0600${r.encrypted ? ', password-protected' : ', NOT encrypted'}: ` +
        'it never leaves you)',
    );
    io.out(`wrote ${r.publicPath} (public signing key: give it to every ISP)`);
    io.out(`key id ${r.keyId}`);
    return EXIT_OK;
  } finally {
    password?.fill(0);
  }
}
