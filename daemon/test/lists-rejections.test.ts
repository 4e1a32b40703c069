// Every refusal of SPEC.md 4 (and the format's error codes a mirror can provoke), each served by a real HTTP
// server on 127.0.0.1: the poll is rejected with its code, and the list in force before it stays in force.
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';

import { generateKeyPair, generateListKey, type MinisignSecretKey } from '@hashwall/format';
import t, { type TAP } from 'tap';

import {
  Clock,
  DAY,
  ReleaseDir,
  ReleaseServer,
  T0,
  fullOf,
  harness,
  settingsWith,
  spoolsIn,
  tempDir,
  within,
  withDns,
  type Harness,
} from './lists/helpers.ts';
import { until } from './helpers/daemon.ts';
import { expectEnforced } from './lists/enforced.ts';

const listKey = generateListKey('demo-2026a');
const ONE = ['blocked.example', 'bad.test'];
const TWO = ['blocked.example', 'worse.test'];

interface Ctx {
  readonly rel: ReleaseDir;
  readonly server: ReleaseServer;
  readonly clock: Clock;
  readonly h: Harness;
  readonly stateDir: string;
  readonly other: MinisignSecretKey;
}

/** Serial 1 in force from a real HTTP mirror; returns what the cases need. */
async function enforcedOne(
  t: { teardown(fn: () => unknown): void } & Pick<TAP, 'equal' | 'ok'>,
  extra: Record<string, unknown> = {},
  signers?: MinisignSecretKey[],
  keys?: MinisignSecretKey[],
): Promise<Ctx> {
  const root = tempDir(t);
  const rel = new ReleaseDir(join(root, 'release'), signers?.[0]);
  const server = await new ReleaseServer(rel).listen();
  t.teardown(() => server.close());
  const clock = new Clock();
  const stateDir = join(root, 'state');
  const settings = settingsWith(stateDir, [{ mirrors: [server.url], keys: keys ?? [rel.key], listKey, ...extra }]);
  rel.publish(fullOf(listKey, 1, ONE), signers ? { signers } : {});
  const h = await withDns(t, harness(t, settings, clock));
  await within(h.registry.start());
  if ((await within(h.registry.pollNow('demo'))) !== 'updated') throw new Error('setup: serial 1 not in force');
  await expectEnforced(t, h, { blocked: ONE, passed: ['worse.test'] });
  return { rel, server, clock, h, stateDir, other: generateKeyPair() };
}

/** Polls once, expects a refusal with `code`, and serial 1 still in force (no swap). */
async function expectRejected(t: Pick<TAP, 'equal' | 'match' | 'ok' | 'same'>, c: Ctx, code: string): Promise<void> {
  const gen = c.h.registry.view().generation;
  t.equal(await within(c.h.registry.pollNow('demo')), 'rejected', 'the poll is refused');
  const rejected = c.h.of('rejected');
  t.equal(rejected.at(-1)?.code, code, `with ${code}`);
  t.equal(c.h.registry.view().generation, gen, 'no swap');
  t.match(c.h.registry.stats()[0], { serial: 1, enforced: true, consecutiveFailures: 1 });
  t.equal(c.h.registry.stats()[0]!.rejections[code as 'MALFORMED'], 1);
  t.same(spoolsIn(c.stateDir), [], 'no spool left behind');
  await expectEnforced(t, c.h, { blocked: ONE, passed: ['worse.test'] });
}

t.test('a tampered byte in the index: SIGNATURE_INVALID', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO));
  c.rel.tamper('index.hwl', 30);
  await expectRejected(t, c, 'SIGNATURE_INVALID');
});

t.test('a tampered byte in the FULL: DIGEST_MISMATCH against the index', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { bases: [] });
  c.rel.tamper('full/2.hwl', 200);
  await expectRejected(t, c, 'DIGEST_MISMATCH');
});

t.test('a FULL of another size than the index gives: SIZE_MISMATCH', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { bases: [] });
  c.rel.write('full/2.hwl', Buffer.concat([c.rel.read('full/2.hwl'), Buffer.from('x')]));
  await expectRejected(t, c, 'SIZE_MISMATCH');
});

t.test('files signed by a key not trusted for the list: UNTRUSTED_KEY', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { signers: [c.other] });
  await expectRejected(t, c, 'UNTRUSTED_KEY');
});

