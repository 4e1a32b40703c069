/**
 * HPACK (RFC 7541) as the DoH listener's HTTP/2 layer decodes it: the RFC's own examples (Appendix C), round trips
 * of random header lists through an encoder with every choice varied (Huffman, indexing, table size updates), the
 * Huffman code of Appendix B, and hostile blocks it must refuse (COMPRESSION_ERROR) without throwing anything else.
 * Decoding by an independent peer (nghttp2, through node:http2's client) is in dns-h2.test.ts.
 */
import fc from 'fast-check';
import t from 'tap';

import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  HpackDecoder,
  HpackEncoder,
  HpackError,
  huffmanEncode,
} from '../dist/dns/h2/hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decode(d: HpackDecoder, block: Buffer): [string, string][] {
  d.decode(block, 0, block.length);
  return Array.from({ length: d.count }, (_, i) => [d.names[i]!, d.values[i]!]);
}

t.test('RFC 7541 C.3: three requests without Huffman coding, sharing one dynamic table', async (t) => {
  const d = new HpackDecoder();
  t.same(decode(d, hex('828684410f7777772e6578616d706c652e636f6d')), [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ]);
  t.same(d.table, [[':authority', 'www.example.com']]);
  t.equal(d.tableBytes, 57);
  t.same(decode(d, hex('828684be58086e6f2d6361636865')), [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ]);
  t.same(decode(d, hex('828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565')), [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ]);
  t.same(d.table, [
    ['custom-key', 'custom-value'],
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ]);
  t.equal(d.tableBytes, 164);
});

t.test('RFC 7541 C.4: the same requests with Huffman coding', async (t) => {
  const d = new HpackDecoder();
  t.same(decode(d, hex('828684418cf1e3c2e5f23a6ba0ab90f4ff'))[3], [':authority', 'www.example.com']);
  t.same(decode(d, hex('828684be5886a8eb10649cbf'))[4], ['cache-control', 'no-cache']);
  t.same(decode(d, hex('828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf'))[4], ['custom-key', 'custom-value']);
  t.equal(d.tableBytes, 164);
  t.same(huffmanEncode('www.example.com'), hex('f1e3c2e5f23a6ba0ab90f4ff'), 'and our encoder gives the same octets');
  t.same(huffmanEncode('custom-value'), hex('25a849e95bb8e8b4bf'));
});

t.test('the Huffman code is the RFC 7541 Appendix B table: spot checks of its codes', async (t) => {
  t.equal(HUFFMAN_CODES[0], 0x1ff8);
  t.equal(HUFFMAN_LENGTHS[0], 13);
  t.equal(HUFFMAN_CODES[48], 0x0, "'0' is 00000");
  t.equal(HUFFMAN_CODES[97], 0x3, "'a' is 00011");
  t.equal(HUFFMAN_CODES[255], 0x3ffffee);
  t.equal(HUFFMAN_LENGTHS[255], 26);
  t.equal(HUFFMAN_CODES[256], 0x3fffffff, 'EOS: 30 ones');
});

t.test('any octet string survives Huffman coding and decoding', async () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300, size: 'max' }), (bytes) => {
      const s = Buffer.from(bytes).toString('latin1');
      const coded = huffmanEncode(s);
      const block = Buffer.concat([Buffer.from([0x00, 0x01, 0x61]), stringLiteral(coded, true)]);
      const d = new HpackDecoder(4096, 1 << 20);
      d.decode(block, 0, block.length);
      return d.count === 1 && Buffer.from(d.values[0]!, 'latin1').equals(Buffer.from(bytes));
    }),
    { numRuns: 2000 },
  );
});

/** A string literal (RFC 7541 5.2) of `octets`, its length with a 7-bit prefix. */
function stringLiteral(octets: Buffer, huffman: boolean): Buffer {
  const len: number[] = [];
  let v = octets.length;
  if (v < 127) len.push((huffman ? 0x80 : 0) | v);
  else {
    len.push((huffman ? 0x80 : 0) | 127);
    v -= 127;
    while (v >= 128) {
      len.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    len.push(v);
  }
  return Buffer.concat([Buffer.from(len), octets]);
}

const token = fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,20}$/);
const fieldValue = fc
  .uint8Array({ maxLength: 60 })
  .map((b) => Buffer.from(b.map((c) => (c === 0 || c === 10 || c === 13 ? 0x41 : c))).toString('latin1'))
  .filter((v) => !/^[ \t]|[ \t]$/.test(v));
const fieldList = fc.array(
  fc.oneof(
    fc.tuple(token, fieldValue),
    // Names and pairs the static table holds, so indexed fields and indexed names both occur.
    fc.tuple(fc.constantFrom(':method', ':path', 'accept', 'content-type', 'user-agent'), fieldValue),
    fc.constantFrom<[string, string]>([':method', 'GET'], [':scheme', 'https'], ['accept-encoding', 'gzip, deflate']),
  ),
  { maxLength: 12 },
);
const options = fc.record({
  huffman: fc.constantFrom<boolean | 'shorter'>(true, false, 'shorter'),
  indexing: fc.constantFrom<'none' | 'never' | 'incremental'>('none', 'never', 'incremental'),
});

