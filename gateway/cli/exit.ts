import { ConfigError } from '../../failover/config/errors.js';
import { ApiError, MemberUnreachableError } from './api-client.js';

/**
 * Exit statuses, the same for every command (documented in `blockgate --help`): scripts
 * can tell "try another member" (3) from "fix the token" (4) from "not now" (5).
 */
export const EXIT_OK = 0;
/** Failed: the member refused the request as wrong (HTTP 400, 404…) or failed doing it. */
export const EXIT_FAILURE = 1;
/** Bad command line or configuration: the operator must change something before retrying. */
export const EXIT_USAGE = 2;
/** No member could be reached (or one stopped answering mid-request). */
export const EXIT_UNREACHABLE = 3;
/** The token is missing, wrong, or read-only for a change (HTTP 401, 403). */
export const EXIT_NOT_ALLOWED = 4;
/** Refused in the current state (HTTP 409): the same request may succeed later. */
export const EXIT_REFUSED = 5;
/** `status --check`: an export's device is not optimal. */
export const EXIT_UNHEALTHY = 6;
/** Interrupted by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

/** The exit status an API answer calls for. */
export function exitOfHttpStatus(status: number): number {
  if (status === 401 || status === 403) return EXIT_NOT_ALLOWED;
  if (status === 409) return EXIT_REFUSED;
  return EXIT_FAILURE;
}

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
    return exitOfHttpStatus(err.status);
  }
  if (err instanceof MemberUnreachableError) {
    process.stderr.write(`${prefix}${err.message}\n`);
    return EXIT_UNREACHABLE;
  }
  process.stderr.write(`${prefix}${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT_FAILURE;
}
