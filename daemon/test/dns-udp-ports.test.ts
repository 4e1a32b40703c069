/** The upstream tries' sockets (udp-ports.ts) on their own: a slot's tries by ID, open sockets taken out anywhere. */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { once } from 'node:events';
import { Writable } from 'node:stream';

import fc from 'fast-check';
import t from 'tap';

import { PortSlot, UdpPorts } from '../dist/dns/udp-ports.js';
import { createLogger } from '../dist/util/log.js';
import { until } from './helpers/daemon.ts';

const logger = createLogger({ level: 'error' }, new Writable({ write: (_c, _e, cb) => cb() }));

t.test("a slot's tries by ID behave as a Map's (bounded property)", async (t) => {
  type Op = { k: 'put' | 'take' | 'get'; id: number };
  const op = fc.record({
    k: fc.constantFrom<Op['k']>('put', 'put', 'take', 'get'),
    id: fc.integer({ min: 0, max: 5 }),
  });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const slot = new PortSlot<string>(4);
      const model = new Map<number, string>();
      let n = 0;
      for (const o of ops) {
        if (slot.has(o.id) !== model.has(o.id) || slot.get(o.id) !== model.get(o.id)) throw new Error(`get ${o.id}`);
        if (o.k === 'put' && !model.has(o.id)) {
          const v = `try${n++}`;
          slot.put(o.id, v);
          model.set(o.id, v);
        } else if (o.k === 'take') {
          slot.take(o.id);
          model.delete(o.id);
        }
        if (slot.tries().sort().join() !== [...model.values()].sort().join()) throw new Error('tries');
      }
      return true;
    }),
    { numRuns: 3000 },
  );
  t.pass('matches the Map');
});

t.test('open sockets released in any order: the rest stay open, reachable and counted', async (t) => {
  // A real listener the sockets send to; each datagram carries the number of the try that sent it.
  const sink = createSocket('udp4');
  sink.bind(0, '127.0.0.1');
  await once(sink, 'listening');
  t.teardown(() => sink.close());
  const sinkPort = sink.address().port;
  const got: { n: number; port: number }[] = [];
  sink.on('message', (msg, r) => got.push({ n: msg.readUInt16BE(0), port: r.port }));
  const echoes: number[] = [];
  const ports = new UdpPorts<number>(
    (slot: PortSlot<number>, msg: Buffer, _r: RemoteInfo) => echoes.push(slot.get(msg.readUInt16BE(0)) ?? -1),
    logger,
    64,
  );
  t.teardown(() => ports.close());
  fc.assert(
    fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 12 }), (order) => {
      const slots = order.map((_, i) => {
        const s = ports.acquire(4);
        s.put(i, i);
        return s;
      });
      if (new Set(slots).size !== slots.length || ports.size !== slots.length) throw new Error('a socket per try');
      const left = new Set(slots);
      for (const pick of order) {
        const s = [...left][pick % left.size]!;
        left.delete(s);
        ports.release(s);
        if (s.socket !== null) throw new Error('a released slot keeps its socket');
        if (ports.size !== left.size) throw new Error(`size ${ports.size} of ${left.size}`);
      }
      return true;
    }),
    { numRuns: 200 },
  );
  // After all that, tries on sockets still open send and are found by their ID (the release above of others
  // moved them within the open sockets).
  const held = [0, 1, 2, 3, 4].map((i) => {
    const s = ports.acquire(4);
    s.put(100 + i, 100 + i);
    return s;
  });
  ports.release(held[1]!);
  ports.release(held[3]!);
  held[1]!.take(101);
  held[3]!.take(103);
  t.equal(ports.size, 3);
  for (const i of [0, 2, 4]) {
    const m = Buffer.alloc(2);
    m.writeUInt16BE(100 + i);
    ports.send(held[i]!, m, sinkPort, '127.0.0.1');
  }
  await until(() => got.length >= 3, 'three datagrams at the sink');
  t.same(got.map((g) => g.n).sort(), [100, 102, 104], 'each open socket sent');
  // The sink answers each on the port it came from: the answer reaches the slot that waits on that ID.
  for (const g of got) sink.send(Buffer.from([g.n >> 8, g.n & 0xff]), g.port, '127.0.0.1');
  await until(() => echoes.length >= 3, 'three answers back');
  t.same(echoes.sort(), [100, 102, 104], 'and each answer found its try');
});
