// Preloaded into every Node process of the bench (`node --import bench/lib/loop-delay.mjs ...`: the echo, the
// forwarder, hashwalld and, through cluster's execArgv, its workers): the event-loop delay and the collector's
// pauses of the process, window by window.
//
// An event-loop delay histogram (perf_hooks.monitorEventLoopDelay, a 1 ms libuv timer: each sample is the time
// between two of its ticks, so a loop that never stalls records ~1 ms and a stall of X ms records ~1 + X) and the
// `gc` performance entries (each collection's kind and duration). On SIGUSR2 the figures since the last SIGUSR2
// (or the start) are appended as one JSON line to $HW_BENCH_LOOP_DIR/loop-<pid>.jsonl and both are reset: the
// bench signals before and after each load and reads the line. Nothing is written without $HW_BENCH_LOOP_DIR.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, constants } from 'node:perf_hooks';

const dir = process.env.HW_BENCH_LOOP_DIR;
if (dir) {
  const RESOLUTION_MS = 1;
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  const gc = { minor: 0, major: 0, other: 0, totalMs: 0, maxMs: 0, maxKind: '' };
  const kindOf = (k) =>
    k === constants.NODE_PERFORMANCE_GC_MINOR ? 'minor' : k === constants.NODE_PERFORMANCE_GC_MAJOR ? 'major' : 'other';
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = kindOf(e.detail?.kind ?? e.kind);
      gc[kind]++;
      gc.totalMs += e.duration;
      if (e.duration > gc.maxMs) {
        gc.maxMs = e.duration;
        gc.maxKind = kind;
      }
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  let since = performance.now();
  process.on('SIGUSR2', () => {
    const ms = (ns) => ns / 1e6;
    const now = performance.now();
    const line = {
      pid: process.pid,
      seconds: (now - since) / 1000,
      resolutionMs: RESOLUTION_MS,
      samples: h.count,
      // The delay beyond the timer's own period.
      p50Ms: Math.max(0, ms(h.percentile(50)) - RESOLUTION_MS),
      p99Ms: Math.max(0, ms(h.percentile(99)) - RESOLUTION_MS),
      p999Ms: Math.max(0, ms(h.percentile(99.9)) - RESOLUTION_MS),
      maxMs: Math.max(0, ms(h.max) - RESOLUTION_MS),
      gc: { ...gc },
    };
    appendFileSync(join(dir, `loop-${process.pid}.jsonl`), JSON.stringify(line) + '\n');
    h.reset();
    Object.assign(gc, { minor: 0, major: 0, other: 0, totalMs: 0, maxMs: 0, maxKind: '' });
    since = now;
  });
}
