import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import t from 'tap';

import { FileSource, HttpSource, maskUrl, sourceFor } from '../dist/index.js';

import { within } from '../../test/helpers/within.ts';
import { server } from './helpers.ts';

const payload = Buffer.from('HWL1 INDEX\nlist-id: demo\n');

t.test('fetches a file, honours the exact size, and reports absent files', async (t) => {
  const s = await server({
    '/rel/index.hwl': (_q, r) => r.end(payload),
    '/rel/gone': (_q, r) => {
      r.statusCode = 410;
      r.end();
    },
  });
  t.teardown(s.close);
  const src = new HttpSource(s.url, { totalTimeoutMs: 2000 });
  t.teardown(() => src.close());
  const got = await src.get('index.hwl', { maxBytes: 1000, exactSize: payload.length });
  t.equal(got.status, 'ok');
  t.same(got.status === 'ok' && Buffer.from(got.body), payload);
  t.same(await src.get('missing.hwl', { maxBytes: 1000 }), { status: 'absent' });
  t.same(await src.get('gone', { maxBytes: 1000 }), { status: 'absent' });
  await t.rejects(src.get('index.hwl', { maxBytes: 1000, exactSize: payload.length + 1 }), { code: 'SIZE_MISMATCH' });
  await t.rejects(src.get('index.hwl', { maxBytes: 1000, exactSize: payload.length - 1 }), { code: 'SIZE_MISMATCH' });
  await t.rejects(src.get('index.hwl', { maxBytes: 5 }), { code: 'TOO_LARGE' });
});

t.test(
  'a body of the exact size sent in many chunks arrives byte for byte; too short or too long is refused',
  async (t) => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 255;
    const writeSlowly = (r: ServerResponse, bytes: Buffer): void => {
      let at = 0;
      const next = (): void => {
        if (at >= bytes.length) {
          r.end();
          return;
        }
        const n = Math.min(65_537, bytes.length - at);
        r.write(bytes.subarray(at, at + n));
        at += n;
        setImmediate(next);
      };
      next();
    };
    const s = await server({
      '/rel/full/1.hwl': (_q, r) => writeSlowly(r, big),
      '/rel/full/short.hwl': (_q, r) => writeSlowly(r, big.subarray(0, big.length - 1)),
    });
    t.teardown(s.close);
    const src = new HttpSource(s.url, { totalTimeoutMs: 5000 });
    t.teardown(() => src.close());
    const got = await src.get('full/1.hwl', { maxBytes: 8 * 1024 * 1024, exactSize: big.length });
    t.equal(got.status, 'ok');
    t.ok(got.status === 'ok' && Buffer.compare(Buffer.from(got.body), big) === 0, 'the same bytes');
    t.equal(got.status === 'ok' && got.body.length, big.length);
    await t.rejects(src.get('full/short.hwl', { maxBytes: 8 * 1024 * 1024, exactSize: big.length }), {
      code: 'SIZE_MISMATCH',
    });
    await t.rejects(src.get('full/1.hwl', { maxBytes: 8 * 1024 * 1024, exactSize: big.length - 1 }), {
      code: 'SIZE_MISMATCH',
    });
    await t.rejects(src.get('full/1.hwl', { maxBytes: 1024 * 1024, exactSize: big.length }), { code: 'TOO_LARGE' });
    await t.rejects(src.get('full/1.hwl', { maxBytes: 8 * 1024 * 1024, exactSize: -1 }), { code: 'SIZE_MISMATCH' });
  },
);

