/**
 * The CPU time (user and system, in ms) this process spends in `fn`. A test that must show that something does no
 * real work (a refusal before any parsing, a worst case that stays cheap) bounds this rather than the wall clock:
 * other processes on a busy machine stretch the wall time of a call, not the CPU time it uses.
 */
export function cpuMsOf<T>(fn: () => T): { readonly value: T; readonly ms: number } {
  const start = process.cpuUsage();
  const value = fn();
  const used = process.cpuUsage(start);
  return { value, ms: (used.user + used.system) / 1000 };
}
