/**
 * `hashwalld release-held`: the operator's release of a list the guard held (lists/hold.ts).
 *
 *   hashwalld release-held --config /etc/hashwall/hashwalld.yaml --list ID --serial N --reason TEXT
 *
 * It reads the configuration (for the state directory), checks that list ID is held at serial N (held.json), and
 * writes release.json naming that exact list (its serial and the SHA-256 of its FULL file), the reason, who ran
 * it (the user, and the sudo user behind it) and when. The daemon applies it at its next poll of that list, at
 * once on SIGUSR1, and logs the release; the entries that block guard names stay out of its matcher. A release
 * names one list: a newer serial that is held again needs its own. Run it as the daemon's user
 * (`sudo -u hashwall hashwalld release-held ...`): the state directory is that user's alone.
 *
 * Exit codes: 0 recorded; 1 nothing to release (no held list, another serial) or the record could not be written;
 * 2 bad arguments or configuration. One JSON line on stdout says what was recorded.
 */
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { ConfigError, loadSettings } from '../config/load.js';
import { readHeld, writeRelease, type ReleaseRecord } from '../lists/hold.js';

const USAGE =
  'usage: hashwalld release-held [--config FILE] --list ID --serial N --reason TEXT\n' +
  '  releases the list the guard holds for list ID at serial N (see docs/isp.md, "Held lists")\n';

/** The longest reason kept. */
const MAX_REASON = 500;

export interface ReleaseIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** Seconds since the epoch. */
  readonly now: () => number;
  readonly env: NodeJS.ProcessEnv;
}

/** Who runs the command, for the record: the user, and the one behind sudo. */
function operator(env: NodeJS.ProcessEnv): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = `uid ${process.getuid?.() ?? '?'}`;
  }
  const sudo = env.SUDO_USER;
  return sudo && sudo !== user ? `${user} (sudo by ${sudo})` : user;
}

/** Runs the command; returns its exit code. */
export function releaseHeld(argv: readonly string[], io: ReleaseIo, defaultConfig: string): number {
  let v;
  try {
    v = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', short: 'c' },
        list: { type: 'string' },
        serial: { type: 'string' },
        reason: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    io.err(`hashwalld release-held: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (v.help) {
    io.out(USAGE);
    return 0;
  }
  const serial = Number(v.serial);
  const reason = (v.reason ?? '').trim();
  if (v.list === undefined || !Number.isSafeInteger(serial) || serial < 0 || reason === '') {
    io.err(`hashwalld release-held: --list, --serial (an integer) and --reason are required\n${USAGE}`);
    return 2;
  }
  if (reason.length > MAX_REASON || [...reason].some((c) => c.charCodeAt(0) < 0x20 || c === '\x7f')) {
    io.err(`hashwalld release-held: --reason: one line of at most ${MAX_REASON} characters\n`);
    return 2;
  }
  let stateDir: string;
  try {
    const settings = loadSettings(v.config ?? defaultConfig);
    if (!settings.config.lists.some((l) => l.id === v.list)) {
      io.err(`hashwalld release-held: no list "${v.list}" in ${settings.source}\n`);
      return 2;
    }
    stateDir = settings.config.stateDir;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`hashwalld release-held: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const dir = join(stateDir, v.list);
  try {
    const held = readHeld(dir);
    if (held === undefined) {
      io.err(`hashwalld release-held: list ${v.list} holds nothing (no ${join(dir, 'held.json')})\n`);
      return 1;
    }
    if (held.serial !== serial) {
      io.err(`hashwalld release-held: list ${v.list} holds serial ${held.serial}, not ${serial}: nothing released\n`);
      return 1;
    }
    const record: ReleaseRecord = {
      listId: held.listId,
      serial: held.serial,
      fullSha256: held.fullSha256,
      reason,
      by: operator(io.env),
      at: new Date(io.now() * 1000).toISOString(),
    };
    writeRelease(dir, record);
    io.out(`${JSON.stringify({ msg: 'held list released', ...record, heldAt: held.heldAt, reasons: held.reasons })}\n`);
    io.err(
      `released list ${v.list} serial ${serial}: hashwalld applies it at its next poll; to apply it now, ` +
        'send it SIGUSR1 (systemctl kill -s SIGUSR1 --kill-whom=main hashwalld)\n',
    );
    return 0;
  } catch (err) {
    io.err(`hashwalld release-held: ${(err as Error).message}\n`);
    return 1;
  }
}
