import { BlockError } from './errors.js';

/**
 * A generic lock on byte ranges of one device, the way SPDK locks LBA ranges of a bdev
 * (`spdk_bdev_lock_lba_range`): whoever needs a range to itself — COMPARE AND WRITE's
 * read-compare-write, a mirror's resync copy — takes an **exclusive** hold; every ordinary
 * modifying request runs under `write()`, which lets writes overlap each other freely and
 * only waits while an exclusive hold (granted or still waiting) overlaps it.
 *
 *   const hold = await lock.exclusive(start, end);   // waits for overlapping writes to drain
 *   try { …read, compare, write with { hold }… } finally { hold.release(); }
 *
 *   lock.write(start, end, () => device.write(…));   // a host write: waits only for holds
 *
 * Ranges are half-open [start, end) in bytes. Exclusive holds are granted in the order they
 * were asked for among those that overlap, and a waiting exclusive hold already keeps new
 * writes of its range out, so a stream of writes cannot starve it.
 *
 * The holder of an exclusive hold writes its own range without going through `write()`
 * (the range-locked layer recognises its hold in the write options): a holder that waited
 * for itself would deadlock.
 *
 * While no exclusive hold exists, a write costs a counter increment: its range is not
 * recorded. A new exclusive hold therefore waits for those untracked writes to finish,
 * whatever their range; every write that starts after it asked is tracked by range.
 */
export interface RangeHold {
  readonly start: number;
  readonly end: number;
  /** Give the range back; idempotent. */
  release(): void;
}

interface Range {
  readonly start: number;
  readonly end: number;
}

class Exclusive implements RangeHold {
  granted = false;
  private done = false;
  readonly released: Promise<void>;
  private resolveReleased!: () => void;

  constructor(
    private readonly lock: RangeLock,
    readonly start: number,
    readonly end: number,
  ) {
    this.released = new Promise((resolve) => (this.resolveReleased = resolve));
  }

  release(): void {
    if (this.done) return;
    this.done = true;
    this.lock.dropExclusive(this);
    this.resolveReleased();
  }
}

function overlaps(a: Range, b: Range): boolean {
  return a.start < b.end && b.start < a.end;
}

export class RangeLock {
  /** Exclusive holds, granted or waiting, in the order they were asked for. */
  private readonly holds = new Set<Exclusive>();
  /** Writes started while no exclusive hold existed: counted, not recorded. */
  private untracked = 0;
  /** Writes started while an exclusive hold existed, by range. */
  private readonly tracked = new Set<Range>();
  private waiters: Array<() => void> = [];

  /**
   * Run a modifying request of [start, end): at once unless an exclusive hold overlaps it,
   * else once no overlapping hold is left. Settles as `io()` does.
   */
  write<T>(start: number, end: number, io: () => Promise<T>): Promise<T> {
    if (this.holds.size === 0) {
      this.untracked++;
      let pending: Promise<T>;
      try {
        pending = io();
      } catch (err) {
        this.leaveUntracked();
        return Promise.reject(err);
      }
      return pending.then(
        (value) => {
          this.leaveUntracked();
          return value;
        },
        (err: unknown) => {
          this.leaveUntracked();
          throw err;
        },
      );
    }
    return this.writeTracked({ start, end }, io);
  }

  /**
   * Exclusive use of [start, end): resolves once every earlier overlapping hold is released
   * and every write that could overlap has finished. New overlapping writes wait from the
   * moment this is called until the hold is released.
   */
  async exclusive(start: number, end: number): Promise<RangeHold> {
    if (!(start < end)) throw new BlockError('EINVAL', `range lock: empty range [${start}, ${end})`);
    const hold = new Exclusive(this, start, end);
    const earlier = [...this.holds].filter((h) => overlaps(h, hold));
    this.holds.add(hold);
    for (const h of earlier) await h.released;
    while (this.untracked > 0 || this.writeOver(hold)) await new Promise<void>((resolve) => this.waiters.push(resolve));
    hold.granted = true;
    return hold;
  }

  /** Run `fn` under an exclusive hold of [start, end), released however `fn` ends. */
  async withExclusive<T>(start: number, end: number, fn: (hold: RangeHold) => Promise<T>): Promise<T> {
    const hold = await this.exclusive(start, end);
    try {
      return await fn(hold);
    } finally {
      hold.release();
    }
  }

  /**
   * Whether `hold` is a granted exclusive hold of this lock covering [start, end). A hold of
   * this lock used outside its range is a bug in the caller, reported as EINVAL rather than
   * left to deadlock.
   */
  covers(hold: RangeHold, start: number, end: number): boolean {
    if (!(hold instanceof Exclusive) || !this.holds.has(hold) || !hold.granted) return false;
    if (start < hold.start || end > hold.end) {
      throw new BlockError('EINVAL', `range lock: [${start}, ${end}) written under a hold of [${hold.start}, ${hold.end})`);
    }
    return true;
  }

  /** Whether anything holds or waits for [start, end) exclusively (for tests and status). */
  isLocked(start: number, end: number): boolean {
    return this.holdOver({ start, end }) !== undefined;
  }

  /** @internal Called by a hold when it is released. */
  dropExclusive(hold: Exclusive): void {
    this.holds.delete(hold);
  }

  private async writeTracked<T>(range: Range, io: () => Promise<T>): Promise<T> {
    for (let hold = this.holdOver(range); hold; hold = this.holdOver(range)) await hold.released;
    this.tracked.add(range);
    try {
      return await io();
    } finally {
      this.tracked.delete(range);
      this.wake();
    }
  }

  private leaveUntracked(): void {
    this.untracked--;
    if (this.untracked === 0) this.wake();
  }

  private holdOver(range: Range): Exclusive | undefined {
    for (const h of this.holds) if (overlaps(h, range)) return h;
    return undefined;
  }

  private writeOver(range: Range): boolean {
    for (const w of this.tracked) if (overlaps(w, range)) return true;
    return false;
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
