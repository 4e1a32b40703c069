/**
 * Hostile queries against the running daemon (fixtures/dns/malformed.json, then bounded fuzzing): each gets
 * FORMERR with its ID or nothing, the daemon never crashes or stalls, and a good query right after is answered.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import fc from 'fast-check';
import t from 'tap';

import { TYPE, decode, idOf, query, rcodeOf, tcpAsk, udpAsk } from './helpers/client.ts';
import { startTestDaemon } from './helpers/daemon.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Case {
  description: string;
  hex: string;
  expect: 'formerr' | 'drop' | 'any';
}
const cases = (JSON.parse(readFileSync(join(root, 'fixtures', 'dns', 'malformed.json'), 'utf8')) as { cases: Case[] })
  .cases;

/** How long "nothing" is waited for. */
const SILENCE_MS = 150;

t.test('each malformed query gets FORMERR or nothing, and a good query right after is answered', async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.close());
  let good = 0;
  for (const c of cases) {
    const msg = Buffer.from(c.hex, 'hex');
    const a = await udpAsk(d.port, msg, SILENCE_MS);
    if (c.expect === 'drop') {
      t.equal(a, null, `${c.description}: dropped`);
    } else if (c.expect === 'formerr') {
      t.ok(a !== null && rcodeOf(a) === 1, `${c.description}: FORMERR`);
      if (a !== null) t.equal(idOf(a), idOf(msg), `${c.description}: the ID echoed`);
      if (a !== null) t.ok((a[2]! & 0x80) !== 0, `${c.description}: QR set`);
    } else if (a !== null) {
      t.equal(idOf(a), idOf(msg), `${c.description}: any answer carries the ID`);
      t.ok(a.length <= 512, `${c.description}: within 512 octets`);
    }
    const ok = await udpAsk(d.port, query('a.example.test', TYPE.A, { id: 7 }), 2000);
    if (ok !== null && decode(ok).answers[0]?.address === '192.0.2.1') good++;
  }
  t.equal(good, cases.length, 'every good query answered');
  const counted = d.events.malformedQueries.udp;
  t.ok(counted >= cases.filter((c) => c.expect !== 'any').length - 1, `malformed queries counted (${counted})`);
  t.equal(d.upstreams[0]!.queries.length, 1, 'no malformed query reached the upstream');
});

t.test('the same over TCP: FORMERR or nothing per frame, the connection keeps serving', async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.close());
  const frames = cases.filter((c) => c.expect === 'formerr').map((c) => Buffer.from(c.hex, 'hex'));
  const answers = await tcpAsk(d.port, [...frames, query('a.example.test', TYPE.A, { id: 9 })], {
    expect: frames.length + 1,
  });
  t.equal(answers.length, frames.length + 1);
  t.ok(
    answers.slice(0, -1).every((a) => rcodeOf(a) === 1),
    'FORMERR for each',
  );
  t.equal(idOf(answers.at(-1)!), 9);
  t.equal(rcodeOf(answers.at(-1)!), 0);
});

t.test(
  'random datagrams (bounded fuzzing): any answer has the query ID and fits; the daemon keeps answering',
  async (t) => {
    const d = await startTestDaemon({ config: { cache: { maxEntries: 100 } } });
    t.teardown(() => d.close());
    const base = query('www.example.test', TYPE.A, {
      edns: { do: true, options: [{ code: 10, data: Buffer.alloc(8) }] },
    });
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300, size: 'max' }),
          fc
            .array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 })
            .map((edits) => {
              const b = Buffer.from(base);
              for (const [at, v] of edits) b[at] = v;
              return new Uint8Array(b);
            }),
        ),
        async (bytes) => {
          sent++;
          const msg = Buffer.from(bytes);
          const a = await udpAsk(d.port, msg, 30);
          if (a === null) return true;
          return idOf(a) === idOf(msg) && a.length <= 1232 && (a[2]! & 0x80) !== 0;
        },
      ),
      { numRuns: 100 },
    );
    t.ok(sent > 20, `${sent} datagrams sent`);
    const ok = await udpAsk(d.port, query('a.example.test', TYPE.A), 2000);
    t.equal(rcodeOf(ok!), 0, 'still answering');
  },
);
