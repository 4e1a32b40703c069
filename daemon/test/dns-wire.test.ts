import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Packet } from 'dns2';
import fc from 'fast-check';
import t from 'tap';

import {
  ParsedQuery,
  copyOctets,
  Q_BADVERS,
  Q_DROP,
  Q_FORMERR,
  Q_FORMERR_HEADER,
  Q_NOTIMP,
  Q_NOTIMP_TYPE,
  Q_OK,
  Q_REFUSED,
  ResponseInfo,
  equalFolded,
  foldQuestion,
  parseQuery,
  readDottedName,
  readU32,
  scanResponse,
  skipName,
  writeU16,
  writeU32,
} from '../dist/dns/wire.js';
import { dottedFromWire } from '../dist/util/names.js';
import { TYPE, query } from './helpers/client.ts';
import { appendOpt } from './helpers/upstream.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Case {
  description: string;
  hex: string;
  expect: 'formerr' | 'drop' | 'any';
}
const malformed = (
  JSON.parse(readFileSync(join(root, 'fixtures', 'dns', 'malformed.json'), 'utf8')) as { cases: Case[] }
).cases;

t.test('parses a plain query: ID, flags, question, no EDNS', async (t) => {
  const q = new ParsedQuery();
  const msg = query('WwW.Example.TEST', TYPE.AAAA, { id: 0xabcd, cd: true });
  t.equal(parseQuery(msg, q), Q_OK);
  t.equal(q.id, 0xabcd);
  t.equal(q.qtype, TYPE.AAAA);
  t.equal(q.qclass, 1);
  t.ok(q.rd);
  t.ok(q.cd);
  t.notOk(q.edns);
  t.equal(q.qEnd, msg.length);
  const out = Buffer.alloc(300);
  const n = foldQuestion(q, out, 0);
  t.equal(out.toString('latin1', 0, n), '\x03www\x07example\x04test\x00', 'the name folded to lower case');
  const d = dottedFromWire(msg, 12, out);
  t.equal(out.toString('latin1', 0, d), 'www.example.test');
});

t.test('reads the OPT record: size, version, DO; small sizes count as 512', async (t) => {
  const q = new ParsedQuery();
  t.equal(parseQuery(query('a.test', 1, { edns: { size: 4096, do: true } }), q), Q_OK);
  t.ok(q.edns);
  t.equal(q.ednsSize, 4096);
  t.ok(q.dnssecOk);
  t.equal(parseQuery(query('a.test', 1, { edns: { size: 100 } }), q), Q_OK);
  t.equal(q.ednsSize, 512, 'RFC 6891 6.2.3');
  t.notOk(q.dnssecOk);
  t.equal(parseQuery(query('a.test', 1, { edns: { version: 1 } }), q), Q_BADVERS);
  const cookie = { code: 10, data: Buffer.alloc(8, 1) };
  t.equal(
    parseQuery(query('a.test', 1, { edns: { options: [cookie, { code: 65001, data: Buffer.from('x') }] } }), q),
    Q_OK,
  );
});

t.test('sorts out what is not a plain IN query', async (t) => {
  const q = new ParsedQuery();
  t.equal(parseQuery(query('a.test', 1, { opcode: 2 }), q), Q_NOTIMP, 'STATUS');
  t.equal(parseQuery(query('a.test', 1, { opcode: 5 }), q), Q_NOTIMP, 'UPDATE');
  t.equal(parseQuery(query('version.bind', 16, { qclass: 3 }), q), Q_REFUSED, 'CH');
  t.equal(parseQuery(query('a.test', 252), q), Q_REFUSED, 'AXFR');
  t.equal(parseQuery(query('a.test', 251), q), Q_REFUSED, 'IXFR');
  t.equal(parseQuery(query('a.test', 254), q), Q_NOTIMP_TYPE, 'MAILA');
  t.equal(parseQuery(query('a.test', 255), q), Q_OK, 'ANY is answered (RFC 8482)');
  t.equal(parseQuery(query('.', 2), q), Q_OK, 'the root');
});

t.test('every case of the malformed fixture is refused without a throw', async (t) => {
  const q = new ParsedQuery();
  for (const c of malformed) {
    const st = parseQuery(Buffer.from(c.hex, 'hex'), q);
    if (c.expect === 'drop') t.equal(st, Q_DROP, c.description);
    else if (c.expect === 'formerr') t.ok(st === Q_FORMERR || st === Q_FORMERR_HEADER, c.description);
    else t.ok(st >= Q_OK && st <= Q_NOTIMP_TYPE, c.description);
  }
});

