// The release log (SPEC.md 6) with real parts: the signer's CLI publishing into a release directory served by a
// real HTTP server, two hashwall-witness processes on 127.0.0.1 cosigning, verify auditing the whole log over
// HTTP, the daemon's check (checkLeafInLog) reading tiles through @hashwall/release-client, a witness going down
// (the publish fails, nothing becomes visible, the next run finishes the append), and a forked log (same origin and
// key, another leaf) refused by both witnesses, which keep the evidence.
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parseIndex } from '@hashwall/format';
import { HttpSource } from '@hashwall/release-client';
import {
  checkLeafInLog,
  isTlogError,
  openCheckpoint,
  parseCosignerKey,
  parseLogKey,
  tileReaderFromSource,
  type LogTrust,
} from '@hashwall/tlog';
import t, { type Test } from 'tap';

import { newWitness, startWitness, type Started } from '../../witness/test/helpers.ts';
import { NOW, buildFull, cli, staticServer, world, type World } from './helpers.ts';

const ORIGIN = 'lists.example/demo';
/** The file's root test: what the tests share is torn down with it. */
const file = t;

interface Witness {
  config: string;
  vkey: string;
  dir: string;
  running: Started;
}

interface Logged {
  w: World;
  /** The log's origin: each test has its own, so that witnesses shared by tests keep each log apart. */
  origin: string;
  logVkey: string;
  witnesses: Witness[];
  /** Writes the signer's log config for the witnesses' current URLs. */
  logConfig: (threshold?: number, extra?: string) => string;
  publish: (
    serial: number,
    logConfig: string,
    dir?: string,
  ) => Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** A log key made by `keygen --log-key` for `origin` in `dir` (as log.skey and log.vkey), with what keygen said. */
interface LogKey {
  readonly origin: string;
  readonly dir: string;
  readonly vkey: string;
  readonly run: { code: number | null; stdout: string; stderr: string };
}

async function logKey(dir: string, origin: string): Promise<LogKey> {
  mkdirSync(dir, { recursive: true });
  const run = await cli(['keygen', '--log-key', '--origin', origin, '--out', join(dir, 'log')]);
  const vkey = run.code === 0 ? readFileSync(join(dir, 'log.vkey'), 'utf8').trim() : '';
  return { origin, dir, vkey, run };
}

/** Tests that share the file's witnesses (all but the one that stops a witness): one log origin each. */
const SHARING = 5;

/**
 * The two witnesses the tests share, started by the first that asks and stopped when the file ends: they know the
 * log of each sharing test (its own origin and key, made first), since a witness reads its logs at start. A witness
 * process costs ~0.4 s of CPU to start; each test making its own pair started ten more.
 */
let shared: Promise<{ keys: LogKey[]; witnesses: Witness[] }> | undefined;
let sharedTaken = 0;

async function startWitnesses(t: Test, keys: readonly LogKey[]): Promise<Witness[]> {
  const witnesses: Witness[] = [];
  for (const name of ['witness.example/w1', 'witness.example/w2']) {
    const made = await newWitness(
      t,
      name,
      keys.map((k) => ({ origin: k.origin, vkey: k.vkey })),
    );
    witnesses.push({ ...made, running: await startWitness(t, made.config) });
  }
  return witnesses;
}

/**
 * A world with a release log: its own witnesses when `own` (a test that stops one), else the shared ones. Both ways
 * the log's key is made by `keygen --log-key`, as a maintainer makes it.
 */
async function setup(t: Test, { own = false } = {}): Promise<Logged> {
  const w = world(t);
  let key: LogKey;
  let witnesses: Witness[];
  if (own) {
    key = await logKey(w.dir, ORIGIN);
    witnesses = await startWitnesses(t, [key]);
  } else {
    shared ??= (async () => {
      const root = mkdtempSync(join(tmpdir(), 'hashwall-signer-logs-'));
      file.teardown(() => rmSync(root, { recursive: true, force: true }));
      const keys: LogKey[] = [];
      for (let i = 1; i <= SHARING; i++) keys.push(await logKey(join(root, String(i)), `${ORIGIN}-${i}`));
      return { keys, witnesses: await startWitnesses(file, keys) };
    })();
    const s = await shared;
    if (sharedTaken >= SHARING) throw new Error(`more than ${SHARING} tests share the witnesses: raise SHARING`);
    key = s.keys[sharedTaken++]!;
    witnesses = s.witnesses;
    for (const f of ['log.skey', 'log.vkey']) cpSync(join(key.dir, f), join(w.dir, f));
  }
  t.equal(key.run.code, 0, key.run.stderr);
  const logVkey = readFileSync(join(w.dir, 'log.vkey'), 'utf8').trim();
  t.match(key.run.stdout, `log key: ${logVkey}`, 'keygen prints the vkey it wrote');
  const logConfig = (threshold = 2, extra = ''): string => {
    const path = join(w.dir, `log-${threshold}.yaml`);
    const list = witnesses.map((x) => `  - url: ${x.running.url}\n    key: ${x.vkey}\n`).join('');
    writeFileSync(path, `key: log.skey\nwitnesses:\n${list}threshold: ${threshold}\ntimeoutMs: 10000\n${extra}`);
    return path;
  };
  const publish = async (serial: number, config: string, dir = w.rel) => {
    writeFileSync(w.source, `${readFileSync(w.source, 'utf8')}domain added-${serial}-${dir.length}.example\n`);
    const full = await buildFull(t, w.dir, w.source, w.listKey, serial, join(w.dir, `f${serial}-${dir.length}.hwl`));
    return cli(['publish', full, '--dir', dir, '--key', w.alice.key, '--now', NOW, '--log', config]);
  };
  return { w, origin: key.origin, logVkey, witnesses, logConfig, publish };
}

function trustOf(s: Logged, threshold = 2): LogTrust {
  return {
    origin: s.origin,
    logKey: parseLogKey(s.logVkey),
    witnesses: s.witnesses.map((x) => parseCosignerKey(x.vkey)),
    witnessThreshold: threshold,
  };
}

function verifyArgs(s: Logged, location: string, threshold?: number): string[] {
  return [
    'verify',
    location,
    '--pub',
    s.w.alice.pub,
    '--now',
    NOW,
    '--log-key',
    join(s.w.dir, 'log.vkey'),
    ...s.witnesses.flatMap((x) => ['--witness-key', x.vkey]),
    ...(threshold === undefined ? [] : ['--witness-threshold', String(threshold)]),
  ];
}

function logIndexOf(dir: string): number | undefined {
  return parseIndex(readFileSync(join(dir, 'index.hwl'))).header.logIndex;
}

t.test('publish and heartbeat log every index, two witnesses cosign, verify audits the log over HTTP', async (t) => {
  const s = await setup(t);
  const config = s.logConfig(2);
  const first = await s.publish(1, config);
  t.equal(first.code, 0, first.stderr);
  t.match(
    first.stdout,
    /logged as leaf 0 of the release log \(size 1\), cosigned by witness\.example\/w1, witness\.example\/w2/,
  );
  t.equal(logIndexOf(s.w.rel), 0, 'the index carries log-index 0');
  const hb = await cli(['heartbeat', '--dir', s.w.rel, '--key', s.w.alice.key, '--now', NOW, '--log', config]);
  t.equal(hb.code, 0, hb.stderr);
  t.match(hb.stdout, /logged as leaf 1 /, 'a heartbeat is logged too');
  const second = await s.publish(2, config);
  t.equal(second.code, 0, second.stderr);
  t.equal(logIndexOf(s.w.rel), 2);
  t.ok(existsSync(join(s.w.rel, 'log', 'tile', '0', '000.p', '3')), 'tlog-tiles paths');
  t.ok(existsSync(join(s.w.rel, 'log', 'tile', 'entries', '000.p', '3')));
  t.notOk(existsSync(join(s.w.rel, '.hashwall-signer.log-pending')), 'nothing left pending');

  const url = await staticServer(t, s.w.rel);
  const v = await cli(verifyArgs(s, url));
  t.equal(v.code, 0, v.stdout + v.stderr);
  t.match(
    v.stdout,
    /ok\s+log checkpoint: size 3, signed by the log key, cosigned by witness\.example\/w1 \(.*\), witness\.example\/w2/,
  );
  t.match(v.stdout, /ok\s+log leaves: 3 indexes of list demo, signed, in order/);
  t.match(v.stdout, /ok\s+log tree: the root rebuilt from the 3 entries is the checkpoint's/);
  t.match(v.stdout, /ok\s+log: index\.hwl is in the log: leaf 2 of 3, by an inclusion proof read from tiles/);
  const fromConfig = await cli(['verify', s.w.rel, '--pub', s.w.alice.pub, '--now', NOW, '--log', config]);
  t.equal(fromConfig.code, 0, 'verify --log reads the keys from the publisher config');
  const nokey = await cli(['verify', url, '--pub', s.w.alice.pub, '--now', NOW]);
  t.equal(nokey.code, 1, 'a release with a log fails verification without the log key');
  t.match(nokey.stdout, /FAIL\s+log: USAGE: the release has a log/);

  // What a daemon runs (SPEC.md 6): over HTTP, with its stored checkpoint, for the current index.
  const source = new HttpSource(url, { totalTimeoutMs: 10_000 });
  t.teardown(() => source.close());
  const reader = tileReaderFromSource(source);
  const index = readFileSync(join(s.w.rel, 'index.hwl'));
  const opened = await checkLeafInLog({ reader, trust: trustOf(s), leaf: index, leafIndex: 2 });
  t.equal(opened.checkpoint.size, 3);
  t.equal(opened.cosignatures.length, 2);
  const again = await s.publish(3, config);
  t.equal(again.code, 0, again.stderr);
  const next = await checkLeafInLog({
    reader,
    trust: trustOf(s),
    leaf: readFileSync(join(s.w.rel, 'index.hwl')),
    leafIndex: 3,
    stored: opened.bytes,
  });
  t.equal(next.checkpoint.size, 4, 'consistent with the stored checkpoint');
  // The witnesses serve what they cosigned (tlog-witness monitoring).
  const { createHash } = await import('node:crypto');
  const res = await fetch(
    `${s.witnesses[0]!.running.url}${createHash('sha256').update(s.origin).digest('hex')}/checkpoint`,
  );
  t.equal(
    openCheckpoint(new Uint8Array(await res.arrayBuffer()), { logKeys: [parseLogKey(s.logVkey)] }).checkpoint.size,
    4,
  );
});

t.test('a witness down: the publish fails and nothing becomes visible; the next run finishes the append', async (t) => {
  const s = await setup(t, { own: true });
  t.equal((await s.publish(1, s.logConfig(2))).code, 0);
  const before = {
    index: readFileSync(join(s.w.rel, 'index.hwl')),
    checkpoint: readFileSync(join(s.w.rel, 'log', 'checkpoint')),
  };
  const down = s.witnesses[1]!;
  down.running.child.kill('SIGTERM');
  t.equal(await down.running.exited, 0);
  const failed = await s.publish(2, s.logConfig(2));
  t.equal(failed.code, 1, 'refused');
  t.match(
    failed.stderr,
    /LOG_WITNESS_FAILED: 1 of 2 witnesses cosigned; 2 needed .*witness\.example\/w2 at .*unavailable: .*Nothing new is published/,
  );
  t.same(readFileSync(join(s.w.rel, 'index.hwl')), before.index, 'index.hwl unchanged');
  t.same(readFileSync(join(s.w.rel, 'log', 'checkpoint')), before.checkpoint, 'log/checkpoint unchanged');
  t.ok(existsSync(join(s.w.rel, '.hashwall-signer.log-pending')), 'the staged checkpoint is kept');
  // The witness comes back (same state, a new port).
  down.running = await startWitness(t, down.config);
  const done = await s.publish(3, s.logConfig(2));
  t.equal(done.code, 0, done.stderr);
  t.match(done.stderr, /finishing an interrupted append: the log's pending checkpoint of size 2/);
  t.match(
    done.stdout,
    /logged as leaf 2 of the release log \(size 3\), cosigned by witness\.example\/w1, witness\.example\/w2/,
  );
  t.notOk(existsSync(join(s.w.rel, '.hashwall-signer.log-pending')));
  const v = await cli(verifyArgs(s, s.w.rel));
  t.equal(v.code, 0, v.stdout);
  t.match(v.stdout, /log leaves: 3 indexes/, 'the index no client saw is a valid leaf too');
  const hb = await cli(['heartbeat', '--dir', s.w.rel, '--key', s.w.alice.key, '--now', NOW, '--log', s.logConfig(2)]);
  t.equal(hb.code, 0, hb.stderr);
  t.match(hb.stdout, /logged as leaf 3 /, 'and a heartbeat after it');
});

t.test(
  'a forked log (same origin and key, another leaf) is refused by both witnesses, which keep evidence',
  async (t) => {
    const s = await setup(t);
    const config = s.logConfig(2);
    t.equal((await s.publish(1, config)).code, 0);
    t.equal((await s.publish(2, config)).code, 0);
    const forkDir = join(s.w.dir, 'fork');
    cpSync(s.w.rel, forkDir, { recursive: true });
    t.equal((await s.publish(3, config)).code, 0, 'the honest log reaches size 3');
    const honest = readFileSync(join(s.w.rel, 'log', 'checkpoint'));

    // The same key publishes another leaf 2 into the copy: same size 3, another root.
    const fork = await s.publish(3, config, forkDir);
    t.equal(fork.code, 1);
    t.match(fork.stderr, /LOG_WITNESS_FAILED: 0 of 2 witnesses cosigned.*refused: HTTP 422/);
    // Forced out without witnesses, then grown: the witnesses see a tree that does not extend theirs.
    const forced = await s.publish(4, s.logConfig(0), forkDir);
    t.equal(forced.code, 0, forced.stderr);
    t.match(forced.stdout, /not cosigned/);
    const honestText = Buffer.from(honest).toString('utf8').split('\n\n')[0];
    for (const x of s.witnesses) {
      const dir = join(x.dir, 'state', 'evidence');
      const [logDir] = readdirSync(dir);
      const files = readdirSync(join(dir, logDir!));
      const kinds = new Set(files.map((f) => /-(split-view|inconsistent)-/.exec(f)?.[1]));
      t.same([...kinds].sort(), ['inconsistent', 'split-view'], 'evidence of both kinds');
      const e = JSON.parse(
        readFileSync(
          join(
            dir,
            logDir!,
            files.find((f) => f.includes('split-view'))!,
          ),
          'utf8',
        ),
      ) as {
        cosigned: string;
        submitted: string;
      };
      t.equal(e.cosigned.split('\n\n')[0], honestText, 'the checkpoint the witness had cosigned');
      t.not(e.submitted.split('\n\n')[0], honestText, 'and the fork');
      t.match(await x.running.line((l) => l.outcome === 'fork', 'the fork'), { status: 422, level: 'error' });
    }
    // A daemon that stored the honest checkpoint refuses the fork: no cosignatures, and with no witness trusted, a
    // split view with both notes.
    const url = await staticServer(t, forkDir);
    const source = new HttpSource(url, { totalTimeoutMs: 10_000 });
    t.teardown(() => source.close());
    const reader = tileReaderFromSource(source);
    const leaf = readFileSync(join(forkDir, 'index.hwl'));
    const leafIndex = logIndexOf(forkDir)!;
    const e1 = await checkLeafInLog({ reader, trust: trustOf(s, 2), leaf, leafIndex, stored: honest }).catch(
      (e: unknown) => e,
    );
    t.ok(isTlogError(e1, 'LOG_WITNESS_THRESHOLD'), String(e1));
    const e2 = await checkLeafInLog({ reader, trust: trustOf(s, 0), leaf, leafIndex, stored: honest }).catch(
      (e: unknown) => e,
    );
    t.ok(isTlogError(e2, 'LOG_SPLIT_VIEW'), String(e2));
    const v = await cli(verifyArgs(s, url));
    t.equal(v.code, 1);
    t.match(v.stdout, /FAIL\s+log checkpoint: LOG_WITNESS_THRESHOLD/);
  },
);

t.test("a crash's leftovers are cleaned or finished by the next publish", async (t) => {
  const s = await setup(t);
  const config = s.logConfig(1);
  t.equal((await s.publish(1, config)).code, 0);
  // A crash after step 1 (tiles past the published size, a temp file) and after step 4 (the pending file is the
  // published checkpoint).
  writeFileSync(join(s.w.rel, 'log', 'tile', '0', '000.p', '2'), Buffer.alloc(64, 7));
  mkdirSync(join(s.w.rel, 'log', 'tile', 'entries'), { recursive: true });
  writeFileSync(join(s.w.rel, 'log', 'tile', 'entries', '.hwtmp-000.p-1-abc'), 'partial');
  writeFileSync(join(s.w.rel, '.hashwall-signer.log-pending'), readFileSync(join(s.w.rel, 'log', 'checkpoint')));
  const r = await s.publish(2, config);
  t.equal(r.code, 0, r.stderr);
  t.notOk(existsSync(join(s.w.rel, 'log', 'tile', 'entries', '.hwtmp-000.p-1-abc')), 'the temp file is gone');
  t.notOk(existsSync(join(s.w.rel, '.hashwall-signer.log-pending')));
  t.equal((await cli(verifyArgs(s, s.w.rel, 1))).code, 0, 'the stale tile was replaced');
  // A damaged published tile stops the next append (it would extend a wrong tree).
  writeFileSync(join(s.w.rel, 'log', 'tile', '0', '000.p', '2'), Buffer.alloc(64, 7));
  const damaged = await s.publish(3, config);
  t.equal(damaged.code, 1);
  t.match(damaged.stderr, /LOG_TILE_MISMATCH/);
});

t.test('refusals with their codes: no --log for a logged release, bad log configs, keys', async (t) => {
  const s = await setup(t);
  t.equal((await s.publish(1, s.logConfig(1))).code, 0);
  const full = await buildFull(t, s.w.dir, s.w.source, s.w.listKey, 2, join(s.w.dir, 'plain.hwl'));
  const plain = await cli(['publish', full, '--dir', s.w.rel, '--key', s.w.alice.key, '--now', NOW]);
  t.equal(plain.code, 2);
  t.match(plain.stderr, /USAGE: .* has a release log \(log\/checkpoint\): give --log FILE/);
  const hb = await cli(['heartbeat', '--dir', s.w.rel, '--key', s.w.alice.key, '--now', NOW]);
  t.equal(hb.code, 2, 'heartbeat too');
  const bad = join(s.w.dir, 'bad.yaml');
  writeFileSync(bad, `key: log.skey\nwitnesses:\n  - url: ftp://x\n    key: nope\nthreshold: 3\nbogus: 1\n`);
  const b = await cli(['publish', full, '--dir', s.w.rel, '--key', s.w.alice.key, '--now', NOW, '--log', bad]);
  t.equal(b.code, 2);
  for (const want of [
    /bogus: unknown key/,
    /witnesses\.0\.url: /,
    /witnesses\.0\.key: not a witness cosigner key/,
    /threshold: a whole number from 0 to 0/,
  ]) {
    t.match(b.stderr, want);
  }
  const other = await cli(['keygen', '--log-key', '--origin', 'lists.example/other', '--out', join(s.w.dir, 'other')]);
  t.equal(other.code, 0);
  writeFileSync(join(s.w.dir, 'other.yaml'), 'key: other.skey\n');
  const wrongKey = await cli([
    'publish',
    full,
    '--dir',
    s.w.rel,
    '--key',
    s.w.alice.key,
    '--now',
    NOW,
    '--log',
    join(s.w.dir, 'other.yaml'),
  ]);
  t.equal(wrongKey.code, 1);
  t.match(wrongKey.stderr, /LOG_ORIGIN_MISMATCH|LOG_UNTRUSTED_KEY/, "another log's key is refused");
  const again = await cli(['keygen', '--log-key', '--origin', s.origin, '--out', join(s.w.dir, 'log')]);
  t.equal(again.code, 1);
  t.match(again.stderr, /EXISTS/);
  const space = await cli(['keygen', '--log-key', '--origin', 'has space', '--out', join(s.w.dir, 'sp')]);
  t.equal(space.code, 2);
});

t.test('sign --add keeps the leaf signatures an auditor counts', async (t) => {
  const s = await setup(t);
  t.equal((await s.publish(1, s.logConfig(2))).code, 0);
  const add = await cli([
    'sign',
    '--add',
    '--dir',
    s.w.rel,
    '--key',
    s.w.bob.key,
    '--pub',
    s.w.alice.pub,
    '--now',
    NOW,
  ]);
  t.equal(add.code, 0, add.stderr);
  const v = await cli([...verifyArgs(s, s.w.rel), '--pub', s.w.bob.pub, '--threshold', '2']);
  t.equal(v.code, 0, v.stdout);
  t.match(v.stdout, /log leaves: 1 indexes of list demo/);
});
