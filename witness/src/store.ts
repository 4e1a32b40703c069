/**
 * What a witness keeps on disk: the latest checkpoint it cosigned for each log (tlog-witness: persisted before the
 * answer), and evidence of misbehaviour. Every file is written to a temp file, fsynced and renamed, and its folder
 * fsynced, so a crash leaves the old checkpoint or the new one, never a mix or nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** tlog-witness: the lower-case hex SHA-256 of the origin names a log in the monitoring path. */
export function originHash(origin: string): string {
  return createHash('sha256').update(origin, 'utf8').digest('hex');
}

/** Two signed checkpoints that cannot both be true, and the request that brought the second. */
export interface Evidence {
  readonly origin: string;
  /** `split-view`: same size, two roots (proof of a fork); `inconsistent`: the proof to the new one failed. */
  readonly kind: 'split-view' | 'inconsistent';
  readonly reason: string;
  /** The checkpoint the witness had cosigned (note text with signatures). */
  readonly cosigned: string;
  /** The checkpoint submitted (note text with signatures). */
  readonly submitted: string;
  /** The whole add-checkpoint body. */
  readonly request: string;
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Writes `bytes` to `path` atomically: temp file in the same folder, fsync, rename, fsync the folder. */
export async function writeAtomic(dir: string, name: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = join(dir, `.tmp-${randomBytes(6).toString('hex')}`);
  const h = await open(tmp, 'wx', 0o600);
  try {
    await h.writeFile(bytes);
    await h.sync();
  } finally {
    await h.close();
  }
  try {
    await rename(tmp, join(dir, name));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

export class WitnessStore {
  readonly dir: string;
  readonly #checkpoints: string;
  readonly #evidence: string;
  readonly #maxEvidence: number;

  constructor(dir: string, maxEvidencePerLog: number) {
    this.dir = dir;
    this.#checkpoints = join(dir, 'checkpoints');
    this.#evidence = join(dir, 'evidence');
    this.#maxEvidence = maxEvidencePerLog;
  }

  /** Makes the folders (mode 0700) and removes temp files a crash left. */
  async init(): Promise<void> {
    for (const d of [this.dir, this.#checkpoints, this.#evidence]) await mkdir(d, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.#checkpoints)) {
      if (name.startsWith('.tmp-')) await unlink(join(this.#checkpoints, name));
    }
  }

  /** The latest cosigned checkpoint of a log (note bytes), or undefined when it never cosigned one. */
  async load(origin: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(join(this.#checkpoints, originHash(origin))));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async save(origin: string, note: Uint8Array): Promise<void> {
    await writeAtomic(this.#checkpoints, originHash(origin), note);
  }

  /**
   * Keeps evidence as one JSON file under `evidence/<origin hash>/`. Returns its path, or undefined when the log
   * already has `maxEvidencePerLog` files (the earliest evidence is what matters; the caller logs the rest).
   */
  async saveEvidence(evidence: Evidence, now: number): Promise<string | undefined> {
    const dir = join(this.#evidence, originHash(evidence.origin));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const existing = (await readdir(dir)).filter((n) => n.endsWith('.json'));
    if (existing.length >= this.#maxEvidence) return undefined;
    const stamp = new Date(now * 1000).toISOString().replace(/[-:]/g, '').replace('.000', '');
    const name = `${stamp}-${evidence.kind}-${randomBytes(3).toString('hex')}.json`;
    await writeAtomic(
      dir,
      name,
      `${JSON.stringify({ time: new Date(now * 1000).toISOString(), ...evidence }, null, 2)}\n`,
    );
    return join(dir, name);
  }
}
