interface Held {
  readonly start: number;
  readonly end: number;
  readonly done: Promise<void>;
}

/**
 * Exclusive locks on block ranges: writes of overlapping ranges run one after another,
 * which makes COMPARE AND WRITE atomic against every other write of its range.
 */
export class RangeLock {
  private readonly held = new Set<Held>();

  async acquire(start: number, end: number): Promise<() => void> {
    for (;;) {
      let blocker: Held | undefined;
      for (const h of this.held) {
        if (h.start < end && start < h.end) {
          blocker = h;
          break;
        }
      }
      if (!blocker) break;
      await blocker.done;
    }
    let release!: () => void;
    const entry: Held = { start, end, done: new Promise<void>((r) => (release = r)) };
    this.held.add(entry);
    return () => {
      this.held.delete(entry);
      release();
    };
  }
}
