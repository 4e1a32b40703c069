// The ceiling for a Node forwarder with the bench's mix: a raw node:dgram server that does the least a forwarding
// server must do. A question whose name ends in `.dyn.test` (the mix's unique names, 1 in 10: what a resolver can
// never answer from its cache) is sent on to the upstream with a fresh random ID and the upstream's answer goes
// back to the client with the client's ID restored; every other question is answered exactly as echo.mjs answers
// it (NOERROR, no records, one send per datagram). No policy, no cache, no check of the answer beyond its ID:
// hashwalld's q/s over this row's, in the same round, is what its query path costs once the upstream traffic the
// echo never does is counted.
//
// With --ports (the forward-ports row) each upstream query goes out from a socket of its own, bound to a port drawn
// at random from 1024-65535 and closed when its answer comes (or with the sweep below), as a resolver must to make a
// blind spoofer guess the port as well as the ID (RFC 5452 10) and as hashwalld's upstream tries do
// (daemon/src/dns/udp-ports.ts, without its spares bound ahead): what that costs a Node forwarder.
//
//   node bench/lib/forward.mjs ADDR PORT UPSTREAM_ADDR UPSTREAM_PORT [--ports]        (loopback only)
import { randomFillSync } from 'node:crypto';
import { createSocket } from 'node:dgram';

import { emptyAnswer, endsWith, questionEnd, wireSuffix } from './raw-dns.mjs';

const [addr = '127.0.0.1', portArg = '0', upAddr = '127.0.0.1', upPortArg = '53', mode = ''] = process.argv.slice(2);
const loopback = (a) => a.startsWith('127.') || a === '::1';
if (!loopback(addr) || !loopback(upAddr)) {
  process.stderr.write('forward: loopback addresses only\n');
  process.exit(2);
}
const upPort = Number(upPortArg);
const DYN = wireSuffix('dyn.test');

// Queries waiting for the upstream, indexed by the ID they were sent with: the client's port, address and ID, and
// the sweep period they were sent in. A slot is free when its address is ''.
const clientPort = new Uint16Array(65536);
const clientId = new Uint16Array(65536);
const clientAddr = new Array(65536).fill('');
const sentIn = new Uint32Array(65536);
let period = 1; // advanced by the sweep, once a second
let waiting = 0;

// IDs from a CSPRNG, drawn in batches (what a forwarder must do against blind spoofing, RFC 5452; the batch keeps
// it to a few ns an ID, as hashwalld's upstream.ts does).
const ids = new Uint16Array(2048);
let idPos = ids.length;
function freshId() {
  for (let tries = 0; ; tries++) {
    if (idPos === ids.length) {
      randomFillSync(ids);
      idPos = 0;
    }
    const id = ids[idPos++];
    // A busy slot is an answer still awaited: draw again (all 65,536 busy cannot last: entries live 2-3 s).
    if (clientAddr[id] === '' || tries > 64) return id;
  }
}

const family = (a) => (a.includes(':') ? 'udp6' : 'udp4');
const sock = createSocket({ type: family(addr) });
// The upstream socket: connected, so the kernel drops datagrams from any other source, keeps the route, and a send
// names no address (dgram runs no lookup for it). FORWARD_UNCONNECTED=1 sends with an address instead; connected
// was measured not behind unconnected (bench/README.md, "The forwarder's upstream socket").
const up = createSocket({ type: family(upAddr) });
const connected = process.env.FORWARD_UNCONNECTED !== '1';
// --ports: the socket each query in flight went out from, by its ID (null: none).
const ports = mode === '--ports';
const portSocket = ports ? new Array(65536).fill(null) : null;
// The socket's family handed back as it is, at once: a bind to an IP literal is then synchronous, so a taken port is
// known at once (as daemon/src/dns/udp-lookup.ts).
const ipLookup = (address, fam, cb) =>
  cb(null, address, typeof fam === 'number' ? fam : family(address) === 'udp6' ? 6 : 4);
const loopbackOf = (a) => (a.includes(':') ? '::1' : '127.0.0.1');

