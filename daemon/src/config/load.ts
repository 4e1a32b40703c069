/**
 * Loading the configuration: read (capped), parse YAML, validate with the schema, then the checks that span keys
 * or need files (trusted keys, list hash keys and their permissions). Every problem is reported with its key path;
 * all problems at once, not just the first. Relative paths are taken from the config file's folder.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import {
  FormatError,
  ListKey,
  TOP_SITES_URL,
  TrustStore,
  parseGuardNames,
  parseListKey,
  parsePublicKey,
  parsePublicKeyFile,
  type GuardName,
  type KeyringAnchor,
  type MinisignPublicKey,
} from '@hashwall/format';
import { parseCosignerKey, parseLogKey } from '@hashwall/tlog';
import cron from 'node-cron';
import { parseDocument } from 'yaml';

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

/** SPEC.md 6: a list's release log as configured, its keys checked (vkey texts: plain data for a worker). */
export interface ResolvedLog {
  /** The checkpoint origin line. */
  readonly origin: string;
  /** The log's Ed25519 note key. */
  readonly key: string;
  /** The witnesses' cosigner keys. */
  readonly witnesses: readonly string[];
  readonly witnessThreshold: number;
}

/** A configured list with its keys read and checked. */
export interface ResolvedList {
  readonly config: ListConfig;
  /** The signing keys and threshold of a list trusted by plain keys; absent for one anchored on root keys. */
  readonly trust?: TrustStore;
  /** SPEC.md 5: the root keys and threshold of a list anchored on them (the keyrings give its signing keys). */
  readonly anchor?: KeyringAnchor;
  /** SPEC.md 6: the list's release log, when one is configured. */
  readonly log?: ResolvedLog;
  /** Absent for a list published in public mode (its key is in the list's header). */
  readonly listKey?: ListKey;
}

/** The names no list may block without being held (lists/hold.ts), each with where it comes from. */
export interface GuardSet {
  readonly names: readonly GuardName[];
  readonly maxChangePercent: number;
  readonly maxChangeCount: number;
}

export interface Settings {
  readonly config: Config;
  readonly lists: readonly ResolvedList[];
  /** The guard set: the bundled popular names, the operator's files, the allowlist. */
  readonly guard: GuardSet;
  /** The file the settings came from, or "<inline>". */
  readonly source: string;
}

