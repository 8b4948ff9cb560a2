import { pino, type Logger, type LevelWithSilent } from 'pino';

/**
 * The process-wide pino logger: JSON lines for machines, pretty on a TTY for people.
 * Modules take a child with their own `component` so lines can be filtered.
 */
function createRootLogger(): Logger {
  const level = (process.env.BLOCKGATE_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const pretty = process.stdout.isTTY && process.env.BLOCKGATE_LOG_FORMAT !== 'json';
  return pretty
    ? pino({ level, transport: { target: 'pino-pretty', options: { destination: 1, translateTime: 'SYS:HH:MM:ss.l' } } })
    : pino({ level });
}

export const rootLogger: Logger = createRootLogger();

export function setLogLevel(level: LevelWithSilent): void {
  rootLogger.level = level;
}

export function logger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger.child({ component, ...bindings });
}

export type { Logger };