t.test('compression pointers must point before the segment that holds them', async (t) => {
  // 12-byte header, then "a.test" at 12, then "www" + pointer to 12 at 20.
  const msg = Buffer.concat([
    Buffer.alloc(12),
    Buffer.from('\x01a\x04test\x00', 'latin1'),
    Buffer.from('\x03www\xc0\x0c', 'latin1'),
  ]);
  t.equal(skipName(msg, 12, msg.length), 20);
  t.equal(skipName(msg, 20, msg.length), 26);
  t.equal(readDottedName(msg, 20), 'www.a.test');
  const loop = Buffer.concat([Buffer.alloc(12), Buffer.from('\x01a\xc0\x0c', 'latin1')]);
  t.equal(skipName(loop, 12, loop.length), -1, 'a pointer to its own name');
  const forward = Buffer.concat([Buffer.alloc(12), Buffer.from('\xc0\x0e\x01a\x00', 'latin1')]);
  t.equal(skipName(forward, 12, forward.length), -1, 'a forward pointer');
  const chain = Buffer.concat([Buffer.alloc(12), Buffer.from('\x01a\x00\x01b\xc0\x0c\x01c\xc0\x0f', 'latin1')]);
  t.equal(skipName(chain, 19, chain.length), 23, 'a chain of backward pointers');
  t.equal(readDottedName(chain, 19), 'c.b.a');
});

t.test('a label holding a dot or a non-ASCII byte cannot pose as two labels', async (t) => {
  const msg = Buffer.concat([Buffer.alloc(12), Buffer.from('\x0cevil.example\x04test\x00', 'latin1')]);
  const out = Buffer.alloc(300);
  const n = dottedFromWire(msg, 12, out);
  t.equal(out.toString('latin1', 0, n), 'evil\xffexample.test');
  t.equal(readDottedName(msg, 12), 'evil\xffexample.test');
});

t.test('equalFolded folds A-Z only', async (t) => {
  const a = Buffer.from('AbC\xc0');
  t.ok(equalFolded(a, 0, 3, Buffer.from('aBc'), 0));
  t.notOk(
    equalFolded(Buffer.from('\xc0', 'latin1'), 0, 1, Buffer.from('\xe0', 'latin1'), 0),
    'Latin-1 letters are not folded',
  );
});

function answer(build: (p: Packet) => void, opt?: { do: boolean; options: { code: number; data: Buffer }[] }): Buffer {
  const p = new Packet();
  p.header.id = 7;
  p.header.qr = 1;
  p.header.ra = 1;
  p.questions.push({ name: 'alias.example.test', type: 1, class: 1 } as Packet['questions'][number]);
  build(p);
  const b = p.toBuffer();
  return opt ? appendOpt(b, 1232, opt.do, opt.options) : b;
}

t.test('scans an upstream answer: TTLs, aliases, the SOA negative TTL, the OPT', async (t) => {
  const r = new ResponseInfo();
  const a = answer(
    (p) => {
      p.answers.push({
        name: 'alias.example.test',
        type: 5,
        class: 1,
        ttl: 300,
        domain: 'target.example.test',
      } as Packet['answers'][number]);
      p.answers.push({
        name: 'target.example.test',
        type: 1,
        class: 1,
        ttl: 100,
        address: '192.0.2.2',
      } as Packet['answers'][number]);
    },
    { do: true, options: [{ code: 10, data: Buffer.alloc(16) }] },
  );
  t.ok(scanResponse(a, a.length, r));
  t.equal(r.ttlCount, 2);
  t.equal(r.minTtl, 100);
  t.equal(r.aliasCount, 1);
  t.equal(readDottedName(a, r.aliasOffsets[0]!), 'target.example.test');
  t.equal(r.answersOfType, 1);
  t.ok(r.optStart > 0 && r.optEnd === a.length);
  t.ok(r.dnssecOk);

  const nx = answer((p) => {
    p.header.rcode = 3;
    p.authorities.push({
      name: 'example.test',
      type: 6,
      class: 1,
      ttl: 60,
      primary: 'ns.example.test',
      admin: 'hostmaster.example.test',
      serial: 1,
      refresh: 1,
      retry: 1,
      expiration: 1,
      minimum: 30,
    } as Packet['authorities'][number]);
  });
  t.ok(scanResponse(nx, nx.length, r));
  t.equal(r.negativeTtl, 30, 'RFC 2308 5: min(SOA TTL, MINIMUM)');
  t.equal(r.rcode, 3);
});

