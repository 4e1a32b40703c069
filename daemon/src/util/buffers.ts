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
import { Buffer } from 'node:buffer';

/** The pool size the daemon runs with: Node 20's default. */
export const SMALL_BUFFER_POOL_BYTES = 8 * 1024;

/** Makes the pools cut after this call SMALL_BUFFER_POOL_BYTES long (the one in use is used up first). */
export function useSmallBufferPool(): void {
  Buffer.poolSize = SMALL_BUFFER_POOL_BYTES;
}
