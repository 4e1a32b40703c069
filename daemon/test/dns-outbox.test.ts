/** A UDP listener's outbox (outbox.ts): answers copied when added, sent together after the poll phase, in order. */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';

import t from 'tap';

import { UdpOutbox } from '../dist/dns/outbox.js';
import { until } from './helpers/daemon.ts';

interface Sent {
  bytes: Buffer;
  /** The slab's octets as the send saw them, not copied: what a send libuv queued would still point at. */
  view: Buffer;
  port: number;
  address: string;
}

/** An outbox whose sends are recorded; `held` says what the socket's send queue would. */
function recorded(held = () => false): { outbox: UdpOutbox; sent: Sent[] } {
  const sent: Sent[] = [];
  const outbox = new UdpOutbox((slab, offset, length, port, address) => {
    const view = slab.subarray(offset, offset + length);
    sent.push({ bytes: Buffer.from(view), view, port, address });
  }, held);
  return { outbox, sent };
}

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('answers leave after the datagrams at hand, over a real socket, each as added', async (t) => {
  const rx = createSocket('udp4');
  const tx = createSocket('udp4');
  t.teardown(() => {
    rx.close();
    tx.close();
  });
  rx.bind(0, '127.0.0.1');
  tx.bind(0, '127.0.0.1');
  await Promise.all([once(rx, 'listening'), once(tx, 'listening')]);
  const got: Buffer[] = [];
  rx.on('message', (m) => got.push(m));
  let sends = 0;
  const outbox = new UdpOutbox(
    (slab, offset, length, port, address) => {
      sends++;
      tx.send(slab, offset, length, port, address);
    },
    () => tx.getSendQueueCount() > 0,
  );
  // 100 answers, ~31,000 octets: one slab, and within the receiving socket's default buffer.
  const answers = Array.from({ length: 100 }, (_, i) => {
    const a = randomBytes(12 + ((i * 37) % 600));
    a.writeUInt16BE(i, 0);
    return a;
  });
  // One scratch buffer per length, as the query path renders: overwritten right after it is added.
  for (const a of answers) {
    const scratch = Buffer.from(a);
    outbox.add(scratch, rx.address().port, '127.0.0.1');
    scratch.fill(0xee);
  }
  t.equal(sends, 0, 'nothing sent while the datagrams at hand are handled');
  t.equal(outbox.size, 100);
  await immediate();
  t.equal(sends, 100, 'all sent in the same turn of the loop');
  t.equal(outbox.size, 0);
  await until(() => got.length === 100, 'the 100 answers');
  got.sort((a, b) => a.readUInt16BE(0) - b.readUInt16BE(0));
  t.ok(
    got.every((m, i) => m.equals(answers[i]!)),
    'every answer arrives with the octets it had when added',
  );
});

t.test('sent in the order added, to their own clients; a fuller slab goes at once', async (t) => {
  const { outbox, sent } = recorded();
  const added: Sent[] = [];
  // 40 answers of 4,000 octets: 160,000 octets, past two 64 KiB slabs.
  for (let i = 0; i < 40; i++) {
    const bytes = randomBytes(4000);
    const port = 1024 + i;
    const address = i % 2 === 0 ? '192.0.2.1' : '2001:db8::1';
    outbox.add(bytes, port, address);
    added.push({ bytes, view: bytes, port, address });
  }
  t.ok(sent.length >= 32 && sent.length < 40, `the slabs that filled were sent at once (${sent.length})`);
  await immediate();
  t.equal(sent.length, 40);
  t.same(
    sent.map((s) => [s.port, s.address]),
    added.map((s) => [s.port, s.address]),
  );
  t.ok(
    sent.every((s, i) => s.bytes.equals(added[i]!.bytes)),
    'the octets of each',
  );
});

t.test('an answer larger than a slab is sent by itself, after those before it', async (t) => {
  const { outbox, sent } = recorded();
  const small = randomBytes(100);
  const big = randomBytes(70_000);
  outbox.add(small, 53, '192.0.2.1');
  outbox.add(big, 54, '192.0.2.2');
  t.same(
    sent.map((s) => s.port),
    [53, 54],
  );
  t.ok(sent[0]!.bytes.equals(small) && sent[1]!.bytes.equals(big));
  t.not(sent[1]!.view.buffer, big.buffer, "a copy of its own: a queued send would point into the caller's buffer");
  t.equal(outbox.size, 0);
  await immediate();
  t.equal(sent.length, 2, 'nothing sent twice');
});

t.test('a slab a queued send still points at is not written again', async (t) => {
  for (const queued of [false, true]) {
    const { outbox, sent } = recorded(() => queued);
    const first = randomBytes(500);
    outbox.add(first, 53, '192.0.2.1');
    outbox.flush();
    outbox.add(randomBytes(500), 53, '192.0.2.1');
    outbox.flush();
    const kept = sent[0]!.view.equals(first);
    t.equal(kept, queued, queued ? 'a new slab after a queued send' : 'the slab is reused when nothing is queued');
    await immediate();
  }
});
