/**
 * Settings of the Node runtime that the daemon makes itself, first thing in main() (tuneRuntime), for every role
 * (one process, the primary, its DNS workers): those the first line of dist/main.js cannot carry, for want of a flag
 * or of room (that line, 254 of the 256 octets Linux reads, holds the collector's flags: daemon/README.md, "Running
 * it"). Each is process-wide and made once; daemon/test/runtime.test.ts checks each alone and the daemon's start.
 */
import { Buffer } from 'node:buffer';
import { setFlagsFromString } from 'node:v8';

/**
 * Node's pool for small Buffers, sized as Node 20 sizes it. `Buffer.allocUnsafe()` and `Buffer.from()` cut a
 * Buffer under half the pool's size from a shared ArrayBuffer, a new one when it is used up. Node 24 made that pool
 * 64 KiB (Node 20: 8 KiB). At saturation the query path takes a pool's worth in tens of milliseconds, about the time
 * between two scavenges of the daemon's small young generation (`--max-semi-space-size=2`), so most pools are alive
 * at two scavenges, are promoted, and are freed only by a full collection: a bare `node:dgram` echo saturated for
 * 16 s held 26 MB of them at the end with 64 KiB pools and 0.2 MB with 8 KiB ones (Node 24), and hashwalld made a
 * full collection every 6-8 s, one in 16 s with 8 KiB pools (bench/README.md, "Node 24's Buffer pool").
 * The cached path takes nothing from the pool; the upstream path does (its question, the answer's entry).
 */
export const SMALL_BUFFER_POOL_BYTES = 8 * 1024;

/** Makes the pools cut after this call SMALL_BUFFER_POOL_BYTES long (the one in use is used up first). */
export function useSmallBufferPool(): void {
  Buffer.poolSize = SMALL_BUFFER_POOL_BYTES;
}

/**
 * V8's middle compiler, Maglev, off: a function goes from the interpreter and the baseline code straight to TurboFan,
 * as under Node 20, whose V8 has Maglev off by default (Node 22 and later turn it on). The query path is a few
 * functions run millions of times, which TurboFan compiles either way; what Maglev adds is code of its own for every
 * function that gets warm, and the heap pages that code takes. Under Node 24, the built daemon against the same build
 * without the call, alternated (bench/README.md, "Maglev off under Node 24"): anonymous memory after the bench's
 * warm-up and saturation 84-85 MiB against 91-92 (V8's pages 35 MiB against 38.5-39); the saturated pairs and the
 * latency tail unchanged. V8 reads the flag each time it picks a tier for a function, so it holds for every function
 * that gets warm after the call, in this process and its worker threads (V8's flags are the process's); nothing
 * under a V8 that has it off.
 */
export function withoutMaglev(): void {
  setFlagsFromString('--no-maglev');
}

/** All of the above, once, before anything else runs. */
export function tuneRuntime(): void {
  useSmallBufferPool();
  withoutMaglev();
}
