import type { BlockDevice, BlockSizes, Capabilities, DeviceStatus, Extent, WriteOptions, ZeroOptions } from '../device.js';
import { BlockError } from '../errors.js';
import { RangeLock } from '../range-lock.js';

/**
 * A shared-nothing replicated disk as one member holds it: its own replica (`local`, a file
 * it exports to its peers) and, while this member is the Primary of the disk's failover set,
 * the mirror across every member's replica that serves I/O (`attach`). The device stays
 * registered in the fabric whatever the role, so exports and their gates are built once; the
 * mirror comes and goes with the role. Requests reach it only through the set's gate; one
 * that arrives with no mirror attached is refused.
 *
 * The range lock is the volume's own and lent to each mirror it attaches, so the lock the
 * switch and SCSI commands hold is the one the mirror's resync holds, across role changes.
 */
export class ReplicatedVolume implements BlockDevice {
  readonly rangeLock = new RangeLock();
  private mirror: BlockDevice | undefined;

  constructor(
    readonly name: string,
    /** This member's replica. */
    readonly local: BlockDevice,
  ) {}

  /** The mirror serving while this member is Primary. */
  get attached(): BlockDevice | undefined {
    return this.mirror;
  }

  attach(mirror: BlockDevice): void {
    if (mirror.size !== this.local.size) throw new BlockError('EINVAL', `${this.name}: the mirror (${mirror.size} bytes) and the local replica (${this.local.size} bytes) differ in size`);
    this.mirror = mirror;
  }

  /** Stop serving through the mirror (the caller closes it). */
  detach(): BlockDevice | undefined {
    const m = this.mirror;
    this.mirror = undefined;
    return m;
  }

  private get active(): BlockDevice {
    if (!this.mirror) throw new BlockError('ESHUTDOWN', `${this.name}: this member is not the Primary of its replicated disk`);
    return this.mirror;
  }

  get size(): number {
    return this.local.size;
  }
  get blockSizes(): BlockSizes {
    return (this.mirror ?? this.local).blockSizes;
  }
  get capabilities(): Capabilities {
    return (this.mirror ?? this.local).capabilities;
  }
  read(offset: number, target: Buffer): Promise<void> {
    return this.call((d) => d.read(offset, target));
  }
  write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    return this.call((d) => d.write(offset, data, options));
  }
  flush(): Promise<void> {
    return this.call((d) => d.flush());
  }
  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.call((d) => d.trim(offset, length, options));
  }
  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.call((d) => d.writeZeroes(offset, length, options));
  }
  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.call((d) => d.blockStatus(offset, length));
  }
  cache(offset: number, length: number): Promise<void> {
    return this.call((d) => d.cache(offset, length));
  }
  status(): DeviceStatus {
    return this.mirror?.status() ?? { state: 'optimal', detail: { role: 'replica', local: this.local.name } };
  }
  async close(): Promise<void> {
    await this.detach()?.close();
    await this.local.close();
  }

  private call<T>(io: (d: BlockDevice) => Promise<T>): Promise<T> {
    try {
      return io(this.active);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
