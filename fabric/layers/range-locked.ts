import type { BlockDevice, WriteOptions, ZeroOptions } from '../device.js';
import { totalLength } from '../device.js';
import { Layer } from '../layer.js';
import { RangeLock } from '../range-lock.js';

/**
 * Puts one range lock over a device: every request that changes data (write, trim, write
 * zeroes) runs under the lock's `write()`, so it waits while someone holds its range
 * exclusively, and `rangeLock` offers the exclusive holds. The switch puts this over each
 * registered device, so NBD and iSCSI writes to one export, and SCSI COMPARE AND WRITE on it,
 * all meet in the same lock. A request that carries its own granted hold passes straight on.
 */
export class RangeLockedDevice extends Layer {
  private readonly lock = new RangeLock();

  constructor(next: BlockDevice) {
    super(next);
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
    if (options?.hold) {
      try {
        if (this.lock.covers(options.hold, start, end)) return io();
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.lock.write(start, end, io);
  }
}
