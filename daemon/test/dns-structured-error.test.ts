/**
 * blocking.structuredError: a block's RFC 8914 EXTRA-TEXT as the JSON of draft-ietf-dnsop-structured-dns-error
 * ("c" contact, "j" justification, "o" organization, "l" language), seen by kdig; "j" and "o" left out when the UDP
 * answer would not fit the client's size, then the text itself; and the config's checks.
 */
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';

import { generateKeyPair, publicKeyToString } from '@hashwall/format';
import t, { type Test } from 'tap';

import type { ConfigError } from '../dist/config/load.js';
import { settingsFromYaml } from '../dist/config/load.js';
import { TYPE, optOf, query, rcodeOf, tcpAsk, udpAsk } from './helpers/client.ts';
import { startTestDaemon, type TestDaemon } from './helpers/daemon.ts';
import { needTool } from '../../test/helpers/tools.ts';

const run = promisify(execFile);
const kdigMissing = needTool('kdig');

const CONTACT = ['mailto:abuse@isp.example', 'tel:+1-555-0100'];
const FULL = {
  c: CONTACT,
  j: 'Listed by the Demo Hotline as distributing child sexual abuse material',
  o: 'Example ISP',
  l: 'en',
};

async function daemon(t: Test, structuredError: Record<string, unknown>, blocking = {}): Promise<TestDaemon> {
  const d = await startTestDaemon({
    config: {
      blocking: { structuredError: { enabled: true, ...structuredError }, ...blocking },
      stopPage: { listNames: { demo: 'the Demo Hotline' } },
      // The list `demo` configured (for its display name); its matcher comes from the test's list provider.
      lists: [
        { id: 'demo', mirrors: ['file:///nonexistent/'], keys: [publicKeyToString(generateKeyPair().publicKey)] },
      ],
    },
  });
  t.teardown(() => d.close());
  return d;
}

/** The EDE options of an answer: [INFO-CODE, EXTRA-TEXT]. */
function edes(a: Buffer): [number, string][] {
  return (optOf(a)?.options ?? [])
    .filter((o) => o.code === 15)
    .map((o) => [o.data.readUInt16BE(0), o.data.subarray(2).toString('utf8')]);
}

const sde = {
  contact: CONTACT,
  justification: 'Listed by {list} as distributing child sexual abuse material',
  organization: 'Example ISP',
  language: 'en',
};

t.test('kdig shows the structured EXTRA-TEXT of a block', { skip: kdigMissing }, async (t) => {
  const d = await daemon(t, sde);
  const { stdout } = await run(
    'kdig',
    ['@127.0.0.1', '-p', String(d.port), '+timeout=2', '+retry=0', '+edns', 'www.blocked.test', 'A'],
    { timeout: 10000, encoding: 'utf8' },
  );
  t.match(stdout, /status: NXDOMAIN/);
  const m = /;; EDE: 16 \(Censored\): '(.*)'$/m.exec(stdout);
  t.ok(m, `kdig prints the EDE:\n${stdout}`);
  t.same(JSON.parse(m?.[1] ?? 'null'), FULL, 'the draft\'s names, the list named in "j"');
  t.equal(m?.[1], JSON.stringify(FULL), 'minified, in the order c, j, o, l');
});

t.test('over UDP, "j" and "o" go first when the answer would not fit, then the text', async (t) => {
  const d = await daemon(t, { ...sde, justification: `${'x'.repeat(180)} {list}` });
  const name = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(50)}.blocked.test`;
  const big = await udpAsk(d.port, query(name, TYPE.A, { edns: { size: 1232 } }));
  t.equal(rcodeOf(big!), 3);
  t.same(JSON.parse(edes(big!)[0]![1]), { ...FULL, j: `${'x'.repeat(180)} the Demo Hotline` }, 'fits 1232');
  const small = await udpAsk(d.port, query(name, TYPE.A, { edns: { size: 512 } }));
  t.ok(small!.length <= 512, `${small!.length} octets`);
  t.equal(small![2]! & 0x02, 0, 'not truncated');
  t.same(edes(small!), [[16, JSON.stringify({ c: CONTACT })]], '"c" alone');
  const tcp = (await tcpAsk(d.port, [query(name, TYPE.A, { edns: { size: 512 } })]))[0]!;
  t.same(
    (JSON.parse(edes(tcp)[0]![1]) as { j: string }).j,
    `${'x'.repeat(180)} the Demo Hotline`,
    'TCP has room for all of it',
  );

  const noContact = await daemon(t, { justification: 'y'.repeat(200) });
  const bare = await udpAsk(noContact.port, query(name, TYPE.A, { edns: { size: 512 } }));
  t.same(edes(bare!), [[16, '']], 'without "c", the EDE without its text');
  t.equal(bare![2]! & 0x02, 0, 'not truncated');
});

t.test('in stop-page mode and for every list the JSON names the list that blocked', async (t) => {
  const d = await daemon(
    t,
    { justification: 'Blocked: {list}', language: 'de' },
    {
      mode: 'stop-page',
      stopPageIpv4: ['192.0.2.80'],
    },
  );
  const a = await udpAsk(d.port, query('blocked.test', TYPE.A, { edns: {} }));
  t.same(edes(a!), [[16, '{"j":"Blocked: the Demo Hotline","l":"de"}']]);
  const plain = await udpAsk(d.port, query('blocked.test', TYPE.A));
  t.equal(optOf(plain!), null, 'no OPT for a client without EDNS');
});

t.test('the config: contact URIs, something to say, and an EDE to carry it', async (t) => {
  const problems = (yaml: string): readonly string[] => {
    try {
      settingsFromYaml(yaml, tmpdir());
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  t.match(problems('blocking:\n  structuredError: { enabled: true, contact: [https://isp.example/] }'), [
    /^blocking\.structuredError\.contact\.0: a mailto: or tel: URI/,
  ]);
  t.match(problems('blocking:\n  structuredError: { enabled: true }'), [/give contact or justification/]);
  t.match(problems('blocking:\n  edeCode: 0\n  structuredError: { enabled: true, contact: [tel:+1-555-0100] }'), [
    /^blocking\.structuredError: needs an extended error/,
  ]);
  t.match(problems('blocking:\n  structuredError: { language: english }'), [/language: not a language tag/]);
  t.same(problems('blocking:\n  structuredError: { enabled: true, contact: [mailto:a@isp.example] }'), []);
  t.equal(settingsFromYaml('', tmpdir()).config.blocking.structuredError.enabled, false, 'off by default');
});
