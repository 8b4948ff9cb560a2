import type { BlockDevice, BlockSizes, Capabilities, DeviceState } from '../device.js';
import { BlockError } from '../errors.js';

/**
 * What a device built from several children can promise: only what every child can do,
 * with block sizes every child accepts. Shared by mirror, concat and stripe.
 */
export function commonCapabilities(children: readonly BlockDevice[]): Capabilities {
  const all = (key: keyof Capabilities) => children.every((c) => c.capabilities[key]);
  const any = (key: keyof Capabilities) => children.some((c) => c.capabilities[key]);
  return {
    readOnly: any('readOnly'),
    flush: all('flush'),
    fua: all('fua'),
    trim: all('trim'),
    writeZeroes: all('writeZeroes'),
    fastZero: all('fastZero'),
    cache: all('cache'),
    blockStatus: all('blockStatus'),
    localBlockStatus: all('localBlockStatus'),
    multiConn: all('multiConn'),
    rotational: any('rotational'),
  };
}

export function commonBlockSizes(children: readonly BlockDevice[]): BlockSizes {
  let minimum = 1;
  let preferred = 1;
  let maximum = Number.MAX_SAFE_INTEGER;
  for (const c of children) {
    minimum = Math.max(minimum, c.blockSizes.minimum);
    preferred = Math.max(preferred, c.blockSizes.preferred);
    maximum = Math.min(maximum, c.blockSizes.maximum);
  }
  // Block sizes are powers of two in practice, so the largest minimum is a multiple of all.
  for (const c of children) {
    if (minimum % c.blockSizes.minimum !== 0) {
      throw new BlockError('EINVAL', `block size ${c.blockSizes.minimum} of ${c.name} does not divide ${minimum}`);
    }
  }
  if (maximum < minimum) throw new BlockError('EINVAL', `children's block sizes are incompatible (largest minimum ${minimum} > smallest maximum ${maximum})`);
  return { minimum, preferred: Math.max(preferred, minimum), maximum: maximum - (maximum % minimum) };
}

const SEVERITY: Record<DeviceState, number> = { optimal: 0, rebuilding: 1, degraded: 2, failed: 3 };

/** The worst state among children: a stripe is as healthy as its sickest leg. */
export function worstState(children: readonly BlockDevice[]): DeviceState {
  let worst: DeviceState = 'optimal';
  for (const c of children) {
    const s = c.status().state;
    if (SEVERITY[s] > SEVERITY[worst]) worst = s;
  }
  return worst;
}

/** Slices of `data` covering [start, start+length) of its concatenation; views, no copies. */
export function sliceBuffers(data: readonly Buffer[], start: number, length: number): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  const end = start + length;
  for (const b of data) {
    const bEnd = pos + b.length;
    if (bEnd > start && pos < end) {
      const from = Math.max(start - pos, 0);
      const to = Math.min(end - pos, b.length);
      out.push(from === 0 && to === b.length ? b : b.subarray(from, to));
    }
    if (bEnd >= end) break;
    pos = bEnd;
  }
  return out;
}
