import { DirtyBitmap } from '../../bitmap/dirty-bitmap.js';
import { FILES, type MetadataStore } from '../../bitmap/metadata-store.js';

/**
 * A mirror's activity log, as DRBD keeps one: the extents (large regions) that writes may
 * be changing, recorded on stable storage before any write into them is issued. A write is
 * sent to every replica at once, so a member that dies mid-write can leave the replicas
 * different — but only inside extents the log holds. After such a crash the mirror copies
 * exactly those extents from one replica to the others, and the replicas end identical.
 *
 * An extent stays in the log while writes into it are in flight, and until a flush of every
 * replica has covered the writes it took (a replica's volatile cache could otherwise lose a
 * write on one replica and keep it on another). Up to `extents` stay logged; past that the
 * least recently used idle, flushed ones are dropped, and a flush is asked for when none is.
 * Dropping costs nothing at once: the cleared bit is saved with the next change.
 *
 * The log is a DirtyBitmap with one bit per extent: setting a bit waits for it to be on
 * disk (as does a write into an extent whose bit is still being saved), clearing is lazy.
 */
export interface ActivityLogOptions {
  /** Bytes per logged extent (DRBD: 4 MiB). */
  readonly extentSize: number;
  /** How many extents may stay logged before idle ones are dropped (DRBD's al-extents). */
  readonly extents: number;
}

export const ACTIVITY_LOG_DEFAULTS: ActivityLogOptions = { extentSize: 4 * 1024 * 1024, extents: 1024 };

interface Extent {
  inflight: number;
  /** Flush epoch in which its last write completed. */
  lastWrite: number;
}

export class ActivityLog {
  private readonly active = new Map<number, Extent>();
  /** Bumped when a flush starts: writes completing after it are not covered by it. */
  private epoch = 1;
  /** Writes completed in epochs up to this one are on stable storage on every replica. */
  private flushedThrough = 0;
  private flushAsked = false;

  private constructor(
    private readonly bitmap: DirtyBitmap,
    readonly options: ActivityLogOptions,
    /** The replicas keep writes in a volatile cache until flushed. */
    private readonly volatile: boolean,
    private readonly askFlush: () => void,
  ) {}

  /**
   * The log stored at `path` and the extents it held: those a crash may have left different
   * between replicas. A log that cannot be read or is damaged holds every extent.
   */
  static async open(
    path: string,
    deviceSize: number,
    options: ActivityLogOptions,
    hooks: { readonly volatile: boolean; askFlush(): void },
    store: MetadataStore = FILES,
  ): Promise<{ log: ActivityLog; logged: number[]; found: boolean; problem?: string }> {
    const { bitmap, found, problem } = await DirtyBitmap.load(path, { deviceSize, regionSize: options.extentSize }, store);
    const logged: number[] = [];
    for (let e = bitmap.nextDirty(0); e >= 0; e = bitmap.nextDirty(e + 1)) logged.push(e);
    return { log: new ActivityLog(bitmap, options, hooks.volatile, hooks.askFlush), logged, found, ...(problem !== undefined && { problem }) };
  }

  get extentSize(): number {
    return this.options.extentSize;
  }

  get loggedExtents(): number {
    return this.bitmap.dirtyRegions;
  }

  /**
   * A write of [offset, offset+length) is about to be issued: its extents are logged. A
   * promise when it must wait for the log to reach the disk; undefined in the steady state.
   */
  enter(offset: number, length: number): Promise<void> | undefined {
    const size = this.options.extentSize;
    const last = Math.floor((offset + length - 1) / size);
    for (let x = Math.floor(offset / size); x <= last; x++) {
      const e = this.active.get(x);
      if (e) e.inflight++;
      else this.active.set(x, { inflight: 1, lastWrite: this.epoch });
    }
    return this.bitmap.mark(offset, length);
  }

  /** The write entered with the same range has completed (or failed) on every replica. */
  leave(offset: number, length: number): void {
    const size = this.options.extentSize;
    const last = Math.floor((offset + length - 1) / size);
    for (let x = Math.floor(offset / size); x <= last; x++) {
      const e = this.active.get(x);
      if (!e) continue;
      e.inflight--;
      e.lastWrite = this.epoch;
      // Most recently used last: Map iteration order is the eviction order.
      this.active.delete(x);
      this.active.set(x, e);
    }
    if (this.active.size > this.options.extents) this.evict();
  }

  /** A flush of every replica begins; returns what flushed() needs when it succeeds. */
  flushStarted(): number {
    return this.epoch++;
  }

  flushed(covering: number): void {
    if (covering > this.flushedThrough) this.flushedThrough = covering;
    this.flushAsked = false;
    if (this.active.size > this.options.extents) this.evict();
  }

  /** Save what changed (the bits cleared lazily): before a clean close. */
  persist(): Promise<void> {
    return this.bitmap.persist();
  }

  /**
   * Forget every logged extent on disk: after a clean stop (replicas flushed, nothing in
   * flight), or once the extents a crash left have been handed to the resync.
   */
  async clearAll(): Promise<void> {
    for (let e = this.bitmap.nextDirty(0); e >= 0; e = this.bitmap.nextDirty(e + 1)) if (!this.active.get(e)?.inflight) this.bitmap.clear(e);
    for (const [x, e] of this.active) if (e.inflight === 0) this.active.delete(x);
    await this.bitmap.persist();
  }

  close(): Promise<void> {
    return this.bitmap.close();
  }

  private evict(): void {
    let stuck = false;
    for (const [x, e] of this.active) {
      if (this.active.size <= this.options.extents) return;
      if (e.inflight > 0) continue;
      if (this.volatile && e.lastWrite > this.flushedThrough) {
        stuck = true;
        continue;
      }
      this.active.delete(x);
      this.bitmap.clear(x);
    }
    if (stuck && !this.flushAsked) {
      this.flushAsked = true;
      this.askFlush();
    }
  }
}
