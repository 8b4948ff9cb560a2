import type { BlockDevice, Capabilities } from '../../fabric/device.js';
import {
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_ROTATIONAL,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from '../../fabric/protocols/nbd.js';

/** Transmission flags an export advertises, straight from its device's capabilities. */
export function transmissionFlags(caps: Capabilities, structuredReplies: boolean): number {
  let flags = NBD_FLAG_HAS_FLAGS;
  if (caps.readOnly) flags |= NBD_FLAG_READ_ONLY;
  if (caps.flush) flags |= NBD_FLAG_SEND_FLUSH;
  if (caps.fua) flags |= NBD_FLAG_SEND_FUA;
  if (caps.rotational) flags |= NBD_FLAG_ROTATIONAL;
  if (!caps.readOnly && caps.trim) flags |= NBD_FLAG_SEND_TRIM;
  if (!caps.readOnly && caps.writeZeroes) {
    flags |= NBD_FLAG_SEND_WRITE_ZEROES;
    if (caps.fastZero) flags |= NBD_FLAG_SEND_FAST_ZERO;
  }
  // DF only means something once structured replies exist (the spec forbids it before).
  if (structuredReplies) flags |= NBD_FLAG_SEND_DF;
  // Devices are shared by every connection, so a flush on one covers writes of all.
  if (caps.multiConn) flags |= NBD_FLAG_CAN_MULTI_CONN;
  if (caps.cache) flags |= NBD_FLAG_SEND_CACHE;
  return flags;
}

export interface AdvertisedBlockSizes {
  readonly minimum: number;
  readonly preferred: number;
  readonly maximum: number;
}

const U32_MAX = 0xffffffff;

/** NBD_INFO_BLOCK_SIZE values, made to satisfy the spec's constraints on each field. */
export function advertisedBlockSizes(device: BlockDevice): AdvertisedBlockSizes {
  const { minimum, preferred, maximum } = device.blockSizes;
  const min = Math.max(1, minimum);
  const pref = Math.max(preferred, min, 512);
  let max = Math.min(maximum, U32_MAX);
  if (max !== U32_MAX) max -= max % min;
  return { minimum: min, preferred: pref, maximum: Math.max(max, Math.min(pref, device.size)) };
}
