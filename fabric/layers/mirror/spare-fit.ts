import type { BlockDevice } from '../../device.js';

/**
 * Why `device` cannot stand in for a replica of `mirror`, or undefined if it can: it must
 * hold the whole mirror, take the mirror's requests as they are (block sizes) and do every
 * operation the mirror promised its hosts.
 */
export function spareProblem(device: BlockDevice, mirror: BlockDevice): string | undefined {
  if (device.size < mirror.size) return `it has ${device.size} bytes, the mirror ${mirror.size}`;
  const { minimum, maximum } = device.blockSizes;
  if (mirror.blockSizes.minimum % minimum !== 0) return `its block size ${minimum} does not divide the mirror's ${mirror.blockSizes.minimum}`;
  if (maximum < mirror.blockSizes.maximum) return `it takes requests of at most ${maximum} bytes, the mirror sends up to ${mirror.blockSizes.maximum}`;
  if (device.capabilities.readOnly) return 'it is read-only';
  const missing = (['flush', 'fua', 'trim', 'writeZeroes', 'fastZero', 'cache', 'blockStatus', 'multiConn'] as const).filter(
    (c) => mirror.capabilities[c] && !device.capabilities[c],
  );
  if (missing.length > 0) return `it cannot do ${missing.join(', ')}`;
  return undefined;
}
