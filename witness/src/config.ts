/**
 * The witness's configuration: YAML in, one validated, frozen object out. Every problem is reported with its key
 * path, all at once; relative paths are taken from the config file's folder. Documented key by key in
 * examples/hashwall-witness.yaml.
 */
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';

import { NoteSecretKey, parseLogKey, type NoteVerifier } from '@hashwall/tlog';
import { parseDocument } from 'yaml';
import { z } from 'zod';

/** A config file larger than this is refused before it is parsed. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** A key file larger than this is refused before it is parsed. */
const MAX_KEY_FILE_BYTES = 4096;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  /** Each problem as "key.path: reason". */
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    super(`invalid configuration ${source}:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** "192.0.2.1:7380" or "[2001:db8::1]:7380": IP literals only, and a port (0 picks a free one). */
export function parseListen(s: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined) throw new Error(`"${s}" is not <IP>:<port> (IPv6 in brackets)`);
  const family = isIP(host);
  if (family === 0 || (m[1] !== undefined) !== (family === 6)) throw new Error(`"${s}": not an IP address`);
  if (port > 65535) throw new Error(`"${s}": port out of range`);
  return { host, port };
}

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

const logSchema = z.strictObject({
  /** The checkpoint origin line of the log (tlog-checkpoint), e.g. `lists.example/demo`. */
  origin: z
    .string()
    .min(1)
    .max(255)
    .refine((s) => !/[\n\r]/.test(s), 'an origin is one line'),
  /** The log's Ed25519 note keys (vkeys, `hashwall-signer keygen --log-key` prints one); more than one while a key is replaced. */
  keys: z.array(z.string()).min(1).max(8),
});

export const configSchema = z.strictObject({
  /** Where POST /add-checkpoint and GET /<origin hash>/checkpoint are served. */
  listen: z
    .string()
    .default('127.0.0.1:7380')
    .superRefine((s, ctx) => {
      try {
        parseListen(s);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
  /** The witness's secret note key file (`hashwall-witness keygen`), mode 0600. `--key` overrides it. */
  key: z.string().min(1).optional(),
  /** The latest cosigned checkpoint of each log, and the evidence folder. */
  stateDir: z.string().min(1).default('/var/lib/hashwall-witness'),
  /** The logs this witness cosigns; a checkpoint of any other origin is answered 404. */
  logs: z.array(logSchema).min(1).max(10_000),
  limits: z
    .strictObject({
      /** Bytes of an add-checkpoint body (413 above). */
      maxBodyBytes: z
        .number()
        .int()
        .min(1024)
        .max(1024 * 1024)
        .default(64 * 1024),
      /** Bytes of a request's headers (node's maxHeaderSize; 431 above). */
      maxHeaderBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024)
        .default(8 * 1024),
      /** Whole request, headers and body. */
      requestTimeoutMs: ms(100, 300_000).default(10_000),
      headersTimeoutMs: ms(100, 300_000).default(5_000),
      keepAliveTimeoutMs: ms(100, 300_000).default(5_000),
      maxConnections: z.number().int().min(1).max(100_000).default(256),
      /** Evidence files kept per log; the oldest are kept, later ones counted and logged. */
      maxEvidencePerLog: z.number().int().min(1).max(100_000).default(100),
    })
    .prefault({}),
  logging: z.strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') }).prefault({}),
  shutdown: z.strictObject({ drainTimeoutMs: ms(0, 60_000).default(5_000) }).prefault({}),
});

export type Config = z.infer<typeof configSchema>;

export interface WitnessLog {
  readonly origin: string;
  readonly keys: readonly NoteVerifier[];
}

export interface Settings {
  readonly config: Config;
  readonly key: NoteSecretKey;
  readonly logs: ReadonlyMap<string, WitnessLog>;
  /** The file the settings came from. */
  readonly source: string;
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Reads a secret note key file: one skey line, mode 0600. */
export function readKeyFile(path: string): NoteSecretKey {
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) throw new Error(`${path} is readable by group or others: chmod 600 it`);
  if (st.size > MAX_KEY_FILE_BYTES) throw new Error(`${path} is over ${MAX_KEY_FILE_BYTES} bytes`);
  const text = readFileSync(path, 'utf8');
  return NoteSecretKey.parse(text.endsWith('\n') ? text.slice(0, -1) : text);
}

/** Validates a parsed YAML value; `baseDir` resolves relative paths; `keyFile` overrides `key`. */
export function settingsFrom(raw: unknown, baseDir: string, source: string, keyFile?: string): Settings {
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new ConfigError(
      source,
      parsed.error.issues.map((i) => {
        const where = i.code === 'unrecognized_keys' ? [...i.path, i.keys.join(', ')] : i.path;
        return `${pathOf(where)}: ${i.code === 'unrecognized_keys' ? 'unknown key' : i.message}`;
      }),
    );
  }
  const config = parsed.data;
  const problems: string[] = [];
  config.stateDir = resolve(baseDir, config.stateDir);
  let key: NoteSecretKey | undefined;
  const keyPath = keyFile ?? (config.key === undefined ? undefined : resolve(baseDir, config.key));
  if (keyPath === undefined) {
    problems.push('key: the witness key file is required (here or with --key)');
  } else {
    config.key = keyPath;
    try {
      key = readKeyFile(keyPath);
    } catch (err) {
      problems.push(`key: cannot use ${keyPath}: ${(err as Error).message}`);
    }
  }
  const logs = new Map<string, WitnessLog>();
  config.logs.forEach((l, n) => {
    if (logs.has(l.origin)) problems.push(`logs.${n}.origin: "${l.origin}" is configured twice`);
    // tlog-checkpoint only recommends a URL without spaces ("go.sum database tree" is a real origin).
    if (l.origin.trim() !== l.origin) problems.push(`logs.${n}.origin: leading or trailing space`);
    const keys: NoteVerifier[] = [];
    l.keys.forEach((k, i) => {
      try {
        keys.push(parseLogKey(k));
      } catch (err) {
        problems.push(`logs.${n}.keys.${i}: not an Ed25519 note key (${(err as Error).message})`);
      }
    });
    logs.set(l.origin, { origin: l.origin, keys });
  });
  if (problems.length > 0 || key === undefined) throw new ConfigError(source, problems);
  return { config: deepFreeze(config), key, logs, source };
}

/** Reads, parses and validates a config file. ConfigError for every problem, with its key. */
export function loadSettings(path: string, keyFile?: string): Settings {
  const source = resolve(path);
  let text: string;
  try {
    const st = statSync(source);
    if (st.size > MAX_CONFIG_BYTES) throw new ConfigError(source, [`(file): over ${MAX_CONFIG_BYTES} bytes`]);
    text = readFileSync(source, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(source, [`(file): cannot read: ${(err as Error).message}`]);
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0)
    throw new ConfigError(
      source,
      doc.errors.map((e) => `(yaml): ${e.message}`),
    );
  return settingsFrom(doc.toJS(), dirname(source), source, keyFile === undefined ? undefined : resolve(keyFile));
}

/** The config as logged at start: the key file's path, never its content. */
export function effectiveConfig(settings: Settings): unknown {
  return { ...settings.config, witness: settings.key.cosigner().vkey };
}
