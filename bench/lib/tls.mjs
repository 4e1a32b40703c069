// TLS for the DoT and DoH rows: a throwaway certificate (openssl, P-256, for IP 127.0.0.1; the load generators do
// not verify it), and what a new TLS session costs a server: `openssl s_time -new` (full handshakes, one after the
// other, as fast as they complete) on the generator's CPU, with the server's CPU read from /proc around it.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { cpuSnap } from './proc.mjs';

/** A self-signed certificate and its key in `dir` (made once, reused by later runs). */
export function makeTls(dir) {
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, 'bench.pem');
  const key = join(dir, 'bench.key');
  if (!existsSync(cert) || !existsSync(key)) {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '3650',
        '-subj',
        '/CN=hashwall bench',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
  }
  chmodSync(key, 0o600);
  return { cert, key };
}

/**
 * New TLS sessions against 127.0.0.1:`port` for `seconds` (s_time -new: each a full handshake, then closed), pinned
 * to `cpu`. Resolves with { sessions, perSecond, serverCpuUs } (server CPU per new session, from `pids`' /proc), or
 * null when s_time failed.
 */
export function measureTlsSetup({ cpu, port, seconds, pids }) {
  return new Promise((resolve) => {
    const before = cpuSnap({ srv: pids });
    const p = spawn(
      'taskset',
      ['-c', String(cpu), 'openssl', 's_time', '-connect', `127.0.0.1:${port}`, '-new', '-time', String(seconds)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => p.kill('SIGKILL'), (seconds + 30) * 1000);
    p.on('close', () => {
      clearTimeout(timer);
      const after = cpuSnap({ srv: pids });
      // "1234 connections in 7 real seconds, 0 bytes read per connection"
      const m = /(\d+) connections in (\d+(?:\.\d+)?) real seconds/.exec(out);
      if (m === null) return resolve(null);
      const sessions = Number(m[1]);
      const real = Number(m[2]);
      const serverS = (after.g.srv - before.g.srv) / 100;
      resolve({
        sessions,
        perSecond: sessions / Math.max(real, 1e-9),
        serverCpuUs: sessions > 0 ? (serverS * 1e6) / sessions : NaN,
      });
    });
  });
}
