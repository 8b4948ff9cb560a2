import type { BlockDevice, WriteOptions, ZeroOptions } from '../../fabric/device.js';
import { BlockError } from '../../fabric/errors.js';
import { Layer } from '../../fabric/layer.js';
import type { DeviceReservations } from './device-reservations.js';

/**
 * A device as a client outside SCSI (NBD) sees it: while a SCSI reservation on the device
 * denies an unregistered initiator an access, that access fails with EPERM, which NBD
 * answers as NBD_EPERM. Reads are denied only by exclusive-access types and RESERVE(6)/(10);
 * writes, trims and zeroing by every reservation. Flush, block status and cache advice
 * change nothing and stay allowed.
 */
export class ReservationFence extends Layer {
  constructor(
    next: BlockDevice,
    /**
     * Read per request, not at connect: a reload that adds the member's first iSCSI target
     * brings the reservation state in, and connections opened before it are held to it too.
     */
    private readonly reservations: () => DeviceReservations | undefined,
  ) {
    super(next);
  }

  /** A rejection when the access is denied (looked up per request: the state appears once a LUN maps the device). */
  private denied(access: 'read' | 'write'): Promise<never> | undefined {
    const refusal = this.reservations()?.peek(this.name)?.refusal(access);
    return refusal === undefined ? undefined : Promise.reject(new BlockError('EPERM', refusal));
  }

  override read(offset: number, target: Buffer): Promise<void> {
    return this.denied('read') ?? this.next.read(offset, target);
  }
  override write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    return this.denied('write') ?? this.next.write(offset, data, options);
  }
  override trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.denied('write') ?? this.next.trim(offset, length, options);
  }
  override writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.denied('write') ?? this.next.writeZeroes(offset, length, options);
  }
}
