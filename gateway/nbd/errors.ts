import { isBlockError, type BlockErrorCode } from '../../fabric/errors.js';
import {
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOMEM,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EPERM,
  NBD_ESHUTDOWN,
} from '../../fabric/protocols/nbd.js';

const NBD_ERROR_OF: Record<BlockErrorCode, number> = {
  EPERM: NBD_EPERM,
  EIO: NBD_EIO,
  ENOMEM: NBD_ENOMEM,
  EINVAL: NBD_EINVAL,
  ENOSPC: NBD_ENOSPC,
  // The spec reserves NBD_EOVERFLOW for unfragmentable DF reads (raised by the server
  // itself); a request too large for the device is an invalid request.
  EOVERFLOW: NBD_EINVAL,
  ENOTSUP: NBD_ENOTSUP,
  ESHUTDOWN: NBD_ESHUTDOWN,
  ETIMEDOUT: NBD_EIO,
};

/**
 * The one mapping from the fabric's errors to NBD reply errors. NBD_ENOTSUP is only
 * allowed as the answer to a FAST_ZERO write-zeroes; elsewhere it becomes NBD_EINVAL.
 */
export function nbdErrorOf(err: unknown, allowNotSup = false): number {
  if (!isBlockError(err)) return NBD_EIO;
  const value = NBD_ERROR_OF[err.code] ?? NBD_EIO;
  return value === NBD_ENOTSUP && !allowNotSup ? NBD_EINVAL : value;
}

/** A short human-readable message for structured error chunks. */
export function nbdErrorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A peer broke a MUST of the protocol: the connection is dropped (a hard disconnect). */
export class NbdProtocolError extends Error {
  override readonly name = 'NbdProtocolError';
}
