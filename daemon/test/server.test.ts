import t from 'tap';

import { TYPE, decode, query, rcodeOf, udpAsk } from './helpers/client.ts';
import { startTestDaemon } from './helpers/daemon.ts';

t.test('smoke: forwards and blocks', async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.close());
  const a = await udpAsk(d.port, query('a.example.test', TYPE.A));
  t.ok(a);
  const p = decode(a);
  t.equal(p.answers[0]?.address, '192.0.2.1');
  const b = await udpAsk(d.port, query('www.blocked.test', TYPE.A));
  t.equal(rcodeOf(b!), 3);
});
