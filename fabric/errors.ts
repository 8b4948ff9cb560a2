/**
 * One error family for the whole data path. Front ends map `code` to their protocol's
 * error (NBD reply error, SCSI sense); nothing above the fabric inspects messages.
 */
export const BLOCK_ERROR_CODES = [
  'EPERM', // write to a read-only device, reservation conflict
  'EIO', // the medium or a backend failed
  'ENOMEM',
  'EINVAL', // malformed request: bad range, alignment or flags
  'ENOSPC', // a write beyond the end of the device
  'EOVERFLOW', // a request larger than the device accepts in one piece
  'ENOTSUP', // the device cannot do this operation (or not fast enough, for FAST_ZERO)
  'ESHUTDOWN', // the device or member is going away
  'ETIMEDOUT', // a backend did not answer in time
] as const;

export type BlockErrorCode = (typeof BLOCK_ERROR_CODES)[number];

export class BlockError extends Error {
  override readonly name = 'BlockError';
  /**
   * The request never reached the device, or its answer never came back (connection lost,
   * server unreachable): the way to the device failed, not the device. A reply that carries
   * an error is not a transport failure: whoever answered is alive.
   */
  readonly transport: boolean;
  constructor(
    readonly code: BlockErrorCode,
    message: string,
    options?: { cause?: unknown; transport?: boolean },
  ) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.transport = options?.transport === true;
  }
}

export function isBlockError(err: unknown): err is BlockError {
  return err instanceof BlockError;
}

/**
 * Whether `err` says the path to a device failed (so another path may succeed), as
 * dm-multipath tells a path failure from a medium error: a lost connection, a timeout, a
 * device going away. Anything that is not a BlockError is unexplained, so it counts too.
 */
export function isTransportError(err: unknown): boolean {
  if (!isBlockError(err)) return true;
  return err.transport || err.code === 'ETIMEDOUT' || err.code === 'ESHUTDOWN';
}

const NODE_ERRNO_TO_BLOCK: Record<string, BlockErrorCode> = {
  EPERM: 'EPERM',
  EACCES: 'EPERM',
  EROFS: 'EPERM',
  ENOSPC: 'ENOSPC',
  EDQUOT: 'ENOSPC',
  EINVAL: 'EINVAL',
  ENOMEM: 'ENOMEM',
  EOPNOTSUPP: 'ENOTSUP',
  ENOTSUP: 'ENOTSUP',
  EOVERFLOW: 'EOVERFLOW',
  EFBIG: 'ENOSPC',
  ETIMEDOUT: 'ETIMEDOUT',
  ESHUTDOWN: 'ESHUTDOWN',
};

/** Turn anything thrown below the fabric (fs errors, sockets) into a BlockError. */
export function toBlockError(err: unknown, context: string): BlockError {
  if (err instanceof BlockError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  const code = (errno && NODE_ERRNO_TO_BLOCK[errno]) || 'EIO';
  const detail = err instanceof Error ? err.message : String(err);
  return new BlockError(code, `${context}: ${detail}`, { cause: err });
}
