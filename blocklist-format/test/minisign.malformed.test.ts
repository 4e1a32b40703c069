// Hostile inputs for the minisign parsers and verifiers: each must be refused with its code, never another error.
import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import t from 'tap';

import { cpuMsOf } from '../../test/helpers/cpu.ts';
import { FormatError } from '../dist/errors.js';
import {
  TrustStore,
  parsePublicKey,
  parsePublicKeyFile,
  parseSecretKeyFile,
  parseSignatureFile,
  sign,
  verifySignature,
  verifyThreshold,
} from '../dist/minisign.js';

const FIXTURES = new URL('../../fixtures/minisign/', import.meta.url);
const fixture = (name: string): Buffer => readFileSync(new URL(name, FIXTURES));

const SAMPLE = fixture('sample.txt');
const SIG = fixture('sample.txt.minisig');
const PUB_FILE = fixture('alice.pub');
const KEY_FILE = fixture('alice.key');
const PUB = parsePublicKeyFile(PUB_FILE).publicKey;
const PUB_STRING = PUB_FILE.toString('latin1').split('\n')[1] ?? '';
const SECRET = parseSecretKeyFile(KEY_FILE).secretKey;

const P = (1n << 255n) - 19n;
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

/** The code of the FormatError `fn` throws, or undefined when it returns; any other exception fails the test. */
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof FormatError) return err.code;
    throw err;
  }
}

const lines = (b: Buffer): string[] => b.toString('latin1').split('\n');
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Replaces line `i` (0-based) of a file. */
function withLine(file: Buffer, i: number, line: string | Buffer): Buffer {
  const parts = file.toString('latin1').split('\n');
  parts[i] = Buffer.isBuffer(line) ? line.toString('latin1') : line;
  return bytes(parts.join('\n'));
}

/** Decodes base64 line `i`, lets `edit` change the bytes, and writes it back canonically. */
function editPayload(file: Buffer, i: number, edit: (payload: Buffer) => Buffer | void): Buffer {
  const payload = Buffer.from(lines(file)[i] ?? '', 'base64');
  return withLine(file, i, (edit(payload) ?? payload).toString('base64'));
}

/** Sets the unused low bits of the last data character before the padding (non-canonical base64). */
function dirtyPadding(b64: string): string {
  const table = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  if (pad === 0) throw new Error('no padding to dirty');
  const at = b64.length - pad - 1;
  return b64.slice(0, at) + table.charAt(table.indexOf(b64.charAt(at)) | 1) + b64.slice(at + 1);
}

function leBytes(v: bigint): Buffer {
  const out = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) out[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return out;
}

