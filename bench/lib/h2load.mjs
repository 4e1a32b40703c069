// DNS over HTTPS load with h2load (Debian's nghttp2-client): dnsperf 2.10's DoH mode loses every query but one when
// more than one is outstanding (against dnsdist as against hashwalld: `-m doh -c 1 -q 10` times out), so the DoH
// rows use h2load, with the same query files turned into GET URIs (RFC 8484 4.1: ID 0, base64url, no padding).
// Its per-request log (--log-file: start, status, microseconds) gives the percentiles.
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

import { runTimed } from './proc.mjs';

/** The wire form of a query for `name` of type `type` (A, AAAA, ... as dnsperf files name them), ID 0, RD set. */
function wireQuery(name, type) {
  const TYPES = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, HTTPS: 65 };
  const labels = name.split('.').filter(Boolean);
  const t = TYPES[type] ?? 1;
  return Buffer.concat([
    Buffer.from([0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])),
    Buffer.from([0, t >> 8, t & 255, 0, 1]),
  ]);
}

/** Writes the first `max` lines of dnsperf query file `from` as DoH GET URIs for `base` (https://host:port/path). */
export async function writeUris(from, to, base, max) {
  const out = createWriteStream(to);
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(from), crlfDelay: Infinity })) {
    const [name, type] = line.trim().split(/\s+/);
    if (!name) continue;
    if (!out.write(`${base}?dns=${wireQuery(name, type).toString('base64url')}\n`)) await once(out, 'drain');
    if (++n >= max) break;
  }
  out.end();
  await once(out, 'finish');
  return n;
}

/** Runs h2load pinned to `cpu` (lib/proc.mjs runTimed), bounded by its -D plus a kill timer. */
export function runH2load({ cpu, args, outFile, limitSeconds }) {
  return runTimed({ cpu, cmd: 'h2load', args, outFile, limitSeconds, withStderr: true });
}

/**
 * What h2load reported (its summary in `outFile`) and, with `logFile`, the latency percentiles of the requests
 * that got a 200; in the shape readDnsperf gives. `lost`: requests that failed, errored or timed out.
 */
export async function readH2load(outFile, logFile = null) {
  const summary = { qps: 0, done: 0, failed: 0, errored: 0, timeout: 0, non2xx: 0 };
  for await (const line of createInterface({ input: createReadStream(outFile), crlfDelay: Infinity })) {
    let m = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(line);
    if (m) summary.qps = Number(m[3]);
    m =
      /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
        line,
      );
    if (m)
      Object.assign(summary, {
        done: Number(m[3]),
        failed: Number(m[5]),
        errored: Number(m[6]),
        timeout: Number(m[7]),
      });
    m = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(line);
    if (m) summary.non2xx = Number(m[2]) + Number(m[3]) + Number(m[4]);
  }
  const lat = [];
  if (logFile !== null) {
    for await (const line of createInterface({ input: createReadStream(logFile), crlfDelay: Infinity })) {
      const f = line.split('\t');
      if (f[1] === '200') lat.push(Number(f[2]) / 1e6);
    }
  }
  const sorted = Float64Array.from(lat).sort();
  const n = sorted.length;
  const pct = (q) => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] * 1000);
  const avg = n === 0 ? NaN : (sorted.reduce((a, b) => a + b, 0) / n) * 1000;
  return {
    qps: summary.qps,
    sent: summary.done,
    lost: summary.failed + summary.errored + summary.timeout,
    avgMs: avg,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    p999Ms: pct(0.999),
    maxMs: n === 0 ? NaN : sorted[n - 1] * 1000,
    nxPct: NaN,
    otherRcodes: summary.non2xx > 0 ? `HTTP non-2xx:${summary.non2xx}` : '',
    perQueryLines: n,
    wrong: null,
  };
}
