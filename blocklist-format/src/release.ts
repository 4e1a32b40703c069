/**
 * The client side of SPEC.md 4: one poll of a release, and the checks that re-open a stored list. The daemon's
 * sync loop and the signer's `verify` both run this code, so a release that passes `hashwall-signer verify` is
 * one a daemon accepts. No network and no disk here: files come through a {@link ReleaseSource}.
 */
import { createHash } from 'node:crypto';

import { FormatError } from './errors.js';
import { applyDelta, applyDeltaFrom, parseDelta, type DeltaList } from './delta.js';
import {
  DEFAULT_MAX_LIST_BYTES,
  checkLength,
  parseFull,
  readFullHeader,
  serializeFull,
  sha256Hex,
  type FullHeader,
  type FullList,
  type ParseOptions,
} from './full.js';
import { parseFullMatcher, parseFullMatcherFrom, type FullMatcher, type ReadBackOptions } from './fullmatcher.js';
import { prepareMatcher } from './matcher.js';
import { MAX_HEADER_BYTES, formatTime } from './header.js';
import {
  INDEX_PATH,
  MAX_INDEX_BYTES,
  deltaTrustedComment,
  fullPath,
  fullTrustedComment,
  indexTrustedComment,
  parseIndex,
  type IndexDeltaRef,
  type IndexFileRef,
  type IndexList,
} from './indexfile.js';
import { checkIndexKeyring, verifyIndexSignatures } from './keyring.js';
import { MAX_SIGNATURE_FILE_BYTES } from './minisign/signature.js';
import {
  MAX_SIGNATURES_PER_FILE,
  signatureFileName,
  verifyThreshold,
  verifyThresholdPrehashed,
  type TrustStore,
} from './minisign/threshold.js';
import type { ReleaseSource } from './source.js';
import { fileSha256, readAtOf, type FullFile, type FullSpool } from './spool.js';

/** SPEC.md 4: allowed clock skew, seconds. */
export const CLOCK_SKEW_SECONDS = 300;

/** What a client keeps between polls and across restarts (SPEC.md 4.3), plus the FULL file's digest. */
export interface ListState {
  readonly listId: string;
  readonly serial: number;
  readonly seq: number;
  /** body-sha256 of the enforced FULL. */
  readonly bodySha256: string;
  /** SHA-256 of the enforced FULL file, as an index names it: a same-serial index must name the same file. */
  readonly fullSha256: string;
}

export interface ReleaseContext {
  readonly source: ReleaseSource;
  readonly trust: TrustStore;
  readonly listId: string;
  /** Seconds since the epoch: one fixed `now` for the whole poll (SPEC.md 4). */
  readonly now: number;
  /** Cap for a FULL or DELTA, bytes (default 64 MiB; the format's hard limit is 256 MiB). */
  readonly maxListBytes?: number;
  /** Licensed hash-key ids the caller holds; a list hashed with another key is refused (UNKNOWN_HASH_KEY). */
  readonly hashKeyIds?: readonly string[];
  /**
   * `pollMatcher` only: makes a spool for the new FULL, when one is to be downloaded and the source can stream
   * (`ReleaseSource.stream`), or rebuilt from a delta whose base is given as a file ({@link StoredFull});
   * otherwise the FULL is held in memory as `poll` does. Called at most twice per poll: once for a delta's result
   * and, when that delta fails, once for the FULL. The spools are the caller's: an `updated` result names the one
   * that holds its FULL (`spool`); the caller discards every other one, and all of them after any other outcome, a
   * rejection included.
   */
  readonly spool?: () => FullSpool;
}

/** Where an updated poll's FULL file is: in memory, or (pollMatcher with a spool) in the caller's spool. */
export type FullHeld = InMemoryFull | SpooledFull;

export interface InMemoryFull {
  /** The FULL file, byte for byte as published (rebuilt from the delta when one was used). */
  readonly fullBytes: Uint8Array;
  readonly spool?: undefined;
}

export interface SpooledFull {
  /** The spool (`ReleaseContext.spool`) that holds the FULL file, `index.full.size` bytes, as published. */
  readonly spool: FullSpool;
  readonly fullBytes?: undefined;
}

