import type { BlockDevice } from '../device.js';
import { BlockError } from '../errors.js';
import { SpreadDevice } from './spread.js';

/** RAID-0: stripe units go round-robin over the children, so large I/O runs on all at once. */
export class StripeDevice extends SpreadDevice {
  readonly size: number;

  constructor(
    name: string,
    children: readonly BlockDevice[],
    readonly stripeUnit: number,
  ) {
    super(name, children);
    if (stripeUnit <= 0 || (stripeUnit & (stripeUnit - 1)) !== 0 || !Number.isSafeInteger(stripeUnit)) {
      throw new BlockError('EINVAL', `stripe unit ${stripeUnit} must be a power of two`);
    }
    if (stripeUnit % this.blockSizes.minimum !== 0) {
      throw new BlockError('EINVAL', `stripe unit ${stripeUnit} is not a multiple of the block size ${this.blockSizes.minimum}`);
    }
    const rows = Math.floor(Math.min(...children.map((c) => c.size)) / stripeUnit);
    this.size = rows * stripeUnit * children.length;
  }

  protected locate(offset: number): void {
    const unit = this.stripeUnit;
    const n = this.children.length;
    const index = Math.floor(offset / unit);
    const within = offset - index * unit;
    const row = Math.floor(index / n);
    this.at.child = index - row * n;
    this.at.childOffset = row * unit + within;
    this.at.run = unit - within;
  }
}
