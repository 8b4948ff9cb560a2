import { ConfigError } from '../../failover/config/errors.js';
import { ApiError } from './api-client.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
/** Bad command line or configuration: the operator must change something before retrying. */
export const EXIT_USAGE = 2;

/** Thrown for command-line mistakes; the CLI prints it and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Print an error for a person on stderr and return the exit status it calls for. */
export function reportError(err: unknown, context?: string): number {
  const prefix = context ? `blockgate: ${context}: ` : 'blockgate: ';
  if (err instanceof ConfigError) {
    const lines = err.problems.map((p) => `${p.field}: ${p.problem}`);
    process.stderr.write(
      lines.length === 1 ? `${prefix}configuration error: ${lines[0]}\n` : `${prefix}${lines.length} configuration errors:\n${lines.map((l) => `  ${l}\n`).join('')}`,
    );
    return EXIT_USAGE;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`${prefix}${err.message}\nRun 'blockgate --help' for usage.\n`);
    return EXIT_USAGE;
  }
  if (err instanceof ApiError) {
    process.stderr.write(`${prefix}${err.message} (HTTP ${err.status})\n`);
    return EXIT_FAILURE;
  }
  process.stderr.write(`${prefix}${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT_FAILURE;
}
