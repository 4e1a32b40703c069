import { Writable } from 'node:stream';

import t from 'tap';

import { createLogger } from '../dist/util/log.js';

function capture(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      out
        .join('')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

t.test('query names and client addresses never reach info lines, and debug lines only when asked', async (t) => {
  const a = capture();
  const quiet = createLogger({ level: 'debug' }, a.stream);
  quiet.info({ qname: 'blocked.example', client: '192.0.2.1', list: 'demo' }, 'blocked');
  quiet.debug({ qname: 'blocked.example', client: '192.0.2.1' }, 'query');
  const [info, debug] = a.lines();
  t.same([info?.qname, info?.client, info?.list, info?.level], [undefined, undefined, 'demo', 'info']);
  t.same([debug?.qname, debug?.client], [undefined, undefined]);

  const b = capture();
  const verbose = createLogger({ level: 'debug', debugQueryNames: true, debugClientAddresses: true }, b.stream);
  verbose.warn({ qname: 'blocked.example', client: '192.0.2.1' }, 'warned');
  verbose.debug({ qname: 'blocked.example', client: '192.0.2.1' }, 'query');
  const [warn, dbg] = b.lines();
  t.same([warn?.qname, warn?.client], [undefined, undefined], 'never at warn, even when debug fields are on');
  t.same([dbg?.qname, dbg?.client], ['blocked.example', '192.0.2.1']);
  t.equal(typeof dbg?.time, 'string');
});
