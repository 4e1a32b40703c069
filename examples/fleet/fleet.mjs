#!/usr/bin/env node
// The fleet recipe on one machine (examples/fleet/README.md): Debian's dnsdist in front of hashwalld nodes on
// 127.0.0.1, with the demo's signed list and upstream.
//
//   node examples/fleet/fleet.mjs        run it, print what to try; Ctrl-C stops everything
//
// dnsdist (examples/fleet/dnsdist.conf, its values given through the environment) terminates DoT and DoH, passes
// UDP and TCP, spreads the queries over the nodes and sends each client's address with the PROXY protocol v2;
// each node (examples/fleet/hashwalld-node.yaml) trusts dnsdist's headers and lets in one client address
// (127.0.0.10) and dnsdist itself, so a query from 127.0.0.11 is refused by the node that answers it. Every port is
// the kernel's pick. startFleet() is what test/fleet.test.ts runs.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// hashwalld as it ships: the node flags and environment of the `hashwalld` command's first line.
import { daemonEnv, shippedFlags } from '../../bench/lib/shipped.mjs';
import { buildRelease, get, makeCertificates, serveRelease } from '../demo/parts.mjs';
import { startUpstream } from '../demo/upstream.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const DAEMON = join(root, 'daemon', 'dist', 'main.js');
const SIGNER = join(root, 'signer', 'dist', 'index.js');
const { parseDocument } = createRequire(join(root, 'daemon', 'package.json'))('yaml');

/** The client address the nodes let in; any other (127.0.0.11, say) is refused by them. */
export const CLIENT = '127.0.0.10';
export const OTHER_CLIENT = '127.0.0.11';

