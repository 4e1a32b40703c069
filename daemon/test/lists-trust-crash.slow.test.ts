// The keyring and the release log's checkpoint are committed with the list state, atomically: a process killed
// with SIGKILL at any point of commits that alternate two lists, each with its own keyring and checkpoint (the
// crash child of lists-crash.slow.test.ts, with both), leaves a state directory a restart opens with one list and
// the keyring and checkpoint committed with that list, never the other's (store.ts: state.json is the commit point).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  buildRelease,
  generateListKey,
  keyringTrustedComment,
  serializeKeyring,
  sha256Hex,
  sign,
} from '@hashwall/format';
import { NoteSecretKey, signCheckpoint } from '@hashwall/tlog';
import t from 'tap';

import {
  Clock,
  T0,
  fullOf,
  harness,
  killDuring,
  settingsWith,
  spoolsIn,
  tempDir,
  verdictOf,
  within,
} from './lists/helpers.ts';
import { Maintainer, NOW } from './lists/trust-helpers.ts';

const listKey = generateListKey('demo-2026a');
const ORIGIN = 'lists.example/demo';

t.test('kill -9 during commits of lists with keyrings and checkpoints: never a mix', async (t) => {
  const root = tempDir(t);
  const m = new Maintainer(join(root, 'release'), listKey, ['r0', 's0']);
  const logKey = NoteSecretKey.generate(ORIGIN);
  const inputs = join(root, 'inputs');
  mkdirSync(inputs);
  const names = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i}.example`);
  // Update a: serial 1 under keyring 1, log size 1; update b: serial 2 under keyring 2, log size 2.
  for (const [tag, serial] of [
    ['a', 1],
    ['b', 2],
  ] as const) {
    const keyring = m.draft(['r0'], 1, ['s0']);
    m.keyrings.push(keyring);
    const full = fullOf(listKey, serial, names(20000, tag));
    const { files } = buildRelease({
      full,
      bases: [],
      seq: serial,
      created: NOW,
      expires: NOW + 86400,
      minPoll: 900,
      signers: [m.key('s0')],
      keyring: serial,
    });
    const fullBytes = files.get(`full/${serial}.hwl`)!;
    writeFileSync(join(inputs, `${tag}.index`), files.get('index.hwl')!);
    writeFileSync(join(inputs, `${tag}.sig`), files.get('index.hwl.minisig')!);
    writeFileSync(join(inputs, `${tag}.full`), fullBytes);
    const state = {
      listId: 'demo',
      serial,
      seq: serial,
      bodySha256: full.bodySha256,
      fullSha256: sha256Hex(fullBytes),
    };
    writeFileSync(join(inputs, `${tag}.state.json`), JSON.stringify(state));
    const kbytes = serializeKeyring(keyring);
    writeFileSync(join(inputs, `${tag}.keyring`), kbytes);
    writeFileSync(join(inputs, `${tag}.keyring.sig`), sign(kbytes, m.key('r0'), keyringTrustedComment(keyring.header)));
    writeFileSync(join(inputs, `${tag}.keyring.version`), String(serial));
    const cp = signCheckpoint({ origin: ORIGIN, size: serial, root: new Uint8Array(32).fill(serial), extensions: [] }, [
      logKey.noteSigner(),
    ]);
    writeFileSync(join(inputs, `${tag}.checkpoint`), cp);
  }
  const stateDir = join(root, 'state');
  const settings = settingsWith(stateDir, [
    {
      mirrors: ['file:///nonexistent/'],
      keys: [],
      rootKeys: m.pubs(['r0']),
      listKey,
      log: { key: logKey.vkey, witnesses: [], witnessThreshold: 0 },
    },
  ]);
  const seen = new Set<number>();
  for (let i = 0; i < 4; i++) {
    const how = await killDuring(['store', stateDir, inputs], 'ready', 30 + 37 * i);
    t.match(how, /^SIGKILL/, `run ${i} was killed`);
    const h = harness(t, settings, new Clock(T0 + 3600));
    await within(h.registry.start());
    t.equal(h.of('store-unusable').length, 0, `run ${i}: the store opens (its keyring re-opened by digest)`);
    const s = h.registry.stats()[0]!;
    t.ok(s.serial === 1 || s.serial === 2, `run ${i}: serial ${s.serial} in force`);
    seen.add(s.serial!);
    t.equal(s.keyringVersion, s.serial, `run ${i}: with the keyring committed with it`);
    t.equal(s.logSize, s.serial, `run ${i}: and the checkpoint committed with it`);
    const tag = s.serial === 1 ? 'a' : 'b';
    t.equal(verdictOf(h.registry.view(), `${tag}123.example`), 'D:demo');
    const state = JSON.parse(readFileSync(join(stateDir, 'demo', 'state.json'), 'utf8')) as Record<string, string>;
    t.same(
      readFileSync(join(stateDir, 'demo', `checkpoint-${state.checkpointSha256}`)),
      readFileSync(join(inputs, `${tag}.checkpoint`)),
    );
    t.same(spoolsIn(stateDir), [], `run ${i}: a spool the kill left is swept at the start`);
    await h.registry.close();
  }
  t.comment(`serials seen after the kills: ${[...seen].join(', ')}`);
});