export type PollResult<F extends ParsedFull = FullList, H extends FullHeld = FullHeld> =
  /** The server said the index did not change since the last fetch (HTTP 304). */
  | { readonly kind: 'not-modified' }
  /** The index's seq equals the stored one: nothing to do. */
  | { readonly kind: 'unchanged'; readonly index: IndexList }
  /** A newer seq for the same serial: a heartbeat. The list stays; the state takes the new seq. */
  | {
      readonly kind: 'heartbeat';
      readonly index: IndexList;
      readonly indexBytes: Uint8Array;
      readonly indexSignatures: readonly Uint8Array[];
      readonly state: ListState;
    }
  /** A newer serial, verified. Commit the FULL (`fullBytes` or `spool`) and the index with `state`, then swap. */
  | ({
      readonly kind: 'updated';
      readonly index: IndexList;
      readonly indexBytes: Uint8Array;
      readonly indexSignatures: readonly Uint8Array[];
      readonly full: F;
      readonly via: 'delta' | 'full';
      /** Why the delta was not used, when one was listed for the stored serial and failed. */
      readonly deltaError?: FormatError;
      readonly state: ListState;
    } & H);

/** What a parsed FULL has whatever its entries' layout: a FullList, or a FullMatcher (matcher arrays). */
export interface ParsedFull {
  readonly header: FullHeader;
  readonly bodySha256: string;
}

/** How a poll or a re-open turns verified FULL bytes, or a FULL rebuilt from a delta, into its result. */
interface Shape<F extends ParsedFull> {
  parse(bytes: Uint8Array, options: ParseOptions): F;
  /** The same parse over a verified file read back in pieces, when this shape has one. */
  parseFile?(file: FullFile, options: ReadBackOptions): F;
  fromFull(full: FullList): F;
}

const AS_LIST: Shape<FullList> = { parse: parseFull, fromFull: (full) => full };

const AS_MATCHER: Shape<FullMatcher> = {
  parse: parseFullMatcher,
  parseFile: parseFullMatcherFrom,
  fromFull: (full) => ({
    header: full.header,
    count: full.entries.count,
    bodySha256: full.bodySha256,
    parts: prepareMatcher(full.entries.hashes, full.entries.kinds),
  }),
};

/** A file with the signatures fetched for it. */
interface Signed {
  readonly bytes: Uint8Array;
  readonly signatures: Uint8Array[];
}

function expect(cond: boolean, code: 'COMMENT_MISMATCH' | 'LIST_MISMATCH' | 'MALFORMED', message: string): void {
  if (!cond) throw new FormatError(code, message);
}

/** Fetches `X.minisig` and `X.<KEYID>.minisig` for every key trusted for the list (SPEC.md 3). */
async function fetchSignatures(ctx: ReleaseContext, path: string): Promise<Uint8Array[]> {
  const keys = ctx.trust.get(ctx.listId)?.keys ?? [];
  const names = [signatureFileName(path), ...keys.map((k) => signatureFileName(path, k.keyId))];
  const got = await Promise.all(names.map((n) => ctx.source.get(n, { maxBytes: MAX_SIGNATURE_FILE_BYTES })));
  const sigs = got.flatMap((g) => (g.status === 'ok' ? [g.body] : []));
  if (sigs.length > MAX_SIGNATURES_PER_FILE) throw new FormatError('TOO_LARGE', `more than 8 signatures for ${path}`);
  return sigs;
}

/** The cap for a file the index names, refusing one whose listed size is over it before any fetch. */
function listedCap(ctx: ReleaseContext, ref: IndexFileRef): number {
  const cap = ctx.maxListBytes ?? DEFAULT_MAX_LIST_BYTES;
  if (ref.size > cap) throw new FormatError('TOO_LARGE', `${ref.path} is ${ref.size} bytes, over the cap of ${cap}`);
  return cap;
}

/** Fetches a file the index names: refusing any byte past its size, and checking its SHA-256 before anything. */
async function fetchListed(ctx: ReleaseContext, ref: IndexFileRef): Promise<Signed> {
  const cap = listedCap(ctx, ref);
  const res = await ctx.source.get(ref.path, { maxBytes: cap, exactSize: ref.size });
  if (res.status !== 'ok') throw new FormatError('FETCH_FAILED', `${ref.path} is listed in the index but absent`);
  if (sha256Hex(res.body) !== ref.sha256) {
    throw new FormatError('DIGEST_MISMATCH', `${ref.path} does not match the SHA-256 the index gave`);
  }
  return { bytes: res.body, signatures: await fetchSignatures(ctx, ref.path) };
}

