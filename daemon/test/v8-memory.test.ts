/** V8's memory saver (util/v8-memory.ts): on where the V8 has it, left to the operator's own flag, never refused. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import t from 'tap';

import { memorySaverWanted } from '../dist/util/v8-memory.js';
import { plainCommand } from '../../test/helpers/tools.ts';

const execFileP = promisify(execFile);
const NODE20_V8 = '11.3.244.8-node.33';
const NODE24_V8 = '13.6.233.10-node.28';

t.test('wanted from V8 13 on, unless the node command line names the flag', async (t) => {
  t.equal(memorySaverWanted(NODE20_V8, []), false, "Node 20's V8 has no such flag");
  t.equal(memorySaverWanted('12.4.254.21-node.33', []), false, 'nor is it set on V8 12');
  t.equal(memorySaverWanted(NODE24_V8, []), true, "Node 24's V8");
  t.equal(memorySaverWanted('14.0.1', ['--max-semi-space-size=2']), true, 'a later one, other flags given');
  t.equal(memorySaverWanted(NODE24_V8, ['--no-memory-saver-mode']), false, 'turned off by the operator');
  t.equal(memorySaverWanted(NODE24_V8, ['--memory_saver_mode']), false, 'already on (underscores)');
  t.equal(memorySaverWanted(NODE24_V8, ['--memory-saver-mode=false']), false, 'a value given');
  t.equal(memorySaverWanted(NODE24_V8, ['--memory-saver-modes']), true, 'another flag is not it');
  t.equal(memorySaverWanted('', []), false, 'no version read');
});

/** Runs applyMemorySaver() in a node started with `flags`; its result and what it wrote to stderr. */
async function applied(flags: string[]): Promise<{ result: string; stderr: string }> {
  const url = new URL('../dist/util/v8-memory.js', import.meta.url).href;
  const code = `import(${JSON.stringify(url)}).then((m) => process.stdout.write(String(m.applyMemorySaver())))`;
  const [file, args] = plainCommand(process.execPath, [...flags, '-e', code]);
  const { stdout, stderr } = await execFileP(file, args, { encoding: 'utf8' });
  return { result: stdout, stderr };
}

t.test('the node running these tests takes the flag when it is wanted, with no complaint', async (t) => {
  const major = Number(process.versions.v8.split('.')[0]);
  const { result, stderr } = await applied([]);
  t.equal(result, String(major >= 13), `V8 ${process.versions.v8}`);
  t.equal(stderr, '', 'no "unrecognized flag" from V8');
  if (major >= 13) {
    const off = await applied(['--no-memory-saver-mode']);
    t.equal(off.result, 'false', "the operator's --no-memory-saver-mode stands");
    t.equal(off.stderr, '');
  }
});
