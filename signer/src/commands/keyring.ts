/**
 * `hashwall-signer keyring init|next|sign|publish`: root keys and signing-key rotation (SPEC.md 5).
 *
 * A keyring version is made as a draft outside the release directory (`init` for version 1, `next` for the one
 * after the directory's current keyring), carried to each root holder, who checks it and adds a signature on
 * their own machine (`sign`, writing `FILE.<KEYID>.minisig`), and then put in the release directory by `publish`
 * once the walk a daemon runs accepts it (the previous version's root threshold and its own). A draft that lacks
 * signatures is never published: daemons would refuse it and alarm.
 */
import { basename, dirname, join } from 'node:path';

import {
  FormatError,
  MAX_KEYRING_BYTES,
  MAX_KEYRING_VALIDITY_DAYS,
  MAX_SIGNATURES_PER_FILE,
  MAX_SIGNATURE_FILE_BYTES,
  formatTime,
  isListId,
  keyringTrustedComment,
  parseKeyring,
  parseSignatureFileName,
  serializeKeyring,
  sign,
  signatureFileName,
  type Keyring,
  type MinisignPublicKey,
} from '@hashwall/format';

import {
  EXIT_CODES_HELP,
  PASSWORD_HELP,
  intValue,
  parseCommand,
  required,
  timeValue,
  type Io,
} from '../cli-support.js';
import { EXIT_OK, usage } from '../errors.js';
import { acquireLock, ensureDir, listDir, readCapped, readOptional, writeFileAtomic } from '../files.js';
import { addKeyring, currentKeyring } from '../keyring-dir.js';
import { loadPublicKeys, loadSecretKeys } from '../keys.js';

export const DEFAULT_KEYRING_VALIDITY_DAYS = 365;

export interface KeyringDraftOptions {
  readonly listId: string;
  readonly version: number;
  readonly roots: readonly MinisignPublicKey[];
  readonly rootThreshold: number;
  readonly signKeys: readonly MinisignPublicKey[];
  readonly signThreshold: number;
  readonly created: number;
  readonly validitySeconds?: number;
  /** The roots that must sign this version besides its own (the previous version's), to check it can be met. */
  readonly previous?: { readonly roots: readonly MinisignPublicKey[]; readonly rootThreshold: number };
}

/**
 * A keyring version to be signed: refuses what a daemon would refuse (as the codec does) and a version whose
 * signatures cannot fit in 8 signature files (SPEC.md 4): the previous roots' threshold plus its own, less the
 * roots in both.
 */
export function draftKeyring(o: KeyringDraftOptions): Keyring {
  const keyring: Keyring = {
    header: {
      listId: o.listId,
      version: o.version,
      created: o.created,
      expires: o.created + (o.validitySeconds ?? DEFAULT_KEYRING_VALIDITY_DAYS * 86400),
      rootThreshold: o.rootThreshold,
      signThreshold: o.signThreshold,
      extensions: [],
    },
    roots: o.roots,
    signKeys: o.signKeys,
  };
  let bytes: Buffer;
  try {
    bytes = serializeKeyring(keyring);
  } catch (err) {
    if (err instanceof RangeError || err instanceof FormatError) throw usage(`keyring: ${err.message}`);
    throw err;
  }
  if (o.previous) {
    const mine = new Set(o.roots.map((k) => k.keyId));
    const both = o.previous.roots.filter((k) => mine.has(k.keyId)).length;
    const needed =
      o.previous.rootThreshold + o.rootThreshold - Math.min(both, o.previous.rootThreshold, o.rootThreshold);
    if (needed > MAX_SIGNATURES_PER_FILE) {
      throw usage(
        `keyring: it needs ${needed} root signatures, more than the ${MAX_SIGNATURES_PER_FILE} files allowed`,
      );
    }
  }
  return parseKeyring(bytes);
}

/** A draft's description for the root holder who is asked to sign it. */
export function describeKeyring(k: Keyring): string[] {
  const h = k.header;
  return [
    `keyring ${h.version} of list ${h.listId}, created ${formatTime(h.created)}, expires ${formatTime(h.expires)}`,
    `  roots (${h.rootThreshold} of ${k.roots.length} sign the next version): ${k.roots.map((r) => r.keyId).join(', ')}`,
    `  signing keys (${h.signThreshold} of ${k.signKeys.length} sign each index, FULL and DELTA): ${k.signKeys.map((r) => r.keyId).join(', ')}`,
  ];
}

