/**
 * How long any one wait in a test may take before it is called a hang: a net, not a measure. It is far above what
 * the slowest wait takes on a busy 2-core machine (a list poll with a worker thread, a daemon's start), so a loaded
 * machine slows the suite without failing it; speed is measured by the benchmarks (`npm run bench`).
 */
export const HANG_MS = 60_000;

/** `p`, or a rejection naming `what` once HANG_MS have passed without it settling: every wait is bounded. */
export function within<T>(p: Promise<T>, what = 'operation', ms = HANG_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
