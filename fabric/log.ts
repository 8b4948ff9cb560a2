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

/** Component loggers, most made at import time; pino children keep the level they were born with. */
const children = new Set<Logger>();

export function setLogLevel(level: LevelWithSilent): void {
  rootLogger.level = level;
  for (const child of children) child.level = level;
}

export function logger(component: string, bindings: Record<string, unknown> = {}): Logger {
  const child = rootLogger.child({ component, ...bindings });
  // Per-connection loggers come and go; only module-level ones are kept for setLogLevel.
  if (Object.keys(bindings).length === 0) children.add(child);
  return child;
}

export type { Logger };
