// What a client sees: the names blocked and passed by the lists in force, asked over DNS when the harness runs the
// daemon's query path (withDns), and checked on the registry's view in any case.
import { randomInt } from 'node:crypto';

import type { TAP } from 'tap';

import { TYPE, optOf, query, rcodeOf, udpAsk } from '../helpers/client.ts';
import type { Harness } from './helpers.ts';
import { verdictOf } from './helpers.ts';

type Asserts = Pick<TAP, 'equal' | 'ok'>;

/** RFC 8914: the EDNS option code of an Extended DNS Error, and info-code 16 (Censored), the daemon's default. */
const EDE_OPTION = 15;
const EDE_CENSORED = 16;
const RCODE_REFUSED = 5;

/** Over DNS: 'blocked:<list>' for an answer carrying the daemon's block EDE, 'refused', or 'passed'. */
export async function askDns(port: number, name: string): Promise<string> {
  const ans = await udpAsk(port, query(name, TYPE.A, { id: randomInt(65536), edns: { size: 1232 } }), 3000);
  if (ans === null) return 'no answer';
  if (rcodeOf(ans) === RCODE_REFUSED) return 'refused';
  const ede = optOf(ans)?.options.find((o) => o.code === EDE_OPTION);
  if (ede && ede.data.readUInt16BE(0) === EDE_CENSORED) return `blocked:${ede.data.subarray(2).toString('utf8')}`;
  return 'passed';
}

/**
 * Every `blocked` name is blocked by the list (`listId`, default demo) and every `passed` name passes: in the view,
 * and over DNS when the daemon runs (the EDE extra text names the list).
 */
export async function expectEnforced(
  t: Asserts,
  h: Harness,
  names: { blocked: readonly string[]; passed: readonly string[]; listId?: string },
): Promise<void> {
  const listId = names.listId ?? 'demo';
  const view = h.registry.view();
  for (const n of names.blocked) t.equal(verdictOf(view, n)?.replace(/^[DH]:/, ''), listId, `${n} is blocked`);
  for (const n of names.passed) t.equal(verdictOf(view, n), null, `${n} passes`);
  if (!h.dns) return;
  for (const n of names.blocked) {
    const got = await askDns(h.dns.port, n);
    t.ok(got.startsWith('blocked:') && got.includes(listId), `over DNS, ${n} is blocked by ${listId} (${got})`);
  }
  for (const n of names.passed) t.equal(await askDns(h.dns.port, n), 'passed', `over DNS, ${n} passes`);
}