t.test('server errors, redirects and encoded bodies fail with FETCH_FAILED', async (t) => {
  const s = await server({
    '/rel/500': (_q, r) => {
      r.statusCode = 500;
      r.end('oops');
    },
    '/rel/moved': (_q, r) => {
      r.statusCode = 302;
      r.setHeader('location', '/rel/500');
      r.end();
    },
    '/rel/gz': (_q, r) => {
      r.setHeader('content-encoding', 'gzip');
      r.end(Buffer.alloc(100));
    },
  });
  t.teardown(s.close);
  const src = new HttpSource(s.url, { totalTimeoutMs: 2000 });
  t.teardown(() => src.close());
  await t.rejects(src.get('500', { maxBytes: 1000 }), { code: 'FETCH_FAILED' });
  await t.rejects(src.get('moved', { maxBytes: 1000 }), { code: 'FETCH_FAILED' });
  await t.rejects(src.get('gz', { maxBytes: 1000 }), { code: 'FETCH_FAILED' });
});

t.test("a base URL's user, password and query are sent, and never shown in an error", async (t) => {
  const seen: { url: string | undefined; authorization: string | undefined }[] = [];
  const s = await server({
    '/rel/index.hwl?token=x%26y': (q, r) => {
      seen.push({ url: q.url, authorization: q.headers.authorization });
      r.end(payload);
    },
    '/rel/gone.hwl?token=x%26y': (q, r) => {
      seen.push({ url: q.url, authorization: q.headers.authorization });
      r.statusCode = 500;
      r.end();
    },
  });
  t.teardown(s.close);
  const base = s.url.replace('http://', 'http://us%40er:s%3Acret@') + '?token=x%26y';
  const src = new HttpSource(base, { totalTimeoutMs: 2000 });
  t.teardown(() => src.close());
  t.equal((await src.get('index.hwl', { maxBytes: 1000 })).status, 'ok');
  t.same(seen[0], {
    url: '/rel/index.hwl?token=x%26y',
    authorization: `Basic ${Buffer.from('us@er:s:cret').toString('base64')}`,
  });
  const err = await src.get('gone.hwl', { maxBytes: 1000 }).catch((e: Error & { code: string }) => e);
  t.match(err, { code: 'FETCH_FAILED' });
  const message = (err as Error).message;
  t.match(message, /^http:\/\/\*\*\*@127\.0\.0\.1:\d+\/rel\/gone\.hwl: HTTP 500$/);
  t.notMatch(message, /us%40er|s%3Acret|token|cret/);
  t.notMatch(src.location, /er|cret|token/);
});

t.test('maskUrl shows that a URL has credentials, a query or a fragment, never what they are', async (t) => {
  t.equal(maskUrl('https://user:secret@host.example/list/?token=x'), 'https://***@host.example/list/?***');
  t.equal(maskUrl('https://user@host.example/list/'), 'https://***@host.example/list/');
  t.equal(maskUrl(new URL('https://host.example/list/#frag')), 'https://host.example/list/#***');
  t.equal(maskUrl('https://host.example/list/'), 'https://host.example/list/');
  t.equal(maskUrl('file:///srv/list/?x'), 'file:///srv/list/?***');
  t.equal(maskUrl('not a url user:secret'), '(not a URL)');
});

t.test('an endless body is cut at the cap; a lying Content-Length does not help', async (t) => {
  let sent = 0;
  const s = await server({
    '/rel/endless': (_q, r) => {
      const chunk = Buffer.alloc(16384, 0x61);
      const pump = (): void => {
        while (sent < 512 * 1024 * 1024 && r.write(chunk)) sent += chunk.length;
        if (!r.destroyed) r.once('drain', pump);
      };
      r.on('close', () => undefined);
      pump();
    },
    '/rel/huge-length': (_q, r) => {
      r.setHeader('content-length', String(10 * 1024 * 1024 * 1024));
      r.write(Buffer.alloc(70000, 0x62));
    },
    '/rel/short-length': (req, r) => {
      // Announces 10 bytes: HTTP framing ends the body there, and the index size check catches the rest.
      r.setHeader('content-length', '10');
      r.end(Buffer.alloc(10, 0x63));
      req.socket.write(Buffer.alloc(1000, 0x63));
    },
  });
  t.teardown(s.close);
  const src = new HttpSource(s.url, { totalTimeoutMs: 5000 });
  t.teardown(() => src.close());
  await t.rejects(src.get('endless', { maxBytes: 65536 }), { code: 'TOO_LARGE' });
  t.ok(sent < 64 * 1024 * 1024, `server managed to push ${sent} bytes before the client hung up`);
  await t.rejects(src.get('huge-length', { maxBytes: 65536 }), { code: 'TOO_LARGE' });
  await t.rejects(src.get('short-length', { maxBytes: 65536, exactSize: 1010 }), { code: 'SIZE_MISMATCH' });
});

