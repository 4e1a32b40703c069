// The query path's own cost, without sockets: the built daemon's QueryPath is handed datagrams directly (the
// listener's handler, captured as startDaemon opens it) with a client whose reply() only counts. Run against the
// bench's data and upstream (nsd on 127.0.0.1:5330 must be up: the first pass fills the cache from it).
//
//   node bench/lib/query-path-bench.mjs [rounds]
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ListMatcher, parseFull, generateListKey } from '@hashwall/format';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', '..', 'daemon', 'dist');
const { Listener } = await import(join(dist, 'dns', 'listeners.js'));
const { startDaemon } = await import(join(dist, 'server.js'));
const { settingsFrom } = await import(join(dist, 'config', 'load.js'));
const { createLogger } = await import(join(dist, 'ops', 'log.js'));
const { StaticListProvider } = await import(join(dist, 'policy', 'lists.js'));
import { queryFor } from './proc.mjs';

const data = join(here, '..', 'work', 'data');
const release = JSON.parse(readFileSync(join(data, 'release.json'), 'utf8'));
const full = parseFull(readFileSync(join(release.release, 'full', '1.hwl')), { maxBytes: 256 * 1024 * 1024 });
const { parseListKey } = await import('@hashwall/format');
void parseListKey;
void generateListKey;
const { ListKey } = await import('@hashwall/format');
const lk = new ListKey(release.hashKey.id, Buffer.from(release.hashKey.key, 'hex'));
const matcher = new ListMatcher('bench', lk.hashKey(), full.entries.hashes, full.entries.kinds);

let handler = null;
const open = Listener.open;
Listener.open = (spec, h, ...rest) => {
  handler = h;
  return open.call(Listener, spec, h, ...rest);
};
const settings = settingsFrom(
  { listen: ['127.0.0.1:0'], upstreams: ['127.0.0.1:5330'], metrics: { listen: '' }, stateDir: '/tmp' },
  '/tmp',
);
const lists = new StaticListProvider([matcher]);
const daemon = await startDaemon(settings, { logger: createLogger({ level: 'warn' }), lists });

const lines = readFileSync(join(data, 'queries-sat.txt'), 'utf8').split('\n', 400_000).filter(Boolean);
const kinds = { hot: [], blocked: [], unique: [] };
for (const l of lines) {
  const name = l.split(' ')[0];
  const k = name.includes('.hot.') ? 'hot' : name.includes('.dyn.') ? 'unique' : 'blocked';
  kinds[k].push(queryFor(name, 0x1234));
}
let answered = 0;
const client = {
  transport: 'udp',
  address: '127.0.0.1',
  port: 40000,
  reply: () => void answered++,
  drop: () => void answered++,
};
// Fill the cache with every hot name (answers from nsd).
const seen = new Set();
const fill = kinds.hot.filter((m) => {
  const k = m.toString('latin1');
  return seen.has(k) ? false : (seen.add(k), true);
});
for (let i = 0; i < fill.length; i += 200) {
  for (const m of fill.slice(i, i + 200)) handler.handle(m, client);
  await new Promise((r) => setTimeout(r, 5));
}
await new Promise((r) => setTimeout(r, 500));
console.log(`cache: ${daemon.cacheSize()} entries`);
const rounds = Number(process.argv[2] ?? 5);
for (const [k, msgs] of Object.entries({ hot: kinds.hot, blocked: kinds.blocked })) {
  const out = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (const m of msgs) handler.handle(m, client);
    out.push(Number(process.hrtime.bigint() - t0) / msgs.length);
  }
  out.sort((a, b) => a - b);
  console.log(
    `${k}: ${msgs.length} queries, median ${out[out.length >> 1].toFixed(0)} ns/query (rounds: ${out.map((x) => x.toFixed(0)).join(' ')})`,
  );
}
await daemon.close();