/** The signature files next to a draft `FILE`: `FILE.minisig` and `FILE.<KEYID>.minisig`. */
async function draftSignatures(file: string): Promise<Buffer[]> {
  const dir = dirname(file);
  const base = basename(file);
  const out: Buffer[] = [];
  for (const name of (await listDir(dir)).sort()) {
    if (parseSignatureFileName(name)?.fileName !== base) continue;
    out.push(await readCapped(join(dir, name), MAX_SIGNATURE_FILE_BYTES, 'signature'));
  }
  return out;
}

const HELP = `Usage: hashwall-signer keyring init|next|sign|publish [options]

Root keys and signing keys for a list anchored on root keys (SPEC.md 5). ISPs configure the root public keys and
a root threshold once; signing keys then change by publishing a new keyring version, signed by the previous
version's roots (their threshold) and by its own, with no change at any ISP.

  keyring init --list-id ID --root R.pub... --root-threshold N --sign S.pub... --sign-threshold N --out FILE
      a draft of version 1
  keyring next --dir DIR --out FILE [--root R.pub... --root-threshold N] [--sign S.pub... --sign-threshold N]
      a draft of the version after DIR's current keyring; what is not given stays as it is
  keyring sign FILE --key ROOT.key
      check a draft and add your root signature, FILE.<KEYID>.minisig (on your own machine)
  keyring publish FILE --dir DIR [--anchor R.pub... --anchor-threshold N]
      put a fully signed draft into DIR/keyring/, after checking it exactly as a daemon will

Options:
  --list-id ID             the list-id (init)
  --root FILE              a root public key (repeatable; 1 to 8)
  --root-threshold N       how many roots must sign the next version
  --sign FILE              a signing public key (repeatable; 1 to 8; never a root)
  --sign-threshold N       how many signing keys must sign each file
  --validity-days D        the keyring's validity (default ${DEFAULT_KEYRING_VALIDITY_DAYS}, at most ${MAX_KEYRING_VALIDITY_DAYS})
  --created TIME           YYYY-MM-DDTHH:MM:SSZ (default now)
  --out FILE               the draft to write (init, next)
  --dir DIR                the release directory (next, publish)
  --key FILE               your root secret key (sign)
  --password-file FILE     its password
  --anchor FILE            publish of version 1: the roots ISPs configure (default: the keyring's own roots)
  --anchor-threshold N     their threshold (default 1)
  --now TIME               the time to check against (default now)
  -h, --help               this help

${PASSWORD_HELP}

${EXIT_CODES_HELP}
`;