t.test('random header lists round-trip through one encoder and decoder pair, block after block', async () => {
  fc.assert(
    fc.property(
      fc.constantFrom(0, 64, 256, 4096),
      fc.array(fc.tuple(fieldList, options, fc.option(fc.constantFrom(0, 100, 4096), { nil: undefined })), {
        minLength: 1,
        maxLength: 8,
      }),
      (tableSize, blocks) => {
        const enc = new HpackEncoder(4096);
        const dec = new HpackDecoder(4096, 1 << 20);
        let first = true;
        for (const [fields, o, update] of blocks) {
          const block = enc.encode(fields, {
            ...o,
            tableSizeUpdate: first ? tableSize : update,
          });
          first = false;
          dec.decode(block, 0, block.length);
          const got = Array.from({ length: dec.count }, (_, i) => [dec.names[i], dec.values[i]]);
          if (JSON.stringify(got) !== JSON.stringify(fields)) return false;
          if (dec.tableBytes > 4096) return false;
        }
        return true;
      },
    ),
    { numRuns: 1500 },
  );
});

t.test('the dynamic table never holds more than SETTINGS_HEADER_TABLE_SIZE', async (t) => {
  const enc = new HpackEncoder(256);
  const dec = new HpackDecoder(256, 1 << 20);
  for (let i = 0; i < 200; i++) {
    const block = enc.encode([[`x-name-${i}`, 'v'.repeat(i % 90)]], {
      indexing: 'incremental',
      tableSizeUpdate: i === 0 ? 256 : undefined,
    });
    dec.decode(block, 0, block.length);
    t.ok(dec.tableBytes <= 256, `after ${i}`);
    if (dec.tableBytes > 256) break;
  }
  // An entry larger than the whole table empties it (RFC 7541 4.4).
  const big = enc.encode([['x-big', 'y'.repeat(300)]], { indexing: 'incremental' });
  dec.decode(big, 0, big.length);
  t.equal(dec.tableBytes, 0);
  t.same(dec.table, []);
});

t.test('a list past its cap is decoded (the table follows) but not kept: overflow', async (t) => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder(4096, 300);
  const block = enc.encode(
    [
      [':method', 'GET'],
      ['x-a', 'a'.repeat(150)],
      ['x-b', 'b'.repeat(150)],
    ],
    { indexing: 'incremental' },
  );
  dec.decode(block, 0, block.length);
  t.ok(dec.overflow);
  t.equal(dec.count, 2, 'the fields within the cap');
  t.equal(dec.listBytes, 3 * 32 + 7 + 3 + 3 + 150 + 3 + 150, 'the whole list counted');
  t.equal(dec.table.length, 2, 'both literals entered the table');
  const next = enc.encode([['x-b', 'b'.repeat(150)]]);
  t.same(decode(dec, next), [['x-b', 'b'.repeat(150)]], 'and the next block refers to them');
});

t.test('field names and values RFC 9113 8.2.1 forbids mark the block malformed, not a decoding error', async (t) => {
  const enc = new HpackEncoder();
  for (const [name, value] of [
    ['X-Upper', 'v'],
    ['x-nul', 'a\0b'],
    ['x-crlf', 'a\r\nb'],
    ['x-lead', ' v'],
    ['x-trail', 'v\t'],
    ['x sp', 'v'],
    [':', 'v'],
  ] as const) {
    const dec = new HpackDecoder();
    const block = enc.encode([[name, value]], { huffman: 'shorter' });
    dec.decode(block, 0, block.length);
    t.ok(dec.malformed, JSON.stringify([name, value]));
  }
  // Through the dynamic table as well: a forbidden entry stays marked when referred to again.
  const e2 = new HpackEncoder();
  const dec = new HpackDecoder();
  const b1 = e2.encode([['x-a', 'a\nb']], { indexing: 'incremental' });
  dec.decode(b1, 0, b1.length);
  const b2 = e2.encode([['x-a', 'a\nb']]);
  dec.decode(b2, 0, b2.length);
  t.ok(dec.malformed, 'an indexed reference to a forbidden entry');
});

t.test('hostile blocks are COMPRESSION_ERRORs (HpackError), never another exception', async (t) => {
  const cases: [string, Buffer][] = [
    ['index 0', hex('80')],
    ['an index past the static table and an empty dynamic one', hex('be')],
    ['a literal name index past the tables', hex('7f0a0161')],
    ['an integer of more than four continuation octets', hex('ffffffffff7f')],
    ['an integer past 2^28 by its continuation', hex('fffffffff0')],
    ['an integer cut short', hex('ff80')],
    ['a string longer than its block', hex('000a61')],
    ['a string length cut short', hex('00')],
    ['a table size update past 4096', hex('3fe21f')],
    ['a table size update after a field', hex('8220')],
    ['Huffman: EOS in the string', hex('00016184ffffffff')],
    ['Huffman: padding of more than 7 bits', hex('000161821fff')],
    ["Huffman: padding that is not EOS's ones", hex('0001618118')],
  ];
  for (const [what, block] of cases) {
    const d = new HpackDecoder();
    t.throws(() => d.decode(block, 0, block.length), { code: 'HPACK_DECODING_ERROR' }, what);
  }
  // Random octets: a decoding error or a list, nothing else.
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200, size: 'max' }), (bytes) => {
      const d = new HpackDecoder(4096, 1 << 16);
      const b = Buffer.from(bytes);
      try {
        d.decode(b, 0, b.length);
      } catch (err) {
        return err instanceof HpackError;
      }
      return d.tableBytes <= 4096;
    }),
    { numRuns: 20_000 },
  );
});
