// A process that gets killed with SIGKILL in the middle of its work, for the crash tests (lists-crash.slow.test.ts,
// lists-trust-crash.slow.test.ts).
//   node commit-child.mjs store <stateDir> <inputsDir>   commits the prepared updates a, b, a, b, ... forever, every
//                                                        other one streamed through a spool as a download is; an
//                                                        update with a keyring and a checkpoint (<name>.keyring,
//                                                        .keyring.sig, .keyring.version, .checkpoint) commits them
//                                                        with its list state
//   node commit-child.mjs daemon <settings.json>         starts a registry and polls once, then idles
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { settingsFrom } from '../../dist/config/load.js';
import { ListStore } from '../../dist/lists/store.js';
import { ListRegistry } from '../../dist/lists/registry.js';
import { createLogger } from '../../dist/util/log.js';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'store') {
  const [stateDir, inputs] = args;
  const load = (name) => {
    const state = JSON.parse(readFileSync(join(inputs, `${name}.state.json`), 'utf8'));
    const file = (ext) => join(inputs, `${name}.${ext}`);
    const trust = existsSync(file('keyring'))
      ? {
          trust: {
            keyring: {
              bytes: readFileSync(file('keyring')),
              signatures: [readFileSync(file('keyring.sig'))],
              version: Number(readFileSync(file('keyring.version'), 'utf8')),
            },
            checkpoint: readFileSync(file('checkpoint')),
          },
        }
      : {};
    return {
      state,
      indexBytes: readFileSync(file('index')),
      indexSignatures: [readFileSync(file('sig'))],
      fullBytes: readFileSync(file('full')),
      ...trust,
    };
  };
  const updates = [load('a'), load('b')];
  const store = new ListStore(stateDir, updates[0].state.listId);
  // 'ready' once one list is committed: the kill then always lands while a later commit replaces it (under load,
  // a kill timed from the start could come before the first commit ended, leaving nothing to serve).
  store.commit(updates[0]);
  process.stdout.write('ready\n');
  for (let i = 1; ; i++) {
    const u = updates[i % 2];
    if (i % 4 < 2) {
      store.commit(u);
      continue;
    }
    // As a download: the FULL written to a spool in 64 KiB chunks, then committed by renaming the spool.
    const spool = store.createSpool();
    for (let at = 0; at < u.fullBytes.length; at += 65536) spool.write(u.fullBytes.subarray(at, at + 65536));
    const { fullBytes: _, ...rest } = u;
    store.commit({ ...rest, fullSpool: spool });
  }
} else if (mode === 'daemon') {
  const raw = JSON.parse(readFileSync(args[0], 'utf8'));
  const settings = settingsFrom(raw, '/');
  const registry = new ListRegistry(settings, { logger: createLogger({ level: 'error' }) });
  await registry.start();
  process.stdout.write('polling\n');
  await registry.pollNow(settings.lists[0].config.id);
  process.stdout.write('done\n');
  setInterval(() => undefined, 1000);
}
