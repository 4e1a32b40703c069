/**
 * Loading the configuration: read (capped), parse YAML, validate with the schema, then the checks that span keys
 * or need files (trusted keys, list hash keys and their permissions). Every problem is reported with its key path;
 * all problems at once, not just the first. Relative paths are taken from the config file's folder.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';

import {
  ListKey,
  TrustStore,
  parseListKey,
  parsePublicKey,
  parsePublicKeyFile,
  type MinisignPublicKey,
} from '@hashwall/format';
import cron from 'node-cron';
import { parseDocument } from 'yaml';

import { parseHostPort } from '../util/net.js';
import { configSchema, type Config, type ListConfig } from './schema.js';
import { readTemplate } from './stop-page-template.js';

/** A config file larger than this is refused before it is parsed. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

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

/** A configured list with its keys read and checked. */
export interface ResolvedList {
  readonly config: ListConfig;
  readonly trust: TrustStore;
  /** Absent for a list published in public mode (its key is in the list's header). */
  readonly listKey?: ListKey;
}

/** The encrypted listeners' certificate chain and key (PEM), as read when the settings were loaded. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface Settings {
  readonly config: Config;
  readonly lists: readonly ResolvedList[];
  /** Read from tls.certFile and tls.keyFile when dot or doh listens; null otherwise. */
  readonly tls: TlsMaterial | null;
  /** The file the settings came from, or "<inline>". */
  readonly source: string;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

type Parsed = ReturnType<typeof configSchema.parse>;

/** Validates a parsed YAML value; `baseDir` resolves relative paths. */
export function settingsFrom(raw: unknown, baseDir: string, source = '<inline>'): Settings {
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new ConfigError(
      source,
      parsed.error.issues.map((i) => {
        const where = i.code === 'unrecognized_keys' ? [...i.path, i.keys.join(', ')] : i.path;
        const what = i.code === 'unrecognized_keys' ? 'unknown key' : i.message;
        return `${pathOf(where)}: ${what}`;
      }),
    );
  }
  const config = parsed.data;
  const problems: string[] = [];
  const at = (path: string, message: string): void => {
    problems.push(`${path}: ${message}`);
  };
  config.stateDir = resolve(baseDir, config.stateDir);

  const b = config.blocking;
  if (b.mode === 'stop-page' && b.stopPageIpv4.length + b.stopPageIpv6.length === 0) {
    at('blocking.stopPageIpv4', 'mode stop-page needs at least one stop page address');
  }
  if (b.partial === 'steer' && b.proxyIpv4.length + b.proxyIpv6.length === 0) {
    at('blocking.proxyIpv4', 'partial: steer needs at least one proxy address');
  }
  b.allowlist = b.allowlist.map((n) => n.toLowerCase().replace(/\.$/, ''));
  const sp = config.stopPage;
  if (sp.templateFile !== '') {
    sp.templateFile = resolve(baseDir, sp.templateFile);
    try {
      readTemplate(sp.templateFile);
    } catch (err) {
      at('stopPage.templateFile', (err as Error).message);
    }
  }
  for (const id of Object.keys(sp.listNames)) {
    if (!config.lists.some((l) => l.id === id)) at(`stopPage.listNames.${id}`, 'no list with this id is configured');
  }
  const hr = config.hitReport;
  if (hr.file !== '') hr.file = resolve(baseDir, hr.file);
  if (hr.enabled && hr.file === '' && !hr.endpoint) {
    at('hitReport.file', 'the hit report is enabled but goes nowhere: set file, or endpoint: true');
  }
  if (hr.enabled && hr.endpoint && config.metrics.listen === '') {
    at('hitReport.endpoint', 'the endpoint is served on the metrics listener, and metrics.listen is empty');
  }
  if (new Set(config.listen).size !== config.listen.length) at('listen', 'an address is listed twice');
  // TCP ports: plain TCP, DoT and DoH may not share one.
  const streamPorts = new Map<string, string>();
  const claim = (key: string, specs: readonly string[], defaultPort: number): void => {
    specs.forEach((spec, i) => {
      const hp = parseHostPort(spec, defaultPort);
      const id = `${hp.host}:${hp.port}`;
      const other = streamPorts.get(id);
      if (hp.port !== 0 && other !== undefined) at(`${key}.${i}`, `${spec} is already used by ${other}`);
      else streamPorts.set(id, key);
      if (hp.port === 0 && key !== 'listen' && config.workers !== 1) {
        at(`${key}.${i}`, 'port 0 with several workers: give the port (every worker must bind the same one)');
      }
    });
  };
  claim('listen', config.listen, 53);
  claim('dot.listen', config.dot.listen, 853);
  claim('doh.listen', config.doh.listen, 443);
  const tls = readTls(config, baseDir, at);
  if (config.cache.minTtlSeconds > config.cache.maxTtlSeconds) at('cache.minTtlSeconds', 'is above maxTtlSeconds');

  const lists: ResolvedList[] = [];
  const ids = new Set<string>();
  config.lists.forEach((l, n) => {
    const p = `lists.${n}`;
    if (ids.has(l.id)) at(`${p}.id`, `list "${l.id}" is configured twice`);
    ids.add(l.id);
    if (l.retryMinMs > l.retryMaxMs) at(`${p}.retryMinMs`, 'is above retryMaxMs');
    if (!cron.validate(l.schedule)) at(`${p}.schedule`, `"${l.schedule}" is not a cron expression`);
    if (l.canary !== undefined) l.canary = l.canary.toLowerCase().replace(/\.$/, '');
    const keys: MinisignPublicKey[] = [];
    l.keys.forEach((k, i) => {
      try {
        keys.push(parsePublicKey(k));
      } catch (err) {
        at(`${p}.keys.${i}`, `not a minisign public key (${(err as Error).message})`);
      }
    });
    l.keyFiles = l.keyFiles.map((f) => resolve(baseDir, f));
    l.keyFiles.forEach((f, i) => {
      try {
        keys.push(parsePublicKeyFile(readFileSync(f)).publicKey);
      } catch (err) {
        at(`${p}.keyFiles.${i}`, `cannot read ${f}: ${(err as Error).message}`);
      }
    });
    if (l.keys.length + l.keyFiles.length === 0) at(`${p}.keys`, 'at least one trusted key is needed');
    if (l.threshold > l.keys.length + l.keyFiles.length) at(`${p}.threshold`, 'is above the number of trusted keys');
    let listKey: ListKey | undefined;
    if (l.hashKeyFile !== undefined && l.hashKey !== undefined)
      at(`${p}.hashKey`, 'give hashKey or hashKeyFile, not both');
    if (l.hashKeyFile !== undefined) {
      l.hashKeyFile = resolve(baseDir, l.hashKeyFile);
      try {
        const st = statSync(l.hashKeyFile);
        if ((st.mode & 0o077) !== 0) {
          at(`${p}.hashKeyFile`, `${l.hashKeyFile} is readable by group or others: chmod 600 it`);
        } else {
          listKey = parseListKey(readFileSync(l.hashKeyFile));
        }
      } catch (err) {
        at(`${p}.hashKeyFile`, `cannot read ${l.hashKeyFile}: ${(err as Error).message}`);
      }
    } else if (l.hashKey !== undefined) {
      listKey = new ListKey(l.hashKey.id, Buffer.from(l.hashKey.key, 'hex'));
    }
    if (problems.length === 0) {
      try {
        const trust = new TrustStore([[l.id, { keys, threshold: l.threshold }]]);
        lists.push(listKey ? { config: l, trust, listKey } : { config: l, trust });
      } catch (err) {
        at(`${p}.keys`, (err as Error).message);
      }
    }
  });
  if (problems.length > 0) throw new ConfigError(source, problems);
  // Lists are frozen with the config; their TrustStore and ListKey objects are immutable already.
  deepFreeze(config);
  return Object.freeze({ config, lists: Object.freeze(lists), tls, source });
}

