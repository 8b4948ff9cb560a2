import type { BlockDevice, Extent, WriteOptions, ZeroOptions } from './device.js';
import { totalLength } from './device.js';
import { BlockError } from './errors.js';
import { Layer } from './layer.js';

type Access = 'read' | 'write';

/**
 * The one boundary that validates every request before any backend sees it, so devices
 * below can trust offsets, lengths, alignment and the operation itself. It runs for every
 * request: the checks return the error rather than throw it, and a valid request is the
 * device's own promise, not one more async wrapper around it. Whatever a device throws
 * instead of rejecting still reaches the caller as a rejection.
 */
export class CheckedDevice extends Layer {
  constructor(next: BlockDevice) {
    super(next);
  }

  override read(offset: number, target: Buffer): Promise<void> {
    const invalid = this.checkRange('read', offset, target.length, 'read') ?? this.checkPayload(target.length);
    if (invalid) return Promise.reject(invalid);
    try {
      return this.next.read(offset, target);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  override write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    const length = totalLength(data);
    const invalid =
      this.checkWritable('write') ?? this.checkRange('write', offset, length, 'write') ?? this.checkPayload(length) ?? this.checkFua(options);
    if (invalid) return Promise.reject(invalid);
    try {
      return this.next.write(offset, data, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  override flush(): Promise<void> {
    const invalid = this.capabilities.flush ? undefined : new BlockError('ENOTSUP', 'flush is not supported by this device');
    if (invalid) return Promise.reject(invalid);
    try {
      return this.next.flush();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  override trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    const invalid =
      this.checkWritable('trim') ??
      (this.capabilities.trim ? undefined : new BlockError('ENOTSUP', 'trim is not supported by this device')) ??
      // A trim past the end is EINVAL like a read (NBD spec, "Error values"), not ENOSPC.
      this.checkRange('trim', offset, length, 'read') ??
      this.checkFua(options);
    if (invalid) return Promise.reject(invalid);
    try {
      return this.next.trim(offset, length, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  override writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    const invalid =
      this.checkWritable('write zeroes') ??
      (this.capabilities.writeZeroes ? undefined : new BlockError('ENOTSUP', 'write zeroes is not supported by this device')) ??
      this.checkRange('write zeroes', offset, length, 'write') ??
      this.checkFua(options) ??
      (options?.fastOnly && !this.capabilities.fastZero ? new BlockError('ENOTSUP', 'fast zeroing is not supported by this device') : undefined);
    if (invalid) return Promise.reject(invalid);
    try {
      return this.next.writeZeroes(offset, length, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  override blockStatus(offset: number, length: number): Promise<Extent[]> {
    const invalid = this.checkRange('block status', offset, length, 'read');
    if (invalid) return Promise.reject(invalid);
    try {
      return this.next.blockStatus(offset, length);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  override cache(offset: number, length: number): Promise<void> {
    const invalid =
      (this.capabilities.cache ? undefined : new BlockError('ENOTSUP', 'cache is not supported by this device')) ??
      this.checkRange('cache', offset, length, 'read');
    if (invalid) return Promise.reject(invalid);
    try {
      return this.next.cache(offset, length);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private checkWritable(op: string): BlockError | undefined {
    return this.capabilities.readOnly ? new BlockError('EPERM', `${op} on read-only device ${this.name}`) : undefined;
  }

  private checkFua(options: WriteOptions | undefined): BlockError | undefined {
    return options?.fua && !this.capabilities.fua ? new BlockError('EINVAL', 'FUA is not supported by this device') : undefined;
  }

  private checkPayload(length: number): BlockError | undefined {
    const max = this.blockSizes.maximum;
    return length > max ? new BlockError('EOVERFLOW', `request of ${length} bytes exceeds the maximum of ${max}`) : undefined;
  }

  private checkRange(op: string, offset: number, length: number, access: Access): BlockError | undefined {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      return new BlockError('EINVAL', `${op}: offset ${offset} / length ${length} not representable`);
    }
    if (length === 0) return new BlockError('EINVAL', `${op}: zero length`);
    const min = this.blockSizes.minimum;
    if (offset % min !== 0 || length % min !== 0) {
      return new BlockError('EINVAL', `${op}: offset ${offset} / length ${length} not aligned to ${min} bytes`);
    }
    if (offset + length > this.size) {
      // The NBD spec asks for ENOSPC on writes past the end and EINVAL on reads.
      return new BlockError(
        access === 'write' ? 'ENOSPC' : 'EINVAL',
        `${op}: range ${offset}+${length} beyond the end of ${this.name} (${this.size} bytes)`,
      );
    }
    return undefined;
  }
}
