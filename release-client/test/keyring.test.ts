// Keyrings over a real HTTP server on 127.0.0.1 (SPEC.md 5.1): `keyring/<v>.hwk` and its signature files fetched
// through HttpSource with the caps and deadline of every other file; 404 and 410 mean "no newer keyring", and any
// other failure is never read as that.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { currentKeyringTrust, followKeyrings, parsePublicKey, type KeyringAnchor } from '@hashwall/format';
import t, { type Test } from 'tap';

import { FileSource, HttpSource } from '../dist/index.js';

import { server, type Handler } from './helpers.ts';

const DIR = new URL('../../fixtures/keyring/', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('fixtures.json', DIR), 'utf8')) as {
  keys: Record<string, { publicKey: string }>;
};
const ANCHOR: KeyringAnchor = {
  listId: 'demo',
  roots: [parsePublicKey(manifest.keys['root-a']!.publicKey)],
  rootThreshold: 1,
};
const NOW = Date.UTC(2027, 1, 1) / 1000;

/** Routes serving the golden keyrings under /rel/, with `extra` replacing or adding routes. */
function routes(extra: Record<string, Handler> = {}): Record<string, Handler> {
  const out: Record<string, Handler> = {};
  for (const name of readdirSync(new URL('keyring/', DIR))) {
    const body = readFileSync(new URL(`keyring/${name}`, DIR));
    out[`/rel/keyring/${name}`] = (_q, r) => r.end(body);
  }
  return { ...out, ...extra };
}

const status =
  (code: number): Handler =>
  (_q, r) => {
    r.statusCode = code;
    r.end();
  };

async function walkOver(t: Test, extra: Record<string, Handler>, totalTimeoutMs = 5000) {
  const s = await server(routes(extra));
  t.teardown(s.close);
  const source = new HttpSource(s.url, { totalTimeoutMs });
  t.teardown(() => source.close());
  return followKeyrings({ source, anchor: ANCHOR, now: NOW });
}

t.test('404 for the next version: the walk is complete and the last keyring is current', async (t) => {
  const walk = await walkOver(t, {});
  t.equal(walk.error, undefined);
  t.equal(walk.complete, true);
  t.same(
    walk.accepted.map((a) => a.keyring.header.version),
    [1, 2],
  );
  t.equal(currentKeyringTrust(walk, NOW).get('demo')?.keyring, 2);
});

t.test('410 Gone means the same as 404', async (t) => {
  const walk = await walkOver(t, { '/rel/keyring/3.hwk': status(410) });
  t.same([walk.complete, walk.current?.keyring.header.version], [true, 2]);
});

t.test('every other failure stops the walk with FETCH_FAILED and no index is accepted', async (t) => {
  const cases: Record<string, Record<string, Handler>> = {
    'HTTP 500 for the next keyring': { '/rel/keyring/3.hwk': status(500) },
    'HTTP 403 for the next keyring': { '/rel/keyring/3.hwk': status(403) },
    'a redirect (never followed)': {
      '/rel/keyring/3.hwk': (_q, r) => {
        r.statusCode = 302;
        r.setHeader('location', '/elsewhere');
        r.end();
      },
    },
    'HTTP 503 for a root signature file': { '/rel/keyring/2.hwk.62697BC3A43F6626.minisig': status(503) },
    'the connection reset mid-body': {
      '/rel/keyring/2.hwk': (_q, r) => {
        r.setHeader('content-length', '1000');
        r.write('HWL1 KEYRING\n');
        setImmediate(() => r.destroy());
      },
    },
    'a gzip body': {
      '/rel/keyring/3.hwk': (_q, r) => {
        r.setHeader('content-encoding', 'gzip');
        r.end('x');
      },
    },
  };
  for (const [name, extra] of Object.entries(cases)) {
    const walk = await walkOver(t, extra);
    t.equal(walk.error?.code, 'FETCH_FAILED', name);
    t.equal(walk.complete, false, `${name}: not complete`);
    t.throws(() => currentKeyringTrust(walk, NOW), { code: 'FETCH_FAILED' }, `${name}: no trust store`);
  }
});

t.test('a server that never answers hits the deadline: FETCH_FAILED, not "current"', async (t) => {
  const walk = await walkOver(t, { '/rel/keyring/3.hwk': () => undefined }, 300);
  t.equal(walk.error?.code, 'FETCH_FAILED');
  t.match(walk.error?.message, /within 300 ms/);
  t.equal(walk.current?.keyring.header.version, 2, 'versions 1 and 2 stand');
});

t.test('the caps: a keyring over 16 KiB and a signature file over 2 KiB are refused while they stream', async (t) => {
  let sent = 0;
  const big: Handler = (_q, r) => {
    // More than the cap, in chunks, without a Content-Length: the client stops reading at the cap.
    const chunk = Buffer.alloc(4096, 0x41);
    const next = (): void => {
      if (sent >= 1024 * 1024 || r.destroyed) return void r.end();
      sent += chunk.length;
      r.write(chunk, () => setImmediate(next));
    };
    next();
  };
  const walk = await walkOver(t, { '/rel/keyring/3.hwk': big });
  t.equal(walk.error?.code, 'TOO_LARGE');
  t.ok(sent < 1024 * 1024, `the server stopped after ${sent} bytes`);
  const sig = await walkOver(t, { '/rel/keyring/2.hwk.minisig': (_q, r) => r.end(Buffer.alloc(2049, 0x41)) });
  t.equal(sig.error?.code, 'TOO_LARGE');
});

t.test('a file:// release: a missing file is "not found" as over HTTP', async (t) => {
  const source = new FileSource(pathToFileURL(fileURLToPath(DIR)));
  const walk = await followKeyrings({ source, anchor: ANCHOR, now: NOW });
  t.same([walk.complete, walk.current?.keyring.header.version, walk.error], [true, 2, undefined]);
});
