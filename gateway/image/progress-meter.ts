/**
 * Bytes done of a total, with the rate over the last few seconds and the time left at that
 * rate: what a progress bar and a dashboard show for long work. The rate is a sliding
 * window, not the average since the start, so it follows a job that speeds up or slows down.
 */
export interface ProgressSnapshot {
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Bytes per second over the window; 0 until two samples are apart in time. */
  readonly bytesPerSecond: number;
  /** Seconds left at that rate; null while the rate is unknown. */
  readonly etaSeconds: number | null;
}

const WINDOW_MS = 10_000;

export class ProgressMeter {
  private done = 0;
  /** (time, bytesDone) pairs inside the window, oldest first; the first is kept as an anchor. */
  private readonly samples: Array<{ at: number; done: number }> = [];

  constructor(
    readonly total: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.samples.push({ at: this.now(), done: 0 });
  }

  /** Record how far the work has got; never goes backwards. */
  update(bytesDone: number): void {
    this.done = Math.min(this.total, Math.max(this.done, bytesDone));
    const at = this.now();
    this.samples.push({ at, done: this.done });
    while (this.samples.length > 2 && this.samples[1]!.at <= at - WINDOW_MS) this.samples.shift();
  }

  snapshot(): ProgressSnapshot {
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const seconds = (last.at - first.at) / 1000;
    const rate = seconds > 0 ? (last.done - first.done) / seconds : 0;
    const left = this.total - this.done;
    return {
      bytesDone: this.done,
      bytesTotal: this.total,
      bytesPerSecond: Math.round(rate),
      etaSeconds: left === 0 ? 0 : rate > 0 ? Math.ceil(left / rate) : null,
    };
  }
}
