#!/usr/bin/env node
// Runs tap test files as `npm test` and `npm run test:reliability` do: the files a tap config names (.taprc, or
// the file in TAP_RCFILE), `jobs` at a time, each in its own Node process with the config's `node-arg`, each
// stopped after `timeout` seconds. Files named on the command line run instead of the config's list. `--check
// SCRIPT` runs `npm run SCRIPT` as one more job, reported like a file (`npm test`: the type check and the linters).
//
// Why not tap's own runner: it starts every test file with its process-info hook (`--import` of
// @tapjs/processinfo, which records what each process loads, for coverage), and the hook also puts itself into
// every process a test starts. On Node 20 that costs each process about half a second of CPU at start (an empty
// test file: ~1.0 s under tap's runner, ~0.5 s without), ~50 s of the fast suite's CPU; coverage is not collected
// here. The test files are tap's and stay so: `npx tap FILE` runs any of them as before.
//
// Output: one line a file as it ends (the file's whole TAP output when it fails), then the totals. With
// `--reporter=tap` or TAP_REPORTER=tap, the TAP stream tap's runner writes with that reporter instead (a
// subtest a file, in the order they end), which is what CI keeps and .ci/tap-summary.mjs reads. Exit code 1 when
// a file fails, times out or runs no test.
//
// Order: the files that took longest in the last run first (times kept in node_modules/.cache/hashwall-tests/),
// the largest first in a new checkout, so that the last file to start is a short one.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { glob } from 'glob';
import { Parser } from 'tap-parser';
import { parse as parseYaml } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const rcFile = resolve(root, process.env.TAP_RCFILE || '.taprc');
const rc = parseYaml(readFileSync(rcFile, 'utf8')) ?? {};
const jobs = Number(process.env.TAP_JOBS || rc.jobs || 2);
const timeoutMs = Number(process.env.TAP_TIMEOUT || rc.timeout || 30) * 1000;
const nodeArgs = ['--enable-source-maps', ...(rc['node-arg'] ?? [])];

// Arguments: files to run, `--include GLOB` (instead of the config's include; a package's `npm test` uses it),
// `--check SCRIPT` (an npm script run beside the files, first, as one more of them: `npm test` runs the type check
// and the linters so, each on a core of its own while the first files start), `--reporter=tap`.
const named = [];
const include = [];
const checks = [];
let tapOut = process.env.TAP_REPORTER === 'tap';
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--reporter=tap') tapOut = true;
  else if (a === '--include') include.push(process.argv[++i] ?? '');
  else if (a.startsWith('--include=')) include.push(a.slice('--include='.length));
  else if (a === '--check') checks.push(process.argv[++i] ?? '');
  else if (a.startsWith('-')) {
    console.error(
      `unknown option ${a} (this runner takes files, --include GLOB, --check SCRIPT, --reporter=tap; ` +
        'npx tap takes the rest)',
    );
    process.exit(2);
  } else named.push(a);
}

const files = named.length
  ? named.map((f) => relative(root, resolve(f)))
  : (
      await glob(include.length ? include : (rc.include ?? []), {
        cwd: root,
        ignore: rc.exclude ?? [],
        nodir: true,
        posix: true,
      })
    ).sort();
if (files.length === 0) {
  console.error(`no test files (${relative(root, rcFile)}: include, exclude)`);
  process.exit(1);
}

const timesFile = join(
  root,
  'node_modules',
  '.cache',
  'hashwall-tests',
  `${relative(root, rcFile).replace(/\W/g, '_')}.json`,
);
let lastTimes = {};
try {
  lastTimes = JSON.parse(readFileSync(timesFile, 'utf8'));
} catch {
  // first run in this checkout: by size
}
const weight = (f) => lastTimes[f] ?? statSync(join(root, f)).size;
const queue = [...checks.map((c) => `npm run ${c}`), ...[...files].sort((a, b) => weight(b) - weight(a))];

const started = Date.now();
const running = new Set();
const results = [];
let reported = 0;
if (tapOut) process.stdout.write('TAP version 14\n');

/**
 * Counts the assertions of a TAP stream at every depth into `n`, as tap's runner does: a point that closes a
 * subtest is not counted (its assertions are).
 */
function tally(parser, n) {
  parser.on('assert', (p) => {
    if (p.closingTestPoint) return;
    if (p.todo) n.todo++;
    else if (p.skip) n.skip++;
    else if (p.ok) n.pass++;
    else n.fail++;
  });
  parser.on('child', (c) => tally(c, n));
}

/**
 * A check's output as TAP: its lines as comments and one assertion, that it exited 0 (so that CI's summary counts
 * it as a test, and names it when it fails).
 */
function checkTap(name, output, code) {
  const lines = output.split('\n').filter((l) => l !== '');
  return [
    'TAP version 14',
    ...lines.map((l) => `# ${l}`),
    `${code === 0 ? 'ok' : 'not ok'} 1 - ${name} exits 0`,
    '1..1',
    '',
  ].join('\n');
}

/**
 * Runs one file (or a check: `npm run SCRIPT`); resolves with its result when the process has exited and its
 * output is read.
 */
