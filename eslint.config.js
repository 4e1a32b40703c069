// ESLint flat config: type-checked recommended rules for every package's TypeScript, plain
// recommended rules for the few JavaScript scripts, and the daemon's layers.
import { statSync } from 'node:fs';
import { join } from 'node:path';

import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The daemon's layers, bottom to top, as daemon/README.md ("Layers") lists them. Each name is a folder of
 * daemon/src or a module at its top (`server` is daemon/src/server.ts). A module may import its own folder and the
 * layers below its own; never a layer above, and never another name of its own layer, so two folders never import
 * each other.
 */
export const DAEMON_LAYERS = [
  ['util'],
  ['types'],
  ['config', 'policy'],
  ['dns', 'lists'],
  ['server'],
  ['daemon'],
  ['ops', 'cluster'],
  ['main'],
];

const DAEMON_SRC = join(import.meta.dirname, 'daemon', 'src');
const isFolder = (name) => statSync(join(DAEMON_SRC, name), { throwIfNoEntry: false })?.isDirectory() === true;
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** One no-restricted-imports block per name: the names it may not import, as the import specifiers it would write. */
function daemonLayerRules() {
  return DAEMON_LAYERS.flatMap((layer, i) =>
    layer.map((name) => {
      const prefix = isFolder(name) ? '../' : './';
      const forbidden = DAEMON_LAYERS.flatMap((l, j) =>
        l.filter((other) => other !== name && j >= i).map((other) => ({ other, j })),
      );
      return {
        files: [isFolder(name) ? `daemon/src/${name}/**/*.ts` : `daemon/src/${name}.ts`],
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: forbidden.map(({ other, j }) => ({
                regex: isFolder(other) ? `^${escape(prefix + other)}(/|$)` : `^${escape(prefix + other)}(\\.js)?$`,
                message:
                  `${name} (layer ${i}) may not import ${other} (layer ${j}): ` +
                  (j === i ? 'names of one layer never import each other' : 'an import never runs up the layers') +
                  ' (daemon/README.md, "Layers").',
              })),
            },
          ],
        },
      };
    }),
  );
}

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/node_modules/**', '**/.tap/**', 'coverage/**', 'bench/work/**', 'bench/results/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // tap's t.test() returns a promise that tap itself tracks; subtests need not await anything.
    files: ['**/test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    // The query path imports what Node's global object only offers through a getter, which V8 calls at every read
    // (bench/README.md, "Buffer's methods off the query path").
    files: ['daemon/src/server.ts', 'daemon/src/dns/**/*.ts', 'daemon/src/policy/**/*.ts', 'daemon/src/util/**/*.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['Buffer', 'performance'].map((name) => ({
          name,
          message: `import ${name} (node:${name === 'Buffer' ? 'buffer' : 'perf_hooks'}): the global is a getter V8 calls at every read`,
        })),
      ],
    },
  },
  {
    // node:http through process.getBuiltinModule (the daemon: util/http.ts): an ES-module import reads every export
    // of node:http, and under Node 24 three of them load Node's bundled undici (util/http.ts). A type import is erased.
    files: ['daemon/src/**/*.ts', 'witness/src/**/*.ts'],
    ignores: ['daemon/src/util/http.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...[
          'ImportDeclaration[importKind="value"]',
          'ImportExpression',
          'ExportNamedDeclaration',
          'ExportAllDeclaration',
        ].map((node) => ({
          selector: `${node}[source.value=/^(node:)?http$/]`,
          message:
            "take node:http's values with process.getBuiltinModule (the daemon: util/http.ts): " +
            "an import of node:http loads Node's undici (Node 24)",
        })),
      ],
    },
  },
  ...daemonLayerRules(),
);
