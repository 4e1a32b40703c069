// The ceiling for one Node process: a raw node:dgram DNS responder that does the least a DNS server can do. It
// reads the header and walks the question (as any server must), then answers NOERROR with the client's header
// and question and no records (QR set, RD kept), one send per datagram. No policy, no cache, no upstream: what
// hashwalld adds on top of this is the cost of its query path.
//
//   node bench/lib/echo.mjs ADDR PORT        (loopback only)
import { createSocket } from 'node:dgram';

const [addr = '127.0.0.1', portArg = '0'] = process.argv.slice(2);
if (!addr.startsWith('127.') && addr !== '::1') {
  process.stderr.write('echo: loopback addresses only\n');
  process.exit(2);
}
const sock = createSocket({ type: addr.includes(':') ? 'udp6' : 'udp4' });
sock.on('message', (msg, rinfo) => {
  if (msg.length < 12 || (msg[2] & 0x80) !== 0) return;
  let p = 12;
  while (p < msg.length && msg[p] !== 0 && msg[p] < 64) p += msg[p] + 1;
  const end = p + 5;
  if (end > msg.length) return;
  const out = Buffer.allocUnsafe(end);
  msg.copy(out, 0, 0, end);
  out[2] = 0x80 | (msg[2] & 0x79);
  out[3] = 0x80;
  out[4] = 0;
  out[5] = 1;
  out.fill(0, 6, 12);
  sock.send(out, rinfo.port, rinfo.address);
});
sock.bind(Number(portArg), addr, () => {
  try {
    sock.setRecvBufferSize(4 * 1024 * 1024);
    sock.setSendBufferSize(4 * 1024 * 1024);
  } catch {
    // the kernel's cap applies
  }
  process.stdout.write(`echo listening on ${addr}:${sock.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
