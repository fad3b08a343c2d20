import pino, { type Logger } from 'pino';

export type { Logger };

/** One JSON line per event; `bindings` name the process (cluster, worker id, role...). */
export function createLogger(level: string, bindings: Record<string, unknown>): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime });
}
