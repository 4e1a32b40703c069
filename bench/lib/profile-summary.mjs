// A text summary of a V8 .cpuprofile (node --cpu-prof): self time per function, and total time (self + callees)
// of the daemon's own modules, so a profile can be read without a browser and quoted in bench/README.md.
//
//   node bench/lib/profile-summary.mjs FILE.cpuprofile [--top=25] [--from=SECONDS] [--to=SECONDS]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, from: { type: 'string' }, to: { type: 'string' } },
});
const prof = JSON.parse(readFileSync(positionals[0], 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Time per sample (microseconds), optionally within a window of the profile.
const self = new Map();
let t = prof.startTime;
let total = 0;
const from = o.from === undefined ? -Infinity : prof.startTime + Number(o.from) * 1e6;
const to = o.to === undefined ? Infinity : prof.startTime + Number(o.to) * 1e6;
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i] ?? 0;
  t += dt;
  if (t < from || t > to) continue;
  self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  total += dt;
}
const label = (n) => {
  const cf = n.callFrame;
  const file = cf.url
    ? cf.url.replace(/^file:\/\//, '').replace(/.*\/(daemon|blocklist-format|node_modules)\//, '$1/')
    : '';
  return `${cf.functionName || '(anonymous)'} ${file}${file ? `:${cf.lineNumber + 1}` : ''}`;
};

const selfBy = new Map();
const totalBy = new Map();
for (const [id, us] of self) {
  const n = byId.get(id);
  selfBy.set(label(n), (selfBy.get(label(n)) ?? 0) + us);
  // Total: every distinct function on the stack gets the sample once.
  const seen = new Set();
  for (let x = id; x !== undefined; x = parent.get(x)) {
    const l = label(byId.get(x));
    if (seen.has(l)) continue;
    seen.add(l);
    totalBy.set(l, (totalBy.get(l) ?? 0) + us);
  }
}
const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5) + '%';
const top = Number(o.top);
process.stdout.write(`profile ${positionals[0]}: ${(total / 1e6).toFixed(2)} s sampled\n\nself time\n`);
for (const [l, us] of [...selfBy].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${l}\n`);
process.stdout.write('\ntotal time (self + callees), the daemon and the format library only\n');
for (const [l, us] of [...totalBy]
  .filter(([l]) => /daemon\/|blocklist-format\//.test(l))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top))
  process.stdout.write(`${pct(us)}  ${l}\n`);
