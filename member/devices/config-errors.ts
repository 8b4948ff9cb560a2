import { isBlockError } from '../../fabric/errors.js';
import { ConfigError } from '../../failover/config/errors.js';

/**
 * Geometry problems found only once the children exist (a stripe unit below the block
 * size, a spare smaller than its mirror) are still the configuration's fault: EINVAL from a
 * layer's constructor becomes a ConfigError naming the device's field.
 */
export async function asConfigError<T>(field: string, build: () => T | Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (err) {
    if (isBlockError(err) && err.code === 'EINVAL') throw new ConfigError(field, err.message.replace(/^EINVAL: /, ''));
    throw err;
  }
}
