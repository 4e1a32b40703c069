/**
 * 2,000 hostile TCP connections that trickle a byte at a time from many addresses (127.0.10-14.x), one /24 of them
 * outside access.allow. The caps and the frame deadline (dns/stream.ts) keep a good client served over TCP and UDP;
 * time moves on a ManualClock, so nothing here depends on how busy the machine is.
 */
import { readFileSync } from 'node:fs';

import t from 'tap';

import { ManualClock } from '../dist/util/clock.js';
import { TYPE, decode, hostile, query, tcpAsk, udpAsk, type Hostile } from './helpers/client.ts';
import { startTestDaemon, until } from './helpers/daemon.ts';

const HOSTILE = 2000;
const PER_PREFIX = 100;
const FRAME_MS = 2000;

/** The soft limit on open files of this process (each connection costs two here: both ends). */
function openFileLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m === null || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

t.test(
  `${HOSTILE} trickling connections from 127.0.10-14.x: a good client is still answered over TCP and UDP`,
  { skip: openFileLimit() < 3 * HOSTILE ? `needs ${3 * HOSTILE} open files (ulimit -n)` : false },
  async (t) => {
    const clock = new ManualClock();
    const d = await startTestDaemon({
      clock,
      config: {
        // 127.0.14.0/24 is outside: its connections are closed when accepted.
        access: { allow: ['127.0.0.1/32', '127.0.10.0/24', '127.0.11.0/24', '127.0.12.0/24', '127.0.13.0/24'] },
        tcp: { maxConnections: 1000, maxConnectionsPerPrefix: PER_PREFIX, idleTimeoutMs: 600_000 },
      },
    });
    const sockets: Hostile[] = [];
    t.teardown(async () => {
      for (const h of sockets) h.socket.destroy();
      await d.close();
    });
    for (let i = 0; i < HOSTILE; i += 100) {
      const batch = [];
      for (let j = i; j < i + 100; j++)
        batch.push(hostile(d.port, `127.0.${10 + (j % 5)}.${1 + (((j / 5) | 0) % 250)}`));
      sockets.push(...(await Promise.all(batch)));
    }
    const ev = d.events;
    const outside = HOSTILE / 5;
    await until(
      () =>
        ev.connectionsRefused.acl === outside &&
        ev.connectionsRefused['prefix-limit'] === HOSTILE - outside - 4 * PER_PREFIX,
      'every hostile connection accepted or refused',
      60_000,
    );
    t.equal(ev.connectionsOpen, 4 * PER_PREFIX, `${PER_PREFIX} held per allowed /24`);
    t.equal(ev.connectionsRefused.acl, outside, 'every connection from outside access.allow closed when accepted');
    t.equal(ev.connectionsRefused.limit, 0, 'the total cap was never reached');
    await until(() => sockets.filter((h) => h.closed).length === HOSTILE - 4 * PER_PREFIX, 'the refused ones closed');

    const a = await udpAsk(d.port, query('a.example.test', TYPE.A), 10_000);
    t.equal(decode(a).answers[0]?.address, '192.0.2.1', 'the good client is answered over UDP');
    const [b] = await tcpAsk(d.port, [query('big.example.test', TYPE.TXT)], { timeoutMs: 10_000 });
    t.equal(decode(b ?? null).answers.length, 40, 'and over TCP, an answer no UDP client could get whole');

    // The trickle goes on (the second octet of each length prefix): it does not move the frames' deadline.
    const held = sockets.filter((h) => !h.closed);
    t.equal(held.length, 4 * PER_PREFIX);
    for (const h of held) h.socket.write(Buffer.from([40]));
    clock.advance(FRAME_MS - 1);
    t.equal(ev.connectionsTimedOut['frame-timeout'], 0, 'not before the deadline');
    await new Promise((r) => setTimeout(r, 200)); // let the trickled octets reach the daemon
    clock.advance(1);
    t.equal(ev.connectionsTimedOut['frame-timeout'], 4 * PER_PREFIX, 'every trickling connection closed at it');
    await until(() => held.every((h) => h.closed), 'the hostile connections closed', 30_000);
    await until(() => ev.connectionsOpen === 0, 'nothing left open');
  },
);
