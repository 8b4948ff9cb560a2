import type { BlockDevice, WriteOptions, ZeroOptions } from './device.js';
import { totalLength } from './device.js';
import { BlockError } from './errors.js';
import { Layer } from './layer.js';

type Access = 'read' | 'write';

/**
 * The one boundary that validates every request before any backend sees it, so devices
 * below can trust offsets, lengths, alignment and the operation itself.
 */
export class CheckedDevice extends Layer {
  constructor(next: BlockDevice) {
    super(next);
  }

  override async read(offset: number, target: Buffer): Promise<void> {
    this.checkRange('read', offset, target.length, 'read');
    this.checkPayload(target.length);
    return this.next.read(offset, target);
  }

  override async write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    const length = totalLength(data);
    this.checkWritable('write');
    this.checkRange('write', offset, length, 'write');
    this.checkPayload(length);
    this.checkFua(options);
    return this.next.write(offset, data, options);
  }

  override async flush(): Promise<void> {
    if (!this.capabilities.flush) throw new BlockError('ENOTSUP', 'flush is not supported by this device');
    return this.next.flush();
  }

  override async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    this.checkWritable('trim');
    if (!this.capabilities.trim) throw new BlockError('ENOTSUP', 'trim is not supported by this device');
    // A trim past the end is EINVAL like a read (NBD spec, "Error values"), not ENOSPC.
    this.checkRange('trim', offset, length, 'read');
    this.checkFua(options);
    return this.next.trim(offset, length, options);
  }

  override async writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    this.checkWritable('write zeroes');
    if (!this.capabilities.writeZeroes) throw new BlockError('ENOTSUP', 'write zeroes is not supported by this device');
    this.checkRange('write zeroes', offset, length, 'write');
    this.checkFua(options);
    if (options?.fastOnly && !this.capabilities.fastZero) {
      throw new BlockError('ENOTSUP', 'fast zeroing is not supported by this device');
    }
    return this.next.writeZeroes(offset, length, options);
  }

  override async blockStatus(offset: number, length: number) {
    this.checkRange('block status', offset, length, 'read');
    return this.next.blockStatus(offset, length);
  }

  override async cache(offset: number, length: number): Promise<void> {
    if (!this.capabilities.cache) throw new BlockError('ENOTSUP', 'cache is not supported by this device');
    this.checkRange('cache', offset, length, 'read');
    return this.next.cache(offset, length);
  }

  private checkWritable(op: string): void {
    if (this.capabilities.readOnly) throw new BlockError('EPERM', `${op} on read-only device ${this.name}`);
  }

  private checkFua(options: WriteOptions | undefined): void {
    if (options?.fua && !this.capabilities.fua) throw new BlockError('EINVAL', 'FUA is not supported by this device');
  }

  private checkPayload(length: number): void {
    const max = this.blockSizes.maximum;
    if (length > max) throw new BlockError('EOVERFLOW', `request of ${length} bytes exceeds the maximum of ${max}`);
  }

  private checkRange(op: string, offset: number, length: number, access: Access): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new BlockError('EINVAL', `${op}: offset ${offset} / length ${length} not representable`);
    }
    if (length === 0) throw new BlockError('EINVAL', `${op}: zero length`);
    const min = this.blockSizes.minimum;
    if (offset % min !== 0 || length % min !== 0) {
      throw new BlockError('EINVAL', `${op}: offset ${offset} / length ${length} not aligned to ${min} bytes`);
    }
    if (offset + length > this.size) {
      // The NBD spec asks for ENOSPC on writes past the end and EINVAL on reads.
      throw new BlockError(
        access === 'write' ? 'ENOSPC' : 'EINVAL',
        `${op}: range ${offset}+${length} beyond the end of ${this.name} (${this.size} bytes)`,
      );
    }
  }
}
