/**
 * Loading the configuration: read (capped), parse YAML, validate with the schema, then the checks that span keys
 * or need files (trusted keys, list hash keys and their permissions). Every problem is reported with its key path;
 * all problems at once, not just the first. Relative paths are taken from the config file's folder.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';

import {
  FormatError,
  ListKey,
  TOP_SITES_URL,
  TrustStore,
  parseGuardNames,
  keyFileKind,
  parseListKey,
  parsePublicKey,
  parsePublicKeyFile,
  type GuardName,
  type KeyringAnchor,
  type MinisignPublicKey,
} from '@hashwall/format';
import { parseCosignerKey, parseLogKey } from '@hashwall/tlog';
import { maskUrl } from '@hashwall/release-client/mask';
import cron from 'node-cron';
import { parseDocument } from 'yaml';

import { z } from 'zod';

import { parseHostPort } from '../util/net.js';
import { configSchema, listSchema, type Config, type ListConfig, type ListConfigParsed } from './schema.js';
import { readTemplate } from './stop-page-template.js';

/** A config file larger than this is refused before it is parsed. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  /** The file (or "<inline>"). */
  readonly source: string;
  /** Each problem as "key.path: reason". */
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    super(`invalid configuration ${source}:\n  ${problems.join('\n  ')}`);
    this.source = source;
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

/** The encrypted listeners' certificate chain and key (PEM), as read when the settings were loaded. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
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
  /** Read from tls.certFile and tls.keyFile when dot or doh listens; null otherwise. */
  readonly tls: TlsMaterial | null;
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

function describe(issue: z.core.$ZodIssue): string {
  const where = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys.join(', ')] : issue.path;
  const what =
    issue.code === 'unrecognized_keys'
      ? 'unknown key'
      : issue.code === 'invalid_type' && issue.message.endsWith('received undefined')
        ? `missing (required: ${issue.expected})`
        : issue.message;
  return `${pathOf(where)}: ${what}`;
}

type Parsed = z.output<typeof configSchema>;
/** What parsed: a section, and a key within a section, may be missing; a list that did not parse is undefined. */
type PartConfig = {
  [K in keyof Parsed]?: K extends 'lists'
    ? (ListConfigParsed | undefined)[]
    : Parsed[K] extends readonly unknown[]
      ? Parsed[K]
      : Parsed[K] extends object
        ? Partial<Parsed[K]>
        : Parsed[K];
};

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const INVALID = Symbol('invalid');

/** `value` parsed by `schema`, or INVALID with each problem pushed under `at`. */
function parseValue(schema: z.ZodType, value: unknown, at: readonly PropertyKey[], problems: string[]): unknown {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  for (const i of r.error.issues) problems.push(describe({ ...i, path: [...at, ...i.path] }));
  return INVALID;
}

type ParseOne = (key: string, schema: z.ZodType, value: unknown, at: readonly PropertyKey[]) => unknown;

/**
 * An object schema applied key by key: what parsed is returned (absent keys as their defaults), unknown keys are
 * problems, and a key that did not parse (`each` returned INVALID) is left out.
 */
function parseKeys(
  shape: Readonly<Record<string, z.ZodType>>,
  input: Record<string, unknown>,
  path: readonly PropertyKey[],
  problems: string[],
  each: ParseOne = (_k, schema, value, at) => parseValue(schema, value, at, problems),
): Record<string, unknown> {
  const unknown = Object.keys(input).filter((k) => !Object.hasOwn(shape, k));
  if (unknown.length > 0) problems.push(`${pathOf([...path, unknown.join(', ')])}: unknown key`);
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(shape)) {
    const v = each(key, schema, input[key], [...path, key]);
    if (v !== INVALID) out[key] = v;
  }
  return out;
}

/**
 * The schema applied section by section, key by key within a section, and list by list, so that one bad value leaves
 * the rest parsed: the checks across keys then run on what did parse, and every problem is reported in the same run.
 * A key or a list that did not parse is absent, and the checks that need it are skipped (its own problem is
 * reported already).
 */
function parseSections(raw: unknown, problems: string[]): PartConfig {
  if (!isMapping(raw)) {
    problems.push(`(top level): a mapping of keys is needed (listen:, upstreams:, ...)`);
    return {};
  }
  const section = (key: string, schema: z.ZodType, value: unknown, at: readonly PropertyKey[]): unknown => {
    const inner = schema instanceof z.ZodPrefault ? (schema.unwrap() as z.ZodType) : schema;
    if (inner instanceof z.ZodObject && isMapping(value)) {
      return parseKeys(inner.shape, value, at, problems);
    }
    if (key === 'lists' && Array.isArray(value)) {
      // Each list on its own: a typo in one leaves the others (and their key files) checked.
      return value.map((l, n) => {
        const v = parseValue(listSchema, l, [...at, n], problems);
        return v === INVALID ? undefined : v;
      });
    }
    return parseValue(schema, value, at, problems);
  };
  return parseKeys(configSchema.shape, raw, [], problems, section);
}

