/**
 * V8's memory saver mode, turned on at start where the V8 has it (Node 24's V8 13): the collector then gives back
 * the heap pages it keeps for reuse and grows the heap in smaller steps. Under Node 24 a hashwalld process held
 * 90-109 MiB of anonymous memory at the end of the bench's saturation load without it and 77-78 MiB with it (the
 * V8 heap's pages 27 MiB instead of 39-58), its CPU per saturated query the same within 2% (daemon/README.md,
 * "Memory: V8's memory saver under Node 24"; bench/README.md, "Memory saver under Node 24").
 *
 * Node 20's V8 (11.3) has no such flag, and a `node` given one it does not know refuses to start, so the flag is
 * set here at run time, not on the `hashwalld` command's first line with the others. An operator who passes
 * `--memory-saver-mode` or `--no-memory-saver-mode` to node on its command line (NODE_OPTIONS takes no such flag)
 * decides.
 */
import v8 from 'node:v8';

/** The V8 major version that has the flag: V8 13 (Node 24); earlier ones are left alone. */
const FIRST_V8_MAJOR = 13;
const FLAG = 'memory-saver-mode';

/**
 * Whether to turn the memory saver on: the V8 (`process.versions.v8`) is recent enough, and the node command line
 * (`process.execArgv`) names neither the flag nor its negation.
 */
export function memorySaverWanted(v8Version: string, execArgv: readonly string[]): boolean {
  const major = Number(v8Version.split('.')[0]);
  if (!Number.isInteger(major) || major < FIRST_V8_MAJOR) return false;
  return !execArgv.some((arg) => /^--(no-)?memory[-_]saver[-_]mode(=|$)/.test(arg));
}

/** Turns the memory saver on when memorySaverWanted() says so; returns whether it did. */
export function applyMemorySaver(): boolean {
  if (!memorySaverWanted(process.versions.v8, process.execArgv)) return false;
  v8.setFlagsFromString(`--${FLAG}`);
  return true;
}
