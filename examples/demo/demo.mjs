#!/usr/bin/env node
// `npm start`: hashwall end to end on this machine, with no network beyond loopback.
//
//   1. throwaway keys (a minisign signing key pair and a list hash key) in a temporary work folder;
//   2. the list in examples/demo/source.txt built and published as a signed release, as a list maintainer does
//      with hashwall-signer (its library, the same code as the CLI);
//   3. that release served over HTTP on 127.0.0.1 (a random port), as a mirror;
//   4. a demo upstream DNS server for the reserved zones `example` and `test` on 127.0.0.1 (a random port);
//   5. a throwaway certificate authority and a certificate it signs for 127.0.0.1 (openssl), for DoT and DoH;
//   6. hashwalld (daemon/dist/main.js, the real daemon) on 127.0.0.1:5353 (UDP and TCP), DNS over TLS on
//      127.0.0.1:8853, DNS over HTTPS on 127.0.0.1:8443, metrics on 127.0.0.1:9153 and the stop page on
//      127.0.0.1:8053, with examples/demo/hashwalld.yaml;
//   7. what to try, once /readyz says the daemon is ready. Ctrl-C (SIGINT) or SIGTERM stops everything and removes
//      the work folder (the certificates with it).
//
// Ports: HASHWALL_DEMO_DNS_PORT, HASHWALL_DEMO_DOT_PORT, HASHWALL_DEMO_DOH_PORT, HASHWALL_DEMO_METRICS_PORT and
// HASHWALL_DEMO_STOP_PAGE_PORT override 5353, 8853, 8443, 9153 and 8053. Taken ports are reported before anything
// starts.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { buildRelease, get, makeCertificates, serveRelease } from './parts.mjs';
import { startUpstream } from './upstream.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const DAEMON = join(root, 'daemon', 'dist', 'main.js');
const SIGNER = join(root, 'signer', 'dist', 'index.js');
// The YAML library the daemon itself uses, found from the daemon's package (the demo declares no dependency).
const { parseDocument } = createRequire(join(root, 'daemon', 'package.json'))('yaml');

const port = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(`${name}=${v} is not a port number`);
  return n;
};

function say(line = '') {
  process.stdout.write(`${line}\n`);
}

function fail(message) {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(1);
}

/** Resolves when `what` can bind 127.0.0.1:port, rejects with a clear message otherwise. */
function checkFree(kind, p, what) {
  return new Promise((resolvePort, reject) => {
    const busy = (err) =>
      reject(
        new Error(
          `127.0.0.1:${p} (${kind}, ${what}) is not free: ${err.code === 'EADDRINUSE' ? 'another process listens there' : err.message}. ` +
            'Stop it, or choose other ports with HASHWALL_DEMO_DNS_PORT, HASHWALL_DEMO_DOT_PORT, HASHWALL_DEMO_DOH_PORT, ' +
            'HASHWALL_DEMO_METRICS_PORT, HASHWALL_DEMO_STOP_PAGE_PORT',
        ),
      );
    if (kind === 'udp') {
      const s = createSocket('udp4');
      s.once('error', busy);
      s.bind(p, '127.0.0.1', () => s.close(() => resolvePort()));
    } else {
      const s = createTcpServer();
      s.once('error', busy);
      s.listen({ port: p, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolvePort()));
    }
  });
}

/** One daemon log line (JSON) in a short human form. */
function showLog(line) {
  let o;
  try {
    o = JSON.parse(line);
  } catch {
    say(`hashwalld | ${line}`);
    return;
  }
  const skip = new Set(['level', 'time', 'name', 'msg', 'config', 'pid', 'hostname']);
  const extra = Object.entries(o)
    .filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  say(`hashwalld | ${String(o.level).padEnd(5)} ${o.msg}${extra ? `  (${extra})` : ''}`);
}