function runFile(file) {
  return new Promise((done) => {
    const t0 = Date.now();
    const check = file.startsWith('npm run ');
    const [cmd, args] = check
      ? ['npm', ['run', '-s', file.slice('npm run '.length)]]
      : [process.execPath, [...nodeArgs, file]];
    // Its own process group, so that a timeout stops what it started too.
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, TAP: '1', TAP_TIMEOUT: String(timeoutMs / 1000) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    running.add(child);
    const out = [];
    const err = [];
    const parser = new Parser();
    const n = { pass: 0, fail: 0, skip: 0, todo: 0 };
    tally(parser, n);
    let final = null;
    parser.on('complete', (r) => (final = r));
    child.stdout.on('data', (c) => {
      out.push(c);
      if (!check) parser.write(c);
    });
    child.stderr.on('data', (c) => (check ? out.push(c) : tapOut ? process.stderr.write(c) : err.push(c)));
    let timedOut = false;
    const stop = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    // The file's own tap stops it at `timeout` (TAP_TIMEOUT) and says which test was waiting; this is for a file
    // that cannot stop itself.
    const timer = setTimeout(() => {
      timedOut = true;
      stop('SIGTERM');
      setTimeout(() => stop('SIGKILL'), 5000).unref();
    }, timeoutMs + 10_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      // What the file started and left behind (a daemon child whose teardown did not run).
      stop('SIGKILL');
      let text = Buffer.concat(out).toString();
      if (check) {
        text = checkTap(file, text, code);
        parser.write(text);
      }
      parser.end();
      const ms = Date.now() - t0;
      const r = { ...(final ?? { ok: false, count: 0, plan: null }), ...n };
      const problems = [];
      if (timedOut) problems.push(`stopped after ${timeoutMs / 1000 + 10} s`);
      else if (code !== 0) problems.push(signal ? `killed by ${signal}` : `exit code ${code}`);
      if (!r.ok) problems.push(r.fail ? `${r.fail} failed` : 'its TAP is not ok (a plan, a bail out)');
      if (r.count === 0 && !r.plan?.skipAll) problems.push('no test ran');
      done({ file, ms, r, problems, out: text, err: Buffer.concat(err).toString() });
    });
  });
}

function report(res) {
  const { file, ms, r, problems, out, err } = res;
  const ok = problems.length === 0;
  reported++;
  if (tapOut) {
    const body = out
      .replace(/^TAP version \d+\n/, '')
      .split('\n')
      .map((l) => (l ? `    ${l}` : l))
      .join('\n');
    let line = `${ok ? 'ok' : 'not ok'} ${reported} - ${file} # time=${ms}ms\n`;
    if (!ok) line += `  ---\n  problems: ${JSON.stringify(problems.join(', '))}\n  ...\n`;
    process.stdout.write(`# Subtest: ${file}\n${body.endsWith('\n') ? body : `${body}\n`}${line}\n`);
    return;
  }
  const counts = [`${r.pass} passed`, ...['fail', 'skip', 'todo'].filter((k) => r[k]).map((k) => `${r[k]} ${k}`)];
  const line = `${ok ? 'ok    ' : 'FAIL  '}${(ms / 1000).toFixed(1).padStart(6)} s  ${file}  (${counts.join(', ')})`;
  if (ok) return console.log(line);
  console.log(`${line}\n${out}${err ? `--- stderr\n${err}` : ''}--- ${file}: ${problems.join(', ')}\n`);
}

async function worker() {
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    const res = await runFile(file);
    results.push(res);
    report(res);
  }
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const c of running) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    process.exit(130);
  });
}

await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));

const failed = results.filter((x) => x.problems.length > 0);
const sum = (k) => results.reduce((n, x) => n + (x.r[k] ?? 0), 0);
const seconds = ((Date.now() - started) / 1000).toFixed(1);
if (tapOut) {
  process.stdout.write(
    `1..${results.length}\n# { total: ${sum('pass') + sum('fail') + sum('skip') + sum('todo')}, ` +
      `pass: ${sum('pass')}, fail: ${sum('fail')} }\n`,
  );
  process.stdout.write(`# time=${Date.now() - started}ms\n`);
} else {
  console.log(
    `\n${files.length} files${checks.length ? ` and ${checks.length} checks` : ''}, ${failed.length} failed; ` +
      `${sum('pass')} tests passed, ${sum('fail')} failed, ` +
      `${sum('skip')} skipped, ${sum('todo')} todo; ${seconds} s (jobs ${jobs})`,
  );
  for (const x of failed) console.log(`FAILED ${x.file}: ${x.problems.join(', ')}`);
}

// Keep this run's times for the next run's order (files named on the command line update theirs only).
try {
  mkdirSync(dirname(timesFile), { recursive: true });
  const times = results.filter((x) => !x.file.startsWith('npm run ')).map((x) => [x.file, x.ms]);
  writeFileSync(timesFile, JSON.stringify({ ...lastTimes, ...Object.fromEntries(times) }));
} catch {
  // a read-only checkout: the next run orders by size
}
process.exit(failed.length > 0 ? 1 : 0);