t.test('signature files', async (t) => {
  t.test('refuses the file truncated at every length', async (t) => {
    for (let n = 0; n < SIG.length; n++) {
      const cut = SIG.subarray(0, n);
      t.equal(
        codeOf(() => parseSignatureFile(cut)),
        'MALFORMED',
        `${n} bytes`,
      );
      t.equal(
        codeOf(() => verifySignature(SAMPLE, cut.toString('latin1'), PUB)),
        'MALFORMED',
        `${n} chars`,
      );
    }
    t.equal(
      codeOf(() => verifySignature(SAMPLE, SIG, PUB)),
      undefined,
      'the whole file verifies',
    );
  });

  t.test('refuses CR line ends, a BOM, extra or missing lines', async (t) => {
    const text = SIG.toString('latin1');
    const cases: Record<string, string | Buffer> = {
      'CRLF everywhere': text.replace(/\n/g, '\r\n'),
      'a final CRLF': `${text.slice(0, -1)}\r\n`,
      'a final CR instead of LF': `${text.slice(0, -1)}\r`,
      'a CR inside the untrusted comment': text.replace('signature from', 'signature\rfrom'),
      'a UTF-8 BOM (bytes)': Buffer.concat([Buffer.of(0xef, 0xbb, 0xbf), SIG]),
      'a BOM (string)': `\ufeff${text}`,
      'no final LF': text.slice(0, -1),
      'an empty fifth line': `${text}\n`,
      'a fifth line': `${text}extra\n`,
      'three lines': lines(SIG).slice(0, 3).join('\n') + '\n',
      'a leading empty line': `\n${text}`,
      'the lines swapped': [1, 0, 2, 3].map((i) => lines(SIG)[i]).join('\n') + '\n',
      'NUL bytes': Buffer.alloc(200),
    };
    for (const [name, input] of Object.entries(cases)) {
      t.equal(
        codeOf(() => verifySignature(SAMPLE, input, PUB)),
        'MALFORMED',
        name,
      );
    }
  });

  t.test('refuses wrong prefixes', async (t) => {
    const cases = {
      'capital U': withLine(SIG, 0, lines(SIG)[0]?.replace('untrusted', 'Untrusted') ?? ''),
      'no space after the untrusted colon': withLine(SIG, 0, 'untrusted comment:x'),
      'no trusted prefix': withLine(SIG, 2, lines(SIG)[2]?.replace('trusted comment: ', '') ?? ''),
      'untrusted prefix on line 3': withLine(SIG, 2, lines(SIG)[2]?.replace('trusted', 'untrusted') ?? ''),
      'a space before the prefix': withLine(SIG, 0, ` ${lines(SIG)[0] ?? ''}`),
    };
    for (const [name, input] of Object.entries(cases)) {
      t.equal(
        codeOf(() => parseSignatureFile(input)),
        'MALFORMED',
        name,
      );
    }
  });

  t.test('refuses non-canonical base64 and wrong lengths', async (t) => {
    const sig = lines(SIG)[1] ?? '';
    const global = lines(SIG)[3] ?? '';
    const cases: Record<string, Buffer> = {
      'padding bits set in the signature': withLine(SIG, 1, dirtyPadding(sig)),
      'padding bits set in the global signature': withLine(SIG, 3, dirtyPadding(global)),
      'padding dropped': withLine(SIG, 3, global.replace(/=+$/, '')),
      'an extra =': withLine(SIG, 1, `${sig}=`),
      'url-safe alphabet': withLine(SIG, 1, sig.replace(/\+/g, '-').replace(/\//g, '_').replace(/^(.)/, '-')),
      'a space inside': withLine(SIG, 1, `${sig.slice(0, 10)} ${sig.slice(11)}`),
      'a trailing space': withLine(SIG, 3, `${global} `),
      'a leading space': withLine(SIG, 1, ` ${sig}`),
      'a tab': withLine(SIG, 1, `${sig.slice(0, 50)}\t${sig.slice(51)}`),
      '73 signature bytes': editPayload(SIG, 1, (p) => p.subarray(0, 73)),
      '75 signature bytes': editPayload(SIG, 1, (p) => Buffer.concat([p, Buffer.of(0)])),
      '63 global bytes': editPayload(SIG, 3, (p) => p.subarray(0, 63)),
      '65 global bytes': editPayload(SIG, 3, (p) => Buffer.concat([p, Buffer.of(0)])),
      'an empty signature line': withLine(SIG, 1, ''),
      'an empty global line': withLine(SIG, 3, ''),
      'a non-ASCII character': withLine(SIG, 1, `${sig.slice(0, -2)}\u00e9=`),
    };
    for (const [name, input] of Object.entries(cases)) {
      t.equal(
        codeOf(() => verifySignature(SAMPLE, input, PUB)),
        'MALFORMED',
        name,
      );
    }
  });

  t.test('refuses unknown signature algorithms', async (t) => {
    for (const alg of ['EX', 'ed', 'eD', '\0\0', 'Sc']) {
      const input = editPayload(SIG, 1, (p) => void p.write(alg, 0, 'latin1'));
      t.equal(
        codeOf(() => verifySignature(SAMPLE, input, PUB)),
        'MALFORMED',
        JSON.stringify(alg),
      );
    }
  });

  t.test('refuses comments that are not printable UTF-8', async (t) => {
    const bad: Record<string, Buffer> = {
      'a C0 control': Buffer.of(0x01),
      'an escape sequence': bytes('\x1b[2J'),
      DEL: Buffer.of(0x7f),
      'a C1 control (U+0085)': Buffer.of(0xc2, 0x85),
      'a lone continuation byte': Buffer.of(0x80),
      'an invalid byte': Buffer.of(0xff),
      'an overlong slash': Buffer.of(0xc0, 0xaf),
      'an encoded surrogate': Buffer.of(0xed, 0xa0, 0x80),
      'past U+10FFFF': Buffer.of(0xf4, 0x90, 0x80, 0x80),
      'a truncated sequence': Buffer.of(0xe4, 0xb8),
      'a NUL': Buffer.of(0x00),
    };
    for (const [name, b] of Object.entries(bad)) {
      const trusted = withLine(SIG, 2, Buffer.concat([bytes('trusted comment: ok '), b, bytes(' end')]));
      t.equal(
        codeOf(() => verifySignature(SAMPLE, trusted, PUB)),
        'MALFORMED',
        `trusted: ${name}`,
      );
      const untrusted = withLine(SIG, 0, Buffer.concat([bytes('untrusted comment: '), b]));
      t.equal(
        codeOf(() => parseSignatureFile(untrusted)),
        'MALFORMED',
        `untrusted: ${name}`,
      );
    }
    const tab = withLine(SIG, 0, 'untrusted comment: a\ttab and UTF-8 \u00e9');
    t.equal(
      codeOf(() => verifySignature(SAMPLE, Buffer.from(tab.toString('latin1'), 'utf8'), PUB)),
      undefined,
    );
    t.equal(
      codeOf(() => verifySignature(SAMPLE, 'untrusted comment: \ud800\n', PUB)),
      'MALFORMED',
      'lone surrogate',
    );
  });

  t.test('refuses over-long lines and files over 2 KiB', async (t) => {
    const at = (n: number): Buffer => withLine(SIG, 0, `untrusted comment: ${'x'.repeat(n - 19)}`);
    t.equal(
      codeOf(() => verifySignature(SAMPLE, at(1022), PUB)),
      undefined,
      'a 1022-byte comment line is fine',
    );
    t.equal(
      codeOf(() => verifySignature(SAMPLE, at(1023), PUB)),
      'MALFORMED',
      'a 1023-byte one is not',
    );
    const big = withLine(SIG, 0, `untrusted comment: ${'x'.repeat(3 * 1024)}`);
    t.equal(
      codeOf(() => verifySignature(SAMPLE, big, PUB)),
      'TOO_LARGE',
      '3 KiB of bytes',
    );
    t.equal(
      codeOf(() => verifySignature(SAMPLE, big.toString('latin1'), PUB)),
      'TOO_LARGE',
      '3 KiB string',
    );
    t.equal(
      codeOf(() => parseSignatureFile(Buffer.alloc(3 * 1024, 0x41))),
      'TOO_LARGE',
      'junk is capped first',
    );
    t.equal(
      codeOf(() => parseSignatureFile('\u00e9'.repeat(1025))),
      'TOO_LARGE',
      '2050 UTF-8 bytes',
    );

    // Exactly at the cap: a signature we write of 2048 bytes verifies, one byte more cannot be written.
    const base = sign(SAMPLE, SECRET, 'x').length - 1;
    const fits = sign(SAMPLE, SECRET, 'x'.repeat(2048 - base));
    t.equal(fits.length, 2048);
    t.equal(verifySignature(SAMPLE, fits, PUB).trustedComment.length, 2048 - base);
    t.equal(
      codeOf(() => sign(SAMPLE, SECRET, 'x'.repeat(2049 - base))),
      'TOO_LARGE',
    );
  });

  t.test('refuses signature values libsodium refuses: S not below L, small-order R', async (t) => {
    const withS = (line: number, offset: number, add: bigint): Buffer =>
      editPayload(SIG, line, (p) => {
        let s = 0n;
        for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(p[offset + i] ?? 0);
        leBytes(s + add).copy(p, offset);
      });
    t.equal(
      codeOf(() => verifySignature(SAMPLE, withS(1, 10 + 32, L), PUB)),
      'SIGNATURE_INVALID',
      'S + L',
    );
    t.equal(
      codeOf(() => verifySignature(SAMPLE, withS(3, 32, L), PUB)),
      'SIGNATURE_INVALID',
      'global S + L',
    );
    for (const y of [0n, 1n, P - 1n, P, P + 1n]) {
      const r = editPayload(SIG, 1, (p) => void leBytes(y).copy(p, 10));
      t.equal(
        codeOf(() => verifySignature(SAMPLE, r, PUB)),
        'SIGNATURE_INVALID',
        `R with y = ${y}`,
      );
    }
  });

  t.test('refuses what is not text or bytes', async (t) => {
    t.equal(
      codeOf(() => parseSignatureFile(42 as unknown as string)),
      'MALFORMED',
    );
    t.equal(
      codeOf(() => parseSignatureFile(null as unknown as string)),
      'MALFORMED',
    );
    t.equal(
      codeOf(() => verifySignature('message' as unknown as Uint8Array, SIG, PUB)),
      'MALFORMED',
    );
  });
});

t.test('public keys', async (t) => {
  t.test('refuses the .pub file and the bare key truncated at every length', async (t) => {
    for (let n = 0; n < PUB_FILE.length; n++) {
      t.equal(
        codeOf(() => parsePublicKeyFile(PUB_FILE.subarray(0, n))),
        'KEY_INVALID',
        `file, ${n} bytes`,
      );
    }
    for (let n = 0; n < PUB_STRING.length; n++) {
      t.equal(
        codeOf(() => parsePublicKey(PUB_STRING.slice(0, n))),
        'KEY_INVALID',
        `string, ${n} chars`,
      );
    }
  });

  t.test('refuses CR, BOM, extra lines, whitespace and non-canonical base64', async (t) => {
    const text = PUB_FILE.toString('latin1');
    const files: Record<string, string | Buffer> = {
      CRLF: text.replace(/\n/g, '\r\n'),
      'final CRLF': `${text.slice(0, -1)}\r\n`,
      BOM: Buffer.concat([Buffer.of(0xef, 0xbb, 0xbf), PUB_FILE]),
      'no final LF': text.slice(0, -1),
      'an extra empty line': `${text}\n`,
      'a third line': `${text}RWQ\n`,
      'no comment line': `${PUB_STRING}\n`,
      'a 1023-byte comment line': `untrusted comment: ${'x'.repeat(1004)}\n${PUB_STRING}\n`,
      'url-safe key': `untrusted comment: k\n${PUB_STRING.replace(/[+/]/g, '_')}\n`,
      'padded key': `untrusted comment: k\n${PUB_STRING}=\n`,
    };
    if (!/[+/]/.test(PUB_STRING)) t.fail('fixture key has no + or /: the url-safe case tests nothing');
    for (const [name, input] of Object.entries(files)) {
      t.equal(
        codeOf(() => parsePublicKeyFile(input)),
        'KEY_INVALID',
        name,
      );
    }
    for (const s of [` ${PUB_STRING}`, `${PUB_STRING}\n`, `${PUB_STRING} `, PUB_STRING.toLowerCase(), '']) {
      t.equal(
        codeOf(() => parsePublicKey(s)),
        'KEY_INVALID',
        JSON.stringify(s),
      );
    }
    t.equal(
      codeOf(() => parsePublicKey(Buffer.from(PUB_STRING) as unknown as string)),
      'KEY_INVALID',
      'bytes',
    );
    t.equal(
      codeOf(() => parsePublicKeyFile(`untrusted comment: ${'x'.repeat(3000)}\n`)),
      'TOO_LARGE',
    );
  });

  t.test('refuses unknown algorithms and points libsodium refuses', async (t) => {
    const payload = Buffer.from(PUB_STRING, 'base64');
    const encode = (edit: (p: Buffer) => void): string => {
      const p = Buffer.from(payload);
      edit(p);
      return p.toString('base64');
    };
    for (const alg of ['ED', 'Ex', 'ed', '\0\0']) {
      t.equal(
        codeOf(() => parsePublicKey(encode((p) => void p.write(alg, 0, 'latin1')))),
        'KEY_INVALID',
        alg,
      );
    }
    // y values of the torsion points (orders 1, 2, 4, 8), and y >= p (non-canonical); both sign bits.
    const order8 = [
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    ];
    const points = [leBytes(0n), leBytes(1n), leBytes(P - 1n), leBytes(P), leBytes(P + 1n), leBytes(P + 18n)];
    for (const h of order8) points.push(Buffer.from(h, 'hex'));
    for (const point of points) {
      for (const signBit of [0, 0x80]) {
        const key = Buffer.from(point);
        key[31] = ((key[31] ?? 0) & 0x7f) | signBit;
        const s = encode((p) => void key.copy(p, 10));
        t.equal(
          codeOf(() => parsePublicKey(s)),
          'KEY_INVALID',
          `${key.toString('hex')}`,
        );
      }
    }
    // The order-8 y values above are roots of d*y^4 + 2*y^2 - 1 (x = +-sqrt(-1)*y on the curve).
    const pow = (b: bigint, e: bigint): bigint => {
      let r = 1n;
      b %= P;
      for (; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
      return r;
    };
    const d = (((-121665n * pow(121666n, P - 2n)) % P) + P) % P;
    for (const h of order8) {
      let y = 0n;
      const b = Buffer.from(h, 'hex');
      for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(b[i] ?? 0);
      const y2 = (y * y) % P;
      t.equal((((d * y2 * y2 + 2n * y2 - 1n) % P) + P) % P, 0n, `order 8: ${h.slice(0, 8)}...`);
    }
  });
});

t.test('secret keys', async (t) => {
  t.test('refuses the file truncated at every length', async (t) => {
    for (let n = 0; n < KEY_FILE.length; n++) {
      t.equal(
        codeOf(() => parseSecretKeyFile(KEY_FILE.subarray(0, n))),
        'KEY_INVALID',
        `${n} bytes`,
      );
    }
  });

  t.test('refuses CR, BOM, extra lines, non-canonical base64, wrong lengths and 3 KiB', async (t) => {
    const text = KEY_FILE.toString('latin1');
    const key = lines(KEY_FILE)[1] ?? '';
    const files: Record<string, string | Buffer> = {
      CRLF: text.replace(/\n/g, '\r\n'),
      'final CRLF': `${text.slice(0, -1)}\r\n`,
      BOM: Buffer.concat([Buffer.of(0xef, 0xbb, 0xbf), KEY_FILE]),
      'an extra line': `${text}\n`,
      'no comment line': `${key}\n`,
      'padding bits': withLine(KEY_FILE, 1, dirtyPadding(key)),
      '157 bytes': editPayload(KEY_FILE, 1, (p) => p.subarray(0, 157)),
      '159 bytes': editPayload(KEY_FILE, 1, (p) => Buffer.concat([p, Buffer.of(0)])),
    };
    for (const [name, input] of Object.entries(files)) {
      t.equal(
        codeOf(() => parseSecretKeyFile(input)),
        'KEY_INVALID',
        name,
      );
    }
    t.equal(
      codeOf(() => parseSecretKeyFile(`untrusted comment: ${'x'.repeat(3000)}\n`)),
      'TOO_LARGE',
    );
  });

  t.test('refuses unknown algorithms and KDF limits out of bounds, before any scrypt', async (t) => {
    const cases: Record<string, (p: Buffer) => void> = {
      'signature algorithm ED': (p) => void p.write('ED', 0, 'latin1'),
      'kdf Sx': (p) => void p.write('Sx', 2, 'latin1'),
      'kdf 00 01': (p) => void p.writeUInt16BE(1, 2),
      'checksum B3': (p) => void p.write('B3', 4, 'latin1'),
      'scrypt memlimit 2^40': (p) => {
        p.write('Sc', 2, 'latin1');
        p.writeBigUInt64LE(2n ** 40n, 38);
        p.writeBigUInt64LE(2n ** 40n, 46);
      },
      'scrypt work 2^30': (p) => {
        p.write('Sc', 2, 'latin1');
        p.writeBigUInt64LE(2n ** 40n, 38);
        p.writeBigUInt64LE(2n ** 24n, 46);
      },
      'scrypt limits all ones': (p) => {
        p.write('Sc', 2, 'latin1');
        p.writeBigUInt64LE(2n ** 64n - 1n, 38);
        p.writeBigUInt64LE(2n ** 64n - 1n, 46);
      },
    };
    for (const [name, edit] of Object.entries(cases)) {
      const file = editPayload(KEY_FILE, 1, edit);
      const { value, ms } = cpuMsOf(() => codeOf(() => parseSecretKeyFile(file, { password: 'x' })));
      t.equal(value, 'KEY_INVALID', name);
      t.ok(ms < 500, `${name}: refused without running scrypt (${ms.toFixed(1)} ms of CPU)`);
    }
  });
});

t.test('threshold verification with hostile signature lists', async (t) => {
  const store = new TrustStore({ demo: { keys: [PUB], threshold: 1 } });
  t.equal(
    codeOf(() => verifyThreshold(SAMPLE, [SIG, 'junk'], store, 'demo')),
    'MALFORMED',
  );
  t.equal(
    codeOf(() => verifyThreshold(SAMPLE, [SIG, Buffer.alloc(3 * 1024)], store, 'demo')),
    'TOO_LARGE',
  );
  t.equal(
    codeOf(() =>
      verifyThreshold(
        SAMPLE,
        Array.from({ length: 9 }, () => 'junk'),
        store,
        'demo',
      ),
    ),
    'TOO_LARGE',
  );
  t.equal(
    codeOf(() => verifyThreshold(SAMPLE, [SIG], store, 'demo')),
    undefined,
  );
});

t.test('random and mutated inputs never raise anything but a FormatError (property)', async (t) => {
  const sigCodes = new Set(['MALFORMED', 'TOO_LARGE', 'LEGACY_SIGNATURE', 'UNTRUSTED_KEY', 'SIGNATURE_INVALID']);
  const firstLf = SIG.indexOf(0x0a);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000, size: 'max' }), (junk) => {
      const a = codeOf(() => verifySignature(SAMPLE, junk, PUB));
      const b = codeOf(() => parsePublicKeyFile(junk));
      const c = codeOf(() => parseSecretKeyFile(junk));
      return a !== undefined && sigCodes.has(a) && b !== undefined && c !== undefined;
    }),
    { numRuns: 2000 },
  );
  const mutation = fc.record({
    at: fc.nat({ max: SIG.length - 1 }),
    kind: fc.constantFrom('set', 'insert', 'delete'),
    byte: fc.integer({ min: 0, max: 255 }),
  });
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (edits) => {
      let b = Buffer.from(SIG);
      for (const e of edits) {
        const at = Math.min(e.at, b.length);
        if (e.kind === 'set') b[at] = e.byte;
        else if (e.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.of(e.byte), b.subarray(at)]);
        else b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
      }
      const code = codeOf(() => verifySignature(SAMPLE, b, PUB));
      // Accepted only when the signed part (everything after the untrusted comment line) is untouched.
      if (code === undefined) {
        return (
          b.subarray(b.indexOf(0x0a)).equals(SIG.subarray(firstLf)) &&
          b.toString('latin1').startsWith('untrusted comment: ')
        );
      }
      return sigCodes.has(code);
    }),
    { numRuns: 3000 },
  );
  t.pass('no other exception');
});
