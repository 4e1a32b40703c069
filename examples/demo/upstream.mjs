// The demo's upstream: a tiny authoritative DNS server on 127.0.0.1 (UDP and TCP, one random port) for the
// reserved zones `example` and `test`, standing in for an ISP's recursive resolver so that the demo needs no
// network. Every name in those zones exists (A 192.0.2.1, AAAA 2001:db8::1, a TXT for about.example), except
// names under nxdomain.example; anything outside them is REFUSED. health.example is answered with TTL 0, so that a
// forwarder never caches it: the fleet recipe's health checks (examples/fleet) ask it to reach the upstream each time.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const ZONES = ['example', 'test'];
const TTL = 300;

/** The question of a query: { id, rd, name (lower case), qtype, qclass, end }, or null when it is no query. */
function parseQuestion(msg) {
  if (msg.length < 12 || (msg[2] & 0x80) !== 0 || msg.readUInt16BE(4) !== 1) return null;
  const labels = [];
  let p = 12;
  for (;;) {
    if (p >= msg.length) return null;
    const len = msg[p];
    if (len === 0) break;
    if (len > 63 || p + 1 + len > msg.length) return null;
    labels.push(msg.toString('latin1', p + 1, p + 1 + len));
    p += 1 + len;
  }
  if (p + 5 > msg.length) return null;
  return {
    id: msg.readUInt16BE(0),
    rd: (msg[2] & 0x01) !== 0,
    opcode: (msg[2] >> 3) & 0x0f,
    name: labels.join('.').toLowerCase(),
    qtype: msg.readUInt16BE(p + 1),
    qclass: msg.readUInt16BE(p + 3),
    end: p + 5,
  };
}

function wireName(name) {
  const parts = name.split('.').filter((l) => l !== '');
  return Buffer.concat([
    ...parts.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])),
    Buffer.from([0]),
  ]);
}

function record(owner, type, data, ttl = TTL) {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([owner, fixed, data]);
}

function soa(zone) {
  const times = Buffer.alloc(20);
  times.writeUInt32BE(1, 0); // serial
  times.writeUInt32BE(3600, 4);
  times.writeUInt32BE(600, 8);
  times.writeUInt32BE(86400, 12);
  times.writeUInt32BE(60, 16); // minimum: negative answers are cached 60 s
  const data = Buffer.concat([wireName(`ns.${zone}`), wireName(`hostmaster.${zone}`), times]);
  return record(wireName(zone), 6, data);
}

/** The answer to `msg`, or null to drop it. */
export function answer(msg) {
  const q = parseQuestion(msg);
  if (q === null) return null;
  const zone = ZONES.find((z) => q.name === z || q.name.endsWith(`.${z}`));
  let rcode = 0;
  const answers = [];
  const authority = [];
  if (q.opcode !== 0) rcode = 4;
  else if (zone === undefined || q.qclass !== 1) rcode = 5;
  else if (q.name === 'nxdomain.example' || q.name.endsWith('.nxdomain.example')) {
    rcode = 3;
    authority.push(soa(zone));
  } else {
    const here = Buffer.from([0xc0, 0x0c]); // the question's name
    const ttl = q.name === 'health.example' ? 0 : TTL;
    if (q.qtype === 1) answers.push(record(here, 1, Buffer.from([192, 0, 2, 1]), ttl));
    else if (q.qtype === 28) answers.push(record(here, 28, Buffer.from('20010db8000000000000000000000001', 'hex')));
    else if (q.qtype === 16 && q.name === 'about.example') {
      const text = Buffer.from('hashwall demo upstream', 'latin1');
      answers.push(record(here, 16, Buffer.concat([Buffer.from([text.length]), text])));
    }
    if (answers.length === 0) authority.push(soa(zone));
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  header[2] = 0x80 | 0x04 | (q.rd ? 0x01 : 0); // QR, AA, RD as asked
  header[3] = rcode;
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(authority.length, 8);
  return Buffer.concat([header, msg.subarray(12, q.end), ...answers, ...authority]);
}

/** Starts the server on 127.0.0.1, UDP and TCP on one kernel-chosen port; resolves with { port, close() }. */
export async function startUpstream() {
  for (let attempt = 0; ; attempt++) {
    const udp = createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      const out = answer(msg);
      if (out !== null) udp.send(out, rinfo.port, rinfo.address);
    });
    await new Promise((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const port = udp.address().port;
    const sockets = new Set();
    const tcp = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
      s.setTimeout(10000, () => s.destroy());
      let buf = Buffer.alloc(0);
      s.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const out = answer(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
          if (out === null) continue;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          s.write(Buffer.concat([len, out]));
        }
      });
    });
    try {
      await new Promise((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', resolve);
      });
    } catch (err) {
      // Another process holds the TCP side of this port: try another one.
      udp.close();
      if (attempt >= 10) throw err;
      continue;
    }
    return {
      port,
      close() {
        udp.close();
        for (const s of sockets) s.destroy();
        return new Promise((resolve) => tcp.close(() => resolve()));
      },
    };
  }
}
