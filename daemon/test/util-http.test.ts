// node:http taken from its CommonJS exports (util/http.ts says why): the daemon's start does not load Node's bundled
// undici, which an ES-module import of node:http loads wherever node:http has the getters that load it (Node 24; not
// Node 20). Each script runs as a user runs it (no test runner hooks, which import modules of their own) and says on
// stderr, when it ends, whether Node loaded that module.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import t from 'tap';

import { UNDICI_AT_EXIT, plainCommand } from '../../test/helpers/tools.ts';
import { MAIN } from './helpers/child.ts';
import { tempDir } from './lists/helpers.ts';

const UTIL_HTTP = pathToFileURL(join(MAIN, '..', 'util', 'http.js')).href;

/** Whether this Node's node:http has an export whose getter loads undici (an ES-module import reads them all). */
const httpHasUndiciGetters =
  Object.getOwnPropertyDescriptor(process.getBuiltinModule('node:http'), 'WebSocket')?.get !== undefined;

function run(args: string[]): { status: number | null; err: string } {
  const r = spawnSync(...plainCommand(process.execPath, args), { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, err: r.stderr };
}

t.test('an ES-module import of node:http loads undici where its getters do (the control)', (t) => {
  const file = join(tempDir(t, 'hw-util-http-'), 'import.mjs');
  writeFileSync(file, `${UNDICI_AT_EXIT}import { createServer } from 'node:http';\ncreateServer().close();\n`);
  const r = run([file]);
  t.equal(r.status, 0, r.err);
  t.match(r.err, new RegExp(`^undici loaded: ${httpHasUndiciGetters}$`, 'm'), `Node ${process.version}`);
  t.end();
});

t.test("util/http's createServer serves without loading undici", (t) => {
  const file = join(tempDir(t, 'hw-util-http-'), 'serve.mjs');
  writeFileSync(
    file,
    `${UNDICI_AT_EXIT}import { connect } from 'node:net';
import { createServer } from '${UTIL_HTTP}';
const server = createServer((req, res) => res.end('ok ' + req.url));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const socket = connect({ host: '127.0.0.1', port });
  let reply = '';
  socket.on('data', (d) => (reply += d));
  socket.on('end', () => {
    process.stderr.write('reply body: ' + reply.split('\\r\\n\\r\\n')[1] + '\\n');
    server.close();
  });
  socket.end('GET /x HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n');
});
`,
  );
  const r = run([file]);
  t.equal(r.status, 0, r.err);
  t.match(r.err, /^reply body: ok \/x$/m, 'the server answered over a real socket');
  t.match(r.err, /^undici loaded: false$/m);
  t.end();
});

t.test('the daemon loads every module of its start without undici', (t) => {
  const dir = tempDir(t, 'hw-util-http-');
  const preload = join(dir, 'at-exit.mjs');
  writeFileSync(preload, UNDICI_AT_EXIT);
  // A missing config ends the start at once (exit 2), after every module main.js imports was loaded and run: the
  // daemon imports none lazily.
  const r = run(['--import', preload, MAIN, '--config', join(dir, 'missing.yaml')]);
  t.equal(r.status, 2, 'a missing config stops the start (exit 2)');
  t.match(r.err, /^undici loaded: false$/m);
  t.end();
});
