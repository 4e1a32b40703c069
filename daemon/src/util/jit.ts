/**
 * V8's middle compiler, Maglev, off: a function goes from the interpreter and the baseline code straight to TurboFan,
 * as under Node 20, whose V8 has Maglev off by default (Node 22 and later turn it on). The query path is a few
 * functions run millions of times, which TurboFan compiles either way; what Maglev adds is code of its own for every
 * function that gets warm, and the heap pages that code takes. Under Node 24, the built daemon against the same build
 * without the call, alternated (bench/README.md, "Maglev off under Node 24"): anonymous memory after the bench's
 * warm-up and saturation 84-85 MiB against 91-92 (V8's pages 35 MiB against 38.5-39); the saturated pairs and the
 * latency tail unchanged.
 *
 * Set at run time, first thing in main(): the first line of dist/main.js, which carries the daemon's other V8
 * flags, has no room left (daemon/README.md, "Running it"). V8 reads the flag each time it picks a tier for a
 * function, so it holds for every function that gets warm after the call, in this process and its worker threads
 * (V8's flags are the process's); daemon/test/jit.test.ts checks it.
 */
import { setFlagsFromString } from 'node:v8';

/** Turns Maglev off for every function that gets warm after this call (nothing under a V8 that has it off). */
export function withoutMaglev(): void {
  setFlagsFromString('--no-maglev');
}