/** --ports: a new socket on a random port from 1024-65535 (drawn again while taken) for the query with ID `id`. */
function portFor(id) {
  const s = createSocket({ type: family(upAddr), lookup: ipLookup });
  s.on('message', (msg, rinfo) => fromUpstream(msg, rinfo));
  let failed = null;
  s.on('error', (err) => {
    failed = err;
  });
  for (let draw = 0; draw < 32; draw++) {
    failed = null;
    s.bind({ port: 1024 + Math.floor(Math.random() * 64512), address: loopbackOf(upAddr), exclusive: true });
    if (failed === null) break;
  }
  if (failed !== null) s.bind({ port: 0, address: loopbackOf(upAddr), exclusive: true });
  portSocket[id] = s;
  return s;
}

/** --ports: the socket of the query with ID `id` is done with. */
function closePort(id) {
  const s = portSocket[id];
  if (s === null) return;
  portSocket[id] = null;
  s.close();
}

sock.on('message', (msg, rinfo) => {
  const end = questionEnd(msg);
  if (end < 0) return;
  if (!endsWith(msg, end, DYN)) {
    sock.send(emptyAnswer(msg, end), rinfo.port, rinfo.address);
    return;
  }
  const id = freshId();
  if (clientAddr[id] === '') waiting++;
  clientPort[id] = rinfo.port;
  clientAddr[id] = rinfo.address;
  clientId[id] = (msg[0] << 8) | msg[1];
  sentIn[id] = period;
  // The received datagram is the query sent on: only its ID changes.
  msg[0] = id >> 8;
  msg[1] = id & 0xff;
  if (ports) {
    closePort(id); // an ID drawn again while busy (after 64 draws): its earlier query is given up
    portFor(id).send(msg, upPort, upAddr);
  } else if (connected) up.send(msg);
  else up.send(msg, upPort, upAddr);
});

function fromUpstream(msg, rinfo) {
  if (msg.length < 12 || (msg[2] & 0x80) === 0) return;
  if (!(connected && !ports) && (rinfo.port !== upPort || rinfo.address !== upAddr)) return;
  const id = (msg[0] << 8) | msg[1];
  const address = clientAddr[id];
  if (address === '') return; // not awaited (late, or never asked)
  if (ports) closePort(id);
  clientAddr[id] = '';
  waiting--;
  const cid = clientId[id];
  msg[0] = cid >> 8;
  msg[1] = cid & 0xff;
  sock.send(msg, clientPort[id], address);
}
up.on('message', fromUpstream);

// Once a second: entries sent two periods ago or earlier (2 to 3 s old) are dropped; their clients have given up.
setInterval(() => {
  period++;
  if (waiting === 0) return;
  const old = period - 2;
  for (let id = 0; id < 65536; id++) {
    if (clientAddr[id] !== '' && sentIn[id] <= old) {
      clientAddr[id] = '';
      waiting--;
      if (ports) closePort(id);
    }
  }
}, 1000).unref();

sock.on('error', (err) => process.stderr.write(`forward: ${err.message}\n`));
up.on('error', (err) => process.stderr.write(`forward: upstream socket: ${err.message}\n`));

const bufs = (s) => {
  try {
    s.setRecvBufferSize(4 * 1024 * 1024);
    s.setSendBufferSize(4 * 1024 * 1024);
  } catch {
    // the kernel's cap applies
  }
};
up.bind(0, upAddr.includes(':') ? '::1' : '127.0.0.1', () => {
  bufs(up);
  const listen = () =>
    sock.bind(Number(portArg), addr, () => {
      bufs(sock);
      process.stdout.write(
        `forward listening on ${addr}:${sock.address().port}, upstream ${upAddr}:${upPort}` +
          ` (${ports ? 'a socket a query on a random port' : connected ? 'connected socket' : 'unconnected socket'})\n`,
      );
    });
  if (connected) up.connect(upPort, upAddr, listen);
  else listen();
});
process.on('SIGTERM', () => process.exit(0));
