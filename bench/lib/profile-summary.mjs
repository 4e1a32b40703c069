// A text summary of a V8 .cpuprofile (node --cpu-prof): self time per function, total time (self + callees) of the
// daemon's own modules, and the busy time split by whose code ran (the server's own, its libraries, Node's
// JavaScript, native code, the collector), so a profile can be read without a browser and quoted in
// bench/README.md. run.mjs --profile calls summarize() on each hashwalld profile's saturated window.
//
//   node bench/lib/profile-summary.mjs FILE.cpuprofile [--top=25] [--from=SECONDS] [--to=SECONDS] [--qps=Q]
//
// --from/--to: seconds from the profile's start; --qps: the answered queries a second in that window, to turn
// shares into nanoseconds per query.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Where a function's code comes from. */
export function categoryOf(callFrame) {
  const { url, functionName } = callFrame;
  if (!url) {
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(garbage collector)') return 'collector';
    if (functionName === '(program)') return 'program';
    return 'native';
  }
  if (/\/(daemon|blocklist-format)\/dist\//.test(url)) return 'own';
  if (/\/node_modules\//.test(url)) return 'library';
  if (url.startsWith('node:')) return 'node';
  return 'native';
}

export const CATEGORY_NAMES = {
  own: "the server's own JS (daemon, format library)",
  library: 'npm libraries',
  node: "Node's JS (node:dgram, events, ...)",
  native: 'native functions called from JS (syscalls, buffer copies, builtins)',
  program: 'native code outside JS (libuv, the event loop, V8 runtime)',
  collector: 'the collector (main thread)',
};

/**
 * The features whose whole cost (their functions and everything they call) is reported apart: a function name
 * and its file, matched against each stack.
 */
export const FEATURES = {
  'a socket per upstream try (udp-ports acquire + release)': (l) =>
    /^(acquire|release) daemon\/dist\/dns\/udp-ports\.js/.test(l),
  'answer scrubbing (scrubAnswer)': (l) => /^scrubAnswer daemon\/dist\/dns\/scrub\.js/.test(l),
  'the blocking decision (Policy)': (l) => /^(decideWire|decide|#decideBytes) daemon\/dist\/policy\//.test(l),
  'sending answers (udpSend)': (l) => /^udpSend daemon\/dist\/dns\/listeners\.js/.test(l),
};

const label = (cf) => {
  const file = cf.url
    ? cf.url.replace(/^file:\/\//, '').replace(/.*\/(daemon|blocklist-format|node_modules)\//, '$1/')
    : '';
  return `${cf.functionName || '(anonymous)'} ${file}${file ? `:${cf.lineNumber + 1}` : ''}`;
};

/**
 * Self and total time per function, per category and per feature (microseconds) in the window [fromUs, toUs] of
 * the profile's own clock (absolute, as in its startTime), or the whole profile.
 */
export function summarize(prof, { fromUs = -Infinity, toUs = Infinity } = {}) {
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  let t = prof.startTime;
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs) continue;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const selfBy = new Map();
  const totalBy = new Map();
  const categories = { idle: 0, own: 0, library: 0, node: 0, native: 0, program: 0, collector: 0 };
  const features = Object.fromEntries(Object.keys(FEATURES).map((k) => [k, 0]));
  for (const [id, us] of self) {
    const n = byId.get(id);
    const l = label(n.callFrame);
    selfBy.set(l, (selfBy.get(l) ?? 0) + us);
    categories[categoryOf(n.callFrame)] += us;
    // Total: every distinct function on the stack gets the sample once.
    const seen = new Set();
    for (let x = id; x !== undefined; x = parent.get(x)) {
      const lx = label(byId.get(x).callFrame);
      if (seen.has(lx)) continue;
      seen.add(lx);
      totalBy.set(lx, (totalBy.get(lx) ?? 0) + us);
    }
    for (const [k, match] of Object.entries(FEATURES)) if ([...seen].some(match)) features[k] += us;
  }
  return { totalUs: total, busyUs: total - categories.idle, selfBy, totalBy, categories, features };
}

/** The summary as text; with `qps`, shares of the busy time also as ns per answered query. */
export function summaryText(s, { top = 25, qps = null } = {}) {
  const pct = (us) => ((100 * us) / s.totalUs).toFixed(1).padStart(5) + '%';
  const busyPct = (us) => ((100 * us) / s.busyUs).toFixed(1).padStart(5) + '%';
  const ns = (us) => (qps ? `  ${((us * 1000) / (qps * (s.totalUs / 1e6))).toFixed(0).padStart(5)} ns/query` : '');
  const out = [`${(s.totalUs / 1e6).toFixed(2)} s sampled, busy ${pct(s.busyUs).trim()}`, '', 'busy time by code'];
  for (const [k, name] of Object.entries(CATEGORY_NAMES))
    out.push(`${busyPct(s.categories[k])}${ns(s.categories[k])}  ${name}`);
  out.push('', 'features (their functions and all they call), of the busy time');
  for (const [k, us] of Object.entries(s.features)) out.push(`${busyPct(us)}${ns(us)}  ${k}`);
  out.push('', 'self time');
  for (const [l, us] of [...s.selfBy].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`${pct(us)}  ${l}`);
  out.push('', 'total time (self + callees), the daemon and the format library only');
  for (const [l, us] of [...s.totalBy]
    .filter(([l]) => /daemon\/|blocklist-format\//.test(l))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    out.push(`${pct(us)}  ${l}`);
  return out.join('\n') + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values: o, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '25' },
      from: { type: 'string' },
      to: { type: 'string' },
      qps: { type: 'string' },
    },
  });
  const prof = JSON.parse(readFileSync(positionals[0], 'utf8'));
  const s = summarize(prof, {
    fromUs: o.from === undefined ? -Infinity : prof.startTime + Number(o.from) * 1e6,
    toUs: o.to === undefined ? Infinity : prof.startTime + Number(o.to) * 1e6,
  });
  process.stdout.write(
    `profile ${positionals[0]}: ` + summaryText(s, { top: Number(o.top), qps: o.qps ? Number(o.qps) : null }),
  );
}
