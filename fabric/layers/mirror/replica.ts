import type { BlockDevice } from '../../device.js';
import type { DirtyBitmap } from '../../bitmap/dirty-bitmap.js';
import type { RegionBits } from '../../bitmap/region-bits.js';

/**
 * One device of a mirror (a data-store failover set). `slot` says whether it belongs to the
 * replica set or waits as a hot spare; `state` says how far it can be trusted.
 *
 *  member states:    in-sync → failed → (returns) stale → resyncing → in-sync
 *                    any → quarantined (failure limit) → (operator clears) failed
 *  alternate states: standby, failed, quarantined
 */
export type ReplicaSlot = 'member' | 'alternate';
export type ReplicaState = 'in-sync' | 'failed' | 'stale' | 'resyncing' | 'quarantined' | 'standby';
export type ReplicaRole = 'primary' | 'secondary' | 'alternate';

export interface FailureLimit {
  readonly failures: number;
  readonly windowMs: number;
}

export class Replica {
  slot: ReplicaSlot;
  state: ReplicaState;
  /** Regions this member lacks; present whenever a member is not in sync. */
  bitmap: DirtyBitmap | undefined;
  /** Bytes of reads in flight, for least-loaded read balancing. */
  outstanding = 0;
  readErrors = 0;
  writeErrors = 0;
  readRepairs = 0;
  private recentFailures: number[] = [];
  /**
   * Regions written since the last flush that covered them: if the replica fails, its cache
   * may have lost them, so they join its dirty bitmap. `flushing` holds those a flush in
   * flight covers; with several flushes in flight none clears anything (conservative).
   */
  private unflushed: RegionBits | undefined;
  private flushing: RegionBits | undefined;
  private flushes = 0;

  constructor(
    readonly device: BlockDevice,
    slot: ReplicaSlot,
    state: ReplicaState,
  ) {
    this.slot = slot;
    this.state = state;
  }

  /** Start tracking unflushed regions (devices that have a volatile cache to flush). */
  trackUnflushed(make: () => RegionBits): void {
    this.unflushed = make();
    this.flushing = make();
  }

  noteWritten(first: number, last: number): void {
    this.unflushed?.set(first, last);
  }

  /** A flush is sent; true if it took over the unflushed set (and may clear it). */
  beginFlush(): boolean {
    this.flushes++;
    if (this.flushes > 1 || !this.unflushed) return false;
    const next = this.flushing!;
    this.flushing = this.unflushed;
    this.unflushed = next;
    return true;
  }

  endFlush(tookOver: boolean, succeeded: boolean): void {
    this.flushes--;
    if (tookOver && succeeded) this.flushing!.clear();
  }

  /** Regions possibly lost with the replica's cache; forgets them. */
  takeUnflushed(): number[] {
    if (!this.unflushed || (this.unflushed.empty && this.flushing!.empty)) return [];
    const regions = [...this.unflushed.regions(), ...this.flushing!.regions()];
    this.unflushed.clear();
    this.flushing!.clear();
    return regions;
  }

  get name(): string {
    return this.device.name;
  }

  /** Record one failure; true when the replica has now failed more often than the limit allows. */
  recordFailure(limit: FailureLimit, now: number): boolean {
    const since = now - limit.windowMs;
    this.recentFailures = this.recentFailures.filter((t) => t > since);
    this.recentFailures.push(now);
    return this.recentFailures.length > limit.failures;
  }

  failuresInWindow(limit: FailureLimit, now: number): number {
    const since = now - limit.windowMs;
    return this.recentFailures.filter((t) => t > since).length;
  }

  clearFailures(): void {
    this.recentFailures = [];
  }
}
