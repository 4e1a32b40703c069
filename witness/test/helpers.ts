// Shared helpers of the witness tests: temp dirs, logs (the tlog tests' TestLog), add-checkpoint bodies.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { MemoryTiles, entry } from '../../transparency-log/test/helpers.ts';
import { ORIGIN, TestLog } from '../../transparency-log/test/log-helpers.ts';
import { TileHashReader, formatAddCheckpoint, parseLogKey, type Hash } from '@hashwall/tlog';
import type { Test } from 'tap';

import { plainNode } from '../../test/helpers/tools.ts';
import { HANG_MS, within } from '../../test/helpers/within.ts';

export { ORIGIN, TestLog, entry };

export function tempDir(t: Test, prefix = 'hashwall-witness-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The consistency proof from `oldSize` to the log's current size, read from its tiles. */
export async function proofFrom(log: TestLog, oldSize: number, size = log.entries.length): Promise<Hash[]> {
  const tiles = new MemoryTiles();
  for (const [p, b] of log.files) if (p.startsWith('log/')) tiles.files.set(p.slice(4), b);
  return oldSize === 0 ? [] : new TileHashReader(tiles, size).consistencyProof(oldSize);
}

/** An add-checkpoint body for the log's checkpoint of `size` (the latest by default), from `oldSize`. */
export async function body(log: TestLog, oldSize: number, size = log.entries.length): Promise<Uint8Array> {
  const checkpoint = log.checkpoints.get(size);
  if (checkpoint === undefined) throw new Error(`no checkpoint of size ${size}`);
  return formatAddCheckpoint({ oldSize, proof: await proofFrom(log, oldSize, size), checkpoint });
}

/** The witness's view of a log: its origin and key. */
export function logsOf(...logs: TestLog[]): Map<string, { origin: string; keys: ReturnType<typeof parseLogKey>[] }> {
  return new Map(logs.map((l) => [ORIGIN, { origin: ORIGIN, keys: [parseLogKey(l.key.vkey)] }]));
}

/** The built witness command. */
export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

export interface Started {
  child: ChildProcess;
  url: string;
  /** The JSON lines it has printed so far: a line printed while answering may arrive after the answer. */
  lines: Record<string, unknown>[];
  /** The first line `match` accepts, once the witness has printed it (bounded by HANG_MS). */
  line(match: (l: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** Starts `hashwall-witness serve` and waits (bounded by HANG_MS) for its "listening" line. */
export async function startWitness(t: Test, config: string): Promise<Started> {
  const child = spawn(...plainNode(CLI, ['serve', '--config', config]), { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiting = new Set<() => void>();
  const line = (match: (l: Record<string, unknown>) => boolean, what: string) =>
    within(
      new Promise<Record<string, unknown>>((resolve) => {
        const check = () => {
          const found = lines.find(match);
          if (found === undefined) return;
          waiting.delete(check);
          resolve(found);
        };
        waiting.add(check);
        check();
      }),
      `the witness's line: ${what}`,
    );
  // 'close', not 'exit': after 'exit' the last lines may still be in the pipe.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let buffered = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line within ${HANG_MS} ms`)), HANG_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const parsed = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
        buffered = buffered.slice(nl + 1);
        lines.push(parsed);
        for (const check of waiting) check();
        if (parsed.msg === 'listening') {
          clearTimeout(timer);
          resolve(`http://127.0.0.1:${String(parsed.port)}/`);
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`exited ${code} before listening`)));
  });
  return { child, url, lines, line, exited };
}

/** Witness keys by name: each made once per test file by `keygen`, then copied (a process start saved each time). */
const witnessKeys = new Map<string, Promise<{ secret: Buffer; vkey: string }>>();

/**
 * A witness made as an operator would: `keygen` for its key (the first witness of that name in this test file;
 * later ones get a copy of that key), then a config (listen 127.0.0.1:0, state in its own folder) for the given
 * logs, plus `extra` YAML. Returns the config's path and the witness's cosigner key.
 */
export async function newWitness(
  t: Test,
  name: string,
  logs: readonly { origin: string; vkey: string }[],
  extra = '',
): Promise<{ dir: string; config: string; vkey: string }> {
  const dir = tempDir(t);
  const keyFile = join(dir, 'w.key');
  let made = witnessKeys.get(name);
  if (made === undefined) {
    made = promisify(execFile)(...plainNode(CLI, ['keygen', '--name', name, '--out', keyFile])).then(({ stdout }) => ({
      secret: readFileSync(keyFile),
      vkey: /cosigner key: (\S+)/.exec(stdout)![1]!,
    }));
    witnessKeys.set(name, made);
  }
  const { secret, vkey } = await made;
  if (!existsSync(keyFile)) writeFileSync(keyFile, secret, { mode: 0o600 });
  const config = join(dir, 'witness.yaml');
  const list = logs.map((l) => `  - origin: ${l.origin}\n    keys: ["${l.vkey}"]\n`).join('');
  writeFileSync(config, `listen: 127.0.0.1:0\nkey: w.key\nstateDir: state\nlogs:\n${list}${extra}`);
  return { dir, config, vkey };
}
