/** NBD reply error values (Linux errno numbers on the wire) back to BlockError codes. */
import type { BlockErrorCode } from '../../errors.js';
import {
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOMEM,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EOVERFLOW,
  NBD_EPERM,
  NBD_ESHUTDOWN,
} from '../../protocols/nbd.js';

const FROM_NBD = new Map<number, BlockErrorCode>([
  [NBD_EPERM, 'EPERM'],
  [NBD_EIO, 'EIO'],
  [NBD_ENOMEM, 'ENOMEM'],
  [NBD_EINVAL, 'EINVAL'],
  [NBD_ENOSPC, 'ENOSPC'],
  [NBD_EOVERFLOW, 'EOVERFLOW'],
  [NBD_ENOTSUP, 'ENOTSUP'],
  [NBD_ESHUTDOWN, 'ESHUTDOWN'],
]);

/**
 * The spec tells clients to read a value it does not define as EINVAL (as qemu does): the
 * server failed this request, not the path, so a failover layer must not retry it elsewhere.
 */
export function blockCodeFromNbd(error: number): BlockErrorCode {
  return FROM_NBD.get(error) ?? 'EINVAL';
}
