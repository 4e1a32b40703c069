/**
 * `hashwall-signer sign --add --dir DIR --key KEY --pub FILE...`: a further maintainer adds `X.<KEYID>.minisig`
 * (SPEC.md 3) to every file of the current release, for a threshold or during a key rotation, without rewriting
 * any file. Before signing, each file must already carry valid signatures by the keys given with --pub (the other
 * maintainers'; at least --threshold of them) whose trusted comment is the one its own header calls for
 * (`trustedCommentOf`): a second signature means "I checked", never "I signed whatever was there".
 *
 * Files signed: the index, the FULL it names, every delta it names, and the base FULL of each delta (clients and
 * `verify` check a delta's base with the same threshold). The index's new signature is written last.
 */
import { join } from 'node:path';

import {
  FormatError,
  HARD_MAX_LIST_BYTES,
  INDEX_PATH,
  MAX_SIGNATURES_PER_FILE,
  TrustStore,
  checkWindow,
  fullPath,
  openIndex,
  parseSignatureFile,
  sha256Hex,
  sign,
  signatureFileName,
  trustedCommentOf,
  verifySignature,
  verifyThreshold,
  type MinisignPublicKey,
  type MinisignSecretKey,
} from '@hashwall/format';

import {
  EXIT_CODES_HELP,
  PASSWORD_HELP,
  intValue,
  parseCommand,
  required,
  timeValue,
  warn,
  type Io,
} from '../cli-support.js';
import { EXIT_OK, usage } from '../errors.js';
import { acquireLock, exists, readCapped } from '../files.js';
import { loadPublicKeys, loadSecretKeys } from '../keys.js';
import { refreshIndexSignatures } from '../log.js';
import { readCurrentIndex, readSignatures, writeReleaseFiles } from '../release-dir.js';

export interface AddSignatureOptions {
  readonly dir: string;
  readonly signers: readonly MinisignSecretKey[];
  /** The keys whose signatures must already be there. */
  readonly trusted: readonly MinisignPublicKey[];
  /** How many of `trusted` must have signed each file (default 1). */
  readonly threshold?: number;
  readonly now: number;
  readonly warn: (message: string) => void;
}

export interface AddSignatureReport {
  readonly listId: string;
  readonly seq: number;
  readonly serial: number;
  /** Signature files written. */
  readonly added: readonly string[];
  /** Files that already carried a valid signature by the key. */
  readonly already: readonly string[];
}

export async function addSignatures(options: AddSignatureOptions): Promise<AddSignatureReport> {
  const { dir } = options;
  if (options.signers.length === 0) throw usage('sign: at least one --key is needed');
  if (options.trusted.length === 0) throw usage("sign --add: give the other maintainers' keys with --pub");
  const release = await acquireLock(dir, options.warn);
  try {
    const current = await readCurrentIndex(dir);
    if (!current) throw new FormatError('FETCH_FAILED', `${join(dir, INDEX_PATH)} does not exist`);
    const listId = current.index.header.listId;
    const trust = new TrustStore([[listId, { keys: options.trusted, threshold: options.threshold ?? 1 }]]);
    const ours = new Set(options.signers.map((k) => k.keyId));
    const existing = async (path: string): Promise<{ others: Buffer[]; all: Map<string, Buffer> }> => {
      const all = await readSignatures(dir, path);
      // Our own earlier signatures are left out of the check: they are what we are about to (re)write.
      const others = [...all].filter(([name]) => !ours.has(signerOf(name, all.get(name)!))).map(([, b]) => b);
      return { others, all };
    };

    // The index first: verified with the trusted keys, its comment checked against its header (openIndex).
    const { others: indexSigs } = await existing(INDEX_PATH);
    const index = openIndex({ trust, listId }, current.bytes, indexSigs);
    checkWindow('the index', index.header.created, index.header.expires, options.now);
    const paths: string[] = [index.full.path];
    for (const d of index.deltas) paths.push(d.path);
    for (const d of index.deltas) {
      const base = fullPath(d.baseSerial);
      if (!paths.includes(base) && (await exists(join(dir, base)))) paths.push(base);
    }
    const listed = new Map([index.full, ...index.deltas].map((r) => [r.path, r]));

    const files = new Map<string, Uint8Array>();
    const added: string[] = [];
    const already: string[] = [];
    const signFile = async (path: string, bytes: Uint8Array): Promise<void> => {
      const { others, all } = await existing(path);
      const comment = verifyThreshold(bytes, others, trust, listId).trustedComment;
      const expected = trustedCommentOf(path, bytes);
      if (comment !== expected) {
        throw new FormatError('COMMENT_MISMATCH', `${path}: the trusted comment disagrees with the file's header`);
      }
      const names = new Set(all.keys());
      for (const key of options.signers) {
        const mine = [...all].find(([name, b]) => signerOf(name, b) === key.keyId);
        if (mine && holds(bytes, mine[1], key, expected)) {
          already.push(mine[0]);
          continue;
        }
        const name = signatureFileName(path, key.keyId);
        names.add(name);
        // SPEC.md 4: clients fetch at most 8 signature files per file.
        if (names.size > MAX_SIGNATURES_PER_FILE) {
          throw new FormatError('TOO_LARGE', `${path} would have more than ${MAX_SIGNATURES_PER_FILE} signatures`);
        }
        files.set(name, Buffer.from(sign(bytes, key, expected)));
        added.push(name);
      }
    };
    for (const path of paths) {
      const bytes = await readCapped(join(dir, path), HARD_MAX_LIST_BYTES, 'release file');
      const ref = listed.get(path);
      if (ref && (bytes.length !== ref.size || sha256Hex(bytes) !== ref.sha256)) {
        throw new FormatError('DIGEST_MISMATCH', `${path} is not the file the index names`);
      }
      await signFile(path, bytes);
    }
    await signFile(INDEX_PATH, current.bytes);
    // writeReleaseFiles writes the index's signature after every other file.
    if (files.size > 0) await writeReleaseFiles(dir, files, { replaceSignatures: false });
    // The release log keeps each leaf's signatures for auditors (log.ts): the new one too.
    if (files.size > 0) await refreshIndexSignatures(dir, index);
    return { listId, seq: index.header.seq, serial: index.header.serial, added, already };
  } finally {
    await release();
  }
}

