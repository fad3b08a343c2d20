import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * One JSON line per event; `bindings` name the process (cluster, worker id, ...) and child
 * loggers add role, epoch, seq and request id where they are known. On a terminal the
 * lines are pretty-printed instead (pino-pretty), for people rather than log shippers.
 */
export function createLogger(level: string, bindings: Record<string, unknown>): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    transport: process.stdout.isTTY ? { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'hostname' } } : undefined,
  });
}
