/**
 * sd_notify for real: the built daemon with NOTIFY_SOCKET set to a unix datagram socket that a Python process reads
 * (as systemd's would be), messages sent by the real `systemd-notify`. READY=1 comes only once DNS answers with the
 * list loaded (the mirror holds the index until the test lets it go: no READY=1 before); a SIGHUP is RELOADING=1
 * with MONOTONIC_USEC, then READY=1, for an invalid config too (with the refusal in STATUS=); SIGTERM is STOPPING=1.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { generateListKey } from '@hashwall/format';
import t, { type Test } from 'tap';

import { TYPE, query, rcodeOf, udpAsk } from './helpers/client.ts';
import { startChild } from './helpers/child.ts';
import { TestUpstream } from './helpers/upstream.ts';
import { currentRelease, rawSettings, tempDir, within } from './lists/helpers.ts';
import { needTool } from '../../test/helpers/tools.ts';
import { HANG_MS } from '../../test/helpers/within.ts';

const skip = needTool('systemd-notify') || needTool('python3');

/** Binds a unix datagram socket at argv[1] and prints each datagram as JSON with the receiver's CLOCK_MONOTONIC. */
const RECEIVER = `
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({"bound": time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}), flush=True)
while True:
    # recv without room for ancillary data: a passed descriptor (systemd-notify's BARRIER=1 pipe) is closed by the
    # kernel, which is what the service manager does once it has processed the messages before it.
    data = s.recv(4096)
    print(json.dumps({"at": time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000, "message": data.decode()}), flush=True)
`;

interface Notification {
  readonly at: number;
  readonly fields: Record<string, string>;
}

/**
 * The Python receiver on a socket at `path`, bound: the notifications it got (BARRIER=1 messages counted apart),
 * its CLOCK_MONOTONIC when it bound, and `until(cond)`, which waits (20 s at most) for a notification that makes
 * `cond` true.
 */
async function notifyReceiver(t: Test, path: string) {
  const receiver = spawn('python3', ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    receiver.kill('SIGKILL');
  });
  const notes: Notification[] = [];
  let bound = 0;
  let barriers = 0;
  const waiters: (() => void)[] = [];
  createInterface({ input: receiver.stdout }).on('line', (line) => {
    const o = JSON.parse(line) as { bound?: number; at?: number; message?: string };
    if (o.bound !== undefined) bound = o.bound;
    else {
      const pairs = o.message!.split('\n').filter(Boolean);
      const fields = Object.fromEntries(
        pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      if (fields.BARRIER === '1') barriers++;
      else notes.push({ at: o.at!, fields });
    }
    for (const w of waiters.splice(0)) w();
  });
  const until = (cond: () => boolean, what: string): Promise<void> =>
    within(
      (async () => {
        while (!cond()) await new Promise<void>((r) => waiters.push(r));
      })(),
      what,
    );
  await until(() => bound > 0, 'the receiver binds');
  return { path, notes, until, bound, barriers: () => barriers };
}

