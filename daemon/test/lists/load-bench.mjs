// The list sync's load benchmark: how long the query thread stalls while a 1,000,000-entry list is downloaded,
// verified, committed and swapped in, and while it is re-opened from the state directory at a restart; and whether
// DNS queries keep being answered meanwhile.
//
//   npx tsc -b && node daemon/test/lists/load-bench.mjs [entries]
//
// The stall is perf_hooks.monitorEventLoopDelay's maximum (1 ms resolution) over the load, cross-checked by the
// longest gap between 1 ms timer ticks. A UDP client asks the daemon's query path (server.ts) for a blocked name
// every 5 ms during each load and reports the slowest answer.
import { randomBytes, randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

import { buildRelease, generateKeyPair, generateListKey, makeFull, publicKeyToString } from '@hashwall/format';

import { settingsFrom } from '../../dist/config/load.js';
import { ListRegistry } from '../../dist/lists/registry.js';
import { createLogger } from '../../dist/util/log.js';
import { ListMatcher } from '@hashwall/format';
import { startDaemon } from '../../dist/daemon.js';

const N = Number(process.argv[2] ?? 1_000_000);
const KINDS = [0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x48, 0x48, 0x55, 0x50]; // D, H, U, P mix

function entries(listKey, count) {
  // Random hashes, sorted bytewise, plus the hash of one known name (so a DNS query can hit).
  const raw = randomBytes(count * 32);
  listKey
    .hashKey()
    .hash('listed.example')
    .forEach((b, i) => (raw[i] = b));
  const views = [];
  for (let i = 0; i < count; i++) views.push(raw.subarray(i * 32, i * 32 + 32));
  views.sort(Buffer.compare);
  const hashes = Buffer.concat(views);
  const kinds = new Uint8Array(count);
  for (let i = 0; i < count; i++) kinds[i] = KINDS[randomInt(KINDS.length)];
  const known = views.findIndex((v) => v.equals(listKey.hashKey().hash('listed.example')));
  kinds[known] = 0x44;
  return { count, hashes, kinds };
}

/** Runs `fn` with the event-loop monitors and a DNS prober on; returns the figures. */
async function measured(port, fn) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let maxGap = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 1);
  const sock = createSocket('udp4');
  const sent = new Map();
  let answered = 0;
  let slowest = 0;
  sock.on('message', (msg) => {
    const t0 = sent.get(msg.readUInt16BE(0));
    if (t0 === undefined) return;
    sent.delete(msg.readUInt16BE(0));
    answered++;
    slowest = Math.max(slowest, performance.now() - t0);
  });
  let id = 0;
  const q = (n) => {
    const name = Buffer.concat([
      Buffer.from([6]),
      Buffer.from('listed'),
      Buffer.from([7]),
      Buffer.from('example'),
      Buffer.from([0]),
    ]);
    const h12 = Buffer.alloc(12);
    h12.writeUInt16BE(n, 0);
    h12[2] = 1;
    h12.writeUInt16BE(1, 4);
    return Buffer.concat([h12, name, Buffer.from([0, 1, 0, 1])]);
  };
  const prober = setInterval(() => {
    id = (id + 1) & 0xffff;
    sent.set(id, performance.now());
    sock.send(q(id), port, '127.0.0.1');
  }, 5);
  h.enable();
  const t0 = performance.now();
  const result = await fn();
  const ms = performance.now() - t0;
  // Let the timers run once more: a stall that ends just before fn resolves is only seen by the next tick.
  await new Promise((r) => setTimeout(r, 150));
  h.disable();
  clearInterval(tick);
  clearInterval(prober);
  await new Promise((r) => setTimeout(r, 50));
  sock.close();
  return {
    result,
    seconds: (ms / 1000).toFixed(2),
    maxStallMs: (h.max / 1e6).toFixed(1),
    p99StallMs: (h.percentile(99) / 1e6).toFixed(1),
    maxTimerGapMs: maxGap.toFixed(1),
    queriesSent: answered + sent.size,
    queriesAnswered: answered,
    slowestAnswerMs: slowest.toFixed(1),
  };
}

const root = mkdtempSync(join(tmpdir(), 'hw-load-bench-'));
try {
  const key = generateKeyPair();
  const listKey = generateListKey('bench-2026a');
  const now = Math.floor(Date.now() / 1000);
  let t = performance.now();
  const full = makeFull(
    {
      listId: 'bench',
      serial: 1,
      created: now - 60,
      expires: now + 7 * 86400,
      hashKey: { mode: 'licensed', id: listKey.id },
      extensions: [],
    },
    entries(listKey, N),
  );
  const { files } = buildRelease({
    full,
    bases: [],
    seq: 1,
    created: now - 60,
    expires: now + 86400,
    minPoll: 900,
    signers: [key],
  });
  const rel = join(root, 'release');
  for (const [path, bytes] of files) {
    mkdirSync(dirname(join(rel, path)), { recursive: true });
    writeFileSync(join(rel, path), bytes);
  }
  const fullSize = files.get('full/1.hwl').length;
  console.log(
    `built and signed a ${N}-entry FULL (${(fullSize / 1048576).toFixed(1)} MiB) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );

  const raw = {
    listen: ['127.0.0.1:0'],
    upstreams: ['127.0.0.1:9'],
    upstream: { timeoutMs: 100, maxTries: 1 },
    stateDir: join(root, 'state'),
    lists: [
      {
        id: 'bench',
        mirrors: [pathToFileURL(rel).href + '/'],
        keys: [publicKeyToString(key.publicKey)],
        hashKey: { id: listKey.id, key: listKey.keyHex() },
        schedule: '0 0 1 1 *',
        maxListBytes: 256 * 1024 * 1024,
        onStartWithoutList: 'serve-unfiltered',
      },
    ],
  };
  // An upstream that answers NXDOMAIN at once, so that names not (yet) blocked are answered quickly too.
  const upstream = createSocket('udp4');
  upstream.on('message', (msg, from) => {
    const out = Buffer.from(msg);
    out[2] |= 0x80;
    out[3] = (out[3] & 0xf0) | 3;
    upstream.send(out, from.port, from.address);
  });
  await new Promise((r) => upstream.bind(0, '127.0.0.1', r));
  raw.upstreams = [`127.0.0.1:${upstream.address().port}`];
  const settings = settingsFrom(raw, root);
  const logger = createLogger({ level: 'warn' });

  for (const phase of ['download', 'restart']) {
    const lists = new ListRegistry(settings, { logger });
    const daemon = await startDaemon(settings, { logger, lists });
    const port = daemon.addresses.udp[0].port;
    await new Promise((r) => setTimeout(r, 300));
    const figures = await measured(port, async () => {
      await lists.start();
      return lists.pollNow('bench');
    });
    const s = lists.stats()[0];
    console.log(
      JSON.stringify({
        phase,
        origin: s.origin,
        outcome: figures.result,
        entries: s.entries,
        ...figures,
        result: undefined,
      }),
    );
    await daemon.close();
    await lists.close();
  }
  upstream.close();
  // What the list's worker does before handing a list over: building the matcher's arrays (prepareMatcher).
  const builds = [];
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const t1 = performance.now();
    new ListMatcher('bench', listKey.hashKey(), full.entries.hashes, full.entries.kinds);
    builds.push((performance.now() - t1).toFixed(1));
  }
  console.log(JSON.stringify({ matcherBuildMsInWorker: builds }));
} finally {
  rmSync(root, { recursive: true, force: true });
}
