/**
 * Which errors mean "this path is broken" (retry elsewhere) and which are the request's own
 * fault (return to the caller): a bad range or a full or read-only disk is the same on every
 * path, a dead connection or a timeout is not.
 */
import { isBlockError } from '../../errors.js';

export function isPathError(err: unknown): boolean {
  if (!isBlockError(err)) return true;
  return err.code === 'EIO' || err.code === 'ETIMEDOUT' || err.code === 'ESHUTDOWN';
}