t.test('a slow server is cut off at the total deadline', async (t) => {
  // A body that never ends, and an answer that never comes: only the client's total deadline ends these requests,
  // and the server sees the client close each connection.
  const closed: Record<string, Promise<void>> = {};
  const onClose = (name: string, r: ServerResponse): void => {
    closed[name] = new Promise((resolve) => r.on('close', () => resolve()));
  };
  const s = await server({
    '/rel/slow': (_q, r) => {
      onClose('slow', r);
      r.write('a');
      const timer = setInterval(() => r.write('a'), 100);
      r.on('close', () => clearInterval(timer));
    },
    '/rel/silent': (_q, r) => onClose('silent', r),
  });
  t.teardown(s.close);
  const src = new HttpSource(s.url, { totalTimeoutMs: 600 });
  t.teardown(() => src.close());
  await t.rejects(src.get('slow', { maxBytes: 65536 }), { code: 'FETCH_FAILED' }, 'a body that never ends');
  await t.rejects(src.get('silent', { maxBytes: 65536 }), { code: 'FETCH_FAILED' }, 'an answer that never comes');
  for (const name of ['slow', 'silent']) {
    await t.resolves(within(closed[name] ?? Promise.resolve()), `${name}: the client closed the connection`);
  }
});

t.test('a conditional fetch sends the validators and reports not-modified', async (t) => {
  const seen: (string | undefined)[] = [];
  const s = await server({
    '/rel/index.hwl': (req, r) => {
      seen.push(req.headers['if-none-match']);
      if (req.headers['if-none-match'] === '"v1"') {
        r.statusCode = 304;
        r.end();
        return;
      }
      r.setHeader('etag', '"v1"');
      r.end(payload);
    },
  });
  t.teardown(s.close);
  const src = new HttpSource(s.url, { totalTimeoutMs: 2000 });
  t.teardown(() => src.close());
  t.equal((await src.get('index.hwl', { maxBytes: 1000, conditional: true })).status, 'ok');
  t.same(await src.get('index.hwl', { maxBytes: 1000, conditional: true }), { status: 'not-modified' });
  t.equal((await src.get('index.hwl', { maxBytes: 1000 })).status, 'ok', 'unconditional fetch gets the body');
  t.same(seen, [undefined, '"v1"', undefined]);
});

t.test('a new source given the validators of an earlier one sends a conditional request', async (t) => {
  const seen: (string | undefined)[][] = [];
  const s = await server({
    '/rel/index.hwl': (req, r) => {
      seen.push([req.headers['if-none-match'], req.headers['if-modified-since']]);
      if (req.headers['if-none-match'] === '"v2"') {
        r.statusCode = 304;
        r.end();
        return;
      }
      r.setHeader('etag', '"v2"');
      r.setHeader('last-modified', 'Sun, 22 Nov 2026 20:00:00 GMT');
      r.end(payload);
    },
  });
  t.teardown(s.close);
  const a = new HttpSource(s.url, { totalTimeoutMs: 2000 });
  t.teardown(() => a.close());
  t.same(a.validatorsSnapshot(), [], 'nothing fetched yet');
  t.equal((await a.get('index.hwl', { maxBytes: 1000, conditional: true })).status, 'ok');
  const snapshot = a.validatorsSnapshot();
  t.same(snapshot, [['index.hwl', { etag: '"v2"', lastModified: 'Sun, 22 Nov 2026 20:00:00 GMT' }]]);
  // Through a structured clone, as it crosses to a new worker thread.
  const b = new HttpSource(s.url, { totalTimeoutMs: 2000, validators: structuredClone(snapshot) });
  t.teardown(() => b.close());
  t.same(await b.get('index.hwl', { maxBytes: 1000, conditional: true }), { status: 'not-modified' });
  t.same(seen, [
    [undefined, undefined],
    ['"v2"', 'Sun, 22 Nov 2026 20:00:00 GMT'],
  ]);
});

