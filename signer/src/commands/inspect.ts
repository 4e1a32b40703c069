/**
 * `hashwall-signer inspect FILE`: what a release file says: its header, entry counts by kind, and the signature
 * files next to it (key id, trusted comment, whether the comment matches the header; valid or not when the key
 * is given with --pub). Also reads `.minisig` and `.pub` files, and names a list key file's id (never its key).
 */
import { basename, dirname, join } from 'node:path';

import {
  HARD_MAX_LIST_BYTES,
  KINDS,
  MAX_SIGNATURE_FILE_BYTES,
  formatTime,
  parseDelta,
  parseFull,
  parseIndex,
  parsePublicKeyFile,
  parseSignatureFile,
  parseSignatureFileName,
  trustedCommentOf,
  verifySignature,
  type Entries,
  type HashKeyRef,
  type Kind,
  type MinisignPublicKey,
} from '@hashwall/format';

import { EXIT_CODES_HELP, parseCommand, type Io } from '../cli-support.js';
import { EXIT_OK, EXIT_REFUSED, usage } from '../errors.js';
import { listDir, readCapped } from '../files.js';
import { loadPublicKeys } from '../keys.js';

/** Entries per kind. */
export function countKinds(entries: Entries): Record<Kind, number> {
  const counts: Record<Kind, number> = { D: 0, H: 0, U: 0, P: 0 };
  for (let n = 0; n < entries.count; n++) counts[String.fromCharCode(entries.kinds[n]!) as Kind]++;
  return counts;
}

export function formatCounts(counts: Record<Kind, number>): string {
  return KINDS.map((k) => `${k} ${counts[k]}`).join(', ');
}

function hashKeyText(ref: HashKeyRef): string {
  return ref.mode === 'public' ? 'public (the key is in the header)' : `${ref.id} (licensed)`;
}

function startsWith(bytes: Uint8Array, text: string): boolean {
  return Buffer.from(bytes.subarray(0, text.length)).toString('latin1') === text;
}

