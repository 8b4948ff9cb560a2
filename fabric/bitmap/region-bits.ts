import { BlockError } from '../errors.js';
import { MAX_BITMAP_REGIONS } from './limits.js';

/**
 * An in-memory set of regions (one bit each), for bookkeeping that need not survive a
 * restart: which regions a replica holds only in its volatile cache since its last flush.
 */
export class RegionBits {
  private readonly bits: Uint8Array;
  /** Lowest and highest+1 byte index touched since the last clear, to keep clear() cheap. */
  private lo = Infinity;
  private hi = 0;

  constructor(readonly regionCount: number) {
    if (regionCount > MAX_BITMAP_REGIONS) throw new BlockError('EINVAL', `${regionCount} regions exceed the ${MAX_BITMAP_REGIONS} a bitmap may have`);
    this.bits = new Uint8Array(Math.ceil(regionCount / 8));
  }

  get empty(): boolean {
    return this.lo >= this.hi;
  }

  set(first: number, last: number): void {
    for (let r = first; r <= last; r++) this.bits[r >>> 3]! |= 1 << (r & 7);
    const a = first >>> 3;
    const b = (last >>> 3) + 1;
    if (a < this.lo) this.lo = a;
    if (b > this.hi) this.hi = b;
  }

  /** Every region in the set, in order. */
  *regions(): Generator<number> {
    for (let byte = this.lo; byte < this.hi; byte++) {
      const v = this.bits[byte]!;
      if (v === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (v & (1 << bit)) yield byte * 8 + bit;
    }
  }

  clear(): void {
    if (this.lo < this.hi) this.bits.fill(0, this.lo, this.hi);
    this.lo = Infinity;
    this.hi = 0;
  }
}