t.test('validators that are not strings are ignored', async (t) => {
  const seen: (string | undefined)[] = [];
  const s = await server({
    '/rel/index.hwl': (req, r) => {
      seen.push(req.headers['if-none-match']);
      r.end(payload);
    },
  });
  t.teardown(s.close);
  // A snapshot from elsewhere with junk in it (as plain data may be): no header is made from it.
  const junk = [['index.hwl', { etag: 7, lastModified: null }]] as unknown as [string, { etag?: string }][];
  const src = new HttpSource(s.url, { totalTimeoutMs: 2000, validators: junk });
  t.teardown(() => src.close());
  t.same(src.validatorsSnapshot(), [['index.hwl', {}]]);
  const got = await src.get('index.hwl', { maxBytes: 1000, conditional: true });
  t.equal(got.status, 'ok', 'the body, since no validator was sent');
  t.same(seen, [undefined]);
});

t.test('a connection refused fails with FETCH_FAILED', async (t) => {
  const s = await server({});
  const url = s.url;
  await s.close();
  const src = new HttpSource(url, { totalTimeoutMs: 2000, connectTimeoutMs: 1000 });
  t.teardown(() => src.close());
  await t.rejects(src.get('index.hwl', { maxBytes: 1000 }), { code: 'FETCH_FAILED' });
});

t.test('file:// sources read with the same caps', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hw-src-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'full'));
  await writeFile(join(dir, 'full', '1.hwl'), payload);
  const src = sourceFor(pathToFileURL(dir).href);
  t.ok(src instanceof FileSource);
  const got = await src.get('full/1.hwl', { maxBytes: 1000, exactSize: payload.length });
  t.same(got.status === 'ok' && Buffer.from(got.body), payload);
  t.same(await src.get('full/2.hwl', { maxBytes: 1000 }), { status: 'absent' });
  await t.rejects(src.get('full/1.hwl', { maxBytes: 4 }), { code: 'TOO_LARGE' });
  await t.rejects(src.get('full/1.hwl', { maxBytes: 1000, exactSize: 3 }), { code: 'SIZE_MISMATCH' });
  await t.rejects(src.get('full/1.hwl', { maxBytes: 1000, exactSize: 300 }), { code: 'SIZE_MISMATCH' });
  await t.rejects(src.get('../etc/passwd', { maxBytes: 10 }), RangeError);
});

t.test('undici is loaded on the first HTTP source, not by the package or a file:// source', async (t) => {
  // A fresh process: this file's own process has made HTTP sources already.
  const dir = await mkdtemp(join(tmpdir(), 'hashwall-lazy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'index.hwl'), payload);
  const pkg = new URL('../dist/index.js', import.meta.url).href;
  const script = `
    import { createRequire } from 'node:module';
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/undici/'));
    const rc = await import(${JSON.stringify(pkg)});
    const out = [loaded()];
    const file = rc.sourceFor(${JSON.stringify(pathToFileURL(dir + '/').href)});
    await file.get('index.hwl', { maxBytes: 1000 });
    out.push(loaded());
    const http = new rc.HttpSource('http://127.0.0.1:9/');
    out.push(loaded());
    await http.close();
    console.log(JSON.stringify(out));
  `;
  const got = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  t.same(JSON.parse(got), [false, false, true], 'after the import, after a file:// get, after an HTTP source');
});