/** The key id that made a signature file (from its content; the name may be `X.minisig`). */
function signerOf(_name: string, bytes: Uint8Array): string {
  try {
    return parseSignatureFile(bytes).keyId;
  } catch {
    return '';
  }
}

/** Whether `sig` is a valid signature of `bytes` by `key` with the expected trusted comment. */
function holds(bytes: Uint8Array, sig: Uint8Array, key: MinisignSecretKey, comment: string): boolean {
  try {
    return verifySignature(bytes, sig, key.publicKey).trustedComment === comment;
  } catch {
    return false;
  }
}

const HELP = `Usage: hashwall-signer sign --add --dir DIR --key KEY --pub OTHER.pub [--pub ...] [options]

Adds your signature (X.<KEYID>.minisig) to every file of DIR's current release: the index, the FULL, the deltas
and their base FULLs, without rewriting them. Each file must already be validly signed by the keys you name
with --pub (at least --threshold of them), with the trusted comment its header calls for; otherwise nothing is
written. Your signature on the index lasts until the next publish or heartbeat, which replaces the index.

Options:
  --add                  required: add a signature to an existing release
  --dir DIR              the release directory
  --key FILE             your minisign secret key (repeatable)
  --password-file FILE   password of the matching --key (repeatable, in --key order)
  --pub FILE             a public key whose signature must already be there (repeatable)
  --threshold N          how many of the --pub keys must have signed (default 1)
  --now TIME             the time to check the index against (YYYY-MM-DDTHH:MM:SSZ; default now)
  -h, --help             this help

${PASSWORD_HELP}

${EXIT_CODES_HELP}
`;

const SPEC = {
  name: 'sign',
  help: HELP,
  positionals: [0, 0] as const,
  options: {
    add: { type: 'boolean' },
    dir: { type: 'string' },
    key: { type: 'string', multiple: true },
    'password-file': { type: 'string', multiple: true },
    pub: { type: 'string', multiple: true },
    threshold: { type: 'string' },
    now: { type: 'string' },
  },
} as const;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommand(SPEC, argv, io);
  if (!args) return EXIT_OK;
  const v = args.values;
  if (!v.add) throw usage('sign: only "sign --add" exists (publish and heartbeat sign what they write)');
  const dir = required(v.dir, 'dir', 'sign');
  const keyPaths = v.key ?? [];
  if (keyPaths.length === 0) throw usage('sign: --key is required');
  const trusted = await loadPublicKeys(v.pub ?? []);
  if (trusted.length === 0) throw usage('sign --add: --pub is required (the keys that signed the release)');
  const threshold = intValue(v.threshold, 'threshold', 1, trusted.length) ?? 1;
  const now = timeValue(v.now, 'now') ?? io.now();
  const signers = await loadSecretKeys(keyPaths, v['password-file'] ?? [], io);
  const report = await addSignatures({ dir, signers, trusted, threshold, now, warn: (m) => warn(io, m) });
  io.out(
    `signed ${report.listId} seq ${report.seq} serial ${report.serial}: ${report.added.length} signature(s) added` +
      (report.already.length ? `, ${report.already.length} already present` : ''),
  );
  for (const name of report.added) io.out(`  + ${name}`);
  return EXIT_OK;
}
