/**
 * A folder for temp files that need not reach a disk: the tmpfs at /dev/shm where the machine has one, else the
 * system's temp folder. A test that publishes or commits many times spends seconds of CPU in the kernel on the
 * fsyncs each write makes (as the code under test must) when its files are on a disk, and none on tmpfs; what such
 * a test checks is the bytes written, not that they survive a power cut.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { tmpdir } from 'node:os';

function memoryTmp(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    if (statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    // no /dev/shm, or not ours to write: the system's temp folder
  }
  return tmpdir();
}

export const MEMORY_TMP = memoryTmp();
