import { createHash } from 'node:crypto';
import type { BlockDevice } from '../../fabric/device.js';
import { BlockError } from '../../fabric/errors.js';
import { RangeLockedDevice } from '../../fabric/layers/range-locked.js';
import type { RangeLock } from '../../fabric/range-lock.js';
import type { DeviceReservation, DeviceReservations } from './device-reservations.js';
import type { PersistentReservations } from './reservations.js';
import { lbaOutOfRange } from './sense.js';

export type LogicalBlockSize = 512 | 4096;

export interface LunConfig {
  readonly device: BlockDevice;
  readonly exportName: string;
  /** Logical block size shown to hosts; default 512. Must be ≥ the device's minimum block size. */
  readonly blockSize?: LogicalBlockSize;
}

/**
 * Largest transfer of one command (VPD page B0h MAXIMUM TRANSFER LENGTH): the transport
 * refuses write data beyond it before buffering any.
 */
export const MAX_TRANSFER_BYTES = 8 * 1024 * 1024;

/**
 * A locally administered company ID (CID, first octet xxxx1010b) for NAA 6 designators:
 * no IEEE OUI is needed and the identifier is stable for the same target and export.
 */
const BLOCKGATE_CID = 0x0a4247;

/** One logical unit: an exported device seen as a SCSI direct-access block device. */
export class LogicalUnit {
  readonly device: BlockDevice;
  readonly exportName: string;
  readonly blockSize: LogicalBlockSize;
  /** NAA 6 IEEE Registered Extended designator (16 bytes) for VPD page 83h. */
  readonly naa: Buffer;
  /** Unit serial number (VPD page 80h). */
  readonly serial: string;
  /** Caching mode page WCE: off makes every write FUA. */
  writeCacheEnabled: boolean;
  /** The device's reservations, shared with every other LUN (of any target) mapping it. */
  readonly reservation: DeviceReservation;
  /**
   * The device's range lock, shared with every other front end of the export: COMPARE AND
   * WRITE and the other read-modify-write commands hold their range exclusively.
   */
  readonly lock: RangeLock;

  constructor(
    readonly lun: number,
    targetName: string,
    config: LunConfig,
    reservations: DeviceReservations,
  ) {
    // A device from the switch comes with its lock; one given directly gets its own.
    const device = config.device.rangeLock ? config.device : new RangeLockedDevice(config.device);
    this.device = device;
    this.lock = device.rangeLock!;
    this.exportName = config.exportName;
    this.blockSize = config.blockSize ?? 512;
    if (this.blockSize !== 512 && this.blockSize !== 4096) {
      throw new BlockError('EINVAL', `LUN ${lun}: logical block size ${this.blockSize} is not 512 or 4096`);
    }
    if (this.blockSize < this.device.blockSizes.minimum || this.blockSize % this.device.blockSizes.minimum !== 0) {
      throw new BlockError(
        'EINVAL',
        `LUN ${lun}: logical block size ${this.blockSize} below the device's minimum ${this.device.blockSizes.minimum}`,
      );
    }
    const hash = createHash('sha256').update(`${targetName}\0${this.exportName}`).digest();
    this.naa = Buffer.alloc(16);
    // NAA 6: 4-bit NAA, 24-bit company id, then 100 bits vendor specific from the hash.
    this.naa[0] = 0x60 | (BLOCKGATE_CID >> 20);
    this.naa.writeUIntBE((BLOCKGATE_CID & 0xfffff) << 4, 1, 3);
    this.naa[3]! |= hash[0]! & 0x0f;
    hash.copy(this.naa, 4, 1, 13);
    this.serial = hash.subarray(0, 16).toString('hex');
    this.writeCacheEnabled = this.device.capabilities.flush;
    // Before reservations were per device, each LUN kept its own under this key.
    this.reservation = reservations.of(config.device.name, { key: `${targetName}|${this.exportName}`, targetName });
  }

  get pr(): PersistentReservations {
    return this.reservation.pr;
  }

  get blockCount(): number {
    return Math.floor(this.device.size / this.blockSize);
  }

  get readOnly(): boolean {
    return this.device.capabilities.readOnly;
  }

  get maxTransferBlocks(): number {
    return Math.floor(MAX_TRANSFER_BYTES / this.blockSize);
  }

  /** Largest piece handed to the device in one call. */
  get chunkBytes(): number {
    const max = this.device.blockSizes.maximum;
    return Math.max(this.blockSize, max - (max % this.blockSize));
  }

  /** LBA OUT OF RANGE unless [lba, lba+blocks) is on the medium; with no blocks, lba must be. */
  checkRange(lba: number, blocks: number): void {
    if (lba + Math.max(blocks, 1) > this.blockCount) throw lbaOutOfRange(lba);
  }
}
