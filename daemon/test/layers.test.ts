// The daemon's layers hold: ESLint (the repository's own config, as `npm run lint` applies it) refuses an import that
// runs up the layers or across one, and the list it enforces is the one daemon/README.md gives.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ESLint } from 'eslint';
import t from 'tap';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// eslint.config.js is plain JavaScript outside any TypeScript project: its one named export, typed here.
const { DAEMON_LAYERS } = (await import(join(root, 'eslint.config.js'))) as { DAEMON_LAYERS: string[][] };

// The config's rules as they are, without type information: no-restricted-imports reads the import paths only, and
// the type-aware parser would build a TypeScript program of the daemon's sources (~3 s of CPU) it never uses.
const eslint = new ESLint({
  cwd: root,
  ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports',
  overrideConfig: { languageOptions: { parserOptions: { projectService: false, project: null } } },
});

/** The layer messages ESLint gives `code` as the text of `file` (a path the config's `files` patterns match). */
async function layerErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, file) });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

t.test('an import that runs up the layers fails the lint', async (t) => {
  const cases: [file: string, code: string, what: RegExp][] = [
    [
      'daemon/src/dns/cache.ts',
      "import type { Metrics } from '../ops/metrics.js';",
      /dns \(layer 3\) may not import ops/,
    ],
    ['daemon/src/policy/verdict.ts', "import { parseQuery } from '../dns/wire.js';", /policy .* may not import dns/],
    ['daemon/src/config/load.ts', "import { StopPage } from '../ops/stop-page.js';", /config .* may not import ops/],
    ['daemon/src/util/net.ts', "import type { Decision } from '../types/decision.js';", /util .* may not import types/],
    ['daemon/src/dns/listeners.ts', "import { boundSpec } from '../cluster/primary.js';", /may not import cluster/],
    ['daemon/src/server.ts', "export { startDaemon } from './daemon.js';", /server .* may not import daemon/],
    ['daemon/src/lists/registry.ts', "import type { Daemon } from '../daemon.js';", /lists .* may not import daemon/],
    ['daemon/src/dns/upstream.ts', "import type { QueryPath } from '../server.js';", /dns .* may not import server/],
    ['daemon/src/ops/runtime.ts', "import '../main.js';", /ops .* may not import main/],
  ];
  for (const [file, code, what] of cases) {
    const errors = await layerErrors(file, code + '\n');
    t.equal(errors.length, 1, `${file}: ${code}`);
    t.match(errors[0], what);
    t.match(errors[0], /an import never runs up the layers/);
  }
});

t.test('two names of one layer never import each other', async (t) => {
  const cases: [file: string, code: string][] = [
    ['daemon/src/dns/listeners.ts', "import type { ListStats } from '../lists/types.js';"],
    ['daemon/src/lists/sync.ts', "import { Access } from '../dns/access.js';"],
    ['daemon/src/ops/cluster.ts', "import { FollowerLists } from '../cluster/follower.js';"],
    ['daemon/src/cluster/primary.ts', "import type { Metrics } from '../ops/metrics.js';"],
    ['daemon/src/config/schema.ts', "import { Policy } from '../policy/verdict.js';"],
  ];
  for (const [file, code] of cases) {
    const errors = await layerErrors(file, code + '\n');
    t.equal(errors.length, 1, `${file}: ${code}`);
    t.match(errors[0], /names of one layer never import each other/);
  }
});

t.test('imports down the layers and within a folder pass', async (t) => {
  const cases: [file: string, code: string][] = [
    [
      'daemon/src/dns/cache.ts',
      "import { PASS_DECISION } from '../types/decision.js';\nimport { Arena } from './arena.js';",
    ],
    ['daemon/src/policy/verdict.ts', "import { dottedFromWire } from '../util/names.js';"],
    [
      'daemon/src/server.ts',
      "import { Access } from './dns/access.js';\nimport { Policy } from './policy/verdict.js';",
    ],
    [
      'daemon/src/ops/runtime.ts',
      "import type { Daemon } from '../server.js';\nimport type { ListStats } from '../lists/types.js';",
    ],
    [
      'daemon/src/main.ts',
      "import { startWorkers } from './cluster/primary.js';\nimport { Operations } from './ops/runtime.js';",
    ],
  ];
  for (const [file, code] of cases) t.same(await layerErrors(file, code + '\n'), [], `${file}: ${code}`);
});

t.test('daemon/README.md lists the layers the lint enforces', async (t) => {
  const readme = readFileSync(join(root, 'daemon', 'README.md'), 'utf8');
  const section = /\n## Layers\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? '';
  const listed = [...section.matchAll(/^\d+\. (.*)$/gm)].map((m) =>
    [...m[1]!.split(':')[0]!.matchAll(/`([a-z-]+)(?:\/|\.ts)`/g)].map((n) => n[1]!),
  );
  t.same(listed, DAEMON_LAYERS);
});
