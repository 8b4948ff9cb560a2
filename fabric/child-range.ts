import type { BlockDevice } from './device.js';
import { BlockError } from './errors.js';
import { logger } from './log.js';

const log = logger('fabric');

/**
 * The range check nbdkit makes at every layer boundary (backend_valid_range), for layers
 * that split or remap requests (concat, stripe, mirror regions): each piece handed to a
 * child must lie inside that child and respect its block size. A wrong split is then caught
 * where it happens — an EIO that names the layer and the child, logged as the bug it is —
 * instead of failing inside a backend, or landing at the wrong place of a bigger one.
 */
export function checkChildRange(layer: string, child: BlockDevice, op: string, offset: number, length: number): void {
  const min = child.blockSizes.minimum;
  if (
    Number.isSafeInteger(offset) &&
    Number.isSafeInteger(length) &&
    offset >= 0 &&
    length > 0 &&
    offset + length <= child.size &&
    offset % min === 0 &&
    length % min === 0
  ) {
    return;
  }
  const message = `${layer}: internal error: ${op} of ${length} bytes at ${offset} handed to ${child.name} (${child.size} bytes, blocks of ${min}) is outside it`;
  log.error({ layer, child: child.name, op, offset, length }, 'a layer split a request wrongly');
  throw new BlockError('EIO', message);
}
