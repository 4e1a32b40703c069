/** Structured logs: one JSON object a line (pino), leveled, to stdout (journald keeps it under systemd). */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: 'debug' | 'info' | 'warn' | 'error', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'hashwall-witness' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