/** A file the index names, streamed into a spool: its size, its BLAKE2b-512 prehash and its signatures. */
interface Spooled {
  readonly spool: FullSpool;
  readonly size: number;
  readonly prehash: Uint8Array;
  readonly signatures: Uint8Array[];
}

/**
 * fetchListed for a source that streams: each chunk goes to the spool while SHA-256 (the index's digest) and
 * BLAKE2b-512 (what the `ED` signatures sign) are updated, so the file is checked as fetchListed checks it
 * (size, then SHA-256 before anything else) without ever being held whole.
 */
async function streamListed(ctx: ReleaseContext, ref: IndexFileRef, spool: FullSpool): Promise<Spooled> {
  const cap = listedCap(ctx, ref);
  const source = ctx.source;
  if (!source.stream) throw new Error('internal: the source cannot stream');
  const sha = createHash('sha256');
  const blake = createHash('blake2b512');
  let size = 0;
  const res = await source.stream(ref.path, { maxBytes: cap, exactSize: ref.size }, (chunk) => {
    size += chunk.length;
    // The source counts too; this keeps a source that does not from writing past the size the index gave.
    if (size > ref.size) throw new FormatError('SIZE_MISMATCH', `${ref.path}: more than the ${ref.size} bytes listed`);
    sha.update(chunk);
    blake.update(chunk);
    spool.write(chunk);
  });
  if (res.status !== 'ok') throw new FormatError('FETCH_FAILED', `${ref.path} is listed in the index but absent`);
  if (size !== ref.size || res.size !== size) {
    throw new FormatError('SIZE_MISMATCH', `${ref.path}: ${size} bytes, the index gave ${ref.size}`);
  }
  if (sha.digest('hex') !== ref.sha256) {
    throw new FormatError('DIGEST_MISMATCH', `${ref.path} does not match the SHA-256 the index gave`);
  }
  return { spool, size, prehash: new Uint8Array(blake.digest()), signatures: await fetchSignatures(ctx, ref.path) };
}

/** Verifies a signed file's signatures (before anything else), returning the trusted comment. */
function verifySigned(ctx: ReleaseContext, file: Signed): string {
  return verifyThreshold(file.bytes, file.signatures, ctx.trust, ctx.listId).trustedComment;
}

/** SPEC.md 4.1: `created <= now + 300s < expires`. */
export function checkWindow(what: string, created: number, expires: number, now: number): void {
  if (created > now + CLOCK_SKEW_SECONDS) throw new FormatError('NOT_YET_VALID', `${what} was created in the future`);
  if (!(now + CLOCK_SKEW_SECONDS < expires)) throw new FormatError('EXPIRED', `${what} has expired`);
}

function checkHashKey(ctx: ReleaseContext, full: ParsedFull): void {
  const ref = full.header.hashKey;
  if (ref.mode === 'licensed' && ctx.hashKeyIds !== undefined && !ctx.hashKeyIds.includes(ref.id)) {
    throw new FormatError(
      'UNKNOWN_HASH_KEY',
      `the list is hashed with key "${ref.id}", which this client does not hold`,
    );
  }
}

/** Verifies an index's signatures, then parses it and checks its trusted comment and list-id. No time checks. */
export function openIndex(
  ctx: Pick<ReleaseContext, 'trust' | 'listId'>,
  bytes: Uint8Array,
  signatures: readonly Uint8Array[],
): IndexList {
  const comment = verifyIndexSignatures(bytes, signatures, ctx.trust, ctx.listId).trustedComment;
  const index = parseIndex(bytes);
  expect(index.header.listId === ctx.listId, 'LIST_MISMATCH', `index is for list ${index.header.listId}`);
  checkIndexKeyring(index.header, ctx.trust.get(ctx.listId)); // SPEC.md 5.3
  expect(
    comment === indexTrustedComment(index.header),
    'COMMENT_MISMATCH',
    'index trusted comment disagrees with its header',
  );
  return index;
}

