// hashwall-witness as an operator runs it: the real command on 127.0.0.1 (port 0), keygen and vkey, HTTP caps and
// deadlines, the monitoring endpoint, JSON logs, a config refused with its key, a graceful SIGTERM that lets a
// request in flight finish, and a start that leaves Node's bundled undici unloaded.
import { execFile } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { parseCosignatureLines, parseCosignerKey, parseNote } from '@hashwall/tlog';
import t, { type Test } from 'tap';
import { request } from 'undici';

import { originHash } from '../dist/index.js';
import { UNDICI_AT_EXIT, plainCommand, plainNode } from '../../test/helpers/tools.ts';
import { HANG_MS } from '../../test/helpers/within.ts';
import { CLI, ORIGIN, TestLog, body, entry, newWitness, startWitness, tempDir } from './helpers.ts';

const run = promisify(execFile);

/** Sends raw request bytes (ignoring a write cut short by the server) and returns all it answers. */
function raw(port: number, parts: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const s = connect(port, '127.0.0.1', () => {
      for (const p of parts) s.write(p);
    });
    s.on('data', (c: Buffer) => (got += c.toString('utf8')));
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
    setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${HANG_MS} ms`));
    }, HANG_MS).unref();
  });
}

async function writeConfig(t: Test, log: TestLog, extra = ''): Promise<{ dir: string; config: string; vkey: string }> {
  return newWitness(
    t,
    'witness.example/w1',
    [{ origin: ORIGIN, vkey: log.key.vkey }],
    `limits:
  maxBodyBytes: 4096
  maxHeaderBytes: 2048
  headersTimeoutMs: 500
  requestTimeoutMs: 20000
shutdown:
  drainTimeoutMs: 20000
${extra}`,
  );
}

t.test(
  'keygen writes a 0600 key and prints its cosigner key; vkey prints it again; nothing is overwritten',
  async (t) => {
    const dir = tempDir(t);
    const out = join(dir, 'w.key');
    const { stdout } = await run(...plainNode(CLI, ['keygen', '--name', 'witness.example/w1', '--out', out]));
    t.equal(statSync(out).mode & 0o777, 0o600);
    const vkey = /cosigner key: (\S+)/.exec(stdout)![1]!;
    t.equal(parseCosignerKey(vkey).type, 4, 'a cosignature/v1 key (type 0x04)');
    t.equal((await run(...plainNode(CLI, ['vkey', '--key', out]))).stdout.trim(), vkey);
    const again = await run(...plainNode(CLI, ['keygen', '--name', 'w', '--out', out])).catch(
      (e: { code: number; stderr: string }) => e,
    );
    t.equal((again as { code: number }).code, 1);
    t.match((again as { stderr: string }).stderr, /exists; refusing to overwrite it/);
  },
);

t.test('a bad configuration is refused at start, naming the key', async (t) => {
  const log = new TestLog();
  const { config } = await writeConfig(t, log, 'bogus: 1\n');
  const res = await run(...plainNode(CLI, ['serve', '--config', config, '--check'])).catch(
    (e: { code: number; stderr: string }) => e,
  );
  t.equal((res as { code: number }).code, 2);
  t.match((res as { stderr: string }).stderr, /\(top level\)\.bogus: unknown key|bogus: unknown key/);
  const { config: good } = await writeConfig(t, log);
  t.match((await run(...plainNode(CLI, ['serve', '--config', good, '--check']))).stdout, /valid/);
});

t.test('serves add-checkpoint and the monitoring endpoint with caps and deadlines, and logs JSON', async (t) => {
  const log = new TestLog();
  log.publish(
    [0, 1, 2].map((i) => entry(i)),
    0,
  );
  const { config, vkey } = await writeConfig(t, log);
  const w = await startWitness(t, config);
  const post = async (b: Uint8Array | string, headers: Record<string, string> = {}) => {
    const res = await request(`${w.url}add-checkpoint`, {
      method: 'POST',
      body: b,
      headers,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    return { status: res.statusCode, type: res.headers['content-type'], text: await res.body.text() };
  };
  const ok = await post(await body(log, 0));
  t.equal(ok.status, 200);
  const [sig] = parseCosignatureLines(Buffer.from(ok.text));
  t.ok(
    parseCosignerKey(vkey).verify(parseNote(log.checkpoints.get(3)!).textBytes, sig!.signature),
    'cosigned with the printed key',
  );
  const conflict = await post(await body(log, 0));
  t.same([conflict.status, conflict.type, conflict.text], [409, 'text/x.tlog.size', '3\n']);
  // The witness answers 413 while the client is still sending (bodies 50 times the cap), reads the rest, then
  // closes: read off a raw socket, the answer must arrive whole (a close with the body unread would reset it).
  const port = Number(new URL(w.url).port);
  const big = await raw(port, [
    `POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n`,
    'x'.repeat(200_000),
  ]);
  t.match(big, /^HTTP\/1\.1 413 /, 'a body over maxBodyBytes');
  const chunks = Array.from({ length: 200 }, () => `3e8\r\n${'a'.repeat(1000)}\r\n`);
  const chunked = await raw(port, [
    `POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`,
    ...chunks,
    '0\r\n\r\n',
  ]);
  t.match(chunked, /^HTTP\/1\.1 413 /, 'also without a Content-Length');
  t.equal((await post('old 0\n\n', { 'x-big': 'y'.repeat(3000) })).status, 431, 'headers over maxHeaderBytes');
  const get = await request(`${w.url}${originHash(ORIGIN)}/checkpoint`);
  t.equal(get.statusCode, 200);
  t.match(await get.body.text(), /^lists\.example\/demo\n3\n/);
  const missing = await request(`${w.url}${'0'.repeat(64)}/checkpoint`);
  t.equal(missing.statusCode, 404);
  await missing.body.dump();
  const wrong = await request(`${w.url}add-checkpoint`);
  t.equal(wrong.statusCode, 405);
  t.equal(wrong.headers.allow, 'POST');
  await wrong.body.dump();
  // A client that never finishes its headers is cut off (headersTimeoutMs: 500).
  const closed = await new Promise<boolean>((resolve) => {
    const s = connect(Number(new URL(w.url).port), '127.0.0.1', () =>
      s.write('POST /add-checkpoint HTTP/1.1\r\nHost: x\r\n'),
    );
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, HANG_MS);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    s.on('data', () => undefined); // read, so that the server's close is seen
    s.on('error', () => undefined);
  });
  t.ok(closed, 'the slow client was disconnected');
  const cosigned = await w.line((l) => l.msg === 'add-checkpoint cosigned', 'cosigned');
  t.match(cosigned, { level: 'info', status: 200, outcome: 'cosigned', origin: ORIGIN, oldSize: 0, size: 3 });
  t.ok(
    w.lines.every((l) => typeof l.time === 'string' && typeof l.level === 'string'),
    'every line is a JSON record',
  );
  const perRequest = w.lines.filter((l) => l.msg !== 'hashwall-witness starting' && l.msg !== 'listening');
  t.notOk(JSON.stringify(perRequest).includes('127.0.0.1'), "no client's address in the logs");
  w.child.kill('SIGTERM');
  t.equal(await w.exited, 0);
});

t.test('SIGTERM lets a request in flight finish, then exits 0', async (t) => {
  const log = new TestLog();
  log.publish(
    [0, 1].map((i) => entry(i)),
    0,
  );
  const { config } = await writeConfig(t, log);
  const w = await startWitness(t, config);
  const b = Buffer.from(await body(log, 0));
  const port = Number(new URL(w.url).port);
  const answer = new Promise<string>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write(
        `POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: ${b.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
      );
    });
    // The server has the request once it says "100 Continue": half the body, the signal, then the rest.
    let phase = 0;
    s.on('data', () => {
      if (phase !== 0) return;
      phase = 1;
      s.write(b.subarray(0, 10));
      w.child.kill('SIGTERM');
      const waitStopping = setInterval(() => {
        if (w.lines.some((l) => l.msg === 'stopping: finishing requests in flight')) {
          clearInterval(waitStopping);
          s.write(b.subarray(10));
        }
      }, 20);
    });
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('utf8')));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    setTimeout(() => reject(new Error(`no answer within ${HANG_MS} ms`)), HANG_MS).unref();
  });
  t.match(await answer, /HTTP\/1\.1 200 OK/);
  t.match(await answer, /^HTTP\/1\.1 100 Continue/);
  t.equal(await w.exited, 0);
  t.ok(await w.line((l) => l.msg === 'stopped', 'stopped'));
});

t.test("the witness's start leaves Node's bundled undici unloaded (node:http from its CommonJS exports)", async (t) => {
  // Under Node 24 an ES-module import of node:http loads undici (daemon/test/util-http.test.ts shows it on the
  // running Node); the witness takes createServer with process.getBuiltinModule. A missing config ends the start
  // (exit 2) after every module the CLI imports was loaded and run.
  const dir = tempDir(t);
  const preload = join(dir, 'at-exit.mjs');
  writeFileSync(preload, UNDICI_AT_EXIT);
  const exit = await run(
    ...plainCommand(process.execPath, ['--import', preload, CLI, 'serve', '--config', join(dir, 'missing.yaml')]),
  ).then(
    () => ({ code: 0, stderr: '' }),
    (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
  );
  t.equal(exit.code, 2, 'a missing config stops the start (exit 2)');
  t.match(exit.stderr, /^undici loaded: false$/m);
});