/** A TCP port free on 127.0.0.1 now (dnsdist binds its own: it cannot be handed a socket). */
function freePort() {
  return new Promise((done, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
}

/** GET the dnsdist web API's `path` with the key: the parsed JSON, or null. */
function api(port, key, path) {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { 'x-api-key': key }, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        try {
          done(res.statusCode === 200 ? JSON.parse(body) : null);
        } catch {
          done(null);
        }
      });
      res.on('error', () => done(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(null));
    req.end();
  });
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** Starts one hashwalld node with `configFile`; resolves once it listens, with its DNS and metrics ports. */
function startNode(name, configFile) {
  const proc = spawn(process.execPath, [...shippedFlags, DAEMON, '--config', configFile], {
    env: daemonEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  let stderr = '';
  proc.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise((done) => proc.once('exit', (code, signal) => done(code ?? signal)));
  return new Promise((done, reject) => {
    let dnsPort = 0;
    let metricsPort = 0;
    createInterface({ input: proc.stdout }).on('line', (line) => {
      let o;
      try {
        o = JSON.parse(line);
      } catch {
        return;
      }
      lines.push(o);
      if (o.msg === 'serving /metrics, /healthz and /readyz') metricsPort = Number(/:(\d+)$/.exec(o.address)?.[1]);
      if (o.msg === 'listening for DNS') {
        dnsPort = o.addresses.udp[0].port;
        done({ name, proc, pid: proc.pid, dnsPort, metricsPort, lines, exited });
      }
    });
    void exited.then((code) => reject(new Error(`${name} exited (${code}) before it listened: ${stderr}`)));
  });
}

/**
 * Starts the fleet: `nodes` ready hashwalld nodes and `notReady` more whose list never arrives (a mirror that
 * answers 404, onStartWithoutList: refuse: REFUSED, /readyz 503), and dnsdist in front of all of them. Resolves once
 * dnsdist marks each ready node up and each other one down (at most `timeoutMs`).
 */
export async function startFleet({ nodes = 2, notReady = 0, say = () => undefined, timeoutMs = 60000 } = {}) {
  const signer = await import(SIGNER);
  const work = mkdtempSync(join(tmpdir(), 'hashwall-fleet-'));
  const running = { release: null, upstream: null, nodes: [], dnsdist: null };
  const stop = async () => {
    const procs = [running.dnsdist, ...running.nodes.map((n) => n.proc)].filter((p) => p !== null);
    await Promise.all(
      procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const gone = new Promise((done) => p.once('exit', done));
        p.kill('SIGTERM');
        const timer = setTimeout(() => p.kill('SIGKILL'), 10000);
        await gone;
        clearTimeout(timer);
      }),
    );
    running.release?.closeAllConnections();
    await new Promise((done) => (running.release ? running.release.close(() => done()) : done()));
    await running.upstream?.close();
    rmSync(work, { recursive: true, force: true });
  };
  try {
    const { releaseDir, pair, listKeyFile } = await buildRelease(work, signer, say);
    running.release = await serveRelease(releaseDir);
    const releasePort = running.release.address().port;
    running.upstream = await startUpstream();
    const tls = await makeCertificates(work);

    // The nodes: one configuration, their own ports and state directories.
    const template = readFileSync(join(here, 'hashwalld-node.yaml'), 'utf8');
    const nodeConfig = (i, ready) => {
      const doc = parseDocument(template);
      doc.setIn(['listen'], ['127.0.0.1:0']);
      doc.setIn(['upstreams'], [`127.0.0.1:${running.upstream.port}`]);
      doc.setIn(['proxyProtocol', 'trusted'], ['127.0.0.1/32']);
      doc.setIn(['access', 'allow'], [`${CLIENT}/32`, '127.0.0.1/32']);
      doc.setIn(['lists', 0, 'mirrors'], [`http://127.0.0.1:${releasePort}/${ready ? 'demo' : 'missing'}/`]);
      doc.setIn(['lists', 0, 'keyFiles'], [pair.publicPath]);
      doc.setIn(['lists', 0, 'hashKeyFile'], listKeyFile);
      doc.setIn(['stateDir'], join(work, `state-${i}`));
      doc.setIn(['metrics', 'listen'], '127.0.0.1:0');
      const file = join(work, `node-${i}.yaml`);
      writeFileSync(file, doc.toString());
      return file;
    };
    for (let i = 1; i <= nodes + notReady; i++) {
      const ready = i <= nodes;
      const node = await startNode(`hashwalld-${i}`, nodeConfig(i, ready));
      running.nodes.push(Object.assign(node, { ready }));
    }

    // dnsdist: its ports are picked just before it starts; if one was taken in between, it fails to bind and is
    // started again with new ones.
    const webKey = `fleet-${process.pid}-${Date.now()}`;
    let ports;
    for (let attempt = 1; ; attempt++) {
      ports = { dns: await freePort(), dot: await freePort(), doh: await freePort(), web: await freePort() };
      const env = {
        ...process.env,
        FLEET_LISTEN: `127.0.0.1:${ports.dns}`,
        FLEET_ACL: '127.0.0.0/8',
        FLEET_DOT: `127.0.0.1:${ports.dot}`,
        FLEET_DOH: `127.0.0.1:${ports.doh}`,
        FLEET_CERT: tls.cert,
        FLEET_KEY: tls.key,
        FLEET_NODES: running.nodes.map((n) => `127.0.0.1:${n.dnsPort}`).join(','),
        FLEET_HEALTH_NAME: 'health.example.',
        FLEET_WEB: `127.0.0.1:${ports.web}`,
        FLEET_WEB_KEY: webKey,
      };
      const proc = spawn('dnsdist', ['--supervised', '--disable-syslog', '-C', join(here, 'dnsdist.conf')], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      proc.stdout.on('data', (c) => (out += c));
      proc.stderr.on('data', (c) => (out += c));
      running.dnsdist = proc;
      const up = await Promise.race([
        (async () => {
          for (let i = 0; i < 100; i++) {
            if ((await api(ports.web, webKey, '/api/v1/servers/localhost')) !== null) return true;
            await sleep(100);
          }
          return false;
        })(),
        new Promise((done) => proc.once('exit', () => done(false))),
      ]);
      if (up) break;
      if (proc.exitCode === null) proc.kill('SIGKILL');
      if (attempt >= 3) throw new Error(`dnsdist did not start:\n${out}`);
    }
    const servers = async () => {
      const state = await api(ports.web, webKey, '/api/v1/servers/localhost');
      return (state?.servers ?? []).map((s) => ({ name: s.name, address: s.address, state: String(s.state) }));
    };
    // Until dnsdist's health checks see what each node's /readyz says.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await servers();
      const want = running.nodes.map((n) => (n.ready ? 'up' : 'down'));
      if (s.length === want.length && s.every((x, i) => x.state.toLowerCase() === want[i])) break;
      if (Date.now() > deadline) throw new Error(`dnsdist's health checks did not settle: ${JSON.stringify(s)}`);
      await sleep(200);
    }
    return {
      work,
      ca: tls.ca,
      ports,
      webKey,
      nodes: running.nodes,
      dnsdist: running.dnsdist,
      servers,
      readyz: (node) => get(node.metricsPort, '/readyz'),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function main() {
  const say = (line = '') => process.stdout.write(`${line}\n`);
  const fleet = await startFleet({ say });
  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    say(`\nfleet: ${signal}: stopping dnsdist and the nodes`);
    await fleet.stop();
    say('fleet: stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  const p = fleet.ports;
  const [a, b] = fleet.nodes;
  const tries = [
    [`kdig @127.0.0.1 -p ${p.dns} -b ${CLIENT} +edns blocked.example`, 'through dnsdist: a node blocks it, EDE kept'],
    [`kdig @127.0.0.1 -p ${p.dns} -b ${OTHER_CLIENT} +edns allowed.example`, "REFUSED: the node's ACL sees .11"],
    [`CA=${fleet.ca}`, "the recipe's throwaway CA, for the next two"],
    [`kdig @127.0.0.1 -p ${p.dot} -b ${CLIENT} +tls +tls-ca=$CA +edns blocked.example`, 'dnsdist terminates DoT'],
    [`kdig @127.0.0.1 -p ${p.doh} -b ${CLIENT} +https +tls-ca=$CA +edns blocked.example`, 'and DoH'],
    [`curl -s -H 'X-API-Key: ${fleet.webKey}' http://127.0.0.1:${p.web}/api/v1/servers/localhost`, "nodes' state"],
    [`curl -s http://127.0.0.1:${a.metricsPort}/readyz`, `${a.name}'s readiness (${b.name}: ${b.metricsPort})`],
    [`kill ${b.pid}`, `stop ${b.name}: dnsdist marks it down, ${a.name} answers`],
  ];
  const width = Math.max(...tries.map(([cmd]) => cmd.length));
  say('');
  say('hashwall fleet ready. Try (Ctrl-C stops everything):');
  say('');
  for (const [cmd, what] of tries) say(`  ${cmd.padEnd(width)}   # ${what}`);
  say('');
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`fleet: ${err.stack ?? err}\n`);
    process.exit(1);
  });
}