async function main() {
  if (!existsSync(DAEMON) || !existsSync(SIGNER))
    fail('the packages are not built: run `npm install` (or `npx tsc -b`)');
  const dnsPort = port('HASHWALL_DEMO_DNS_PORT', 5353);
  const dotPort = port('HASHWALL_DEMO_DOT_PORT', 8853);
  const dohPort = port('HASHWALL_DEMO_DOH_PORT', 8443);
  const metricsPort = port('HASHWALL_DEMO_METRICS_PORT', 9153);
  const stopPagePort = port('HASHWALL_DEMO_STOP_PAGE_PORT', 8053);
  try {
    await checkFree('udp', dnsPort, 'DNS');
    await checkFree('tcp', dnsPort, 'DNS');
    await checkFree('tcp', dotPort, 'DNS over TLS');
    await checkFree('tcp', dohPort, 'DNS over HTTPS');
    await checkFree('tcp', metricsPort, 'metrics');
    await checkFree('tcp', stopPagePort, 'stop page');
  } catch (err) {
    fail(err.message);
  }

  const signer = await import(SIGNER);
  const work = mkdtempSync(join(tmpdir(), 'hashwall-demo-'));
  const running = { release: null, upstream: null, daemon: null };
  let stopping = false;
  const cleanup = async () => {
    running.release?.closeAllConnections();
    await new Promise((done) => (running.release ? running.release.close(() => done()) : done()));
    await running.upstream?.close();
    rmSync(work, { recursive: true, force: true });
  };
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    say(`\ndemo: ${signal}: stopping hashwalld and the demo servers`);
    const d = running.daemon;
    let code = 0;
    if (d !== null && d.exitCode === null && d.signalCode === null) {
      const exited = new Promise((done) => d.once('exit', (c, s) => done(c ?? (s ? 1 : 0))));
      d.kill('SIGTERM');
      const timer = setTimeout(() => d.kill('SIGKILL'), 10000);
      code = await exited;
      clearTimeout(timer);
    }
    await cleanup();
    say(code === 0 ? 'demo: stopped' : `demo: hashwalld exited with ${code}`);
    process.exit(code === 0 ? 0 : 1);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  try {
    // 1. Keys, 2. the list built and published (examples/demo/parts.mjs).
    const { releaseDir, pair, listKeyFile } = await buildRelease(work, signer, say);

    // 3. The mirror, 4. the upstream.
    running.release = await serveRelease(releaseDir);
    const mirror = `http://127.0.0.1:${running.release.address().port}/demo/`;
    running.upstream = await startUpstream();
    say(`demo: mirror ${mirror}, demo upstream DNS 127.0.0.1:${running.upstream.port}`);

    // 5. The certificates, 6. the daemon, with the demo config filled in.
    const tls = await makeCertificates(work);
    const doc = parseDocument(readFileSync(join(here, 'hashwalld.yaml'), 'utf8'));
    doc.setIn(['listen'], [`127.0.0.1:${dnsPort}`]);
    doc.setIn(['dot', 'listen'], [`127.0.0.1:${dotPort}`]);
    doc.setIn(['doh', 'listen'], [`127.0.0.1:${dohPort}`]);
    doc.setIn(['tls', 'certFile'], tls.cert);
    doc.setIn(['tls', 'keyFile'], tls.key);
    doc.setIn(['upstreams'], [`127.0.0.1:${running.upstream.port}`]);
    doc.setIn(['lists', 0, 'mirrors'], [mirror]);
    doc.setIn(['lists', 0, 'keyFiles'], [pair.publicPath]);
    doc.setIn(['lists', 0, 'hashKeyFile'], listKeyFile);
    doc.setIn(['stateDir'], join(work, 'state'));
    doc.setIn(['metrics', 'listen'], `127.0.0.1:${metricsPort}`);
    doc.setIn(['stopPage', 'listen'], [`127.0.0.1:${stopPagePort}`]);
    const config = join(work, 'hashwalld.yaml');
    writeFileSync(config, doc.toString());
    const daemon = spawn(process.execPath, ['--max-semi-space-size=4', DAEMON, '--config', config], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    running.daemon = daemon;
    createInterface({ input: daemon.stdout }).on('line', showLog);
    daemon.once('exit', (code, signal) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`demo: hashwalld exited (${signal ?? code}) before the demo was stopped\n`);
      void cleanup().then(() => process.exit(1));
    });

    // 7. Ready?
    const deadline = Date.now() + 30000;
    for (;;) {
      const r = await get(metricsPort, '/readyz');
      if (r?.status === 200) break;
      if (stopping) return;
      if (Date.now() > deadline) {
        process.stderr.write(`demo: hashwalld is not ready after 30 s: ${r?.body ?? 'no answer'}\n`);
        return stop('timeout');
      }
      await new Promise((done) => setTimeout(done, 200));
    }
    const p = dnsPort === 53 ? '' : ` -p ${dnsPort}`;
    const m = `http://127.0.0.1:${metricsPort}`;
    const tries = [
      [`dig @127.0.0.1${p} blocked.example`, 'blocked: NXDOMAIN, EDE 16 (Censored) "list demo"'],
      [`dig @127.0.0.1${p} www.blocked.example`, 'and every name below a D entry'],
      [`dig @127.0.0.1${p} exact-host.example`, 'an H entry blocks that name only;'],
      [`dig @127.0.0.1${p} www.exact-host.example`, 'this one passes'],
      [`dig @127.0.0.1${p} allowed.example`, 'passes: the demo upstream answers 192.0.2.1'],
      [`kdig @127.0.0.1${p} +edns abuse.test`, 'kdig prints the extended DNS error'],
      [`CA=${tls.ca}`, "the demo's throwaway CA, for the next three"],
      [`kdig @127.0.0.1 -p ${dotPort} +tls +tls-ca=$CA +edns blocked.example`, 'the block over TLS (RFC 7858)'],
      [`kdig @127.0.0.1 -p ${dohPort} +https +tls-ca=$CA +edns blocked.example`, 'and over HTTPS (RFC 8484)'],
      [
        `curl --doh-url https://127.0.0.1:${dohPort}/dns-query --cacert $CA http://blocked.example/`,
        'curl: no such host',
      ],
      [`curl -s ${m}/metrics | grep '^hashwall_'`, 'the metrics'],
      [`curl -s ${m}/readyz`, 'ready, and why'],
      [`curl -s -H 'Host: blocked.example' http://127.0.0.1:${stopPagePort}/`, 'the stop page'],
      [`curl -s ${m}/hit-report`, 'hits per listed entry, every minute'],
    ];
    const width = Math.max(...tries.map(([cmd]) => cmd.length));
    say('');
    say('hashwall demo ready. Try (Ctrl-C stops everything):');
    say('');
    for (const [cmd, what] of tries) say(`  ${cmd.padEnd(width)}   # ${what}`);
    say('');
  } catch (err) {
    process.stderr.write(`demo: ${err.stack ?? err}\n`);
    if (!stopping) {
      stopping = true;
      running.daemon?.kill('SIGTERM');
      await cleanup();
    }
    process.exit(1);
  }
}

await main();
