import { BlockError } from '../errors.js';

/**
 * The most regions a mirror's bitmaps may have: 2^28 regions make 32 MiB per bitmap, and a
 * mirror holds two per replica (dirty regions on disk, unflushed regions in memory). The
 * bit arithmetic is 32-bit, so this must stay below 2^32. With the default 1 MiB regions
 * it covers 256 TiB; a larger device needs larger regions.
 */
export const MAX_BITMAP_REGIONS = 2 ** 28;

/** The number of regions of `regionSize` bytes covering `deviceSize` bytes. */
export function regionCount(deviceSize: number, regionSize: number): number {
  return Math.ceil(deviceSize / regionSize);
}

/** The smallest power-of-two region size (≥ 4096) that keeps `deviceSize` within MAX_BITMAP_REGIONS. */
export function smallestRegionSize(deviceSize: number): number {
  let size = 4096;
  while (regionCount(deviceSize, size) > MAX_BITMAP_REGIONS) size *= 2;
  return size;
}

/** Throws EINVAL when a bitmap of this geometry would be too large to allocate. */
export function checkBitmapGeometry(deviceSize: number, regionSize: number): void {
  const count = regionCount(deviceSize, regionSize);
  if (count > MAX_BITMAP_REGIONS) {
    throw new BlockError(
      'EINVAL',
      `${count} regions of ${regionSize} bytes exceed the ${MAX_BITMAP_REGIONS} a bitmap may have: use a region size of at least ${smallestRegionSize(deviceSize)}`,
    );
  }
}
