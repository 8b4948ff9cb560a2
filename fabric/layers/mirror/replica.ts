import type { BlockDevice } from '../../device.js';
import type { DirtyBitmap } from '../../bitmap/dirty-bitmap.js';
import type { RegionBits } from '../../bitmap/region-bits.js';

/**
 * One device of a mirror (a data-store failover set). `slot` says whether it belongs to the
 * replica set or waits as a hot spare; `state` says how far it can be trusted.
 *
 *  member states:    in-sync → failed → (readmitted) stale → resyncing → in-sync
 *  alternate states: standby, failed
 *  held states:      quarantined, offline — out of service until the controller releases them
 *
 * The mirror moves a replica to `failed` itself when the data path needs it (a write it
 * missed, a connection lost); every other move is asked for by the set's controller.
 */
export type ReplicaSlot = 'member' | 'alternate';
export type ReplicaState = 'in-sync' | 'failed' | 'stale' | 'resyncing' | 'quarantined' | 'offline' | 'standby';
export type ReplicaHold = Extract<ReplicaState, 'quarantined' | 'offline'>;

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
  lastError: string | undefined;
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

  get name(): string {
    return this.device.name;
  }

  /** Held out of service by the controller: neither I/O nor a probe brings it back. */
  get held(): boolean {
    return this.state === 'quarantined' || this.state === 'offline';
  }

  /** Out of service, whatever the reason. */
  get down(): boolean {
    return this.state === 'failed' || this.held;
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
}
