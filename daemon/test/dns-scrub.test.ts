/** dns/scrub.ts: what stays of an upstream answer (the alias chain, the bailiwick), and that what stays parses. */
import { Packet } from 'dns2';
import t, { type Test } from 'tap';

import { scrubAnswer } from '../dist/dns/scrub.js';
import { ResponseInfo, scanResponse } from '../dist/dns/wire.js';
import { rrsig, soaFor, wire } from './helpers/upstream.ts';

type R = Record<string, unknown> & { name: string; type: number };

const A = 1;
const NS = 2;
const CNAME = 5;
const SOA = 6;
const MX = 15;
const DNAME = 39;
const RRSIG = 46;

function message(qname: string, qtype: number, an: R[], ns: R[] = [], ar: R[] = []): Buffer {
  const p = new Packet();
  p.header.id = 1;
  p.header.qr = 1;
  p.header.ra = 1;
  p.questions.push({ name: qname, type: qtype, class: 1 } as Packet['questions'][number]);
  const rr = (r: R) => ({ ttl: 300, class: 1, ...r }) as unknown as Packet['answers'][number];
  p.answers.push(...an.map(rr));
  p.authorities.push(...ns.map(rr));
  p.additionals.push(...ar.map(rr));
  return p.toBuffer();
}

/** Scrubs `msg`; returns the records that stay as "section name type", after checking the result parses. */
function scrubbed(t: Test, msg: Buffer): { same: boolean; records: string[] } {
  const info = new ResponseInfo();
  t.ok(scanResponse(msg, msg.length, info), 'the input is well formed');
  const out = scrubAnswer(msg, info);
  if (out === null) throw new Error('scrubAnswer refused the answer');
  t.ok(scanResponse(out, out.length, new ResponseInfo()), 'the output is well formed');
  const p = Packet.parse(out);
  const fmt = (s: string) => (r: { name: string; type: number }) => `${s} ${r.name.toLowerCase()} ${r.type}`;
  return {
    same: out === msg,
    records: [...p.answers.map(fmt('an')), ...p.authorities.map(fmt('ns')), ...p.additionals.map(fmt('ar'))],
  };
}

t.test('an answer record for another name, with no alias leading there, is left out', async (t) => {
  const msg = message('poison.test', A, [
    { name: 'poison.test', type: A, address: '192.0.2.1' },
    { name: 'victim.test', type: A, address: '198.51.100.66', ttl: 86400 },
  ]);
  t.same(scrubbed(t, msg).records, ['an poison.test 1']);
});

t.test('CNAME and DNAME chains stay, with their RRSIGs; a record off the chain does not', async (t) => {
  const msg = message('www.example.test', A, [
    { name: 'www.example.test', type: CNAME, domain: 'web.example.test' },
    { name: 'www.example.test', type: RRSIG, data: rrsig(CNAME, 'www.example.test', 'example.test') },
    { name: 'web.example.test', type: CNAME, domain: 'x.old.test' },
    { name: 'old.test', type: DNAME, data: wire('new.test') },
    { name: 'x.old.test', type: CNAME, domain: 'x.new.test' },
    { name: 'x.new.test', type: A, address: '192.0.2.9' },
    { name: 'x.new.test', type: RRSIG, data: rrsig(A, 'x.new.test', 'new.test') },
    { name: 'elsewhere.test', type: A, address: '198.51.100.1' },
    { name: 'elsewhere.test', type: RRSIG, data: rrsig(A, 'elsewhere.test', 'test') },
  ]);
  t.same(scrubbed(t, msg).records, [
    'an www.example.test 5',
    'an www.example.test 46',
    'an web.example.test 5',
    'an old.test 39',
    'an x.old.test 5',
    'an x.new.test 1',
    'an x.new.test 46',
  ]);
});