t.test('refuses malformed upstream answers', async (t) => {
  const r = new ResponseInfo();
  const good = answer((p) =>
    p.answers.push({
      name: 'alias.example.test',
      type: 1,
      class: 1,
      ttl: 1,
      address: '192.0.2.1',
    } as Packet['answers'][number]),
  );
  t.ok(scanResponse(good, good.length, r));
  const noQr = Buffer.from(good);
  noQr[2]! &= 0x7f;
  t.notOk(scanResponse(noQr, noQr.length, r), 'QR=0');
  const opcode = Buffer.from(good);
  opcode[2]! |= 0x10;
  t.notOk(scanResponse(opcode, opcode.length, r), 'opcode 2');
  t.notOk(scanResponse(good, good.length - 1, r), 'cut short');
  const moreRecords = Buffer.from(good);
  moreRecords.writeUInt16BE(2, 6);
  t.notOk(scanResponse(moreRecords, moreRecords.length, r), 'ANCOUNT lies');
  const extRcode = appendOpt(good, 1232, false, []);
  extRcode[extRcode.length - 6] = 1; // the OPT TTL's first octet
  t.notOk(scanResponse(extRcode, extRcode.length, r), 'an extended RCODE');
  const badCname = answer((p) =>
    p.answers.push({
      name: 'alias.example.test',
      type: 5,
      class: 1,
      ttl: 1,
      domain: 'x.test',
    } as Packet['answers'][number]),
  );
  badCname[badCname.length - 1] = 0xc0; // the CNAME target's root label becomes half a pointer
  t.notOk(scanResponse(badCname, badCname.length, r), 'a CNAME target that is not a name');
});

t.test('readU32, writeU32 and writeU16 agree with the big-endian methods of Buffer (bounded property)', async (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 4, maxLength: 40 }),
      fc.nat(),
      fc.integer({ min: 0, max: 0xffffffff }),
      (bytes, pick, v) => {
        const at = pick % (bytes.length - 3);
        const ours = Buffer.from(bytes);
        const node = Buffer.from(bytes);
        if (readU32(ours, at) !== node.readUInt32BE(at)) return false;
        writeU32(ours, at, v);
        node.writeUInt32BE(v, at);
        if (!ours.equals(node)) return false;
        writeU16(ours, at + 1, v & 0xffff);
        node.writeUInt16BE(v & 0xffff, at + 1);
        return ours.equals(node);
      },
    ),
    { numRuns: 20_000 },
  );
  // copyOctets against Buffer's copy, runs short (octet by octet) and long (set), into any place of the target.
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 700, size: 'max' }),
      fc.integer({ min: 0, max: 700 }),
      fc.integer({ min: 0, max: 700 }),
      fc.integer({ min: 0, max: 49 }),
      (bytes, a, b, at) => {
        const from = Math.min(a, bytes.length);
        const to = Math.min(from + b, bytes.length);
        const ours = Buffer.alloc(at + bytes.length + 3, 0xee);
        const node = Buffer.alloc(at + bytes.length + 3, 0xee);
        const end = copyOctets(bytes, from, to, ours, at);
        Buffer.from(bytes).copy(node, at, from, to);
        return end === at + to - from && ours.equals(node);
      },
    ),
    { numRuns: 5_000 },
  );
  // On a plain Uint8Array too (the cache's slabs and a query's scratch are Buffers, a test's bytes may not be).
  const u = new Uint8Array(6);
  writeU32(u, 1, 0xfedcba98);
  writeU16(u, 4, 0x1234);
  t.same([...u], [0, 0xfe, 0xdc, 0xba, 0x12, 0x34]);
  t.equal(readU32(u, 0), 0x00fedcba);
});

t.test('parseQuery and scanResponse never throw on random bytes (bounded property)', async (t) => {
  const q = new ParsedQuery();
  const r = new ResponseInfo();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600, size: 'max' }), (bytes) => {
      const b = Buffer.from(bytes);
      const st = parseQuery(b, q);
      scanResponse(b, b.length, r);
      return st >= Q_OK && st <= Q_NOTIMP_TYPE;
    }),
    // Lengths drawn up to 600 (fast-check's size 'max'; by default no array was longer than 10 octets).
    { numRuns: 50_000 },
  );
  // Mutations of a valid query, which reach deeper than random bytes.
  const base = query('www.example.test', 1, { edns: { do: true, options: [{ code: 10, data: Buffer.alloc(8) }] } });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      (edits) => {
        const b = Buffer.from(base);
        for (const [at, v] of edits) b[at] = v;
        const st = parseQuery(b, q);
        return st >= Q_OK && st <= Q_NOTIMP_TYPE;
      },
    ),
    { numRuns: 200_000 },
  );
  t.pass('no throw');
});
