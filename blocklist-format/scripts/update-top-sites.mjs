#!/usr/bin/env node
// Regenerates blocklist-format/data/top-sites.txt, the popular names hashwall-signer's `build` and `publish` refuse
// to block and hashwalld holds a list for (its guard set), from the
// `top-sites` npm package's data file. That package runs a download from its author's data source when it is
// installed (a postinstall script), so it is not a dependency: fetch its tarball without running anything and
// hand its JSON to this script:
//
//   npm pack top-sites@<version> && tar xzf top-sites-<version>.tgz package/top-sites.json package/package.json
//   node blocklist-format/scripts/update-top-sites.mjs package/top-sites.json package/package.json \
//     > blocklist-format/data/top-sites.txt
import { readFileSync } from 'node:fs';

import { canonicalHost } from '@hashwall/format';

const [jsonPath, pkgPath] = process.argv.slice(2);
if (!jsonPath || !pkgPath) {
  console.error('usage: update-top-sites.mjs top-sites.json package.json > blocklist-format/data/top-sites.txt');
  process.exit(2);
}
const rows = JSON.parse(readFileSync(jsonPath, 'utf8'));
const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
// RFC 2606 and RFC 6761 reserved names: documentation and tests use them, and blocking them harms nobody.
const RESERVED = /(^|\.)(example\.(com|net|org)|example|test|invalid|localhost)$/;
const seen = new Set();
const out = [
  `# Popular names: hashwall-signer build and publish refuse to block them (--override records why they do), and`,
  `# hashwalld holds a list that blocks one until its operator releases it (its guard set).`,
  `# From the npm package top-sites ${pkg.version} (${pkg.license}, ${pkg.homepage}), based on the Moz Top 500.`,
  `# Reserved names (RFC 2606, RFC 6761) left out. Regenerate with blocklist-format/scripts/update-top-sites.mjs.\n# One canonical name a line, in rank order.`,
];
for (const row of rows) {
  let name;
  try {
    name = canonicalHost(String(row.rootDomain));
  } catch {
    continue; // not a host name (a page URL): nothing DNS could block
  }
  if (seen.has(name) || RESERVED.test(name)) continue;
  seen.add(name);
  out.push(name);
}
process.stdout.write(`${out.join('\n')}\n`);