t.test(
  'READY=1 once DNS answers with the lists loaded; RELOADING=1 and READY=1 around a reload; STOPPING=1',
  { skip },
  async (t) => {
    const dir = tempDir(t, 'hw-notify-');
    const r = await notifyReceiver(t, join(dir, 'notify.sock'));
    const { notes, until } = r;

    // The list's mirror holds its index until `release()`.
    const listKey = generateListKey('notify-2026');
    const release = currentRelease(join(dir, 'release'), listKey, ['blocked.test']);
    let held: ServerResponse | null = null;
    let heldSeen: () => void = () => undefined;
    const indexAsked = new Promise<void>((r) => (heldSeen = r));
    const http = createServer((req, res) => {
      const path = (req.url ?? '').replace(/^\/rel\//, '');
      if (path === 'index.hwl' && held === null) {
        held = res;
        heldSeen();
        return;
      }
      try {
        res.end(release.read(path));
      } catch {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    t.teardown(() => {
      http.closeAllConnections();
      return new Promise<void>((r) => http.close(() => r()));
    });
    const mirror = `http://127.0.0.1:${(http.address() as AddressInfo).port}/rel/`;

    const up = await TestUpstream.start();
    t.teardown(() => up.close());
    const config = (extra: Record<string, unknown> = {}) =>
      JSON.stringify(
        rawSettings(
          join(dir, 'state'),
          [
            {
              mirrors: [mirror],
              keys: [release.key],
              listKey,
              onStartWithoutList: 'wait',
              startWaitMs: 60000,
              totalTimeoutMs: 60000,
            },
          ],
          { listen: ['127.0.0.1:0'], upstreams: [up.address], metrics: { listen: '' }, ...extra },
        ),
      );
    const file = join(dir, 'hashwalld.yaml');
    writeFileSync(file, config());
    const child = startChild(file, process.execPath, { ...process.env, NOTIFY_SOCKET: r.path });
    t.teardown(() => child.stop());

    await within(indexAsked, 'the mirror is asked for the index');
    t.same(notes, [], 'nothing is notified while the list loads');
    t.notOk(
      child.lines.some((l) => l.msg === 'listening for DNS'),
      'and DNS is not served yet',
    );
    held!.end(release.read('index.hwl'));

    await until(() => notes.some((n) => n.fields.READY === '1'), 'READY=1');
    const ready = notes.find((n) => n.fields.READY === '1')!;
    // The STATUS= line names the address; what counts is that it answers as soon as READY=1 has arrived. (The log lines
    // travel on another channel and may arrive later: they are checked after.)
    const port = Number(
      /^answering DNS on 127\.0\.0\.1:(\d+); lists in force: 1 of 1 \(demo\)$/.exec(ready.fields.STATUS ?? '')?.[1],
    );
    t.ok(port > 0, `STATUS=${ready.fields.STATUS}`);
    t.equal(
      rcodeOf((await udpAsk(port, query('www.blocked.test', TYPE.A)))!),
      3,
      'DNS answers, with the list in force',
    );
    t.equal(rcodeOf((await udpAsk(port, query('a.example.test', TYPE.A)))!), 0);
    t.ok(await child.waitFor((l) => l.msg === 'list updated', HANG_MS), 'the list was loaded from the mirror');

    // A valid reload: RELOADING=1 with this host's CLOCK_MONOTONIC in microseconds, then READY=1.
    child.proc.kill('SIGHUP');
    await until(() => notes.filter((n) => n.fields.READY === '1').length === 2, 'READY=1 after the reload');
    const reloading = notes.find((n) => n.fields.RELOADING === '1');
    t.ok(reloading, 'RELOADING=1');
    const usec = Number(reloading?.fields.MONOTONIC_USEC);
    t.ok(
      usec > r.bound && usec <= reloading!.at,
      'MONOTONIC_USEC is CLOCK_MONOTONIC, taken before the message arrived',
    );
    t.ok(notes.indexOf(reloading!) < notes.length - 1, 'before READY=1');
    t.ok(await child.waitFor((l) => l.msg === 'configuration reloaded', HANG_MS));

    // An invalid config: refused, RELOADING=1 and READY=1 all the same (the daemon serves), the refusal in STATUS=.
    writeFileSync(file, 'workers: many\n');
    child.proc.kill('SIGHUP');
    await until(() => notes.filter((n) => n.fields.READY === '1').length === 3, 'READY=1 after the refused reload');
    t.equal(notes.filter((n) => n.fields.RELOADING === '1').length, 2);
    t.match(notes.at(-1)!.fields.STATUS, /the last reload was refused \(invalid configuration/);
    t.ok(await child.waitFor((l) => String(l.msg).startsWith('reload refused'), HANG_MS));
    t.equal(rcodeOf((await udpAsk(port, query('www.blocked.test', TYPE.A)))!), 3, 'still serving');

    child.proc.kill('SIGTERM');
    t.equal(await within(child.exited, 'exit'), 0);
    t.ok(
      notes.some((n) => n.fields.STOPPING === '1'),
      'STOPPING=1',
    );
    t.same(
      notes.map((n) =>
        Object.keys(n.fields)
          .filter((k) => k !== 'STATUS' && k !== 'MONOTONIC_USEC')
          .join(','),
      ),
      ['READY', 'RELOADING', 'READY', 'RELOADING', 'READY', 'STOPPING'],
      'in this order, nothing else',
    );
    t.equal(r.barriers(), notes.length, 'each sent with a barrier: systemd-notify waited for the manager every time');
  },
);

t.test('with workers: 2, the primary sends READY=1 once every worker listens', { skip }, async (t) => {
  const dir = tempDir(t, 'hw-notify-w-');
  const r = await notifyReceiver(t, join(dir, 'notify.sock'));
  const ready = () => r.notes.filter((n) => n.fields.READY === '1');
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const file = join(dir, 'hashwalld.yaml');
  writeFileSync(
    file,
    `listen: ['127.0.0.1:0']\nupstreams: ['${up.address}']\nworkers: 2\nstateDir: ${join(dir, 'state')}\nmetrics:\n  listen: ''\n`,
  );
  const child = startChild(file, process.execPath, { ...process.env, NOTIFY_SOCKET: r.path });
  t.teardown(() => child.stop());
  await r.until(() => ready().length > 0, 'READY=1');
  t.same(ready()[0]!.fields, { READY: '1', STATUS: '2 DNS workers answering; no lists configured' });
  const listening = await child.waitFor((l) => l.msg === 'DNS workers listening', HANG_MS);
  const port = (listening?.addresses as { udp: { port: number }[] } | undefined)?.udp[0]?.port ?? 0;
  t.equal(rcodeOf((await udpAsk(port, query('a.example.test', TYPE.A), 10_000))!), 0, 'DNS answers');
  child.proc.kill('SIGTERM');
  t.equal(await within(child.exited, 'exit'), 0);
  t.equal(ready().length, 1, 'one READY=1: the workers send none');
  t.equal(r.notes.at(-1)?.fields.STOPPING, '1');
});

t.test('a SIGTERM while systemd-notify still waits for the manager drains and exits 0', { skip }, async (t) => {
  const dir = tempDir(t, 'hw-notify-slow-');
  const r = await notifyReceiver(t, join(dir, 'notify.sock'));
  // A manager slow to answer: the real systemd-notify sends, then its caller waits a while longer for it to return.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const real = spawnSync('sh', ['-c', 'command -v systemd-notify'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(join(bin, 'systemd-notify'), `#!/bin/sh\n"${real}" "$@"\nstatus=$?\nsleep 3\nexit $status\n`, {
    mode: 0o755,
  });
  const up = await TestUpstream.start();
  t.teardown(() => up.close());
  const file = join(dir, 'hashwalld.yaml');
  writeFileSync(file, `listen: ['127.0.0.1:0']\nupstreams: ['${up.address}']\nstateDir: ${join(dir, 'state')}\n`);
  const env = { ...process.env, NOTIFY_SOCKET: r.path, PATH: `${bin}:${process.env.PATH ?? ''}` };
  const child = startChild(file, process.execPath, env);
  t.teardown(() => child.stop());
  await r.until(() => r.notes.some((n) => n.fields.READY === '1'), 'READY=1');
  // READY=1 has reached the manager; the daemon's systemd-notify has not returned yet.
  child.proc.kill('SIGTERM');
  t.equal(await within(child.exited, 'exit'), 0, 'handled: drained and exited 0, not ended by the signal');
  t.equal(r.notes.at(-1)?.fields.STOPPING, '1', 'STOPPING=1 after READY=1');
});
