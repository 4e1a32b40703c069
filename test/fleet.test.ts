// The fleet recipe (examples/fleet) for real: Debian's dnsdist in front of hashwalld nodes on 127.0.0.1, sending the
// PROXY protocol v2. The nodes' access lists see the original client; dnsdist's health checks agree with each
// node's /readyz (two ready nodes up, one whose list never arrives down); when a node is killed dnsdist marks it
// down and queries keep being answered, blocks with their EDE, over UDP, DoT and DoH.
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { promisify } from 'node:util';

import t from 'tap';

import { noProc, runsAsShipped } from './helpers/shipped.ts';
import { needTool } from './helpers/tools.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');

interface FleetNode {
  readonly name: string;
  readonly pid: number;
  readonly dnsPort: number;
  readonly metricsPort: number;
  readonly ready: boolean;
  readonly exited: Promise<unknown>;
}

interface Fleet {
  readonly ca: string;
  readonly ports: { dns: number; dot: number; doh: number; web: number };
  readonly nodes: FleetNode[];
  servers(): Promise<{ name: string; state: string }[]>;
  readyz(node: FleetNode): Promise<{ status: number; body: string } | null>;
  stop(): Promise<void>;
}

const fleetModule = (await import(join(root, 'examples', 'fleet', 'fleet.mjs'))) as {
  startFleet(o: { nodes?: number; notReady?: number }): Promise<Fleet>;
  CLIENT: string;
  OTHER_CLIENT: string;
};
const { CLIENT, OTHER_CLIENT } = fleetModule;

const missing = needTool('dnsdist') || needTool('kdig') || needTool('openssl');

/** One UDP query from `from` to dnsdist: the answer's rcode, or -1 after 5 s. */
function udpRcode(port: number, from: string, name: string, id: number): Promise<number> {
  const labels = name.split('.');
  const q = Buffer.concat([
    Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(-1);
    }, 5000);
    s.on('message', (m) => {
      if (m.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      s.close();
      resolve(m[3]! & 15);
    });
    s.on('error', () => undefined);
    s.bind(0, from, () => s.send(q, port, '127.0.0.1'));
  });
}

async function kdig(port: number, from: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(
    'kdig',
    ['@127.0.0.1', '-p', String(port), '-b', from, '+timeout=3', '+retry=1', ...args],
    {
      timeout: 20000,
      encoding: 'utf8',
    },
  );
  return stdout;
}

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (performance.now() > deadline)
      throw new Error(`not within ${timeoutMs} ms: ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test(
  'dnsdist in front of hashwalld: PROXY v2, health checks that follow /readyz, a node killed',
  { skip: missing, timeout: 110000 },
  async (t) => {
    const fleet = await fleetModule.startFleet({ nodes: 2, notReady: 1 });
    t.teardown(() => fleet.stop());
    const [a, b, c] = fleet.nodes as [FleetNode, FleetNode, FleetNode];
    const p = fleet.ports;

    // Readiness: each node's /readyz and dnsdist's view of it agree.
    const states = await fleet.servers();
    t.same(
      states.map((s) => s.state.toLowerCase()),
      ['up', 'up', 'down'],
      'dnsdist: the two ready nodes up, the one without its list down',
    );
    await t.test('a node runs as hashwalld ships', { skip: noProc }, (t) => {
      runsAsShipped(t, a.pid);
      t.end();
    });
    t.equal((await fleet.readyz(a))?.status, 200, `${a.name} /readyz 200`);
    t.equal((await fleet.readyz(b))?.status, 200, `${b.name} /readyz 200`);
    const notReady = await fleet.readyz(c);
    t.equal(notReady?.status, 503, `${c.name} /readyz 503`);
    t.match(notReady?.body, /onStartWithoutList: refuse/, 'because its list has not arrived');

    // The nodes see the original client: one address is let in, another refused by the node that answers.
    t.equal(await udpRcode(p.dns, CLIENT, 'a.example', 1), 0, `${CLIENT}: answered`);
    t.equal(await udpRcode(p.dns, OTHER_CLIENT, 'a.example', 2), 5, `${OTHER_CLIENT}: REFUSED by hashwalld's ACL`);
    const refused = await kdig(p.dns, OTHER_CLIENT, '+edns', 'a.example');
    t.match(refused, /EDE: 18 \(Prohibited\)/, 'with EDE 18, from the node');
    const blocked = await kdig(p.dns, CLIENT, '+edns', 'blocked.example');
    t.match(blocked, /status: NXDOMAIN/);
    t.match(blocked, /EDE: 16 \(Censored\): 'list demo'/, 'a block keeps its EDE through dnsdist');
    const dot = await kdig(p.dot, CLIENT, '+tls', `+tls-ca=${fleet.ca}`, '+edns', 'www.blocked.example');
    t.match(dot, /EDE: 16 \(Censored\): 'list demo'/, 'over DoT, terminated by dnsdist');
    const doh = await kdig(p.doh, CLIENT, '+https', `+tls-ca=${fleet.ca}`, '+edns', 'blocked.example');
    t.match(doh, /EDE: 16 \(Censored\): 'list demo'/, 'over DoH, terminated by dnsdist');
    const dohRefused = await kdig(p.doh, OTHER_CLIENT, '+https', `+tls-ca=${fleet.ca}`, 'a.example');
    t.match(dohRefused, /status: REFUSED/, 'the DoH client address reaches the node too');

    // A node killed: dnsdist's checks mark it down as its /readyz goes; the other answers everything.
    process.kill(b.pid, 'SIGKILL');
    await b.exited;
    await until(
      'dnsdist marks the killed node down',
      () => fleet.servers(),
      (s) => s[1]?.state.toLowerCase() === 'down',
    );
    t.equal(await fleet.readyz(b), null, `${b.name} /readyz: no answer at all`);
    t.same(
      (await fleet.servers()).map((s) => s.state.toLowerCase()),
      ['up', 'down', 'down'],
    );
    const rcodes: number[] = [];
    for (let i = 0; i < 30; i++) rcodes.push(await udpRcode(p.dns, CLIENT, `n${i}.example`, 100 + i));
    t.same(
      rcodes,
      rcodes.map(() => 0),
      'thirty queries after the kill, thirty answers',
    );
    t.match(await kdig(p.dns, CLIENT, '+edns', 'blocked.example'), /EDE: 16 \(Censored\): 'list demo'/);
    t.match(
      await kdig(p.dot, CLIENT, '+tls', `+tls-ca=${fleet.ca}`, '+edns', 'blocked.example'),
      /EDE: 16 \(Censored\): 'list demo'/,
    );
    t.match(
      await kdig(p.doh, CLIENT, '+https', `+tls-ca=${fleet.ca}`, '+edns', 'blocked.example'),
      /EDE: 16 \(Censored\): 'list demo'/,
      'blocks keep their EDE over UDP, DoT and DoH',
    );
    const metrics = await run('curl', ['-s', `http://127.0.0.1:${a.metricsPort}/metrics`], {
      encoding: 'utf8',
      timeout: 10000,
    });
    t.match(
      metrics.stdout,
      /^hashwall_proxy_headers_total\{transport="udp",outcome="proxied"\} [1-9]/m,
      'headers read',
    );
    t.match(
      metrics.stdout,
      /^hashwall_proxy_headers_total\{transport="udp",outcome="local"\} [1-9]/m,
      'and health checks',
    );
  },
);
