// The bench's side of loop-delay.mjs: ask each Node process for its event-loop delay and collector figures since
// the last mark, and put the processes of one row together.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { sleep } from './proc.mjs';

const linesOf = (file) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

/**
 * Signals every pid (SIGUSR2) and waits (at most `timeoutMs`) for each to append its line to `dir`. Resolves with
 * the lines read (a process that did not answer in time, or is gone, is left out).
 */
export async function markLoop(pids, dir, timeoutMs = 3000) {
  const before = new Map();
  for (const pid of pids) {
    before.set(pid, linesOf(join(dir, `loop-${pid}.jsonl`)).length);
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {
      before.delete(pid); // gone
    }
  }
  const out = new Map();
  const until = performance.now() + timeoutMs;
  while (out.size < before.size && performance.now() < until) {
    for (const [pid, n] of before) {
      if (out.has(pid)) continue;
      const lines = linesOf(join(dir, `loop-${pid}.jsonl`));
      if (lines.length > n) out.set(pid, JSON.parse(lines[lines.length - 1]));
    }
    if (out.size < before.size) await sleep(20);
  }
  return [...out.values()];
}

/**
 * One row's figures from its processes' lines: the worst process's delay (p99, p99.9, max) and the collector's
 * pauses summed (the longest one kept). null when no process answered.
 */
export function loopSummary(lines) {
  if (lines.length === 0) return null;
  const max = (k) => Math.max(...lines.map((l) => l[k]));
  const sum = (k) => lines.reduce((a, l) => a + l.gc[k], 0);
  const worst = lines.reduce((a, l) => (l.gc.maxMs > a.gc.maxMs ? l : a));
  return {
    processes: lines.length,
    p99Ms: max('p99Ms'),
    p999Ms: max('p999Ms'),
    maxMs: max('maxMs'),
    gc: {
      minor: sum('minor'),
      major: sum('major'),
      other: sum('other'),
      totalMs: sum('totalMs'),
      maxMs: worst.gc.maxMs,
      maxKind: worst.gc.maxKind,
    },
  };
}
