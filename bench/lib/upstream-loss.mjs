// Upstream health under partial loss: hashwalld forwarding to an upstream that drops a share of its answers at
// random (seeded), under a steady load of names never asked before (every query goes upstream). It counts how often
// the daemon marks the upstream down (hashwall_upstream_marked_down_total, and the log lines that say so), the
// warn lines it writes, and what the clients got. Everything on 127.0.0.1; the daemon is started here and stopped
// by its PID.
//
//   node bench/lib/upstream-loss.mjs [--daemon=daemon/dist/main.js] [--loss=0.3] [--qps=2000] [--seconds=20]
//
// --daemon takes another build's main.js, to compare (the field test's figure: 30% lost at 2,000 q/s for 20 s).
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { seeded } from './data.mjs';
import { daemonEnv, shippedFlags } from './shipped.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const opts = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v = 'true'] = a.replace(/^--/, '').split('=');
    return [k, v];
  }),
);
const daemonMain = resolve(opts.daemon ?? join(here, '..', '..', 'daemon', 'dist', 'main.js'));
const loss = Number(opts.loss ?? 0.3);
const qps = Number(opts.qps ?? 2000);
const seconds = Number(opts.seconds ?? 20);
const seed = Number(opts.seed ?? 1);

// The bench's seeded generator (data.mjs): the same drops for every run with the same seed.
const random = seeded(seed);

/** Header and question of `msg` with QR and RA set, and one A record (192.0.2.1) for an A question. */
function answer(msg) {
  let p = 12;
  while (p < msg.length && msg[p] !== 0) p += msg[p] + 1;
  const qEnd = p + 5;
  if (qEnd > msg.length) return null;
  const isA = msg.readUInt16BE(p + 1) === 1;
  const out = Buffer.alloc(qEnd + (isA ? 16 : 0));
  msg.copy(out, 0, 0, qEnd);
  out[2] = 0x81 | (msg[2] & 0x01);
  out[3] = 0x80;
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(isA ? 1 : 0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  if (isA) {
    out.set([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1], qEnd);
  }
  return out;
}

const upstream = createSocket('udp4');
let upstreamQueries = 0;
let dropped = 0;
upstream.on('message', (msg, rinfo) => {
  upstreamQueries++;
  if (random() < loss) {
    dropped++;
    return;
  }
  const out = answer(msg);
  if (out !== null) upstream.send(out, rinfo.port, rinfo.address);
});
await new Promise((r) => upstream.bind(0, '127.0.0.1', r));

// The metrics port: one the kernel gave and let go of (a bench run, not a test: another process taking it in the
// meantime only makes the daemon fail to start, loudly).
const metricsPort = await new Promise((r) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => r(port));
  });
});
const dir = mkdtempSync(join(tmpdir(), 'hw-loss-'));
const config = join(dir, 'hashwalld.yaml');
writeFileSync(
  config,
  [
    `listen: ['127.0.0.1:0']`,
    `upstreams: ['127.0.0.1:${upstream.address().port}']`,
    `metrics: { listen: '127.0.0.1:${metricsPort}', processMetrics: false }`,
    `stateDir: '${join(dir, 'state')}'`,
    `logging: { level: info }`,
    '',
  ].join('\n'),
);

const proc = spawn(process.execPath, [...shippedFlags, daemonMain, '--config', config], {
  env: daemonEnv(),
  stdio: ['ignore', 'pipe', 'inherit'],
});
const lines = [];
let dnsPort = 0;
const ready = new Promise((resolveReady) => {
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let l;
    try {
      l = JSON.parse(line);
    } catch {
      return;
    }
    l.seenAt = performance.now();
    lines.push(l);
    if (l.msg === 'listening for DNS') {
      dnsPort = l.addresses.udp[0].port;
      resolveReady();
    }
  });
});
const stopDaemon = () => {
  try {
    proc.kill('SIGTERM');
  } catch {
    // gone
  }
};
process.on('exit', stopDaemon);
await Promise.race([
  ready,
  new Promise((_, rej) => setTimeout(() => rej(new Error('the daemon did not start')), 30_000)),
]);

function metrics() {
  return new Promise((res, rej) => {
    get({ host: '127.0.0.1', port: metricsPort, path: '/metrics', timeout: 10_000 }, (r) => {
      let body = '';
      r.on('data', (c) => (body += c));
      r.on('end', () => res(body));
    }).on('error', rej);
  });
}
const sample = (text, name) => {
  let n = 0;
  for (const l of text.split('\n')) if (l.startsWith(name)) n += Number(l.split(' ').at(-1));
  return n;
};

const sockets = [];
const byRcode = new Map();
let sent = 0;
let answered = 0;
for (let i = 0; i < 8; i++) {
  const s = createSocket('udp4');
  s.on('message', (m) => {
    answered++;
    const rc = m[3] & 15;
    byRcode.set(rc, (byRcode.get(rc) ?? 0) + 1);
  });
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  sockets.push(s);
}
function query(n) {
  const name = `q${n}-${seed}.loss.test`;
  const parts = [Buffer.from([(n >> 8) & 255, n & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of name.split('.')) parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'));
  parts.push(Buffer.from([0, 0, 1, 0, 1]));
  return Buffer.concat(parts);
}

const linesBefore = lines.length;
const start = performance.now();
const total = qps * seconds;
await new Promise((done) => {
  const tick = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * qps));
    while (sent < due) {
      sockets[sent % sockets.length].send(query(sent), dnsPort, '127.0.0.1');
      sent++;
    }
    if (sent >= total) {
      clearInterval(tick);
      done();
    }
  }, 5);
});
const loadSeconds = (performance.now() - start) / 1000;
// Every query ends within maxTries x timeoutMs (3 x 1.5 s by default).
await new Promise((r) => setTimeout(r, 6000));

const during = lines.slice(linesBefore);
const text = await metrics();
const result = {
  daemon: daemonMain,
  loss,
  qps,
  seconds,
  loadSeconds: Number(loadSeconds.toFixed(1)),
  sent,
  answered,
  byRcode: Object.fromEntries(byRcode),
  upstreamQueries,
  dropped,
  markedDown: sample(text, 'hashwall_upstream_marked_down_total'),
  downLines: during.filter((l) => /marked down/.test(l.msg)).length,
  // When the first few were logged, in seconds from the start of the load (it ends at `seconds`).
  downAtSeconds: during
    .filter((l) => /marked down/.test(l.msg))
    .slice(0, 5)
    .map((l) => Number(((l.seenAt - start) / 1000).toFixed(1))),
  upLines: during.filter((l) => l.msg === 'upstream answers again').length,
  warnLines: during.filter((l) => l.level === 'warn' || l.level === 40).length,
  errorLines: during.filter((l) => l.level === 'error' || l.level === 50).length,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
stopDaemon();
await new Promise((r) => proc.on('exit', r));
upstream.close();
for (const s of sockets) s.close();
rmSync(dir, { recursive: true, force: true });
