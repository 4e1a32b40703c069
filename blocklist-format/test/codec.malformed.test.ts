// Hostile inputs for the FULL, DELTA and INDEX parsers: each must be refused with its code, never another error.
import { createHash } from 'node:crypto';

import fc from 'fast-check';
import t from 'tap';

import { FormatError } from '../dist/errors.js';
import { applyDelta, computeDelta, parseDelta, serializeDelta } from '../dist/delta.js';
import { parseFull, serializeFull } from '../dist/full.js';
import { parseIndex, serializeIndex } from '../dist/indexfile.js';
import { T0, hashOf, listOf } from './codec-helpers.ts';

const FULL = serializeFull(
  listOf(7, [
    [1, 0],
    [2, 1],
    [3, 2],
    [4, 3],
  ]),
).toString('latin1');
const DELTA = serializeDelta(
  computeDelta(
    listOf(6, [
      [1, 0],
      [2, 1],
      [9, 0],
    ]),
    listOf(7, [
      [1, 0],
      [2, 1],
      [3, 2],
      [4, 3],
    ]),
  ),
).toString('latin1');
const INDEX = serializeIndex({
  header: { listId: 'demo', seq: 3, serial: 7, created: T0, expires: T0 + 86400, minPoll: 900, extensions: [] },
  full: { path: 'full/7.hwl', size: 500, sha256: hashOf(1) },
  deltas: [{ baseSerial: 6, path: 'delta/6-7.hwld', size: 300, sha256: hashOf(2) }],
}).toString('latin1');

type Parser = (b: Uint8Array) => unknown;
const parsers: Record<string, [Parser, string]> = {
  FULL: [(b) => parseFull(b), FULL],
  DELTA: [(b) => parseDelta(b), DELTA],
  INDEX: [(b) => parseIndex(b), INDEX],
};

/** Recomputes `entries` and `body-sha256` of a FULL text so that only the intended defect remains. */
function refresh(text: string): string {
  const cut = text.indexOf('\n\n') + 2;
  const body = text.slice(cut);
  const count = body === '' ? 0 : body.split('\n').length - 1;
  const sha = createHash('sha256').update(body, 'latin1').digest('hex');
  return (
    text
      .slice(0, cut)
      .replace(/\nentries: \d+\n/, `\nentries: ${count}\n`)
      .replace(/\nbody-sha256: [0-9a-f]{64}\n/, `\nbody-sha256: ${sha}\n`) + body
  );
}

function code(parse: Parser, text: string | Uint8Array): string {
  try {
    parse(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
    return 'ACCEPTED';
  } catch (err) {
    if (err instanceof FormatError) return err.code;
    throw err;
  }
}

t.test('the samples themselves parse', async (t) => {
  for (const [name, [parse, text]] of Object.entries(parsers)) t.equal(code(parse, text), 'ACCEPTED', name);
});

t.test('every truncation is refused', async (t) => {
  // A DELTA has no count of its own lines and an INDEX may list fewer deltas, so a cut exactly after a body line
  // parses: such a DELTA then fails to apply (its result count and digest are in the header), and such an INDEX
  // is caught by its signature. Every other cut is malformed.
  const base = listOf(6, [
    [1, 0],
    [2, 1],
    [9, 0],
  ]);
  for (const [name, [parse, text]] of Object.entries(parsers)) {
    const bodyStart = text.indexOf('\n\n') + 2;
    for (let n = 0; n < text.length; n++) {
      const cut = text.slice(0, n);
      const c = code(parse, cut);
      const lineCut = n >= bodyStart && text[n - 1] === '\n';
      if (c === 'ACCEPTED' && lineCut && name === 'DELTA') {
        t.throws(() => applyDelta(base, parseDelta(Buffer.from(cut, 'latin1'))), { code: 'DELTA_MISMATCH' });
      } else if (c === 'ACCEPTED' && lineCut && name === 'INDEX') {
        t.ok(n < text.length, `INDEX cut after a delta line at ${n}`);
      } else if (c !== 'MALFORMED') t.fail(`${name} cut at ${n}: ${c}`);
    }
    t.pass(`${name}: ${text.length} truncations handled`);
  }
});

t.test('CRLF, a BOM, tabs, trailing spaces and a missing final LF are refused', async (t) => {
  for (const [name, [parse, text]] of Object.entries(parsers)) {
    t.equal(code(parse, text.replace(/\n/g, '\r\n')), 'MALFORMED', `${name} CRLF`);
    t.equal(code(parse, '\ufeff' + text), 'MALFORMED', `${name} BOM`);
    t.equal(code(parse, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'latin1')])), 'MALFORMED');
    t.equal(code(parse, text.replace('list-id: demo', 'list-id:\tdemo')), 'MALFORMED', `${name} tab`);
    t.equal(code(parse, text.replace('list-id: demo', 'list-id: demo ')), 'MALFORMED', `${name} trailing space`);
    t.equal(code(parse, text.replace('list-id: demo', 'list-id:  demo')), 'MALFORMED', `${name} double space`);
    t.equal(code(parse, text.slice(0, -1)), 'MALFORMED', `${name} no final LF`);
    t.equal(code(parse, text + '\n'), 'MALFORMED', `${name} extra empty line`);
    t.equal(code(parse, text.replace('\n\n', '\n\n\n')), 'MALFORMED', `${name} two empty lines`);
    t.equal(code(parse, text.replace('demo', 'démo')), 'MALFORMED', `${name} non-ASCII`);
    t.equal(code(parse, text.replace('HWL1', 'HWL2')), 'MALFORMED', `${name} magic`);
    t.equal(code(parse, text.replace(/^HWL1 \w+/, 'HWL1 OTHER')), 'MALFORMED', `${name} type`);
  }
});

