// Running dnsperf 2.10 and reading what it prints. dnsperf 2.10 reports only the average latency, so the
// percentiles come from its per-query lines (`-v`: "> RCODE NAME TYPE SECONDS", or "> T NAME TYPE" for a query that
// timed out), read as a stream.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

import { runTimed } from './proc.mjs';

/**
 * Runs dnsperf pinned to `cpu` (lib/proc.mjs runTimed: its CPU from bash's `times`). Resolves with
 * { code, cpuSeconds }. Bounded: dnsperf's own -l plus a kill timer. With `fifo`, under SCHED_FIFO (--fifo).
 */
export function runDnsperf({ cpu, args, outFile, limitSeconds, fifo = false }) {
  return runTimed({ cpu, cmd: 'dnsperf', args, outFile, limitSeconds, fifo });
}

/**
 * Reads a dnsperf output file. With `expect` (a function from a query name to the rcode it must get, or null for
 * no expectation), per-query lines are checked and counted as wrong when another rcode came back.
 */
export async function readDnsperf(file, expect = null) {
  const lat = [];
  const rcodes = {};
  const summary = {};
  let wrong = 0;
  let timeouts = 0;
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.startsWith('> ')) {
      const f = line.split(' ');
      if (f[1] === 'T') {
        timeouts++;
        continue;
      }
      lat.push(Number(f[f.length - 1]));
      if (expect !== null) {
        const want = expect(f[2]);
        if (want !== null && want !== f[1]) wrong++;
      }
      continue;
    }
    const t = line.trim();
    const num = (prefix) => (t.startsWith(prefix) ? Number(t.slice(prefix.length).trim().split(/\s+/)[0]) : null);
    for (const [prefix, key] of [
      ['Queries sent:', 'sent'],
      ['Queries completed:', 'completed'],
      ['Queries lost:', 'lost'],
      ['Queries per second:', 'qps'],
      ['Average Latency (s):', 'avg'],
      ['Run time (s):', 'runtime'],
    ]) {
      const v = num(prefix);
      if (v !== null) summary[key] = v;
    }
    if (t.startsWith('Response codes:')) {
      for (const m of t.slice('Response codes:'.length).matchAll(/([A-Z]+) (\d+)/g)) rcodes[m[1]] = Number(m[2]);
    }
  }
  const sorted = Float64Array.from(lat).sort();
  const n = sorted.length;
  // Nearest rank: the smallest latency with at least q of the answers at or below it.
  const pct = (q) => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] * 1000);
  const total = Object.values(rcodes).reduce((a, b) => a + b, 0) || 1;
  return {
    qps: summary.qps ?? 0,
    sent: summary.sent ?? 0,
    completed: summary.completed ?? 0,
    lost: summary.lost ?? 0,
    avgMs: (summary.avg ?? NaN) * 1000,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    p999Ms: pct(0.999),
    maxMs: n === 0 ? NaN : sorted[n - 1] * 1000,
    nxPct: (100 * (rcodes.NXDOMAIN ?? 0)) / total,
    otherRcodes: Object.entries(rcodes)
      .filter(([k]) => k !== 'NOERROR' && k !== 'NXDOMAIN')
      .map(([k, v]) => `${k}:${v}`)
      .join(','),
    perQueryLines: n + timeouts,
    wrong: expect === null ? null : wrong,
  };
}
