// HttpSource.stream and FileSource.stream: the body handed on chunk by chunk, with `get`'s caps and codes, and no
// byte past a cap ever delivered. A real HTTP server on 127.0.0.1 and real files.
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import t from 'tap';

import { FileSource, HttpSource } from '../dist/index.js';

import { within } from '../../test/helpers/within.ts';
import { server } from './helpers.ts';

const big = Buffer.alloc(3 * 1024 * 1024 + 17);
for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 255;

/** Writes `bytes` in pieces of `step`, one per tick. */
function writeSlowly(r: ServerResponse, bytes: Buffer, step = 65_537): void {
  let at = 0;
  const next = (): void => {
    if (at >= bytes.length) {
      r.end();
      return;
    }
    const n = Math.min(step, bytes.length - at);
    r.write(bytes.subarray(at, at + n));
    at += n;
    setImmediate(next);
  };
  next();
}

/** A sink that copies what it is given (chunks may be reused) and counts the calls. */
function collector(): { sink: (c: Uint8Array) => void; bytes: () => Buffer; chunks: () => number } {
  const parts: Buffer[] = [];
  return {
    sink: (c) => void parts.push(Buffer.from(c)),
    bytes: () => Buffer.concat(parts),
    chunks: () => parts.length,
  };
}

t.test('HttpSource streams a body byte for byte, in chunks, with the caps of get', async (t) => {
  const s = await server({
    '/rel/full/1.hwl': (_q, r) => writeSlowly(r, big),
    '/rel/full/short.hwl': (_q, r) => writeSlowly(r, big.subarray(0, big.length - 1)),
    '/rel/full/long.hwl': (_q, r) => writeSlowly(r, Buffer.concat([big, Buffer.from('xyz')])),
  });
  t.teardown(s.close);
  const src = new HttpSource(s.url, { totalTimeoutMs: 5000 });
  t.teardown(() => src.close());
  const c = collector();
  const res = await src.stream('full/1.hwl', { maxBytes: 8 << 20, exactSize: big.length }, async (chunk) => {
    await new Promise((r) => setImmediate(r)); // an async sink is awaited before the next chunk
    c.sink(chunk);
  });
  t.same(res, { status: 'ok', size: big.length });
  t.equal(Buffer.compare(c.bytes(), big), 0, 'the same bytes');
  t.ok(c.chunks() > 1, `delivered in ${c.chunks()} chunks`);
  t.same(await src.stream('full/none.hwl', { maxBytes: 1000 }, () => undefined), { status: 'absent' });

  const short = collector();
  await t.rejects(src.stream('full/short.hwl', { maxBytes: 8 << 20, exactSize: big.length }, short.sink), {
    code: 'SIZE_MISMATCH',
  });
  const long = collector();
  await t.rejects(src.stream('full/long.hwl', { maxBytes: 8 << 20, exactSize: big.length }, long.sink), {
    code: 'SIZE_MISMATCH',
  });
  t.ok(long.bytes().length <= big.length, 'no byte past the exact size was delivered');
  const capped = collector();
  await t.rejects(src.stream('full/1.hwl', { maxBytes: 1 << 20 }, capped.sink), { code: 'TOO_LARGE' });
  t.ok(capped.bytes().length <= 1 << 20, 'no byte past the cap was delivered');
});

t.test('HttpSource: what the sink throws comes out unchanged; server faults are FETCH_FAILED', async (t) => {
  let hungUp: () => void = () => undefined;
  const slowClosed = new Promise<void>((resolve) => (hungUp = resolve));
  const s = await server({
    '/rel/full/1.hwl': (_q, r) => writeSlowly(r, big),
    '/rel/500': (_q, r) => {
      r.statusCode = 500;
      r.end('oops');
    },
    '/rel/gz': (_q, r) => {
      r.setHeader('content-encoding', 'gzip');
      r.end(Buffer.alloc(100));
    },
    // A body that never ends: only the client's total deadline ends this request.
    '/rel/slow': (_q, r) => {
      r.write('a');
      const timer = setInterval(() => r.write('a'), 100);
      r.on('close', () => {
        clearInterval(timer);
        hungUp();
      });
    },
  });
  t.teardown(s.close);
  const src = new HttpSource(s.url, { totalTimeoutMs: 800 });
  t.teardown(() => src.close());
  const disk = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
  let calls = 0;
  await t.rejects(
    src.stream('full/1.hwl', { maxBytes: 8 << 20 }, () => {
      if (++calls === 2) throw disk;
    }),
    disk,
  );
  t.equal(calls, 2, 'no chunk after the sink failed');
  await t.rejects(
    src.stream('500', { maxBytes: 1000 }, () => undefined),
    { code: 'FETCH_FAILED' },
  );
  await t.rejects(
    src.stream('gz', { maxBytes: 1000 }, () => undefined),
    { code: 'FETCH_FAILED' },
  );
  await t.rejects(
    src.stream('slow', { maxBytes: 65536 }, () => undefined),
    { code: 'FETCH_FAILED' },
    'a body that never ends is cut at the total deadline',
  );
  await t.resolves(within(slowClosed), 'and the client closed the connection');
});

t.test('FileSource streams a file with the same caps and codes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hw-stream-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'full'));
  await writeFile(join(dir, 'full', '1.hwl'), big);
  const src = new FileSource(pathToFileURL(dir).href);
  const c = collector();
  t.same(await src.stream('full/1.hwl', { maxBytes: 8 << 20, exactSize: big.length }, c.sink), {
    status: 'ok',
    size: big.length,
  });
  t.equal(Buffer.compare(c.bytes(), big), 0, 'the same bytes');
  t.ok(c.chunks() > 1, `delivered in ${c.chunks()} chunks`);
  t.same(await src.stream('full/2.hwl', { maxBytes: 10 }, () => undefined), { status: 'absent' });
  for (const [options, code] of [
    [{ maxBytes: 1 << 20 }, 'TOO_LARGE'],
    [{ maxBytes: 8 << 20, exactSize: big.length - 1 }, 'SIZE_MISMATCH'],
    [{ maxBytes: 8 << 20, exactSize: big.length + 1 }, 'SIZE_MISMATCH'],
  ] as const) {
    const k = collector();
    await t.rejects(src.stream('full/1.hwl', options, k.sink), { code }, JSON.stringify(options));
    const limit = Math.min(options.maxBytes, 'exactSize' in options ? options.exactSize : Infinity);
    t.ok(k.bytes().length <= limit, 'no byte past the cap was delivered');
  }
  const disk = new Error('disk full');
  await t.rejects(
    src.stream('full/1.hwl', { maxBytes: 8 << 20 }, () => {
      throw disk;
    }),
    disk,
  );
  await t.rejects(
    src.stream('../etc/passwd', { maxBytes: 10 }, () => undefined),
    RangeError,
  );
});