t.test('one signature where the threshold is two: THRESHOLD_NOT_MET', async (t) => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const c = await enforcedOne(t, { threshold: 2 }, [a, b], [a, b]);
  c.rel.publish(fullOf(listKey, 2, TWO), { signers: [a] });
  await expectRejected(t, c, 'THRESHOLD_NOT_MET');
});

t.test('an expired index, and a fresh index naming an expired FULL: EXPIRED', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { created: T0 - 8 * DAY, expires: T0 - DAY });
  await expectRejected(t, c, 'EXPIRED');
  const d = await enforcedOne(t);
  d.rel.publish(fullOf(listKey, 2, TWO, { created: T0 - 10 * DAY, expires: T0 }), { bases: [] });
  await expectRejected(t, d, 'EXPIRED');
});

t.test('an index created in the future (past the 300 s skew): NOT_YET_VALID', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { created: c.clock.now + 301 + 60, expires: c.clock.now + 5 * DAY });
  await expectRejected(t, c, 'NOT_YET_VALID');
});

t.test('a release for another list-id, signed by a trusted key: LIST_MISMATCH', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO, { listId: 'other' }), { bases: [] });
  await expectRejected(t, c, 'LIST_MISMATCH');
});

t.test('a list hashed with a licensed key this daemon does not hold: UNKNOWN_HASH_KEY', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(generateListKey('demo-2027a'), 2, TWO), { bases: [] });
  await expectRejected(t, c, 'UNKNOWN_HASH_KEY');
});

t.test('a FULL over maxListBytes: TOO_LARGE before a byte of it is fetched', async (t) => {
  const c = await enforcedOne(t, { maxListBytes: 2048 });
  const many = Array.from({ length: 40 }, (_, i) => `n${i}.example`);
  c.rel.publish(fullOf(listKey, 2, many), { bases: [] });
  await expectRejected(t, c, 'TOO_LARGE');
  t.equal(c.server.count('full/2.hwl'), 0);
});

t.test('a lower serial, also after a restart: ROLLBACK', async (t) => {
  const c = await enforcedOne(t);
  const old = c.rel.snapshot();
  c.rel.publish(fullOf(listKey, 2, ONE.concat('third.example')));
  t.equal(await c.h.registry.pollNow('demo'), 'updated');
  // The mirror goes back to serving serial 1 (with a higher seq, as an attacker replaying would not manage, and
  // with the old seq): both are refused.
  c.rel.restore(old);
  const gen = c.h.registry.view().generation;
  t.equal(await c.h.registry.pollNow('demo'), 'rejected');
  t.equal(c.h.of('rejected').at(-1)?.code, 'ROLLBACK');
  c.rel.seq = 5;
  c.rel.publish(fullOf(listKey, 1, ONE), { bases: [] });
  t.equal(await c.h.registry.pollNow('demo'), 'rejected');
  t.equal(c.h.of('rejected').at(-1)?.code, 'ROLLBACK');
  t.equal(c.h.registry.view().generation, gen);
  t.ok(
    c.h.log.lines.some((l) => l.level === 'error' && l.alarm === true && l.code === 'ROLLBACK'),
    'an alarm',
  );
  await c.h.registry.close();

  // A restart: the high-water marks come from the state directory.
  c.rel.restore(old);
  const settings = settingsWith(c.stateDir, [{ mirrors: [c.server.url], keys: [c.rel.key], listKey }]);
  const h2 = await withDns(t, harness(t, settings, c.clock));
  await within(h2.registry.start());
  t.equal(await within(h2.registry.pollNow('demo')), 'rejected');
  t.equal(h2.of('rejected').at(-1)?.code, 'ROLLBACK', 'refused after a restart too');
  t.match(h2.registry.stats()[0], { serial: 2, origin: 'store' });
  await expectEnforced(t, h2, { blocked: ['third.example', ...ONE], passed: [] });
});

t.test('the same serial with another body: EQUIVOCATION, with an alarm', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 1, TWO), { bases: [] });
  await expectRejected(t, c, 'EQUIVOCATION');
  t.ok(c.h.log.lines.some((l) => l.level === 'error' && l.alarm === true && l.code === 'EQUIVOCATION'));
});