t.test(
  'unknown, duplicate, missing and out-of-order keys are refused; x- keys after the fixed ones are not',
  async (t) => {
    for (const [name, [parse, text]] of Object.entries(parsers)) {
      const head = text.slice(0, text.indexOf('\n\n'));
      const lines = head.split('\n');
      const body = text.slice(text.indexOf('\n\n'));
      const withLines = (ls: string[]): string => ls.join('\n') + body;
      for (let i = 1; i < lines.length; i++) {
        t.equal(code(parse, withLines(lines.filter((_, j) => j !== i))), 'MALFORMED', `${name} without ${lines[i]}`);
        t.equal(code(parse, withLines([...lines.slice(0, i + 1), lines[i]!, ...lines.slice(i + 1)])), 'MALFORMED');
        if (i + 1 < lines.length) {
          const swapped = [...lines];
          [swapped[i], swapped[i + 1]] = [swapped[i + 1]!, swapped[i]!];
          t.equal(code(parse, withLines(swapped)), 'MALFORMED', `${name} swapped ${lines[i]}`);
        }
      }
      t.equal(code(parse, withLines([...lines, 'color: red'])), 'MALFORMED', `${name} unknown key`);
      t.equal(code(parse, withLines([...lines, 'x-color: red', 'x-size: 2'])), 'ACCEPTED', `${name} x- keys`);
      t.equal(code(parse, withLines([...lines, 'x-color: red', 'x-color: blue'])), 'MALFORMED', `${name} dup x-`);
      t.equal(code(parse, withLines([lines[0]!, 'x-color: red', ...lines.slice(1)])), 'MALFORMED', `${name} early x-`);
      t.equal(code(parse, withLines([...lines, 'X-color: red'])), 'MALFORMED', `${name} upper-case key`);
    }
  },
);

t.test('integers, times, list ids and validity windows are strict', async (t) => {
  const full = parsers.FULL![0];
  const bad: [string, string][] = [
    ['serial: 7', 'serial: 07'],
    ['serial: 7', 'serial: -7'],
    ['serial: 7', 'serial: +7'],
    ['serial: 7', 'serial: 9007199254740992'],
    ['serial: 7', 'serial: 12345678901234567'],
    ['serial: 7', 'serial: 7.0'],
    ['list-id: demo', 'list-id: Demo'],
    ['list-id: demo', 'list-id: -demo'],
    ['list-id: demo', `list-id: ${'a'.repeat(64)}`],
    ['hash: hmac-sha256', 'hash: sha256'],
    ['hash-key-id: demo-2026a', 'hash-key-id: Demo'],
    ['hash-key-id: demo-2026a', 'hash-key-id: public'],
    ['expires: 2026-11-29T06:00:00Z', 'expires: 2026-12-23T06:00:01Z'],
    ['expires: 2026-11-29T06:00:00Z', 'expires: 2026-11-22T06:00:00Z'],
    ['created: 2026-11-22T06:00:00Z', 'created: 2026-11-22T06:00:00+00:00'],
  ];
  for (const [from, to] of bad) t.equal(code(full, refresh(FULL.replace(from, to))), 'MALFORMED', to);
  t.equal(code(full, refresh(FULL.replace('serial: 7', 'serial: 9007199254740991'))), 'ACCEPTED', '2^53-1 is fine');
  t.equal(
    code(full, refresh(FULL.replace('expires: 2026-11-29T06:00:00Z', 'expires: 2026-12-23T06:00:00Z'))),
    'ACCEPTED',
  );
  t.equal(
    code(parseIndex, INDEX.replace('expires: 2026-11-23T06:00:00Z', 'expires: 2026-11-29T06:00:01Z')),
    'MALFORMED',
  );
  t.equal(code(parseIndex, INDEX.replace('min-poll: 900', 'min-poll: 0900')), 'MALFORMED');
  const withBoth = INDEX.replace('min-poll: 900\n', 'min-poll: 900\nkeyring: 2\nlog-index: 5\n');
  t.equal(code(parseIndex, withBoth), 'ACCEPTED');
  for (const bad of [
    INDEX.replace('min-poll: 900\n', 'min-poll: 900\nlog-index: 5\nkeyring: 2\n'),
    INDEX.replace('min-poll: 900\n', 'min-poll: 900\nkeyring: 0\n'),
    INDEX.replace('min-poll: 900\n', 'min-poll: 900\nkeyring: 02\n'),
    INDEX.replace('min-poll: 900\n', 'min-poll: 900\nlog-index: -1\n'),
    INDEX.replace('min-poll: 900\n', 'min-poll: 900\nlog-index: 5\nlog-index: 5\n'),
    INDEX.replace('min-poll: 900\n', 'keyring: 2\nmin-poll: 900\n'),
  ])
    t.equal(code(parseIndex, bad), 'MALFORMED', bad.split('\n').slice(6, 9).join(' | '));
});

