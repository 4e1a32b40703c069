/**
 * Telling systemd where the daemon is in its life (sd_notify(3), for `Type=notify`): READY=1 once DNS is answered
 * with the lists loaded as the config asks, RELOADING=1 (with MONOTONIC_USEC) when a SIGHUP's reload begins and
 * READY=1 when it is done, STOPPING=1 when the drain begins, and a STATUS= line an operator reads in
 * `systemctl status`.
 *
 * How the datagram gets there. The protocol is one datagram to the AF_UNIX socket in $NOTIFY_SOCKET, and Node has
 * no unix datagram sockets; the npm packages that send one are native addons (`sd-notify` links libsystemd,
 * `unix-dgram` and `node-unix-socket` are compiled or prebuilt binaries). So each message is sent by systemd's own
 * `systemd-notify`, spawned with the message's assignments. A child that sends and exits at once is racy: the
 * manager attributes a message to a unit by the sender's cgroup, and may look it up after the sender is gone, then
 * drops the message. `systemd-notify` (systemd 246 on) waits for the manager to have processed the message before
 * it exits (a BARRIER=1 message with a pipe the manager closes; `--no-block` turns that off, so it is never
 * passed), which closes that race; the unit needs `NotifyAccess=all`, since the sender is not the main process.
 * Messages are sent one at a time, in order; each is bounded in time and a failure is logged, never fatal.
 *
 * Without $NOTIFY_SOCKET (not started by systemd, or by a unit of another type) nothing is sent.
 */
import { spawn } from 'node:child_process';

import type { ListStats } from '../lists/types.js';
import type { Logger } from '../util/log.js';

/** How long one `systemd-notify` may take (it waits up to 5 s for the manager itself). */
const SEND_TIMEOUT_MS = 10_000;

export interface NotifierOptions {
  readonly logger: Logger;
  /** The environment that holds NOTIFY_SOCKET (process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** The program that sends (systemd-notify, found on PATH). */
  readonly command?: string;
}

/** The daemon's messages to systemd. */
export class ServiceNotifier {
  readonly #log: Logger;
  readonly #socket: string | undefined;
  readonly #command: string;
  #queue: Promise<void> = Promise.resolve();
  #warned = false;

  constructor(options: NotifierOptions) {
    this.#log = options.logger;
    const env = options.env ?? process.env;
    this.#socket = env.NOTIFY_SOCKET === '' ? undefined : env.NOTIFY_SOCKET;
    this.#command = options.command ?? 'systemd-notify';
  }

  /** Whether a service manager listens ($NOTIFY_SOCKET is set). */
  get enabled(): boolean {
    return this.#socket !== undefined;
  }

  /** DNS is answered and the lists are loaded as configured (at start), or a reload is done (whatever its outcome). */
  ready(status: string): Promise<void> {
    return this.#send(['READY=1', `STATUS=${status}`]);
  }

  /**
   * A reload begins. sd_notify(3): RELOADING=1 with MONOTONIC_USEC, the CLOCK_MONOTONIC time in microseconds (what
   * process.hrtime reads on Linux), so a manager that matches reload requests to replies (Type=notify-reload,
   * systemd 253 on) can; older ones ignore it. READY=1 must follow.
   */
  reloading(): Promise<void> {
    const usec = process.hrtime.bigint() / 1000n;
    return this.#send(['RELOADING=1', `MONOTONIC_USEC=${usec}`, 'STATUS=reloading the configuration and the lists']);
  }

  /** The drain begins (SIGTERM). */
  stopping(): Promise<void> {
    return this.#send(['STOPPING=1', 'STATUS=stopping: draining the queries in flight']);
  }

  /** A status line alone. */
  status(text: string): Promise<void> {
    return this.#send([`STATUS=${text}`]);
  }

  #send(assignments: readonly string[]): Promise<void> {
    if (this.#socket === undefined) return Promise.resolve();
    const run = this.#queue.then(() => this.#spawn(assignments));
    this.#queue = run;
    return run;
  }

  #spawn(assignments: readonly string[]): Promise<void> {
    return new Promise<void>((resolve) => {
      let stderr = '';
      let finished = false;
      const child = spawn(this.#command, [...assignments], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, NOTIFY_SOCKET: this.#socket },
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), SEND_TIMEOUT_MS);
      child.stderr.on('data', (c: Buffer) => {
        if (stderr.length < 1000) stderr += c.toString();
      });
      const done = (problem: string | null): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        if (problem !== null) {
          const fields = { command: this.#command, message: assignments[0], problem: problem.trim() };
          if (!this.#warned) {
            this.#warned = true;
            this.#log.warn(fields, 'cannot notify systemd (systemd-notify failed); the unit may time out or misreport');
          } else {
            this.#log.debug(fields, 'systemd notification failed');
          }
        }
        resolve();
      };
      child.once('error', (err) => done(err.message));
      child.once('exit', (code, signal) => {
        done(code === 0 ? null : `exit ${code ?? signal}${stderr === '' ? '' : `: ${stderr}`}`);
      });
    });
  }
}

/** The STATUS= line of a serving daemon: what answers DNS, and which lists are in force. */
export function servingStatus(serving: string, lists: readonly ListStats[]): string {
  if (lists.length === 0) return `${serving}; no lists configured`;
  const inForce = lists.filter((l) => l.enforced).map((l) => l.id);
  const named = inForce.length === 0 ? '' : ` (${inForce.join(', ')})`;
  return `${serving}; lists in force: ${inForce.length} of ${lists.length}${named}`;
}