const SPEC = {
  name: 'keyring',
  help: HELP,
  positionals: [1, 2] as const,
  options: {
    'list-id': { type: 'string' },
    root: { type: 'string', multiple: true },
    'root-threshold': { type: 'string' },
    sign: { type: 'string', multiple: true },
    'sign-threshold': { type: 'string' },
    'validity-days': { type: 'string' },
    created: { type: 'string' },
    out: { type: 'string' },
    dir: { type: 'string' },
    key: { type: 'string', multiple: true },
    'password-file': { type: 'string', multiple: true },
    anchor: { type: 'string', multiple: true },
    'anchor-threshold': { type: 'string' },
    now: { type: 'string' },
  },
} as const;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommand(SPEC, argv, io);
  if (!args) return EXIT_OK;
  const v = args.values;
  const [sub, file] = args.positionals;
  const now = timeValue(v.now, 'now') ?? io.now();
  const created = timeValue(v.created, 'created') ?? now;
  const days = intValue(v['validity-days'], 'validity-days', 1, MAX_KEYRING_VALIDITY_DAYS);
  const validitySeconds = days === undefined ? undefined : days * 86400;
  const keysOf = async (paths: string[] | undefined): Promise<MinisignPublicKey[] | undefined> =>
    paths === undefined ? undefined : loadPublicKeys(paths);
  const writeDraft = async (k: Keyring): Promise<void> => {
    const out = required(v.out, 'out', 'keyring');
    await writeFileAtomic(out, serializeKeyring(k));
    for (const line of describeKeyring(k)) io.out(line);
    io.out(`wrote the draft ${out}: each root holder runs "hashwall-signer keyring sign ${out} --key ROOT.key"`);
  };

  switch (sub) {
    case 'init': {
      if (file !== undefined) throw usage('keyring init takes no file argument (use --out)');
      const listId = required(v['list-id'], 'list-id', 'keyring init');
      if (!isListId(listId)) throw usage('--list-id: not [a-z0-9][a-z0-9-]{0,62}');
      const roots = (await keysOf(v.root)) ?? [];
      const signKeys = (await keysOf(v.sign)) ?? [];
      await writeDraft(
        draftKeyring({
          listId,
          version: 1,
          roots,
          rootThreshold: intValue(
            required(v['root-threshold'], 'root-threshold', 'keyring init'),
            'root-threshold',
            1,
            8,
          )!,
          signKeys,
          signThreshold: intValue(
            required(v['sign-threshold'], 'sign-threshold', 'keyring init'),
            'sign-threshold',
            1,
            8,
          )!,
          created,
          ...(validitySeconds === undefined ? {} : { validitySeconds }),
        }),
      );
      return EXIT_OK;
    }
    case 'next': {
      if (file !== undefined) throw usage('keyring next takes no file argument (use --out)');
      const dir = required(v.dir, 'dir', 'keyring next');
      const current = await currentKeyring(dir);
      if (!current) throw new FormatError('FETCH_FAILED', `${dir} has no keyring: start with "keyring init"`);
      const c = current.keyring;
      const roots = (await keysOf(v.root)) ?? c.roots;
      const signKeys = (await keysOf(v.sign)) ?? c.signKeys;
      await writeDraft(
        draftKeyring({
          listId: c.header.listId,
          version: c.header.version + 1,
          roots,
          rootThreshold: intValue(v['root-threshold'], 'root-threshold', 1, 8) ?? c.header.rootThreshold,
          signKeys,
          signThreshold: intValue(v['sign-threshold'], 'sign-threshold', 1, 8) ?? c.header.signThreshold,
          created,
          ...(validitySeconds === undefined ? {} : { validitySeconds }),
          previous: { roots: c.roots, rootThreshold: c.header.rootThreshold },
        }),
      );
      return EXIT_OK;
    }
    case 'sign': {
      const path = file ?? '';
      if (path === '') throw usage('keyring sign FILE: the draft to sign');
      const keyPaths = v.key ?? [];
      if (keyPaths.length === 0) throw usage('keyring sign: --key is required (your root key)');
      const bytes = await readCapped(path, MAX_KEYRING_BYTES, 'keyring');
      const k = parseKeyring(bytes);
      for (const line of describeKeyring(k)) io.out(line);
      const signers = await loadSecretKeys(keyPaths, v['password-file'] ?? [], io);
      for (const key of signers) {
        const out = signatureFileName(path, key.keyId);
        if ((await readOptional(out, MAX_SIGNATURE_FILE_BYTES, 'signature')) !== undefined) io.out(`replacing ${out}`);
        await writeFileAtomic(out, Buffer.from(sign(bytes, key, keyringTrustedComment(k.header))));
        io.out(`signed by ${key.keyId} -> ${out}`);
      }
      return EXIT_OK;
    }
    case 'publish': {
      const path = file ?? '';
      if (path === '') throw usage('keyring publish FILE: the signed draft');
      const dir = required(v.dir, 'dir', 'keyring publish');
      const bytes = await readCapped(path, MAX_KEYRING_BYTES, 'keyring');
      const signatures = await draftSignatures(path);
      const anchorKeys = await keysOf(v.anchor);
      const anchorThreshold = intValue(v['anchor-threshold'], 'anchor-threshold', 1, 8) ?? 1;
      await ensureDir(dir);
      const release = await acquireLock(dir, (m) => io.err(`warning: ${m}`));
      try {
        const listId = parseKeyring(bytes).header.listId;
        const added = await addKeyring(
          dir,
          { bytes, signatures },
          now,
          anchorKeys ? { listId, roots: anchorKeys, rootThreshold: anchorThreshold } : undefined,
        );
        for (const line of describeKeyring(added.keyring)) io.out(line);
        io.out(
          `published keyring ${added.keyring.header.version} in ${dir} with ${added.signatures.length} root signature(s); ` +
            'publish or heartbeat with its signing keys next',
        );
      } finally {
        await release();
      }
      return EXIT_OK;
    }
    default:
      throw usage('keyring: init, next, sign or publish (see hashwall-signer keyring --help)');
  }
}