/** Verifies and parses a FULL at `serial`; no time checks (the caller decides which apply). */
function openFull<F extends ParsedFull>(ctx: ReleaseContext, file: Signed, serial: number, shape: Shape<F>): F {
  const comment = verifySigned(ctx, file);
  const full = shape.parse(file.bytes, { maxBytes: ctx.maxListBytes ?? DEFAULT_MAX_LIST_BYTES });
  return checkFull(ctx, comment, full, serial);
}

/**
 * openFull for a spooled FULL: the signatures are verified over the prehash computed while it streamed in, then
 * (only then) it is read back from the spool in pieces and parsed, its bytes hashed again against the index's
 * SHA-256 so that what is parsed is what was verified.
 */
function openSpooled<F extends ParsedFull>(
  ctx: ReleaseContext,
  file: Spooled,
  ref: IndexFileRef,
  serial: number,
  shape: Shape<F>,
): F {
  const comment = verifyThresholdPrehashed(file.prehash, file.signatures, ctx.trust, ctx.listId).trustedComment;
  const spool = file.spool;
  if (!shape.parseFile) throw new Error('internal: this shape cannot parse a spooled file');
  const full = shape.parseFile(
    { size: file.size, read: (position, into) => spool.read(position, into) },
    { maxBytes: ctx.maxListBytes ?? DEFAULT_MAX_LIST_BYTES, fileSha256: ref.sha256 },
  );
  return checkFull(ctx, comment, full, serial);
}

/** The checks of a parsed FULL against its verified trusted comment and the serial the index names. */
function checkFull<F extends ParsedFull>(ctx: ReleaseContext, comment: string, full: F, serial: number): F {
  expect(full.header.listId === ctx.listId, 'LIST_MISMATCH', `FULL is for list ${full.header.listId}`);
  expect(
    comment === fullTrustedComment(full.header),
    'COMMENT_MISMATCH',
    'FULL trusted comment disagrees with its header',
  );
  expect(full.header.serial === serial, 'MALFORMED', `FULL has serial ${full.header.serial}, the index says ${serial}`);
  return full;
}

/** The facts of a delta's base that the delta is checked against: its list, serial and body digest. */
interface BaseFacts {
  readonly header: Pick<FullHeader, 'listId' | 'serial'>;
  readonly bodySha256: string;
}

/**
 * Fetches the delta from `base` (SPEC.md 4.2), verifies its signatures, parses it and checks it against the index.
 * EQUIVOCATION when the signed delta names another body for the base serial than the one we hold.
 */
async function openDelta(
  ctx: ReleaseContext,
  index: IndexList,
  ref: IndexDeltaRef,
  base: BaseFacts,
): Promise<DeltaList> {
  const file = await fetchListed(ctx, ref);
  const comment = verifySigned(ctx, file);
  const delta: DeltaList = parseDelta(file.bytes, { maxBytes: ctx.maxListBytes ?? DEFAULT_MAX_LIST_BYTES });
  const d = delta.header;
  expect(d.listId === ctx.listId, 'LIST_MISMATCH', `DELTA is for list ${d.listId}`);
  expect(comment === deltaTrustedComment(d), 'COMMENT_MISMATCH', 'DELTA trusted comment disagrees with its header');
  expect(
    d.serial === index.header.serial && d.baseSerial === ref.baseSerial,
    'MALFORMED',
    'DELTA serials disagree with the index',
  );
  if (d.baseSerial === base.header.serial && d.baseBodySha256 !== base.bodySha256) {
    // SPEC.md 4.4: two signed statements about one serial.
    throw new FormatError('EQUIVOCATION', `serial ${d.baseSerial} was published with two different bodies`);
  }
  return delta;
}

function notTheIndexed(): FormatError {
  return new FormatError('DELTA_MISMATCH', 'the delta does not give the FULL the index names');
}

/**
 * Fetches, verifies and applies the delta from `base` (SPEC.md 4.2). The result must be the FULL the index names,
 * byte for byte. EQUIVOCATION when the signed delta names another body for the base serial than the one we hold.
 */
