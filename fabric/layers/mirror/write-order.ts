/**
 * Overlapping writes to a mirror reach every replica in the same order.
 *
 * A mirror sends each write to all replicas at once, and the replicas complete them in any
 * order. Two writes in flight to the same block could then land in one order on one replica
 * and in the other order on another: both are acknowledged, and the replicas hold different
 * data for good (a flush makes it durable, the activity log forgets the extent, and reads
 * answer differently depending on the replica they pick). DRBD serializes such conflicting
 * writes for that reason; so does this: a write that overlaps one still in flight waits for
 * it to complete before it is issued. Writes that do not overlap are not held up.
 *
 * In-flight writes are few (bounded by the clients' queue depths), so a list scanned on each
 * write is enough; a write that overlaps nothing costs no promise.
 */
interface InFlight {
  readonly start: number;
  readonly end: number;
  /** Later overlapping writes waiting for this one; created only when one comes. */
  waiters?: Array<() => void>;
}

export class WriteOrder {
  private readonly inflight: InFlight[] = [];

  /**
   * Run `io`, a write of [start, end), once every earlier overlapping write has completed;
   * later overlapping writes wait for it in turn (however it ends).
   */
  async run(start: number, end: number, io: () => Promise<void>): Promise<void> {
    let pending = 0;
    let ready: Promise<void> | undefined;
    let go: (() => void) | undefined;
    for (const w of this.inflight) {
      if (w.start >= end || start >= w.end) continue;
      if (!ready) ready = new Promise<void>((resolve) => (go = resolve));
      pending++;
      (w.waiters ??= []).push(() => {
        if (--pending === 0) go!();
      });
    }
    const entry: InFlight = { start, end };
    this.inflight.push(entry);
    try {
      if (ready) await ready;
      await io();
    } finally {
      this.inflight.splice(this.inflight.indexOf(entry), 1);
      for (const wake of entry.waiters ?? []) wake();
    }
  }

  /** Writes in flight (for tests). */
  get size(): number {
    return this.inflight.length;
  }
}
