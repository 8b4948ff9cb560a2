import type { BlockDevice } from './device.js';

/**
 * A device whose server can refuse a superseded client (blockgate's NBD fencing extension):
 * `fence(token)` presents a newer token, after which the server refuses requests still
 * arriving under any older one — late writes of a hung path or a paused Primary.
 * Tokens only grow; an older one is ignored.
 */
export interface Fenceable {
  fence(token: number): void;
}

export function isFenceable(device: BlockDevice): device is BlockDevice & Fenceable {
  return typeof (device as Partial<Fenceable>).fence === 'function';
}
