import type {
  BlockDevice,
  BlockSizes,
  Capabilities,
  DeviceStatus,
  Extent,
  WriteOptions,
  ZeroOptions,
} from './device.js';
import type { RangeLock } from './range-lock.js';

/**
 * A device that wraps one other device and passes everything through, the way an nbdkit
 * filter calls `next_ops`. Subclasses override only what they change.
 */
export class Layer implements BlockDevice {
  constructor(
    protected readonly next: BlockDevice,
    readonly name: string = next.name,
  ) {}

  get size(): number {
    return this.next.size;
  }
  get blockSizes(): BlockSizes {
    return this.next.blockSizes;
  }
  get capabilities(): Capabilities {
    return this.next.capabilities;
  }
  get rangeLock(): RangeLock | undefined {
    return this.next.rangeLock;
  }
  read(offset: number, target: Buffer): Promise<void> {
    return this.next.read(offset, target);
  }
  write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    return this.next.write(offset, data, options);
  }
  flush(): Promise<void> {
    return this.next.flush();
  }
  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.next.trim(offset, length, options);
  }
  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.next.writeZeroes(offset, length, options);
  }
  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.next.blockStatus(offset, length);
  }
  cache(offset: number, length: number): Promise<void> {
    return this.next.cache(offset, length);
  }
  status(): DeviceStatus {
    return this.next.status();
  }
  close(): Promise<void> {
    return this.next.close();
  }
}