export async function deltaStep(
  ctx: ReleaseContext,
  index: IndexList,
  ref: IndexDeltaRef,
  base: FullList,
): Promise<{ full: FullList; fullBytes: Uint8Array }> {
  const delta = await openDelta(ctx, index, ref, base);
  const full = applyDelta(base, delta);
  const fullBytes = serializeFull(full);
  if (fullBytes.length !== index.full.size || sha256Hex(fullBytes) !== index.full.sha256) throw notTheIndexed();
  return { full, fullBytes };
}

/**
 * deltaStep with the base read from its file in pieces and the result written to a spool (applyDeltaFrom), checked
 * by size and SHA-256 against the index as it is written, then parsed back from the spool as a downloaded FULL is
 * (re-hashed while parsed, so what is parsed is what was checked). Nothing of the base, the entries or the result
 * is held whole.
 */
async function deltaStepFrom<F extends ParsedFull>(
  ctx: ReleaseContext,
  index: IndexList,
  ref: IndexDeltaRef,
  base: OpenedBase,
  shape: Shape<F>,
  makeSpool: () => FullSpool,
): Promise<{ full: F; spool: FullSpool }> {
  if (!shape.parseFile) throw new Error('internal: this shape cannot parse a spooled file');
  const delta = await openDelta(ctx, index, ref, base);
  listedCap(ctx, index.full); // before a spool is made for it
  const options = { maxBytes: ctx.maxListBytes ?? DEFAULT_MAX_LIST_BYTES };
  const spool = makeSpool();
  const made = applyDeltaFrom(base.stored.file, delta, spool, { ...options, baseFileSha256: base.stored.fileSha256 });
  if (made.size !== index.full.size || made.fileSha256 !== index.full.sha256) throw notTheIndexed();
  const full = shape.parseFile(
    { size: made.size, read: (position, into) => spool.read(position, into) },
    { ...options, fileSha256: index.full.sha256 },
  );
  return { full, spool };
}

/**
 * The enforced FULL left in the client's storage (a stored file), for a delta to be applied to in pieces: the
 * file, and the SHA-256 its index named (the state's `fullSha256`). The file is hashed as it is read and must have
 * that digest; its header must name the enforced list (list-id, serial, body-sha256).
 */
export interface StoredFull {
  readonly file: FullFile;
  readonly fileSha256: string;
}

/**
 * The enforced FULL as `poll` takes it: the list itself, its stored file ({@link StoredFull}), or a function that
 * produces either only when a delta from it is to be applied (a client that does not keep a million entries in
 * memory between polls re-reads its stored copy there). A FormatError thrown by the function is a failed delta:
 * the poll falls back to the FULL. With a file and a spool (`pollMatcher`), the delta is applied without holding
 * the base or the result whole; without a spool the file is read whole and parsed.
 */
export type CurrentFull = FullList | StoredFull | (() => FullList | StoredFull | Promise<FullList | StoredFull>);

/** A stored base with the facts of its header, read from the file's first bytes. */
interface OpenedBase extends BaseFacts {
  readonly stored: StoredFull;
}

function notEnforced(): FormatError {
  return new FormatError('MALFORMED', 'the delta base given is not the enforced list');
}

/** Runs a base loader if need be and checks that it gave the FULL `state` names. */
async function loadBase(
  ctx: ReleaseContext,
  current: CurrentFull,
  state: ListState,
): Promise<{ list: FullList } | OpenedBase> {
  const base = typeof current === 'function' ? await current() : current;
  let facts: BaseFacts;
  let opened: { list: FullList } | OpenedBase;
  if ('file' in base) {
    if (base.fileSha256 !== state.fullSha256) throw notEnforced();
    const { file } = base;
    const options = { maxBytes: ctx.maxListBytes ?? DEFAULT_MAX_LIST_BYTES };
    checkLength(file.size, options, 'FULL');
    const prefix = readAtOf(file, MAX_HEADER_BYTES)(0, Math.min(file.size, MAX_HEADER_BYTES));
    const head = readFullHeader(prefix, file.size, options);
    facts = { header: head.header, bodySha256: head.bodySha256 };
    opened = { ...facts, stored: base };
  } else {
    facts = base;
    opened = { list: base };
  }
  // A list given directly is the caller's word (as before files could be given); what a loader or a file gives is
  // checked.
  if (
    (typeof current === 'function' || 'stored' in opened) &&
    (facts.header.listId !== state.listId ||
      facts.header.serial !== state.serial ||
      facts.bodySha256 !== state.bodySha256)
  ) {
    throw notEnforced();
  }
  return opened;
}

