import type { LogicalUnit } from './logical-unit.js';

/**
 * How the device's capabilities show as SBC-3 logical block provisioning. Unmapping is
 * done with writeZeroes that may punch holes when the device zeroes fast, so unmapped
 * blocks read as zero (LBPRZ); otherwise with trim, whose blocks read undefined.
 */
export interface Provisioning {
  /** UNMAP supported (LBPU), LBPME in READ CAPACITY(16). */
  readonly unmap: boolean;
  /** WRITE SAME with the UNMAP bit (LBPWS, LBPWS10). */
  readonly writeSameUnmap: boolean;
  /** Unmapped blocks read as zero (LBPRZ). */
  readonly readsZero: boolean;
  readonly via: 'writeZeroes' | 'trim' | 'none';
}

export function provisioning(lu: LogicalUnit): Provisioning {
  const c = lu.device.capabilities;
  if (c.readOnly) return { unmap: false, writeSameUnmap: false, readsZero: false, via: 'none' };
  const zero = c.writeZeroes && c.fastZero;
  const via = zero ? 'writeZeroes' : c.trim ? 'trim' : 'none';
  return { unmap: via !== 'none', writeSameUnmap: via !== 'none', readsZero: zero, via };
}

/** Deallocates [offset, offset+length) the way `provisioning` promised. */
export async function deallocate(lu: LogicalUnit, offset: number, length: number): Promise<void> {
  if (provisioning(lu).via === 'writeZeroes') await lu.device.writeZeroes(offset, length);
  else await lu.device.trim(offset, length);
}
