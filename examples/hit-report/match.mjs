#!/usr/bin/env node
// For list maintainers: match the hit reports ISPs send (hashwalld's hitReport, JSON) against your plaintext
// source, to see which entries still block anything and which have not been hit at all (candidates to retire).
// Run it where the source and the list hash key already are: it prints plaintext entries.
//
//   node examples/hit-report/match.mjs --source source.txt --list-key demo.listkey --list demo report.json...
//
// Each source line is hashed the way hashwall-signer build hashes it (SPEC.md 1.3): a domain or host as its
// name, a url line's host as its P entry. Hits are summed over every report given for that list.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const signer = await import(join(root, 'signer', 'dist', 'index.js'));

const usage = 'usage: match.mjs --source FILE --list-key FILE --list ID REPORT.json...';
let args;
try {
  args = parseArgs({
    options: { source: { type: 'string' }, 'list-key': { type: 'string' }, list: { type: 'string' } },
    allowPositionals: true,
  });
} catch (err) {
  process.stderr.write(`${err.message}\n${usage}\n`);
  process.exit(2);
}
const { source, 'list-key': listKeyFile, list } = args.values;
if (!source || !listKeyFile || !list || args.positionals.length === 0) {
  process.stderr.write(`${usage}\n`);
  process.exit(2);
}

const parsed = signer.parseSource(readFileSync(source));
if (parsed.errors.length > 0) {
  process.stderr.write(`${source}: ${parsed.errors.map((e) => `line ${e.line}: ${e.message}`).join('; ')}\n`);
  process.exit(1);
}
const hk = (await signer.loadListKey(listKeyFile, signer.processIo())).hashKey();

/** hash -> the source lines it stands for. */
const lines = new Map();
const add = (name, e) => {
  const h = hk.hashHex(name);
  if (!lines.has(h)) lines.set(h, []);
  lines.get(h).push(e);
};
for (const e of parsed.entries) add(e.keyword === 'url' ? signer.urlHost(e.value).host : e.value, e);

const hits = new Map();
let windows = 0;
for (const file of args.positionals) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  if (report.format !== 'hashwall-hit-report/1') {
    process.stderr.write(`${file}: not a hashwall hit report\n`);
    process.exit(1);
  }
  for (const l of report.lists) {
    if (l.id !== list) continue;
    windows++;
    for (const { hash, hits: n } of l.entries) hits.set(hash, (hits.get(hash) ?? 0) + n);
  }
}

const rows = [...lines].flatMap(([h, es]) => es.map((e) => ({ ...e, hits: hits.get(h) ?? 0 })));
rows.sort((a, b) => b.hits - a.hits || a.line - b.line);
process.stdout.write(`list ${list}: ${windows} report window(s)\n`);
for (const r of rows) {
  process.stdout.write(`${String(r.hits).padStart(10)}  line ${r.line}: ${r.keyword} ${r.value}\n`);
}
const unknown = [...hits.keys()].filter((h) => !lines.has(h));
const cold = rows.filter((r) => r.hits === 0).length;
process.stdout.write(`${cold} source line(s) without a reported hit (below every report's minCount, or dead)\n`);
if (unknown.length > 0) {
  process.stdout.write(`${unknown.length} reported hash(es) match no line of this source (another serial or key)\n`);
}