t.test('authority and additional: the zones the answer shows stay, other names go', async (t) => {
  // The SOA of example.test (above the question) makes example.test the bailiwick of a negative answer.
  const nx = message(
    'nope.example.test',
    A,
    [],
    [
      soaFor('example.test'),
      { name: 'example.test', type: RRSIG, data: rrsig(SOA, 'example.test', 'example.test') },
      { name: 'mid.example.test', type: 47, data: Buffer.concat([wire('zz.example.test'), Buffer.from([0, 1, 0x40])]) },
      { name: 'mid.example.test', type: RRSIG, data: rrsig(47, 'mid.example.test', 'example.test') },
      soaFor('victim.test'),
    ],
    [{ name: 'ns.victim.test', type: A, address: '198.51.100.2' }],
  );
  t.same(scrubbed(t, nx).records, [
    'ns example.test 6',
    'ns example.test 46',
    'ns mid.example.test 47',
    'ns mid.example.test 46',
  ]);
  // Without a SOA: the answer's RRSIG names its zone (a wildcard answer's NSEC proof stays).
  const wild = message(
    'x.wild.example.test',
    A,
    [
      { name: 'x.wild.example.test', type: A, address: '192.0.2.5' },
      { name: 'x.wild.example.test', type: RRSIG, data: rrsig(A, 'x.wild.example.test', 'example.test') },
    ],
    [
      { name: 'w.example.test', type: 47, data: Buffer.concat([wire('z.example.test'), Buffer.from([0, 1, 0x40])]) },
      { name: 'w.example.test', type: RRSIG, data: rrsig(47, 'w.example.test', 'example.test') },
      { name: 'victim.test', type: NS, ns: 'ns.victim.test' },
    ],
    [{ name: 'ns.victim.test', type: A, address: '198.51.100.2' }],
  );
  t.same(scrubbed(t, wild).records, [
    'an x.wild.example.test 1',
    'an x.wild.example.test 46',
    'ns w.example.test 47',
    'ns w.example.test 46',
  ]);
  // Names below the question stay; glue of the zone's own NS stays.
  const mx = message(
    'example.test',
    MX,
    [{ name: 'example.test', type: MX, exchange: 'mail.example.test', priority: 10 }],
    [{ name: 'example.test', type: NS, ns: 'ns1.example.test' }],
    [
      { name: 'mail.example.test', type: A, address: '192.0.2.25' },
      { name: 'ns1.example.test', type: A, address: '192.0.2.53' },
      { name: 'mail.victim.test', type: A, address: '198.51.100.25' },
    ],
  );
  t.same(scrubbed(t, mx).records, [
    'an example.test 15',
    'ns example.test 2',
    'ar mail.example.test 1',
    'ar ns1.example.test 1',
  ]);
});

t.test('nothing to leave out: the same buffer, not a copy', async (t) => {
  const msg = message(
    'a.example.test',
    A,
    [{ name: 'a.example.test', type: A, address: '192.0.2.1' }],
    [{ name: 'example.test', type: NS, ns: 'ns.example.test' }],
  );
  t.ok(scrubbed(t, msg).same);
});

t.test('a kept name that pointed into a record left out is written again and still reads the same', async (t) => {
  // dns2 compresses: the glue's owner "ns.victim.test" points into the NS record left out, "victim.test" in the
  // answer's MX target points into the foreign answer record.
  const msg = message(
    'victim.test.example.test',
    MX,
    [
      { name: 'victim.test', type: A, address: '198.51.100.1' },
      { name: 'victim.test.example.test', type: MX, exchange: 'mx.victim.test', priority: 5 },
    ],
    [{ name: 'victim.test', type: NS, ns: 'ns.victim.test' }],
    [{ name: 'mx.victim.test.example.test', type: A, address: '192.0.2.7' }],
  );
  const info = new ResponseInfo();
  t.ok(scanResponse(msg, msg.length, info));
  const out = scrubAnswer(msg, info)!;
  const p = Packet.parse(out);
  t.same(
    p.answers.map((r) => [r.name, (r as { exchange?: string }).exchange]),
    [['victim.test.example.test', 'mx.victim.test']],
  );
  t.same(
    p.additionals.map((r) => r.name),
    ['mx.victim.test.example.test'],
  );
  t.equal(p.authorities.length, 0);
});
