/**
 * A mirror URL's user, password and query never appear in a log line: the real binary runs with two mirrors that
 * carry credentials (one failing, one serving the list only to a request that has them), is reloaded and stopped,
 * and every line it wrote, stdout and stderr, is searched.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { generateListKey } from '@hashwall/format';
import t from 'tap';

import { startChild } from './helpers/child.ts';
import { TestUpstream } from './helpers/upstream.ts';
import { currentRelease, rawSettings, tempDir, within } from './lists/helpers.ts';
import { HANG_MS } from '../../test/helpers/within.ts';

const USER = 'mirror-user-7f3a';
const PASSWORD = 'pa55-9c1e-secret';
const TOKEN = 'tok-4b2d-query';

t.test('mirror credentials and query strings are masked in every log line of a run', async (t) => {
  const dir = tempDir(t, 'hw-mask-');
  const listKey = generateListKey('mask-2026');
  const release = currentRelease(join(dir, 'release'), listKey, ['blocked.test']);

  // /bad/ always fails; /good/ serves the release only with the Basic credentials and the token.
  const auth = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const served: string[] = [];
  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.startsWith('/bad/')) {
      res.statusCode = 500;
      res.end();
      return;
    }
    if (req.headers.authorization !== auth || url.searchParams.get('token') !== TOKEN) {
      res.statusCode = 401;
      res.end();
      return;
    }
    try {
      const body = release.read(url.pathname.replace(/^\/good\//, ''));
      served.push(url.pathname);
      res.end(body);
    } catch {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => http.close(() => r())));
  const port = (http.address() as AddressInfo).port;
  const secretUrl = (path: string) => `http://${USER}:${PASSWORD}@127.0.0.1:${port}/${path}/?token=${TOKEN}`;

  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const raw = rawSettings(
    join(dir, 'state'),
    [
      {
        mirrors: [secretUrl('bad'), secretUrl('good')],
        keys: [release.key],
        listKey,
        onStartWithoutList: 'wait',
        startWaitMs: 20000,
      },
    ],
    {
      listen: ['127.0.0.1:0'],
      upstreams: [up.address],
      metrics: { listen: '' },
      logging: { level: 'debug' },
    },
  );
  const file = join(dir, 'hashwalld.yaml');
  writeFileSync(file, JSON.stringify(raw));
  const child = startChild(file);
  t.teardown(() => child.stop());

  const updated = await child.waitFor((l) => l.msg === 'list updated', HANG_MS);
  t.ok(updated, `the list came from the mirror that needs the credentials (${child.stderr()})`);
  t.equal(updated?.mirror, `http://***@127.0.0.1:${port}/good/?***`, 'the mirror named, masked');
  t.ok(served.includes('/good/index.hwl'), 'the credentials and the token were sent');
  const failed = child.lines.find((l) => l.mirror === `http://***@127.0.0.1:${port}/bad/?***`);
  t.ok(failed, 'the failing mirror is named, masked');
  t.match(String(failed?.reason), /^http:\/\/\*\*\*@127\.0\.0\.1:\d+\/bad\/index\.hwl: HTTP 500$/, 'its error too');
  t.ok(await child.waitFor((l) => l.msg === 'listening for DNS', HANG_MS));
  const starting = child.lines.find((l) => l.msg === 'hashwalld starting') as {
    config: { lists: { mirrors: string[] }[] };
  };
  t.same(starting.config.lists[0]!.mirrors, [
    `http://***@127.0.0.1:${port}/bad/?***`,
    `http://***@127.0.0.1:${port}/good/?***`,
  ]);

  child.proc.kill('SIGHUP');
  t.ok(await child.waitFor((l) => l.msg === 'configuration reloaded', HANG_MS), 'reloaded (the config logged again)');
  await within(child.stop(), 'stop');

  const everything = child.lines.map((l) => JSON.stringify(l)).join('\n') + child.stderr();
  t.ok(child.lines.length > 5, `${child.lines.length} lines searched`);
  for (const secret of [USER, PASSWORD, TOKEN, 'token=']) {
    t.notOk(everything.includes(secret), `no line has ${secret}`);
  }
});