/** The lines `inspect` prints for one file; `sigOk` is false when a signature failed against a given key. */
export async function inspectFile(
  path: string,
  trusted: readonly MinisignPublicKey[],
): Promise<{ lines: string[]; sigOk: boolean }> {
  const bytes = await readCapped(path, HARD_MAX_LIST_BYTES, 'file');
  const lines: string[] = [];
  const out = (s: string): void => {
    lines.push(s);
  };
  let commentPath: string | undefined;
  if (startsWith(bytes, 'HWL1 FULL\n')) {
    const full = parseFull(bytes, { maxBytes: HARD_MAX_LIST_BYTES });
    const h = full.header;
    out(`${path}: HWL1 FULL, ${bytes.length} bytes`);
    out(`  list-id      ${h.listId}`);
    out(`  serial       ${h.serial}`);
    out(`  created      ${formatTime(h.created)}`);
    out(`  expires      ${formatTime(h.expires)}`);
    out(`  hash-key-id  ${hashKeyText(h.hashKey)}`);
    out(`  entries      ${full.entries.count} (${formatCounts(countKinds(full.entries))})`);
    out(`  body-sha256  ${full.bodySha256}`);
    for (const [k, v] of h.extensions) out(`  ${k}  ${v}`);
    commentPath = 'full/x.hwl';
  } else if (startsWith(bytes, 'HWL1 DELTA\n')) {
    const delta = parseDelta(bytes, { maxBytes: HARD_MAX_LIST_BYTES });
    const d = delta.header;
    out(`${path}: HWL1 DELTA, ${bytes.length} bytes`);
    out(`  list-id      ${d.listId}`);
    out(`  base-serial  ${d.baseSerial}`);
    out(`  serial       ${d.serial}`);
    out(`  created      ${formatTime(d.created)}`);
    out(`  expires      ${formatTime(d.expires)}`);
    out(`  hash-key-id  ${hashKeyText(d.hashKey)}`);
    out(`  removals     ${delta.removals.count} (${formatCounts(countKinds(delta.removals))})`);
    out(`  additions    ${delta.additions.count} (${formatCounts(countKinds(delta.additions))})`);
    out(`  entries      ${d.entries} after applying`);
    for (const [k, v] of d.extensions) out(`  ${k}  ${v}`);
    commentPath = 'delta/x.hwld';
  } else if (startsWith(bytes, 'HWL1 INDEX\n')) {
    const index = parseIndex(bytes);
    const x = index.header;
    out(`${path}: HWL1 INDEX, ${bytes.length} bytes`);
    out(`  list-id   ${x.listId}`);
    out(`  seq       ${x.seq}`);
    out(`  serial    ${x.serial}`);
    out(`  created   ${formatTime(x.created)}`);
    out(`  expires   ${formatTime(x.expires)}`);
    out(`  min-poll  ${x.minPoll}`);
    for (const [k, v] of x.extensions) out(`  ${k}  ${v}`);
    out(`  full      ${index.full.path} ${index.full.size} bytes sha256 ${index.full.sha256}`);
    for (const d of index.deltas) out(`  delta     ${d.path} ${d.size} bytes sha256 ${d.sha256}`);
    commentPath = 'index.hwl';
  } else if (startsWith(bytes, 'hwl1-list-key\n')) {
    const id = /^hwl1-list-key\nhash-key-id: ([^\n]*)\n/.exec(bytes.toString('latin1'))?.[1] ?? '?';
    out(`${path}: list key file, hash-key-id ${id} (the key itself is not shown)`);
    return { lines, sigOk: true };
  } else if (path.endsWith('.minisig')) {
    const sig = parseSignatureFile(bytes);
    out(`${path}: minisign signature (${sig.algorithm === 'ED' ? 'prehashed ED' : 'legacy Ed, refused by HWL1'})`);
    out(`  key id           ${sig.keyId}`);
    out(`  trusted comment  ${sig.trustedComment} (not verified)`);
    return { lines, sigOk: true };
  } else if (path.endsWith('.pub')) {
    const pub = parsePublicKeyFile(bytes);
    out(`${path}: minisign public key ${pub.publicKey.keyId}`);
    return { lines, sigOk: true };
  } else {
    throw usage(`inspect: ${path} is not an HWL1 file, a .minisig, a .pub or a list key file`);
  }

  // The signatures next to the file.
  const dir = dirname(path);
  const base = basename(path);
  const expected = trustedCommentOf(commentPath, bytes);
  let sigOk = true;
  const names = (await listDir(dir)).filter((n) => parseSignatureFileName(n)?.fileName === base).sort();
  if (names.length === 0) out('  signatures   none found next to the file');
  for (const name of names) {
    try {
      const text = await readCapped(join(dir, name), MAX_SIGNATURE_FILE_BYTES, 'signature');
      const sig = parseSignatureFile(text);
      const key = trusted.find((k) => k.keyId === sig.keyId);
      let status = 'not verified (no --pub for this key)';
      if (key) {
        try {
          verifySignature(bytes, text, key);
          status = 'VALID';
        } catch (err) {
          status = `INVALID (${(err as { code?: string }).code ?? 'error'})`;
          sigOk = false;
        }
      }
      const form = sig.algorithm === 'ED' ? '' : ' legacy Ed form (refused)';
      out(`  signature    ${name}: key ${sig.keyId}${form}, ${status}`);
      out(
        `               trusted comment ${sig.trustedComment === expected ? 'matches the header' : `DIFFERS from the header: ${sig.trustedComment}`}`,
      );
      if (key && sig.trustedComment !== expected) sigOk = false;
    } catch (err) {
      out(`  signature    ${name}: unreadable (${(err as { code?: string }).code ?? 'error'})`);
      if (trusted.length > 0) sigOk = false;
    }
  }
  return { lines, sigOk };
}

const HELP = `Usage: hashwall-signer inspect FILE [--pub KEY.pub ...]

Shows what FILE holds. For an HWL1 FULL, DELTA or INDEX: the header, the entry counts by kind (D H U P), and
every signature file next to it (FILE.minisig, FILE.<KEYID>.minisig) with its key id and trusted comment, and
whether that comment matches the header. With --pub, signatures by those keys are verified. Also shows the key
id of a .minisig or .pub file, and the id (never the key) of a list key file.

Options:
  --pub FILE    verify signatures by this public key (repeatable)
  -h, --help    this help

Exit 1 when a signature fails against a key given with --pub.
${EXIT_CODES_HELP}
`;

const SPEC = {
  name: 'inspect',
  help: HELP,
  positionals: [1, 1] as const,
  options: { pub: { type: 'string', multiple: true } },
} as const;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommand(SPEC, argv, io);
  if (!args) return EXIT_OK;
  const trusted = await loadPublicKeys(args.values.pub ?? []);
  const { lines, sigOk } = await inspectFile(args.positionals[0]!, trusted);
  for (const line of lines) io.out(line);
  return sigOk ? EXIT_OK : EXIT_REFUSED;
}
