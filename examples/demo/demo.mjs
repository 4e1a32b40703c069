#!/usr/bin/env node
// `npm start`: hashwall end to end on this machine, with no network beyond loopback.
//
//   1. throwaway keys in a temporary work folder: a root key and a signing key (minisign), the list hash key, the
//      release log's key, and a witness's key;
//   2. keyring 1 (the signing key, signed by the root: SPEC.md 5), and a witness (hashwall-witness, the real one)
//      on 127.0.0.1 (a random port) that watches the demo's release log;
//   3. the list in examples/demo/source.txt built and published as a signed release, logged and cosigned by the
//      witness (SPEC.md 6), as a list maintainer does with hashwall-signer (its library, the same code as the CLI);
//   4. that release served over HTTP on 127.0.0.1 (a random port), as a mirror, with its keyring and its log;
//   5. a demo upstream DNS server for the reserved zones `example` and `test` on 127.0.0.1 (a random port);
//   6. a throwaway certificate authority and a certificate it signs for 127.0.0.1 (openssl), for DoT and DoH;
//   7. hashwalld (daemon/dist/main.js, the real daemon) on 127.0.0.1:5353 (UDP and TCP), DNS over TLS on
//      127.0.0.1:8853, DNS over HTTPS on 127.0.0.1:8443, metrics on 127.0.0.1:9153 and the stop page on
//      127.0.0.1:8053, with examples/demo/hashwalld.yaml: anchored on the root key, checking every index against the
//      log and the witness;
//   8. what to try, once /readyz says the daemon is ready. Ctrl-C (SIGINT) or SIGTERM stops everything and removes
//      the work folder (the certificates with it).
//
// Ports: HASHWALL_DEMO_DNS_PORT, HASHWALL_DEMO_DOT_PORT, HASHWALL_DEMO_DOH_PORT, HASHWALL_DEMO_METRICS_PORT and
// HASHWALL_DEMO_STOP_PAGE_PORT override 5353, 8853, 8443, 9153 and 8053. Taken ports are reported before anything
// starts.
import { execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// hashwalld as it ships: the node flags and environment of the `hashwalld` command's first line.
import { daemonEnv, shippedFlags } from '../../bench/lib/shipped.mjs';
import { buildDemoFull, get, makeCertificates, serveRelease } from './parts.mjs';
import { startUpstream } from './upstream.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const DAEMON = join(root, 'daemon', 'dist', 'main.js');
const SIGNER = join(root, 'signer', 'dist', 'index.js');
const FORMAT = join(root, 'blocklist-format', 'dist', 'index.js');
const WITNESS = join(root, 'witness', 'dist', 'cli.js');
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
            'Stop it, or choose other ports with HASHWALL_DEMO_DNS_PORT, HASHWALL_DEMO_METRICS_PORT, HASHWALL_DEMO_STOP_PAGE_PORT',
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

/** Runs a command to its end: its stdout (and stderr), or a failure of the demo. */
function run(cmd, args) {
  return new Promise((done) => {
    execFile(cmd, args, { timeout: 20000 }, (err, stdout, stderr) => {
      if (err) fail(`${args.join(' ')}: ${stderr || err.message}`);
      done(`${stdout}${stderr}`);
    });
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
  if (!existsSync(DAEMON) || !existsSync(SIGNER) || !existsSync(WITNESS))
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
  const format = await import(FORMAT);
  const work = mkdtempSync(join(tmpdir(), 'hashwall-demo-'));
  const running = { release: null, upstream: null, daemon: null, witness: null };
  let stopping = false;
  const cleanup = async () => {
    running.release?.closeAllConnections();
    await new Promise((done) => (running.release ? running.release.close(() => done()) : done()));
    await running.upstream?.close();
    const w = running.witness;
    if (w !== null && w.exitCode === null && w.signalCode === null) {
      const gone = new Promise((done) => w.once('exit', done));
      w.kill('SIGTERM');
      const timer = setTimeout(() => w.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
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
    // 1. Keys, as `hashwall-signer keygen` writes them (throwaway: no password, deleted at the end).
    const io = signer.processIo();
    const pair = await signer.writeSigningKeyPair(join(work, 'demo-signer'), undefined, false);
    const rootPair = await signer.writeSigningKeyPair(join(work, 'demo-root'), undefined, false);
    const listKeyFile = join(work, 'demo.listkey');
    await signer.writeListKey(listKeyFile, 'demo-key', false);
    const secretKey = await signer.loadSecretKey(pair.secretPath, undefined, io);
    const rootKey = await signer.loadSecretKey(rootPair.secretPath, undefined, io);
    const listKey = await signer.loadListKey(listKeyFile, io);
    const logKey = await signer.writeLogKey(join(work, 'log'), 'demo.test/demo', false);
    const witnessKey = await run(process.execPath, [
      WITNESS,
      'keygen',
      '--name',
      'witness.demo.test/w1',
      '--out',
      join(work, 'w.key'),
    ]);
    const cosigner = /cosigner key: (\S+)/.exec(witnessKey)?.[1];
    if (cosigner === undefined) fail(`hashwall-witness keygen: ${witnessKey}`);

    // 2. Keyring 1 (keyring init, sign by the root holder, publish), and the witness.
    const now = Math.floor(Date.now() / 1000);
    const releaseDir = join(work, 'release');
    const keyring = signer.draftKeyring({
      listId: 'demo',
      version: 1,
      roots: [rootKey.publicKey],
      rootThreshold: 1,
      signKeys: [secretKey.publicKey],
      signThreshold: 1,
      created: now - 60,
    });
    const keyringBytes = format.serializeKeyring(keyring);
    const rootSignature = format.sign(keyringBytes, rootKey, format.keyringTrustedComment(keyring.header));
    await signer.addKeyring(releaseDir, { bytes: keyringBytes, signatures: [Buffer.from(rootSignature)] }, now);
    writeFileSync(
      join(work, 'witness.yaml'),
      `listen: 127.0.0.1:0\nkey: w.key\nstateDir: witness-state\nlogs:\n  - origin: demo.test/demo\n    keys: ['${logKey.vkey}']\n`,
    );
    running.witness = spawn(process.execPath, [WITNESS, 'serve', '--config', join(work, 'witness.yaml')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const witnessPort = await new Promise((done, reject) => {
      const timer = setTimeout(() => reject(new Error('hashwall-witness did not listen within 20 s')), 20000);
      createInterface({ input: running.witness.stdout }).on('line', (line) => {
        try {
          const o = JSON.parse(line);
          if (o.msg === 'listening') {
            clearTimeout(timer);
            done(o.port);
          }
        } catch {
          // not a log line
        }
      });
      running.witness.once('exit', (code) => reject(new Error(`hashwall-witness exited (${code})`)));
    });
    const logYaml = join(work, 'log.yaml');
    writeFileSync(
      logYaml,
      `key: log.skey\nwitnesses:\n  - url: http://127.0.0.1:${witnessPort}/\n    key: ${cosigner}\nthreshold: 1\n`,
    );
    const log = await signer.loadLogConfig(logYaml, io);
    say(
      `demo: keyring 1 signed by root ${rootPair.keyId}; witness ${cosigner.split('+')[0]} on 127.0.0.1:${witnessPort}`,
    );

    // 3. Build and publish, as `hashwall-signer build` and `publish --log` do: logged, cosigned, then visible.
    const built = buildDemoFull(signer, listKey, now);
    const c = built.counts;
    const publishWith = (o) =>
      signer.publish({
        dir: releaseDir,
        signers: [secretKey],
        now,
        minPollSeconds: 60,
        log,
        ...o,
        warn: (m) => say(`signer: ${m}`),
      });
    const report = await publishWith({ fullBytes: built.bytes });
    say(
      `demo: built and signed list "demo" serial ${report.serial} (D ${c.D}, H ${c.H}, U ${c.U}, P ${c.P}) ` +
        `with key ${pair.keyId} under keyring 1, published as seq ${report.seq}, logged as leaf ` +
        `${report.log?.logIndex} and cosigned by ${report.log?.cosigners.join(', ')}`,
    );

    // 4. The mirror, 5. the upstream.
    running.release = await serveRelease(releaseDir);
    const mirror = `http://127.0.0.1:${running.release.address().port}/demo/`;
    running.upstream = await startUpstream();
    say(`demo: mirror ${mirror}, demo upstream DNS 127.0.0.1:${running.upstream.port}`);

    // 6. The certificates, 7. the daemon, with the demo config filled in.
    const tls = await makeCertificates(work);
    const doc = parseDocument(readFileSync(join(here, 'hashwalld.yaml'), 'utf8'));
    doc.setIn(['listen'], [`127.0.0.1:${dnsPort}`]);
    doc.setIn(['dot', 'listen'], [`127.0.0.1:${dotPort}`]);
    doc.setIn(['doh', 'listen'], [`127.0.0.1:${dohPort}`]);
    doc.setIn(['tls', 'certFile'], tls.cert);
    doc.setIn(['tls', 'keyFile'], tls.key);
    doc.setIn(['upstreams'], [`127.0.0.1:${running.upstream.port}`]);
    doc.setIn(['lists', 0, 'mirrors'], [mirror]);
    doc.setIn(['lists', 0, 'rootKeyFiles'], [rootPair.publicPath]);
    doc.setIn(['lists', 0, 'log', 'key'], logKey.vkey);
    doc.setIn(['lists', 0, 'log', 'witnesses'], [cosigner]);
    doc.setIn(['lists', 0, 'hashKeyFile'], listKeyFile);
    doc.setIn(['stateDir'], join(work, 'state'));
    doc.setIn(['metrics', 'listen'], `127.0.0.1:${metricsPort}`);
    doc.setIn(['stopPage', 'listen'], [`127.0.0.1:${stopPagePort}`]);
    const config = join(work, 'hashwalld.yaml');
    writeFileSync(config, doc.toString());
    const daemon = spawn(process.execPath, [...shippedFlags, DAEMON, '--config', config], {
      env: daemonEnv(),
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

    // 8. Ready?
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
      [`curl -s ${m}/metrics | grep -E '^hashwall_list_(keyring|log)'`, 'keyring 1, and the log checkpoint accepted'],
      [`kill -USR1 ${running.daemon.pid}`, 'poll the list now (SPEC.md 4.6)'],
      [`curl -s ${m}/readyz`, 'ready, and why'],
      [`curl -s -H 'Host: blocked.example' http://127.0.0.1:${stopPagePort}/`, 'the stop page'],
      [`curl -s ${m}/hit-report`, 'hits per listed entry, hourly (404 until the first full hour)'],
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