t.test('FULL bodies: unsorted, duplicate, upper-case hex, bad kinds, wrong counts and digests', async (t) => {
  const parse = parsers.FULL![0];
  const cut = FULL.indexOf('\n\n') + 2;
  const head = FULL.slice(0, cut);
  const lines = FULL.slice(cut).trimEnd().split('\n');
  const withBody = (ls: string[]) => refresh(head + ls.map((l) => l + '\n').join(''));
  t.equal(code(parse, withBody(lines)), 'ACCEPTED');
  t.equal(code(parse, withBody([lines[1]!, lines[0]!, ...lines.slice(2)])), 'MALFORMED', 'unsorted');
  t.equal(code(parse, withBody([lines[0]!, ...lines])), 'MALFORMED', 'duplicate line');
  t.equal(
    code(parse, withBody([lines[0]!, lines[0]!.slice(0, 64) + ' H', ...lines.slice(2)])),
    'MALFORMED',
    'same hash twice',
  );
  t.equal(code(parse, withBody([lines[0]!.toUpperCase().replace(/ .$/, (k) => k), ...lines.slice(1)])), 'MALFORMED');
  t.equal(code(parse, withBody([lines[0]!.slice(0, 64) + ' X', ...lines.slice(1)])), 'MALFORMED', 'kind X');
  t.equal(code(parse, withBody([lines[0]!.slice(0, 64) + ' d', ...lines.slice(1)])), 'MALFORMED', 'kind d');
  t.equal(code(parse, withBody([lines[0]!.slice(0, 64) + '  D', ...lines.slice(1)])), 'MALFORMED', 'two spaces');
  t.equal(code(parse, withBody([lines[0]!.slice(1) + '', ...lines.slice(1)])), 'MALFORMED', '63 hex digits');
  t.equal(code(parse, withBody([lines[0]!.replace(/^./, 'g'), ...lines.slice(1)])), 'MALFORMED', 'not hex');
  t.equal(code(parse, FULL.replace('entries: 4', 'entries: 3')), 'MALFORMED', 'count too low');
  t.equal(code(parse, FULL.replace('entries: 4', 'entries: 5')), 'MALFORMED', 'count too high');
  t.equal(code(parse, FULL.replace(/body-sha256: ./, 'body-sha256: 0')), 'DIGEST_MISMATCH');
  t.equal(
    code(
      parse,
      FULL.replace(/body-sha256: ([0-9a-f]{64})/, (_, h: string) => `body-sha256: ${h.toUpperCase()}`),
    ),
    'MALFORMED',
  );
  t.equal(code(parse, FULL + lines[0]!.slice(0, 10)), 'MALFORMED', 'trailing garbage');
});