/**
 * When `file` holds another kind of key than `wanted`, what to say (the kinds are easy to mix up by name, and a
 * minisign secret key is the maintainer's signing secret); null when it is no key at all.
 */
function wrongKeyFile(file: string, bytes: Uint8Array, wanted: 'list-key' | 'public-key'): string | null {
  const kind = keyFileKind(bytes);
  if (kind === 'unknown' || kind === wanted) return null;
  if (kind === 'secret-key') {
    return (
      `${file} is a minisign SECRET signing key, which no ISP should hold: delete it from this host and tell ` +
      `the list maintainer that it left their hands. The daemon needs ` +
      (wanted === 'list-key' ? 'the list hash key file (NAME.listkey)' : 'the public key file (NAME.pub)')
    );
  }
  return kind === 'public-key'
    ? `${file} is a minisign public key (NAME.pub): it belongs in keyFiles; hashKeyFile is the list hash key (NAME.listkey)`
    : `${file} is a list hash key (NAME.listkey): it belongs in hashKeyFile; keyFiles are public keys (NAME.pub)`;
}

/** Validates a parsed YAML value; `baseDir` resolves relative paths. */
export function settingsFrom(raw: unknown, baseDir: string, source = '<inline>'): Settings {
  const problems: string[] = [];
  const at = (path: string, message: string): void => {
    problems.push(`${path}: ${message}`);
  };
  const config = parseSections(raw ?? {}, problems);
  if (config.stateDir !== undefined) config.stateDir = resolve(baseDir, config.stateDir);
  const configured = config.lists ?? [];

  const b = config.blocking ?? {};
  if (b.mode === 'stop-page' && b.stopPageIpv4?.length === 0 && b.stopPageIpv6?.length === 0) {
    at('blocking.stopPageIpv4', 'mode stop-page needs at least one stop page address');
  }
  if (b.partial === 'steer' && b.proxyIpv4?.length === 0 && b.proxyIpv6?.length === 0) {
    at('blocking.proxyIpv4', 'partial: steer needs at least one proxy address');
  }
  const sde = b.structuredError;
  if (sde?.enabled === true && sde.contact.length === 0 && sde.justification === '') {
    at('blocking.structuredError', 'give contact or justification: clients ignore the JSON without either');
  }
  if (sde?.enabled === true && b.edeCode === 0) {
    at('blocking.structuredError', 'needs an extended error to carry it: edeCode 0 sends none');
  }
  if (b.allowlist !== undefined) b.allowlist = b.allowlist.map((n) => n.toLowerCase().replace(/\.$/, ''));
  const sp = config.stopPage ?? {};
  if (sp.templateFile !== undefined && sp.templateFile !== '') {
    sp.templateFile = resolve(baseDir, sp.templateFile);
    try {
      readTemplate(sp.templateFile);
    } catch (err) {
      at('stopPage.templateFile', (err as Error).message);
    }
  }
  // Only when every list parsed: a list whose id is wrong would make a correct name look unknown.
  if (sp.listNames !== undefined && config.lists !== undefined && !configured.includes(undefined)) {
    for (const id of Object.keys(sp.listNames)) {
      if (!configured.some((l) => l?.id === id)) at(`stopPage.listNames.${id}`, 'no list with this id is configured');
    }
  }
  const hr = config.hitReport ?? {};
  if (hr.directory !== undefined && hr.directory !== '') hr.directory = resolve(baseDir, hr.directory);
  if (hr.enabled === true && hr.directory === '' && hr.endpoint === false) {
    at('hitReport.directory', 'the hit report is enabled but goes nowhere: set directory, or endpoint: true');
  }
  if (hr.enabled === true && hr.endpoint === true && config.metrics?.listen === '') {
    at('hitReport.endpoint', 'the endpoint is served on the metrics listener, and metrics.listen is empty');
  }
  if (config.listen !== undefined && new Set(config.listen).size !== config.listen.length) {
    at('listen', 'an address is listed twice');
  }
  // TCP ports: plain TCP, DoT and DoH may not share one.
  const streamPorts = new Map<string, string>();
  const claim = (key: string, specs: readonly string[] | undefined, defaultPort: number): void => {
    (specs ?? []).forEach((spec, i) => {
      const hp = parseHostPort(spec, defaultPort);
      const id = `${hp.host}:${hp.port}`;
      const other = streamPorts.get(id);
      if (hp.port !== 0 && other !== undefined) at(`${key}.${i}`, `${spec} is already used by ${other}`);
      else streamPorts.set(id, key);
      if (hp.port === 0 && key !== 'listen' && (config.workers ?? 1) !== 1) {
        at(`${key}.${i}`, 'port 0 with several workers: give the port (every worker must bind the same one)');
      }
    });
  };
  claim('listen', config.listen, 53);
  claim('dot.listen', config.dot?.listen, 853);
  claim('doh.listen', config.doh?.listen, 443);
  const tls = readTls(config, baseDir, at);
  const cache = config.cache ?? {};
  if (cache.minTtlSeconds !== undefined && cache.maxTtlSeconds !== undefined) {
    if (cache.minTtlSeconds > cache.maxTtlSeconds) at('cache.minTtlSeconds', 'is above maxTtlSeconds');
  }
  const required = config.readiness?.requireLists;
  // Only when every list parsed, as for stopPage.listNames.
  if (Array.isArray(required) && config.lists !== undefined && !configured.includes(undefined)) {
    required.forEach((id, i) => {
      if (!configured.some((l) => l?.id === id)) at(`readiness.requireLists.${i}`, `no list "${id}" is configured`);
    });
  }

  // A guard section that failed its schema is reported already; the config is then refused, so the set built from
  // what remains is never used.
  const g = config.guard ?? {};
  const guardNames: GuardName[] = g.topSites === true ? topSites() : [];
  g.namesFiles = (g.namesFiles ?? []).map((f) => resolve(baseDir, f));
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
  (b.allowlist ?? []).forEach((name, i) => guardNames.push({ name, from: `blocking.allowlist.${i}` }));
  const guard: GuardSet = {
    names: guardNames,
    maxChangePercent: g.maxChangePercent ?? 0,
    maxChangeCount: g.maxChangeCount ?? 0,
  };

  const lists: ResolvedList[] = [];
  const ids = new Set<string>();
  configured.forEach((l, n) => {
    if (l === undefined) return;
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
          const bytes = readFileSync(l.hashKeyFile);
          try {
            listKey = parseListKey(bytes);
          } catch (err) {
            const wrong = wrongKeyFile(l.hashKeyFile, bytes, 'list-key');
            if (wrong === null) throw err;
            at(`${p}.hashKeyFile`, wrong);
          } finally {
            bytes.fill(0);
          }
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
  // No problem: every key parsed. Lists are frozen with the config; their TrustStore and ListKey objects are
  // immutable already.
  const whole = config as Parsed;
  deepFreeze(whole);
  deepFreeze(guard);
  return Object.freeze({ config: whole, lists: Object.freeze(lists), guard, tls, source });
}

/**
 * The certificate chain and key for dot and doh, checked the way the listeners will use them (a TLS context is
 * made from them: a key that does not match the certificate fails here, with its key path). Null when neither
 * listens.
 */
function readTls(config: PartConfig, baseDir: string, at: (path: string, message: string) => void): TlsMaterial | null {
  const t = config.tls ?? {};
  if (t.certFile !== undefined && t.certFile !== '') t.certFile = resolve(baseDir, t.certFile);
  if (t.keyFile !== undefined && t.keyFile !== '') t.keyFile = resolve(baseDir, t.keyFile);
  if ((config.dot?.listen?.length ?? 0) + (config.doh?.listen?.length ?? 0) === 0) return null;
  if (t.certFile === '') at('tls.certFile', 'dot or doh listens: a certificate chain (PEM) is needed');
  if (t.keyFile === '') at('tls.keyFile', 'dot or doh listens: a private key (PEM) is needed');
  // Absent: it did not parse, and that is reported already.
  if (t.certFile === undefined || t.certFile === '' || t.keyFile === undefined || t.keyFile === '') return null;
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
    let bytes: Buffer;
    try {
      bytes = readFileSync(f);
    } catch (err) {
      at(`${filesPath}.${i}`, `cannot read ${f}: ${(err as Error).message}`);
      return;
    }
    try {
      keys.push(parsePublicKeyFile(bytes).publicKey);
    } catch (err) {
      at(`${filesPath}.${i}`, wrongKeyFile(f, bytes, 'public-key') ?? `cannot read ${f}: ${(err as Error).message}`);
    } finally {
      bytes.fill(0);
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

/**
 * The effective configuration for the start-up and reload logs: every value, secrets masked (an inline hash key;
 * a mirror URL's user, password, query and fragment, as `maskUrl` of the release client shows them everywhere).
 */
export function effectiveConfig(settings: Settings): unknown {
  return JSON.parse(
    JSON.stringify(settings.config, (key, value: unknown) => {
      if (key === 'hashKey' && value) return { id: (value as { id: string }).id, key: '***' };
      if (key === 'mirrors' && Array.isArray(value)) return value.map((u) => maskUrl(String(u)));
      return value;
    }),
  );
}
