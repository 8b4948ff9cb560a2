/**
 * Keeps host writes and internal copies (resync, read repair) of the same range apart. A copy
 * takes an exclusive lock on its range: it waits until no host write overlapping it is in
 * flight, and host writes overlapping it wait until it ends. Only that range waits; the rest
 * of the device runs on.
 *
 * While no copy is running the gate is inactive and a host write costs one counter increment:
 * it is not tracked by range. Activating therefore waits for those untracked writes to drain.
 */
export interface Range {
  readonly start: number;
  readonly end: number;
}

interface Lock extends Range {
  readonly released: Promise<void>;
  release(): void;
}

function overlaps(a: Range, b: Range): boolean {
  return a.start < b.end && b.start < a.end;
}

export class RegionGate {
  /** Copiers that want the gate active (resync loops, repairs). */
  private users = 0;
  private untracked = 0;
  private readonly inflight = new Set<Range>();
  private readonly locks = new Set<Lock>();
  private waiters: Array<() => void> = [];

  get active(): boolean {
    return this.users > 0;
  }

  /** Host write start when the gate is inactive: the cheap path. */
  enterUntracked(): void {
    this.untracked++;
  }

  leaveUntracked(): void {
    this.untracked--;
    if (this.untracked === 0) this.wake();
  }

  /** Host write start when the gate is active: waits out any lock over the range. */
  async enter(start: number, end: number): Promise<Range> {
    const range: Range = { start, end };
    for (;;) {
      const lock = this.lockOver(range);
      if (!lock) break;
      await lock.released;
    }
    this.inflight.add(range);
    return range;
  }

  leave(range: Range): void {
    this.inflight.delete(range);
    if (this.waiters.length) this.wake();
  }

  /** Hold the gate active for a run of copies (a resync pass). */
  retain(): void {
    this.users++;
  }

  release(): void {
    this.users--;
  }

  /** Exclusive access to [start, end) against host writes and other copies. */
  async lock(start: number, end: number): Promise<() => void> {
    this.retain();
    const range: Range = { start, end };
    try {
      for (;;) {
        const held = this.lockOver(range);
        if (held) {
          await held.released;
          continue;
        }
        if (this.untracked === 0 && !this.writeOver(range)) break;
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    } catch (err) {
      this.release();
      throw err;
    }
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const lock: Lock = { start, end, released, release };
    this.locks.add(lock);
    return () => {
      this.locks.delete(lock);
      lock.release();
      this.release();
    };
  }

  private lockOver(range: Range): Lock | undefined {
    for (const lock of this.locks) if (overlaps(lock, range)) return lock;
    return undefined;
  }

  private writeOver(range: Range): boolean {
    for (const w of this.inflight) if (overlaps(w, range)) return true;
    return false;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