t.test('a truncated body: SIZE_MISMATCH', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { bases: [] });
  c.server.routes.set('full/2.hwl', (_q, res, file) => res.end(file!.subarray(0, file!.length >> 1)));
  await expectRejected(t, c, 'SIZE_MISMATCH');
});

t.test('an endless body is cut at the size the index gave, an endless index at 64 KiB', async (t) => {
  const endless = (_q: unknown, res: ServerResponse): void => {
    const chunk = Buffer.alloc(16384, 0x61);
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  };
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { bases: [] });
  c.server.routes.set('full/2.hwl', endless);
  await expectRejected(t, c, 'SIZE_MISMATCH');
  const d = await enforcedOne(t);
  d.rel.publish(fullOf(listKey, 2, TWO), { bases: [] });
  d.server.routes.set('index.hwl', endless);
  await expectRejected(t, d, 'TOO_LARGE');
});

t.test('a lying Content-Length does not stretch the cap', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { bases: [] });
  c.server.routes.set('full/2.hwl', (_q, res, file) => {
    res.setHeader('content-length', String(10 * 1024 * 1024 * 1024));
    res.write(file!);
    res.write(Buffer.alloc(70000, 0x62));
  });
  await expectRejected(t, c, 'SIZE_MISMATCH');
});

t.test('a server slower than the total timeout: FETCH_FAILED', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { bases: [] });
  let sent = -1;
  let size = 0;
  c.server.routes.set('full/2.hwl', (_q, res, file) => {
    let i = 0;
    size = file!.length;
    const timer = setInterval(() => res.write(file!.subarray(i, ++i)), 100);
    res.on('close', () => {
      clearInterval(timer);
      sent = i;
    });
  });
  await expectRejected(t, c, 'FETCH_FAILED');
  await until(() => sent >= 0, 'the download cut');
  t.ok(sent < size, `given up at the deadline (totalTimeoutMs 1500), not at the end (${sent} of ${size} bytes sent)`);
});

t.test('404 and 500 answers: FETCH_FAILED', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { bases: [] });
  c.server.routes.set('full/2.hwl', (_q, res) => {
    res.statusCode = 404;
    res.end();
  });
  await expectRejected(t, c, 'FETCH_FAILED');
  const d = await enforcedOne(t);
  d.rel.publish(fullOf(listKey, 2, TWO), { bases: [] });
  d.server.routes.set('index.hwl', (_q, res) => {
    res.statusCode = 500;
    res.end('oops');
  });
  await expectRejected(t, d, 'FETCH_FAILED');
});

t.test('a refused mirror is followed by the next one in the same round', async (t) => {
  const c = await enforcedOne(t);
  const good = new ReleaseDir(join(tempDir(t), 'good'), c.rel.key);
  good.publish(fullOf(listKey, 1, ONE));
  good.publish(fullOf(listKey, 2, TWO));
  c.rel.publish(fullOf(listKey, 2, TWO));
  c.rel.tamper('index.hwl', 30);
  const settings = settingsWith(c.stateDir, [{ mirrors: [c.server.url, good.url], keys: [c.rel.key], listKey }]);
  await c.h.registry.reload(settings);
  t.equal(await within(c.h.registry.pollNow('demo')), 'updated');
  const last = c.h.events.slice(-3).map((e) => e.name);
  t.same(last, ['rejected', 'swap', 'updated'], 'the bad mirror refused, then the good one updated');
  t.equal(c.h.of('rejected').at(-1)?.code, 'SIGNATURE_INVALID');
  t.match(c.h.of('updated').at(-1), { mirror: good.url, serial: 2 });
  await expectEnforced(t, c.h, { blocked: TWO, passed: ['bad.test'] });
});

t.test('after a rejection, the next poll fetches the index again instead of trusting a 304', async (t) => {
  const c = await enforcedOne(t);
  c.rel.publish(fullOf(listKey, 2, TWO), { bases: [] });
  let fail = true;
  c.server.routes.set('full/2.hwl', (_q, res, file) => {
    if (fail) {
      res.statusCode = 500;
      res.end();
    } else res.end(file);
  });
  await expectRejected(t, c, 'FETCH_FAILED');
  fail = false;
  t.equal(await c.h.registry.pollNow('demo'), 'updated', 'the same index, now with its FULL');
  await expectEnforced(t, c.h, { blocked: TWO, passed: ['bad.test'] });
});