/**
 * The certificate chain and key for dot and doh, checked the way the listeners will use them (a TLS context is
 * made from them: a key that does not match the certificate fails here, with its key path). Null when neither
 * listens.
 */
function readTls(config: Parsed, baseDir: string, at: (path: string, message: string) => void): TlsMaterial | null {
  const t = config.tls;
  if (t.certFile !== '') t.certFile = resolve(baseDir, t.certFile);
  if (t.keyFile !== '') t.keyFile = resolve(baseDir, t.keyFile);
  if (config.dot.listen.length + config.doh.listen.length === 0) return null;
  if (t.certFile === '') at('tls.certFile', 'dot or doh listens: a certificate chain (PEM) is needed');
  if (t.keyFile === '') at('tls.keyFile', 'dot or doh listens: a private key (PEM) is needed');
  if (t.certFile === '' || t.keyFile === '') return null;
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readCapped(t.certFile);
  } catch (err) {
    at('tls.certFile', `cannot read ${t.certFile}: ${(err as Error).message}`);
    return null;
  }
  try {
    if ((statSync(t.keyFile).mode & 0o007) !== 0) {
      at('tls.keyFile', `${t.keyFile} is readable by others: chmod o-rwx it`);
      return null;
    }
    key = readCapped(t.keyFile);
  } catch (err) {
    at('tls.keyFile', `cannot read ${t.keyFile}: ${(err as Error).message}`);
    return null;
  }
  try {
    createSecureContext({ cert, key, minVersion: t.minVersion });
  } catch (err) {
    at('tls.certFile', `the certificate and key cannot be used together: ${(err as Error).message}`);
    return null;
  }
  return { cert, key };
}

/** A PEM file larger than this is refused (a long chain is a few KiB). */
const MAX_PEM_BYTES = 1024 * 1024;

function readCapped(path: string): Buffer {
  if (statSync(path).size > MAX_PEM_BYTES) throw new Error(`over ${MAX_PEM_BYTES} bytes`);
  return readFileSync(path);
}

/** Parses YAML text strictly (duplicate keys are errors). */
export function settingsFromYaml(text: string, baseDir: string, source = '<inline>'): Settings {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, strict: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => `(YAML) ${e.message.split('\n')[0]}`),
    );
  }
  return settingsFrom(doc.toJS({ maxAliasCount: 100 }), baseDir, source);
}

/** Reads and validates a config file. Throws ConfigError. */
export function loadSettings(path: string): Settings {
  const file = resolve(path);
  let text: string;
  try {
    const st = statSync(file);
    if (st.size > MAX_CONFIG_BYTES) throw new Error(`over ${MAX_CONFIG_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`(file) ${(err as Error).message}`]);
  }
  return settingsFromYaml(text, dirname(file), file);
}

/** The effective configuration for the start-up log: every value, secrets masked. */
export function effectiveConfig(settings: Settings): unknown {
  return JSON.parse(
    JSON.stringify(settings.config, (key, value: unknown) =>
      key === 'hashKey' && value ? { id: (value as { id: string }).id, key: '***' } : value,
    ),
  );
}
