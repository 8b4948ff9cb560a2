import type { BlockDevice } from '../../device.js';
import type { Logger } from '../../log.js';
import { checkChildRange } from '../../child-range.js';
import type { RangeLock } from '../../range-lock.js';
import type { Replica } from './replica.js';

/** What a resync needs from its mirror. */
export interface ResyncHost {
  /** The mirror's range lock: each region is copied holding its range. */
  readonly lock: RangeLock;
  readonly log: Logger;
  /** The in-sync replica to copy from, or undefined when there is none. */
  pickSource(): Replica | undefined;
  /** A source read failed: the mirror decides what that replica's fate is. */
  sourceFailed(source: Replica, err: unknown, offset: number, length: number): Promise<void>;
  /** Count copied bytes into the mirror's counters. */
  copied(bytes: number): void;
  /** Count bytes brought in sync without copying (the source reads zeroes there). */
  skipped(bytes: number): void;
  /** Progress worth telling (at most every `logIntervalMs` or 10 %). */
  progressed(progress: ResyncProgress): void;
  /** The target's bitmap could not be saved: the mirror surfaces it, the copy goes on. */
  metadataFault(what: string, err: unknown): void;
}

export interface ResyncOptions {
  /** Bytes per second; 0 or Infinity for no limit (setRate changes it while running). */
  readonly rate: number;
  /** Largest single copy request. */
  readonly chunk: number;
  /** Minimum interval between progress log lines. */
  readonly logIntervalMs?: number;
}

export interface ResyncProgress {
  readonly target: string;
  readonly percent: number;
  /** Bytes read from a source and written to the target. */
  readonly bytesCopied: number;
  /** Bytes brought in sync without copying: the source reads zeroes there. */
  readonly bytesSkipped: number;
  readonly bytesTotal: number;
  readonly rateMiBps: number;
  readonly etaSeconds: number | null;
}

export type ResyncOutcome = 'done' | 'stopped' | 'target-failed' | 'no-source';

/**
 * Copies a member's dirty regions from an in-sync replica, one region at a time under the
 * region's lock, throttled to a rate. Host I/O goes on meanwhile: host writes reach the
 * target too, so a region once copied stays in sync.
 */
export class Resync {
  private stopped = false;
  private sleepTimer: NodeJS.Timeout | undefined;
  private wakeSleep: (() => void) | undefined;
  private readonly startedAt = Date.now();
  private rate: number;
  /** Where the current rate started counting: a rate change does not make up for the past. */
  private paceFrom = { at: this.startedAt, bytes: 0 };
  private bytesCopied = 0;
  private bytesSkipped = 0;
  private zeroes: Buffer | undefined;
  private readonly bytesTotal: number;
  private lastLogAt = 0;
  private lastLoggedPercent = 0;
  private readonly buffer: Buffer;
  targetError: unknown;

  constructor(
    private readonly host: ResyncHost,
    readonly target: Replica,
    private readonly options: ResyncOptions,
  ) {
    this.bytesTotal = target.bitmap!.dirtyBytes;
    this.buffer = Buffer.allocUnsafe(Math.min(options.chunk, target.bitmap!.regionSize));
    this.rate = options.rate;
  }

  /** Change the rate limit now; a throttled copy waiting for its turn re-reckons its wait. */
  setRate(rate: number): void {
    this.rate = rate;
    this.paceFrom = { at: Date.now(), bytes: this.bytesCopied };
    this.wake();
  }

  progress(): ResyncProgress {
    const elapsed = Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    const remaining = this.target.bitmap ? this.target.bitmap.dirtyBytes : 0;
    const done = Math.max(this.bytesTotal - remaining, 0);
    const percent = this.bytesTotal === 0 ? 100 : Math.min(100, Math.floor((1000 * done) / this.bytesTotal) / 10);
    // The ETA goes by regions brought in sync (holes are quick); the rate shown is what was copied.
    const pace = done / elapsed;
    return {
      target: this.target.name,
      percent: Math.max(percent, 0),
      bytesCopied: this.bytesCopied,
      bytesSkipped: this.bytesSkipped,
      bytesTotal: this.bytesTotal,
      rateMiBps: Math.round((this.bytesCopied / elapsed / 2 ** 20) * 10) / 10,
      etaSeconds: pace > 0 ? Math.ceil(remaining / pace) : null,
    };
  }

  stop(): void {
    this.stopped = true;
    this.wake();
  }

  private wake(): void {
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.sleepTimer = undefined;
    this.wakeSleep?.();
  }

  async run(): Promise<ResyncOutcome> {
    const bitmap = this.target.bitmap!;
    let region = bitmap.nextDirty(0);
    while (region >= 0) {
      if (this.stopped) return 'stopped';
      const start = region * bitmap.regionSize;
      const end = Math.min(start + bitmap.regionSize, bitmap.deviceSize);
      const outcome = await this.copyRegion(start, end);
      if (outcome !== 'done') return outcome;
      bitmap.clear(region);
      this.report();
      await this.throttle();
      region = bitmap.nextDirty(region + 1);
      // Host writes never dirty a resyncing target, but a failed copy may leave bits behind.
      if (region < 0 && bitmap.dirtyRegions > 0) region = bitmap.nextDirty(0);
    }
    await bitmap.persist().catch((err: unknown) => this.host.metadataFault(`bitmap of ${this.target.name}`, err));
    return this.stopped ? 'stopped' : 'done';
  }

