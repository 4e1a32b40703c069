/**
 * Publisher faults under load: the list-sync helpers' release server (daemon/test/lists/helpers.ts) serves a
 * tampered FULL, a truncated one, a trickling one, HTTP 500, a rollback, and a release signed by an unknown key,
 * one after the other, while clients query the real query path. Each poll is refused; the list in force stays
 * (its names stay blocked, the others resolve), no query is lost or wrongly answered, and a good release after
 * them is taken.
 */
import { join } from 'node:path';

import { generateKeyPair, generateListKey } from '@hashwall/format';
import t from 'tap';

import { createLogger } from '../../daemon/dist/util/log.js';
import { ListRegistry } from '../../daemon/dist/lists/registry.js';
import { startDaemon } from '../../daemon/dist/daemon.js';
import {
  LogSink,
  ReleaseDir,
  ReleaseServer,
  fullOf,
  settingsWith,
  tempDir,
  within,
} from '../../daemon/test/lists/helpers.ts';
import { ZoneUpstream, addressOf, judgeAs, runLoad, sleep } from './helpers.ts';

t.test('every publisher fault is refused under load; the list in force stays', async (t) => {
  const dir = tempDir(t, 'hw-publisher-');
  const upstream = new ZoneUpstream('pub.test', 300);
  await upstream.start();
  t.teardown(() => upstream.close());
  const listKey = generateListKey('pub-key');
  const rel = new ReleaseDir(join(dir, 'release'));
  const server = await new ReleaseServer(rel).listen();
  t.teardown(() => server.close());
  const now = Math.floor(Date.now() / 1000);
  const names = (serial: number): string[] => [
    ...Array.from({ length: 200 }, (_, i) => `b${i}.listed.pub.test`),
    `s${serial}.pub.test`,
  ];
  const full = (serial: number) => fullOf(listKey, serial, names(serial), { created: now - 60, expires: now + 86400 });
  const when = { created: now - 60, expires: now + 86400, bases: [] };
  rel.publish(full(5), when);
  const settings = settingsWith(join(dir, 'state'), [{ mirrors: [server.url], keys: [rel.key], listKey }], {
    listen: ['127.0.0.1:0'],
    upstreams: [upstream.address],
    metrics: { listen: '' },
  });
  const log = new LogSink();
  const registry = new ListRegistry(settings, { logger: createLogger({ level: 'error' }, log) });
  t.teardown(() => registry.close());
  await within(registry.start(), 'list start');
  // start() returns before the first poll under serve-unfiltered: join it.
  const first = await within(registry.pollNow('demo'), 'first poll');
  t.equal(
    registry.stats()[0]?.serial,
    5,
    `serial 5 in force (${first}; ${JSON.stringify(registry.stats()[0]?.rejections)})`,
  );
  const daemon = await startDaemon(settings, {
    logger: createLogger({ level: 'error' }, new LogSink()),
    lists: registry,
  });
  t.teardown(() => within(daemon.close(), 'daemon close'));
  const port = daemon.addresses.udp[0]!.port;
  const good = rel.snapshot();

  type Fault = { name: string; apply: () => void };
  const faults: Fault[] = [
    {
      name: 'a tampered FULL',
      apply: () => {
        rel.publish(full(6), when);
        rel.tamper('full/6.hwl', 200);
      },
    },
    {
      name: 'a truncated FULL',
      apply: () => {
        rel.publish(full(6), when);
        server.routes.set('full/6.hwl', (_q, res, file) => res.end(file!.subarray(0, file!.length >> 1)));
      },
    },
    {
      name: 'a trickling FULL (past totalTimeoutMs)',
      apply: () => {
        rel.publish(full(6), when);
        server.routes.set('full/6.hwl', (_q, res, file) => {
          let i = 0;
          const timer = setInterval(() => res.write(file!.subarray(i, ++i)), 100);
          res.on('close', () => clearInterval(timer));
        });
      },
    },
    {
      name: 'HTTP 500 for the index',
      apply: () => {
        server.routes.set('index.hwl', (_q, res) => {
          res.statusCode = 500;
          res.end();
        });
      },
    },
    {
      name: 'a rollback to an older serial',
      apply: () => {
        // an older FULL under a newer index sequence number
        rel.publish(full(4), { ...when, seq: 50 });
      },
    },
    {
      name: 'a release signed by an unknown key',
      apply: () => {
        rel.publish(full(6), { ...when, signers: [generateKeyPair()] });
      },
    },
  ];

  // The load runs across all the faults: listed names NXDOMAIN, others the upstream's address.
  let stop = false;
  const load = runLoad({
    port,
    qps: 800,
    durationMs: 60_000,
    stopWhen: () => stop,
    next: (i) => {
      const name = i % 4 === 0 ? `b${i % 200}.listed.pub.test` : `h${i % 300}.pub.test`;
      return { name, judge: judgeAs(name, i % 4 === 0 ? { rcode: 3 } : { rcode: 0, address: addressOf(name) }) };
    },
  });
  const outcomes: string[] = [];
  for (const f of faults) {
    server.routes.clear();
    rel.restore(good);
    f.apply();
    const outcome = await within(registry.pollNow('demo'), f.name);
    outcomes.push(`${f.name}: ${outcome}`);
    t.not(outcome, 'updated', `${f.name}: refused`);
    t.equal(registry.stats()[0]?.serial, 5, `${f.name}: serial 5 stays in force`);
  }
  server.routes.clear();
  rel.restore(good);
  rel.publish(full(6), when);
  const last = await within(registry.pollNow('demo'), 'good release');
  t.equal(last, 'updated', 'a good release after the faults is taken');
  await sleep(500);
  stop = true;
  const report = await load;
  t.comment(outcomes.join('; '));
  t.comment(`load: ${report.sent} sent, ${report.answered} answered, ${report.lost} lost, ${report.wrong} wrong`);
  t.equal(report.wrong, 0, `no wrong answer ${report.wrongSamples.slice(0, 3).join('; ')}`);
  t.equal(report.lost, 0, 'no query lost');
});