/** A stored base read whole and parsed (a poll without a spool): its bytes must have the digest given. */
function parseStored(ctx: ReleaseContext, stored: StoredFull): FullList {
  const options = { maxBytes: ctx.maxListBytes ?? DEFAULT_MAX_LIST_BYTES };
  checkLength(stored.file.size, options, 'FULL');
  const bytes = readAtOf(stored.file, stored.file.size)(0, stored.file.size); // one buffer, no next read
  if (sha256Hex(bytes) !== stored.fileSha256) {
    throw new FormatError('DIGEST_MISMATCH', 'the base FULL is not the file that was verified');
  }
  return parseFull(bytes, options);
}

/**
 * One poll (SPEC.md 4.1-4.4). `state` and `current` are what the client enforces now (both or neither).
 * Throws a FormatError for every refusal; the caller keeps its list in force (fail static).
 */
export async function poll(
  ctx: ReleaseContext,
  state?: ListState,
  current?: CurrentFull,
): Promise<PollResult<FullList, InMemoryFull>> {
  return (await pollAs(ctx, state, current, AS_LIST)) as PollResult<FullList, InMemoryFull>; // AS_LIST never spools
}

/**
 * `poll`, with a new FULL's entries as the matcher's arrays (`FullMatcher`): a downloaded FULL is parsed straight
 * into them (parseFullMatcher), one rebuilt from a delta goes through prepareMatcher. Every rule is `poll`'s.
 */
export async function pollMatcher(
  ctx: ReleaseContext,
  state?: ListState,
  current?: CurrentFull,
): Promise<PollResult<FullMatcher>> {
  return pollAs(ctx, state, current, AS_MATCHER);
}

async function pollAs<F extends ParsedFull>(
  ctx: ReleaseContext,
  state: ListState | undefined,
  current: CurrentFull | undefined,
  shape: Shape<F>,
): Promise<PollResult<F>> {
  // 4.1: the index.
  const res = await ctx.source.get(INDEX_PATH, { maxBytes: MAX_INDEX_BYTES, conditional: state !== undefined });
  if (res.status === 'not-modified') return { kind: 'not-modified' };
  if (res.status === 'absent') throw new FormatError('FETCH_FAILED', `${INDEX_PATH} not found`);
  const indexFile: Signed = { bytes: res.body, signatures: await fetchSignatures(ctx, INDEX_PATH) };
  const index = openIndex(ctx, indexFile.bytes, indexFile.signatures);
  const x = index.header;
  checkWindow('index', x.created, x.expires, ctx.now);
  if (state) {
    if (x.seq < state.seq) throw new FormatError('ROLLBACK', `index seq ${x.seq} is below the stored ${state.seq}`);
    if (x.serial < state.serial)
      throw new FormatError('ROLLBACK', `serial ${x.serial} is below the stored ${state.serial}`);
    if (x.serial === state.serial && index.full.sha256 !== state.fullSha256) {
      throw new FormatError('EQUIVOCATION', `serial ${x.serial} is now published with another FULL`);
    }
    if (x.seq === state.seq) {
      if (x.serial !== state.serial) throw new FormatError('EQUIVOCATION', `seq ${x.seq} names two serials`);
      return { kind: 'unchanged', index };
    }
    // 4.2: same serial, newer seq: a heartbeat.
    if (x.serial === state.serial) {
      return {
        kind: 'heartbeat',
        index,
        indexBytes: indexFile.bytes,
        indexSignatures: indexFile.signatures,
        state: { ...state, seq: x.seq },
      };
    }
  }

  // 4.2: a newer serial. The delta from the stored serial when listed, else (or when it fails) the FULL.
  let deltaError: FormatError | undefined;
  let got: ({ full: F; via: 'delta' | 'full' } & FullHeld) | undefined;
  const ref = state && current ? index.deltas.find((d) => d.baseSerial === state.serial) : undefined;
  if (ref && current) {
    try {
      const base = await loadBase(ctx, current, state!);
      if ('stored' in base && ctx.spool && shape.parseFile) {
        const step = await deltaStepFrom(ctx, index, ref, base, shape, ctx.spool);
        got = { full: step.full, spool: step.spool, via: 'delta' };
      } else {
        const list = 'stored' in base ? parseStored(ctx, base.stored) : base.list;
        const step = await deltaStep(ctx, index, ref, list);
        got = { full: shape.fromFull(step.full), fullBytes: step.fullBytes, via: 'delta' };
      }
    } catch (err) {
      if (err instanceof FormatError && err.code === 'EQUIVOCATION') throw err;
      if (!(err instanceof FormatError)) throw err;
      deltaError = err;
    }
  }
  if (!got) {
    if (ctx.spool && ctx.source.stream && shape.parseFile) {
      listedCap(ctx, index.full); // before a spool is made for it
      const file = await streamListed(ctx, index.full, ctx.spool());
      got = { full: openSpooled(ctx, file, index.full, x.serial, shape), spool: file.spool, via: 'full' };
    } else {
      const file = await fetchListed(ctx, index.full);
      got = { full: openFull(ctx, file, x.serial, shape), fullBytes: file.bytes, via: 'full' };
    }
  }
  const h = got.full.header;
  checkWindow('FULL', h.created, h.expires, ctx.now);
  checkHashKey(ctx, got.full);
  return {
    kind: 'updated',
    index,
    indexBytes: indexFile.bytes,
    indexSignatures: indexFile.signatures,
    full: got.full,
    ...(got.spool ? { spool: got.spool } : { fullBytes: got.fullBytes }),
    via: got.via,
    ...(deltaError ? { deltaError } : {}),
    state: {
      listId: ctx.listId,
      serial: x.serial,
      seq: x.seq,
      bodySha256: got.full.bodySha256,
      fullSha256: index.full.sha256,
    },
  };
}