t.test('DELTA bodies: removals after additions, unsorted sections and no-op pairs are refused', async (t) => {
  const parse = parsers.DELTA![0];
  const cut = DELTA.indexOf('\n\n') + 2;
  const head = DELTA.slice(0, cut);
  const lines = DELTA.slice(cut).trimEnd().split('\n');
  const rm = lines.filter((l) => l.startsWith('-'));
  const add = lines.filter((l) => l.startsWith('+'));
  t.ok(rm.length >= 1 && add.length >= 2, 'sample has both sections');
  const withBody = (ls: string[]) => head + ls.map((l) => l + '\n').join('');
  t.equal(code(parse, withBody([...rm, ...add])), 'ACCEPTED');
  t.equal(code(parse, withBody([...add, ...rm])), 'MALFORMED', 'additions first');
  t.equal(code(parse, withBody([...rm, add[1]!, add[0]!])), 'MALFORMED', 'additions unsorted');
  t.equal(code(parse, withBody([...rm, ...add, ...add.slice(-1)])), 'MALFORMED', 'duplicate addition');
  t.equal(
    code(
      parse,
      withBody(
        [...rm, '+' + rm[0]!.slice(1), ...add].sort((a, b) =>
          a[0] === b[0] ? (a < b ? -1 : 1) : a[0] === '-' ? -1 : 1,
        ),
      ),
    ),
    'MALFORMED',
    'no-op pair',
  );
  t.equal(code(parse, withBody([...rm, '*' + add[0]!.slice(1)])), 'MALFORMED', 'bad prefix');
  t.equal(code(parse, DELTA.replace(/base-serial: 6/, 'base-serial: 7')), 'MALFORMED', 'serial not above base');
});

t.test('INDEX bodies: the full line first, canonical paths, ascending deltas', async (t) => {
  const parse = parseIndex;
  const [head, body] = INDEX.split('\n\n') as [string, string];
  const lines = body.trimEnd().split('\n');
  const withBody = (ls: string[]) => `${head}\n\n${ls.map((l) => l + '\n').join('')}`;
  t.equal(code(parse, withBody(lines)), 'ACCEPTED');
  t.equal(code(parse, withBody([lines[1]!, lines[0]!])), 'MALFORMED', 'delta before full');
  t.equal(code(parse, withBody([lines[0]!, lines[0]!])), 'MALFORMED', 'two full lines');
  t.equal(code(parse, withBody([lines[0]!, lines[1]!, lines[1]!])), 'MALFORMED', 'repeated delta');
  t.equal(code(parse, withBody([])), 'MALFORMED', 'no full line');
  t.equal(code(parse, withBody([lines[0]!.replace('full/7.hwl', 'full/8.hwl')])), 'MALFORMED', 'wrong full path');
  t.equal(code(parse, withBody([lines[0]!.replace('full/7.hwl', '../7.hwl')])), 'MALFORMED', 'path traversal');
  t.equal(
    code(parse, withBody([lines[0]!, lines[1]!.replace('delta/6-7', 'delta/5-7')])),
    'MALFORMED',
    'wrong delta path',
  );
  t.equal(code(parse, withBody([lines[0]!, 'delta 7 delta/7-7.hwld 1 ' + hashOf(3)])), 'MALFORMED', 'base = serial');
  t.equal(code(parse, withBody([lines[0]!.replace(' 500 ', ' 0500 ')])), 'MALFORMED', 'size with leading zero');
  t.equal(code(parse, withBody([lines[0]!.replace(/[0-9a-f]{64}$/, hashOf(1).toUpperCase())])), 'MALFORMED');
  t.equal(code(parse, withBody([lines[0]! + ' extra'])), 'MALFORMED', 'extra field');
  t.equal(code(parse, Buffer.alloc(64 * 1024 + 1, 0x41)), 'TOO_LARGE', 'over 64 KiB');
});

t.test('caps: files over the caller cap and headers over 4 KiB are TOO_LARGE', async (t) => {
  const parse = parsers.FULL![0];
  t.equal(
    code((b) => parseFull(b, { maxBytes: 100 }), FULL),
    'TOO_LARGE',
  );
  const head = FULL.slice(0, FULL.indexOf('\n\n'));
  const big = `${head}\nx-pad: ${'a'.repeat(4096)}${FULL.slice(FULL.indexOf('\n\n'))}`;
  t.equal(code(parse, big), 'TOO_LARGE');
});

t.test('random byte mutations never throw anything but a FormatError', async (t) => {
  let runs = 0;
  for (const [name, [parse, text]] of Object.entries(parsers)) {
    const base = Buffer.from(text, 'latin1');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (edits) => {
          runs++;
          const b = Buffer.from(base);
          for (const [i, v] of edits) b[i] = v;
          const c = code(parse, b);
          return typeof c === 'string';
        },
      ),
      { numRuns: 5000 },
    );
    t.pass(`${name} mutations`);
  }
  t.ok(runs > 100, `${runs} mutated files`);
});
