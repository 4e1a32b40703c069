/** The built daemon (`node daemon/dist/main.js --config FILE`) as a child process, for tests of the real binary. */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { plainCommand } from '../../../test/helpers/tools.ts';

export const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'main.js');

export interface Child {
  readonly proc: ChildProcess;
  readonly lines: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
  /** What the process wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the first log line `pred` accepts (seen already or to come), or null after `timeoutMs`. */
  waitFor(pred: (l: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown> | null>;
  stop(): Promise<void>;
}

/**
 * The built daemon (`node daemon/dist/main.js --config FILE`) as a child process, its JSON log lines collected. It
 * runs as a user runs it: without the test runner's NODE_OPTIONS (test/helpers/tools.ts, plainCommand, says what tap
 * adds there and what it costs a process at start and in each of its worker threads).
 */
export function startChild(configFile: string, node = process.execPath, env: NodeJS.ProcessEnv = process.env): Child {
  return startCommand(node, [MAIN, '--config', configFile], env);
}

/** As startChild, for a command that runs the daemon (`file args`), such as the `hashwalld` command. */
export function startCommand(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Child {
  const proc = spawn(...plainCommand(file, args), { stdio: ['ignore', 'pipe', 'pipe'], env });
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] =
    [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    lines.push(obj);
    for (const w of [...waiters]) {
      if (w.pred(obj)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(obj);
      }
    }
  });
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // After 'exit', the last log lines may still be in the pipe: wait for 'close' (the pipes read to the end), or 1 s
  // when something else (a worker that outlived its primary) holds them open.
  const closed = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      const t = setTimeout(() => resolve(code), 1000);
      void closed.then(() => {
        clearTimeout(t);
        resolve(code);
      });
    }),
  );
  return {
    proc,
    lines,
    exited,
    stderr: () => stderr,
    waitFor(pred, timeoutMs) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => {
        const w = {
          pred,
          resolve: (l: Record<string, unknown>) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          resolve(null);
        }, timeoutMs);
        waiters.push(w);
      });
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
