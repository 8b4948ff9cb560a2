import type { Replica } from './replica.js';

/**
 * How a mirror picks the replica to read from. `least-loaded` (the default, as SPDK raid1
 * does) takes the in-sync replica with the fewest bytes in flight, starting the scan at a
 * rotating index so that equal loads (queue depth 1) still spread across replicas.
 * `primary` reads from the replica the set made Primary while it is readable.
 */
export const READ_POLICIES = ['least-loaded', 'round-robin', 'primary'] as const;
export type ReadPolicy = (typeof READ_POLICIES)[number];

export class ReadBalancer {
  private turn = 0;

  constructor(readonly policy: ReadPolicy) {}

  pick(readable: readonly Replica[], primary: Replica | undefined): Replica {
    const n = readable.length;
    if (this.policy === 'primary') return primary !== undefined && primary.state === 'in-sync' && primary.slot === 'member' ? primary : readable[0]!;
    if (n === 1) return readable[0]!;
    const start = this.turn++ % n;
    if (this.turn > 0x3fffffff) this.turn = 0;
    if (this.policy === 'round-robin') return readable[start]!;
    let best = readable[start]!;
    for (let i = 1; i < n; i++) {
      const r = readable[(start + i) % n]!;
      if (r.outstanding < best.outstanding) best = r;
    }
    return best;
  }
}