/** What a client committed to its state directory, read back: the index, its signatures and the FULL it names. */
export interface StoredRelease {
  readonly indexBytes: Uint8Array;
  readonly indexSignatures: readonly Uint8Array[];
  readonly fullBytes: Uint8Array;
}

/**
 * Re-opens what a client stored (SPEC.md 4.3: at start, re-verify before serving): the index with its
 * signatures, and the FULL it names, checked by size and SHA-256 against the signed index. No time checks: an
 * expired store is still the last verified list (the caller applies `on-expired`). When `state` is given it must
 * agree with the index (else MALFORMED: the store was tampered with or half-written).
 */
export function openStored(
  ctx: Pick<ReleaseContext, 'trust' | 'listId' | 'maxListBytes'>,
  stored: StoredRelease,
  state?: ListState,
): { index: IndexList; full: FullList; state: ListState } {
  return openStoredAs(ctx, stored, state, AS_LIST);
}

/** `openStored`, with the stored FULL parsed straight into the matcher's arrays (parseFullMatcher). */
export function openStoredMatcher(
  ctx: Pick<ReleaseContext, 'trust' | 'listId' | 'maxListBytes'>,
  stored: StoredRelease,
  state?: ListState,
): { index: IndexList; full: FullMatcher; state: ListState } {
  return openStoredAs(ctx, stored, state, AS_MATCHER);
}

/** What a client committed, with the FULL left in its storage and read back in pieces (spool.ts). */
export interface StoredReleaseFile {
  readonly indexBytes: Uint8Array;
  readonly indexSignatures: readonly Uint8Array[];
  readonly full: FullFile;
}

/**
 * `openStoredMatcher` over a stored FULL that is read in pieces instead of held whole: its size and SHA-256 are
 * checked against the signed index in a first read, then it is parsed in a second (hashed again, so that what is
 * parsed is what was checked). Every rule and code is openStored's.
 */
export function openStoredMatcherFrom(
  ctx: Pick<ReleaseContext, 'trust' | 'listId' | 'maxListBytes'>,
  stored: StoredReleaseFile,
  state?: ListState,
): { index: IndexList; full: FullMatcher; state: ListState } {
  const file = stored.full;
  return openStoredWith(ctx, stored, state, (index, options) => {
    if (file.size !== index.full.size || fileSha256(file) !== index.full.sha256) {
      throw new FormatError('DIGEST_MISMATCH', 'the stored FULL is not the one the stored index names');
    }
    return parseFullMatcherFrom(file, { ...options, fileSha256: index.full.sha256 });
  });
}

