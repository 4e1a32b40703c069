#!/usr/bin/env node
// Reads the TAP streams that `tap --reporter=tap` wrote and prints the closing lines CI reads: each failure, named
// by suite, file and test (the end of a CI log is often all that is kept), then `N passed, N failed`. A test is a
// top-level subtest or assertion inside a test file; a file that fails without a failing test (a crash, a bad
// plan, a timeout) counts as one failure.
import { basename } from 'node:path';
import { readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
for (const file of process.argv.slice(2)) {
  const suite = basename(file, '.tap');
  let fileFailures = 0;
  let inFile = '';
  const text = readFileSync(file, 'utf8');
  if (!/^TAP version \d+$/m.test(text)) {
    // npm test stopped before its tests ran (the build failed): that is a failure, not an empty run.
    failures.push(`${suite}: the test suite did not run (see the type check and lint output above)`);
    failed++;
    continue;
  }
  for (const line of text.split('\n')) {
    const sub = /^# Subtest: (.*)$/.exec(line);
    if (sub) {
      inFile = sub[1] ?? '';
      continue;
    }
    const m = /^( *)(not )?ok \d+(?: - ([^#]*))?(#\s*(SKIP|TODO)\b.*)?/i.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? '').length / 4;
    const ok = m[2] === undefined;
    const name = (m[3] ?? '').trim();
    if (depth === 1) {
      if (m[5] !== undefined) skipped++;
      else if (ok) passed++;
      else {
        failed++;
        fileFailures++;
        failures.push(`${suite}: ${inFile}: ${name}`);
      }
    } else if (depth === 0) {
      if (!ok && fileFailures === 0) {
        failed++;
        failures.push(`${suite}: ${name || inFile}: the file failed outside its tests (crash, plan or timeout)`);
      }
      fileFailures = 0;
    }
  }
}
for (const f of failures) console.log(`FAILED ${f}`);
if (skipped > 0) console.log(`${skipped} skipped`);
console.log(`${passed} passed, ${failed} failed`);
