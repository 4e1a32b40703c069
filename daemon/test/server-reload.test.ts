/**
 * A reload that changes blocking.cnameInspection: answers cached under the old setting are not served under the new
 * one (real sockets, the in-process daemon reloaded with new settings as SIGHUP does).
 */
import { tmpdir } from 'node:os';

import t from 'tap';

import { settingsFrom } from '../dist/config/load.js';
import { TYPE, decode, query, rcodeOf, udpAsk } from './helpers/client.ts';
import { startTestDaemon, type TestDaemon } from './helpers/daemon.ts';

async function ask(d: TestDaemon, name: string): Promise<Buffer> {
  const a = await udpAsk(d.port, query(name, TYPE.A), 2000);
  if (a === null) throw new Error(`no answer for ${name}`);
  return a;
}

function reload(d: TestDaemon, cnameInspection: boolean): Promise<void> {
  return d.daemon.reload(
    settingsFrom(
      {
        listen: ['127.0.0.1:0'],
        upstreams: d.upstreams.map((u) => u.address),
        upstream: { timeoutMs: 200, tcpTimeoutMs: 400, maxTries: 2 },
        blocking: { cnameInspection },
      },
      tmpdir(),
    ),
  );
}

const upstreamAsked = (d: TestDaemon, name: string): number =>
  d.upstreams[0]!.queries.filter((q) => q.name === name).length;

t.test(
  'turning cnameInspection on: a chain cached while it was off is checked, not served from the cache',
  async (t) => {
    const d = await startTestDaemon({ config: { blocking: { cnameInspection: false } } });
    t.teardown(() => d.close());
    // to-blocked.example.test is a CNAME to cdn.blocked.test, which the demo list blocks.
    t.equal(decode(await ask(d, 'to-blocked.example.test')).answers.at(-1)?.address, '192.0.2.66', 'off: served');
    t.equal(rcodeOf(await ask(d, 'to-blocked.example.test')), 0, 'off: served again, from the cache');
    t.equal(upstreamAsked(d, 'to-blocked.example.test'), 1);
    await reload(d, true);
    t.equal(rcodeOf(await ask(d, 'to-blocked.example.test')), 3, 'on: blocked at once (NXDOMAIN)');
    t.equal(rcodeOf(await ask(d, 'to-blocked.example.test')), 3, 'on: blocked from the cache too');
    t.equal(d.events.aliasBlocks, 2);
  },
);

t.test('turning cnameInspection off: a chain blocked while it was on is served', async (t) => {
  const d = await startTestDaemon({ config: { blocking: { cnameInspection: true } } });
  t.teardown(() => d.close());
  t.equal(rcodeOf(await ask(d, 'to-blocked.example.test')), 3, 'on: blocked');
  t.equal(rcodeOf(await ask(d, 'to-blocked.example.test')), 3, 'on: blocked from the cache');
  t.equal(upstreamAsked(d, 'to-blocked.example.test'), 1);
  await reload(d, false);
  t.equal(decode(await ask(d, 'to-blocked.example.test')).answers.at(-1)?.address, '192.0.2.66', 'off: served');
  t.equal(d.events.aliasBlocks, 2, 'no block after the reload');
});

t.test('a reload that leaves cnameInspection and the cache settings alone keeps the cache', async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.close());
  t.equal(rcodeOf(await ask(d, 'a.example.test')), 0);
  await reload(d, true);
  t.equal(rcodeOf(await ask(d, 'a.example.test')), 0);
  t.equal(upstreamAsked(d, 'a.example.test'), 1, 'answered from the cache after the reload');
});
