// The ceiling for one Node process: a raw node:dgram DNS responder that does the least a DNS server can do. It
// reads the header and walks the question (as any server must), then answers NOERROR with the client's header
// and question and no records (QR set, RD kept), one send per datagram. No policy, no cache, no upstream: what
// hashwalld adds on top of this is the cost of its query path. The walk and the answer are raw-dns.mjs's, shared
// with forward.mjs (the same ceiling with the mix's upstream traffic).
//
// With --batch (the echo-batch row) the answers of the datagrams at hand are sent together after the event loop's
// poll phase, one setImmediate a batch, as hashwalld's listeners send theirs (daemon/src/dns/outbox.ts): what that
// gives a process that does nothing else.
//
//   node bench/lib/echo.mjs ADDR PORT [--batch]        (loopback only)
import { createSocket } from 'node:dgram';

import { emptyAnswer, questionEnd } from './raw-dns.mjs';

const [addr = '127.0.0.1', portArg = '0', mode = ''] = process.argv.slice(2);
if (!addr.startsWith('127.') && addr !== '::1') {
  process.stderr.write('echo: loopback addresses only\n');
  process.exit(2);
}
const sock = createSocket({ type: addr.includes(':') ? 'udp6' : 'udp4' });
/** Answers waiting for the end of the poll phase (--batch): answer, port, address, ... */
const out = [];
const flush = () => {
  for (let i = 0; i < out.length; i += 3) sock.send(out[i], out[i + 1], out[i + 2]);
  out.length = 0;
};
const batch = mode === '--batch';
sock.on('message', (msg, rinfo) => {
  const end = questionEnd(msg);
  if (end < 0) return;
  const answer = emptyAnswer(msg, end);
  if (!batch) return sock.send(answer, rinfo.port, rinfo.address);
  if (out.length === 0) setImmediate(flush);
  out.push(answer, rinfo.port, rinfo.address);
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