/** Reads the bundled popular names (@hashwall/format's data/top-sites.txt). */
function topSites(): GuardName[] {
  return parseGuardNames(readFileSync(TOP_SITES_URL, 'utf8'), 'top-sites.txt');
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
  if (config.cache.minTtlSeconds > config.cache.maxTtlSeconds) at('cache.minTtlSeconds', 'is above maxTtlSeconds');

  const g = config.guard;
  const guardNames: GuardName[] = g.topSites ? topSites() : [];
  g.namesFiles = g.namesFiles.map((f) => resolve(baseDir, f));
  g.namesFiles.forEach((f, i) => {
    try {
      const st = statSync(f);
      if (st.size > MAX_CONFIG_BYTES) throw new Error(`over ${MAX_CONFIG_BYTES} bytes`);
      guardNames.push(...parseGuardNames(readFileSync(f, 'utf8'), f));
    } catch (err) {
      at(
        `guard.namesFiles.${i}`,
        err instanceof FormatError ? err.message : `cannot read ${f}: ${(err as Error).message}`,
      );
    }
  });
  b.allowlist.forEach((name, i) => guardNames.push({ name, from: `blocking.allowlist.${i}` }));
  const guard: GuardSet = {
    names: guardNames,
    maxChangePercent: g.maxChangePercent,
    maxChangeCount: g.maxChangeCount,
  };

  const lists: ResolvedList[] = [];
  const ids = new Set<string>();
  config.lists.forEach((l, n) => {
    const p = `lists.${n}`;
    if (ids.has(l.id)) at(`${p}.id`, `list "${l.id}" is configured twice`);
    ids.add(l.id);
    if (l.retryMinMs > l.retryMaxMs) at(`${p}.retryMinMs`, 'is above retryMaxMs');
    if (!cron.validate(l.schedule)) at(`${p}.schedule`, `"${l.schedule}" is not a cron expression`);
    if (l.canary !== undefined) l.canary = l.canary.toLowerCase().replace(/\.$/, '');
    l.keyFiles = l.keyFiles.map((f) => resolve(baseDir, f));
    const keys = readKeys(l.keys, l.keyFiles, `${p}.keys`, `${p}.keyFiles`, at);
    l.rootKeyFiles = l.rootKeyFiles.map((f) => resolve(baseDir, f));
    const roots = readKeys(l.rootKeys, l.rootKeyFiles, `${p}.rootKeys`, `${p}.rootKeyFiles`, at);
    const plain = l.keys.length + l.keyFiles.length;
    const anchored = l.rootKeys.length + l.rootKeyFiles.length;
    // SPEC.md 5: a list is trusted by its signing keys or anchored on its roots; both at once would leave it open
    // which one an index answers to.
    if (plain > 0 && anchored > 0) {
      at(`${p}.rootKeys`, 'give keys/keyFiles (signing keys) or rootKeys/rootKeyFiles (root keys), not both');
    } else if (plain + anchored === 0) {
      at(`${p}.keys`, 'at least one trusted key is needed (keys or keyFiles; or rootKeys for a keyring)');
    }
    if (anchored > 0 && l.threshold !== undefined) {
      at(`${p}.threshold`, 'is for keys: a list anchored on rootKeys takes its signing threshold from its keyring');
    }
    if (anchored === 0 && l.rootThreshold !== undefined) at(`${p}.rootThreshold`, 'needs rootKeys or rootKeyFiles');
    if ((l.threshold ?? 1) > Math.max(plain, 1)) at(`${p}.threshold`, 'is above the number of trusted keys');
    if ((l.rootThreshold ?? 1) > Math.max(anchored, 1)) at(`${p}.rootThreshold`, 'is above the number of root keys');
    let log: ResolvedLog | undefined;
    if (l.log !== undefined) log = resolveLog(l.log, `${p}.log`, at);
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
        const parts = {
          config: l,
          ...(listKey ? { listKey } : {}),
          ...(log ? { log } : {}),
        };
        if (anchored > 0) {
          const anchor: KeyringAnchor = { listId: l.id, roots, rootThreshold: l.rootThreshold ?? 1 };
          // The same checks a keyring's roots get (distinct key ids), before any keyring is fetched.
          new TrustStore([[l.id, { keys: roots, threshold: anchor.rootThreshold }]]);
          lists.push({ ...parts, anchor });
        } else {
          lists.push({ ...parts, trust: new TrustStore([[l.id, { keys, threshold: l.threshold ?? 1 }]]) });
        }
      } catch (err) {
        at(`${p}.${anchored > 0 ? 'rootKeys' : 'keys'}`, (err as Error).message);
      }
    }
  });
  if (problems.length > 0) throw new ConfigError(source, problems);
  // Lists are frozen with the config; their TrustStore and ListKey objects are immutable already.
  deepFreeze(config);
  deepFreeze(guard);
  return Object.freeze({ config, lists: Object.freeze(lists), guard, source });
}

/** Minisign public keys given inline (`RW...`) and as files (already resolved), each problem at its path. */
function readKeys(
  inline: readonly string[],
  files: readonly string[],
  inlinePath: string,
  filesPath: string,
  at: (path: string, message: string) => void,
): MinisignPublicKey[] {
  const keys: MinisignPublicKey[] = [];
  inline.forEach((k, i) => {
    try {
      keys.push(parsePublicKey(k));
    } catch (err) {
      at(`${inlinePath}.${i}`, `not a minisign public key (${(err as Error).message})`);
    }
  });
  files.forEach((f, i) => {
    try {
      keys.push(parsePublicKeyFile(readFileSync(f)).publicKey);
    } catch (err) {
      at(`${filesPath}.${i}`, `cannot read ${f}: ${(err as Error).message}`);
    }
  });
  return keys;
}

/** SPEC.md 6: a list's `log` section, its keys parsed (the origin defaults to the log key's name). */
function resolveLog(
  c: NonNullable<ListConfig['log']>,
  p: string,
  at: (path: string, message: string) => void,
): ResolvedLog | undefined {
  let ok = true;
  let name: string | undefined;
  try {
    name = parseLogKey(c.key).name;
  } catch (err) {
    at(`${p}.key`, `not a log key (${(err as Error).message})`);
    ok = false;
  }
  const ids = new Set<string>();
  c.witnesses.forEach((w, i) => {
    try {
      const k = parseCosignerKey(w);
      const id = `${k.name}+${k.keyId}`;
      if (ids.has(id)) at(`${p}.witnesses.${i}`, 'this witness key is listed twice');
      ids.add(id);
    } catch (err) {
      at(`${p}.witnesses.${i}`, `not a witness cosigner key (${(err as Error).message})`);
      ok = false;
    }
  });
  const witnessThreshold = c.witnessThreshold ?? c.witnesses.length;
  if (witnessThreshold > c.witnesses.length) {
    at(`${p}.witnessThreshold`, `is above the number of witnesses (${c.witnesses.length})`);
    ok = false;
  }
  if (!ok || name === undefined) return undefined;
  return { origin: c.origin ?? name, key: c.key, witnesses: [...c.witnesses], witnessThreshold };
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
