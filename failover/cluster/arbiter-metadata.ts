import type { MetadataStore } from '../../fabric/bitmap/metadata-store.js';
import type { Arbiter, Leadership } from '../arbitration/arbiter.js';

/**
 * A shared-nothing set's mirror metadata — which replicas are in sync, the dirty bitmap of
 * each one that is away, the activity log — kept in the cluster arbiter's store (files of
 * the file arbiter's directory, or etcd), under `prefix`. Why there, not on the replicas as
 * DRBD does: the next Primary must read it even when the member that held a copy is the one
 * that died, and the arbiter is the one place every member that can be elected reaches
 * (election needs it); every write is a guarded put, a compare of the writer's fencing token
 * and the write in one step, so a deposed Primary can no longer change what its successor
 * reads. Items are keys as named (the mirror names them under its data directory, here
 * `shared-nothing/SET`). Values are base64 (the stores hold strings); an empty value is an
 * item removed.
 */
export class ArbiterMetadataStore implements MetadataStore {
  readonly where: string;

  constructor(
    private readonly arbiter: Arbiter,
    private readonly leadership: Leadership,
  ) {
    this.where = `the ${arbiter.kind} arbiter`;
  }

  async read(name: string): Promise<Buffer | undefined> {
    const value = await this.arbiter.get(name);
    return value === undefined || value === '' ? undefined : Buffer.from(value, 'base64');
  }

  write(name: string, data: Buffer | string): Promise<void> {
    return this.arbiter.guardedPut(this.leadership, name, (typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64'));
  }

  remove(name: string): Promise<void> {
    return this.arbiter.guardedPut(this.leadership, name, '');
  }
}
