#!/usr/bin/env node
// Reads the TAP stream that `tap --reporter=tap` wrote and prints the closing line CI reads:
// `N passed, N failed`. A test is a top-level subtest or assertion inside a test file; a file
// that fails without a failing test (a crash, a bad plan, a timeout) counts as one failure.
import { readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of process.argv.slice(2)) {
  let fileFailures = 0;
  const text = readFileSync(file, 'utf8');
  if (!/^TAP version \d+$/m.test(text)) {
    // npm test stopped before tap ran (type check or lint failed): that is a failure, not an empty run.
    console.log(`${file}: the test suite did not run (see the type check and lint output above)`);
    failed++;
    continue;
  }
  for (const line of text.split('\n')) {
    const m = /^( *)(not )?ok \d+(?: - [^#]*)?(#\s*(SKIP|TODO)\b.*)?/i.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? '').length / 4;
    const ok = m[2] === undefined;
    if (depth === 1) {
      if (m[4] !== undefined) skipped++;
      else if (ok) passed++;
      else {
        failed++;
        fileFailures++;
      }
    } else if (depth === 0) {
      if (!ok && fileFailures === 0) failed++;
      fileFailures = 0;
    }
  }
}
if (skipped > 0) console.log(`${skipped} skipped`);
console.log(`${passed} passed, ${failed} failed`);