function openStoredAs<F extends ParsedFull>(
  ctx: Pick<ReleaseContext, 'trust' | 'listId' | 'maxListBytes'>,
  stored: StoredRelease,
  state: ListState | undefined,
  shape: Shape<F>,
): { index: IndexList; full: F; state: ListState } {
  return openStoredWith(ctx, stored, state, (index, options) => {
    if (stored.fullBytes.length !== index.full.size || sha256Hex(stored.fullBytes) !== index.full.sha256) {
      throw new FormatError('DIGEST_MISMATCH', 'the stored FULL is not the one the stored index names');
    }
    return shape.parse(stored.fullBytes, options);
  });
}

/** The re-open: the index's signatures, then `checkAndParse` (the FULL against the index), then the state. */
function openStoredWith<F extends ParsedFull>(
  ctx: Pick<ReleaseContext, 'trust' | 'listId' | 'maxListBytes'>,
  stored: Pick<StoredRelease, 'indexBytes' | 'indexSignatures'>,
  state: ListState | undefined,
  checkAndParse: (index: IndexList, options: ParseOptions) => F,
): { index: IndexList; full: F; state: ListState } {
  const index = openIndex(ctx, stored.indexBytes, stored.indexSignatures);
  const full = checkAndParse(index, { maxBytes: ctx.maxListBytes ?? DEFAULT_MAX_LIST_BYTES });
  expect(
    full.header.listId === ctx.listId && full.header.serial === index.header.serial,
    'MALFORMED',
    'stored FULL disagrees with the stored index',
  );
  const derived: ListState = {
    listId: ctx.listId,
    serial: index.header.serial,
    seq: index.header.seq,
    bodySha256: full.bodySha256,
    fullSha256: index.full.sha256,
  };
  if (state && JSON.stringify(state) !== JSON.stringify(derived)) {
    throw new FormatError('MALFORMED', 'the stored state disagrees with the stored files');
  }
  return { index, full, state: derived };
}

/** One line of a release check. */
export interface CheckItem {
  readonly what: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly code?: string;
}

/**
 * Checks a whole release as a daemon would see it (used by `hashwall-signer verify`): the index and the FULL as a
 * fresh client fetches them, then every listed delta applied to its base FULL (when that FULL is still published)
 * through the same delta step the daemon uses. Never throws a FormatError: every failure is an item.
 */
export async function checkRelease(
  ctx: ReleaseContext,
): Promise<{ ok: boolean; items: CheckItem[]; index?: IndexList; full?: FullList }> {
  const items: CheckItem[] = [];
  const fail = (what: string, err: unknown): void => {
    if (!(err instanceof FormatError)) throw err;
    items.push({ what, ok: false, detail: err.message, code: err.code });
  };
  let first: PollResult;
  try {
    first = await poll(ctx);
  } catch (err) {
    fail('index and FULL', err);
    return { ok: false, items };
  }
  if (first.kind !== 'updated') throw new Error('internal: a first poll always updates');
  const { index, full } = first;
  items.push({
    what: INDEX_PATH,
    ok: true,
    detail: `seq ${index.header.seq}, serial ${index.header.serial}, expires ${formatTime(index.header.expires)}`,
  });
  items.push({ what: index.full.path, ok: true, detail: `${full.entries.count} entries, ${index.full.size} bytes` });
  for (const ref of index.deltas) {
    try {
      const baseRef = fullPath(ref.baseSerial);
      const res = await ctx.source.get(baseRef, { maxBytes: ctx.maxListBytes ?? DEFAULT_MAX_LIST_BYTES });
      if (res.status !== 'ok') {
        items.push({ what: ref.path, ok: false, detail: `base ${baseRef} is not published`, code: 'FETCH_FAILED' });
        continue;
      }
      const base = openFull(
        ctx,
        { bytes: res.body, signatures: await fetchSignatures(ctx, baseRef) },
        ref.baseSerial,
        AS_LIST,
      );
      await deltaStep(ctx, index, ref, base);
      items.push({ what: ref.path, ok: true, detail: `applies to ${baseRef} and gives ${index.full.path}` });
    } catch (err) {
      fail(ref.path, err);
    }
  }
  return { ok: items.every((i) => i.ok), items, index, full };
}