  /**
   * Copy [start, end) from an in-sync replica, holding the range. Where the source reads
   * zeroes (block status: a hole), nothing is read: the target is zeroed, or left alone when
   * it reads zeroes there too (a fresh spare, a sparse file), so a rebuild skips holes.
   */
  private async copyRegion(start: number, end: number): Promise<ResyncOutcome> {
    // A region past either device's end would be a bitmap geometry bug: caught here, not below.
    checkChildRange(`mirror resync of ${this.target.name}`, this.target.device, 'copy', start, end - start);
    const hold = await this.host.lock.exclusive(start, end);
    try {
      for (let at = start; at < end; ) {
        if (this.stopped) return 'stopped';
        const n = Math.min(this.buffer.length, end - at);
        const source = this.host.pickSource();
        if (!source) return 'no-source';
        checkChildRange(`mirror resync of ${this.target.name}`, source.device, 'read', at, n);
        const hole = await this.zeroRun(source.device, at, n);
        if (hole > 0) {
          const outcome = await this.zeroTarget(at, hole);
          if (outcome !== 'done') return outcome;
          at += hole;
          continue;
        }
        const piece = n === this.buffer.length ? this.buffer : this.buffer.subarray(0, n);
        source.outstanding += n;
        try {
          await source.device.read(at, piece);
        } catch (err) {
          await this.host.sourceFailed(source, err, at, n);
          // Another source on the next turn, unless this one is still the only good copy.
          if (source.state === 'in-sync') return 'no-source';
          continue;
        } finally {
          source.outstanding -= n;
        }
        try {
          await this.target.device.write(at, [piece]);
        } catch (err) {
          this.targetError = err;
          return 'target-failed';
        }
        this.bytesCopied += n;
        this.host.copied(n);
        at += n;
      }
      return 'done';
    } finally {
      hold.release();
    }
  }

  /** How many bytes from `at` (up to n, whole blocks) `device` says read as zeroes; 0 if it cannot tell. */
  private async zeroRun(device: BlockDevice, at: number, n: number): Promise<number> {
    if (!device.capabilities.blockStatus) return 0;
    let extents;
    try {
      extents = await device.blockStatus(at, n);
    } catch {
      return 0; // no answer is no knowledge: copy
    }
    let run = 0;
    for (const e of extents) {
      if (!e.zero || run >= n) break;
      run += e.length;
    }
    run = Math.min(run, n);
    return run - (run % Math.max(device.blockSizes.minimum, this.target.device.blockSizes.minimum));
  }

  /** Make [at, at+n) of the target read zeroes, with as little I/O as it allows. */
  private async zeroTarget(at: number, n: number): Promise<ResyncOutcome> {
    const target = this.target.device;
    try {
      if ((await this.zeroRun(target, at, n)) < n) {
        if (target.capabilities.writeZeroes) await target.writeZeroes(at, n);
        else {
          this.zeroes ??= Buffer.alloc(this.buffer.length);
          for (let done = 0; done < n; done += this.zeroes.length) await target.write(at + done, [this.zeroes.subarray(0, Math.min(this.zeroes.length, n - done))]);
        }
      }
    } catch (err) {
      this.targetError = err;
      return 'target-failed';
    }
    this.bytesSkipped += n;
    this.host.skipped(n);
    return 'done';
  }

  /** Sleep long enough that the average rate since the last rate change stays at the limit. */
  private async throttle(): Promise<void> {
    for (;;) {
      const rate = this.rate;
      if (!(rate > 0) || !Number.isFinite(rate)) {
        // Still yield, so a long unthrottled resync lets host I/O through.
        await new Promise<void>((resolve) => setImmediate(resolve));
        return;
      }
      const due = this.paceFrom.at + ((this.bytesCopied - this.paceFrom.bytes) / rate) * 1000;
      const wait = due - Date.now();
      if (wait <= 0 || this.stopped) return;
      await new Promise<void>((resolve) => {
        this.wakeSleep = resolve;
        this.sleepTimer = setTimeout(resolve, wait);
      });
      this.sleepTimer = undefined;
      this.wakeSleep = undefined;
    }
  }

  private report(): void {
    const now = Date.now();
    const p = this.progress();
    const interval = this.options.logIntervalMs ?? 5000;
    if (now - this.lastLogAt < interval && p.percent - this.lastLoggedPercent < 10) return;
    this.lastLogAt = now;
    this.lastLoggedPercent = p.percent;
    // Persist cleared bits now and then, so a restart does not redo finished work. A failure
    // only costs copying again after a restart, but it says the data directory is failing.
    this.target.bitmap?.persist().catch((err: unknown) => this.host.metadataFault(`bitmap of ${this.target.name}`, err));
    this.host.log.info({ replica: this.target.name, ...p }, 'resync progress');
    this.host.progressed(p);
  }
}
