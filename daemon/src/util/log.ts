/**
 * Structured logs: one JSON object a line (pino), leveled, to stdout (journald keeps it under systemd).
 *
 * Privacy is enforced here, not left to call sites: the fields `qname` and `client` are removed from every line
 * at info level or above, and from debug lines too unless the operator turned on `logging.debugQueryNames` /
 * `logging.debugClientAddresses`. Nothing else in the daemon decides this.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly debugQueryNames?: boolean;
  readonly debugClientAddresses?: boolean;
}

/** Field names that carry a query name or a client address. */
export const PRIVATE_FIELDS = { qname: 'qname', client: 'client' } as const;
const DEBUG = 20;

export function createLogger(options: LogOptions, destination?: DestinationStream): Logger {
  const keepQname = options.debugQueryNames === true;
  const keepClient = options.debugClientAddresses === true;
  return pino(
    {
      level: options.level,
      base: { name: 'hashwalld' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method, level) {
          const first: unknown = args[0];
          if (first !== null && typeof first === 'object' && !(first instanceof Error)) {
            const fields = first as Record<string, unknown>;
            const dropQname = 'qname' in fields && (level > DEBUG || !keepQname);
            const dropClient = 'client' in fields && (level > DEBUG || !keepClient);
            if (dropQname || dropClient) {
              const copy = { ...fields };
              if (dropQname) delete copy.qname;
              if (dropClient) delete copy.client;
              args[0] = copy;
            }
          }
          method.apply(this, args);
        },
      },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
