import type { BlockDevice, WriteOptions, ZeroOptions } from '../device.js';
import { totalLength } from '../device.js';
import { Layer } from '../layer.js';
import { RangeLock } from '../range-lock.js';

/**
 * Run the modifying request `io` of [start, end) under `lock`: at once when it carries a
 * granted hold of that range (its holder's own write), else through `lock.write`.
 */
export function underRangeLock(lock: RangeLock, start: number, end: number, options: WriteOptions | undefined, io: () => Promise<void>): Promise<void> {
  if (options?.hold) {
    try {
      if (lock.covers(options.hold, start, end)) return io();
    } catch (err) {
      return Promise.reject(err);
    }
  }
  return lock.write(start, end, io);
}

/**
 * Puts one range lock over a device: every request that changes data (write, trim, write
 * zeroes) runs under the lock's `write()`, so it waits while someone holds its range
 * exclusively, and `rangeLock` offers the exclusive holds. The switch puts this over each
 * registered device, so NBD and iSCSI writes to one export, and SCSI COMPARE AND WRITE on it,
 * all meet in the same lock. A request that carries its own granted hold passes straight on.
 * A device that already runs its writes under a lock of its own (a mirror, whose resync
 * holds ranges) lends it instead, so that there is still one lock per device.
 */
export class RangeLockedDevice extends Layer {
  private readonly lock: RangeLock;
  /** The lock is the device's own, which it applies itself. */
  private readonly lent: boolean;

  constructor(next: BlockDevice) {
    super(next);
    this.lent = next.rangeLock !== undefined;
    this.lock = next.rangeLock ?? new RangeLock();
  }

  override get rangeLock(): RangeLock {
    return this.lock;
  }

  override write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    return this.modify(offset, offset + totalLength(data), options, () => this.next.write(offset, data, options));
  }

  override trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.modify(offset, offset + length, options, () => this.next.trim(offset, length, options));
  }

  override writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.modify(offset, offset + length, options, () => this.next.writeZeroes(offset, length, options));
  }

  private modify(start: number, end: number, options: WriteOptions | undefined, io: () => Promise<void>): Promise<void> {
    return this.lent ? io() : underRangeLock(this.lock, start, end, options, io);
  }
}
