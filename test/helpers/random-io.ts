import type { BlockDevice } from '../../fabric/device.js';

/** A small deterministic PRNG, so a failing run can be replayed. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * Run the same random writes, zeroes, trims and reads against `device` and a flat reference
 * device; returns the first mismatch, or undefined. Writes arrive split in several slices.
 */
export async function compareWithFlat(device: BlockDevice, flat: BlockDevice, options: { ops: number; block: number; maxBlocks: number; seed: number }): Promise<string | undefined> {
  const random = prng(options.seed);
  const blocks = Math.floor(device.size / options.block);
  for (let i = 0; i < options.ops; i++) {
    const count = 1 + Math.floor(random() * Math.min(options.maxBlocks, blocks));
    const offset = Math.floor(random() * (blocks - count + 1)) * options.block;
    const length = count * options.block;
    const kind = random();
    if (kind < 0.5) {
      const data = Buffer.alloc(length);
      for (let j = 0; j < length; j += 4) data.writeUInt32LE(Math.floor(random() * 2 ** 32), j);
      const cut = Math.floor(random() * length);
      const slices = [data.subarray(0, cut), data.subarray(cut)];
      await Promise.all([device.write(offset, slices), flat.write(offset, [data])]);
    } else if (kind < 0.6) {
      await Promise.all([device.writeZeroes(offset, length), flat.writeZeroes(offset, length)]);
    } else if (kind < 0.65) {
      await Promise.all([device.trim(offset, length), flat.trim(offset, length)]);
    } else {
      const [a, b] = [Buffer.alloc(length), Buffer.alloc(length)];
      await Promise.all([device.read(offset, a), flat.read(offset, b)]);
      if (!a.equals(b)) return `op ${i}: read of ${length} at ${offset} differs`;
    }
  }
  const [a, b] = [Buffer.alloc(device.size), Buffer.alloc(device.size)];
  await Promise.all([device.read(0, a), flat.read(0, b)]);
  return a.equals(b) ? undefined : 'final images differ';
}
