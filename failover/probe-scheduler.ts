/**
 * The one probe scheduler of the failover sets: calls a set's probe round every interval,
 * sooner while the set has nothing usable (a returning member is then found within
 * `urgentMs`), and at once when asked. The round itself decides which members to probe and
 * must not overlap itself per member; the scheduler never waits for it, so one hung member
 * cannot delay the probes of the others.
 */
export class ProbeScheduler {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly round: () => void,
    private readonly options: {
      readonly intervalMs: number;
      /** Interval while `urgent()` says so. */
      readonly urgentMs: number;
      readonly urgent: () => boolean;
    },
  ) {}

  /** Probing is off with an interval of 0. */
  get enabled(): boolean {
    return this.options.intervalMs > 0;
  }

  start(): void {
    this.arm();
  }

  /** Run a round now (and resume the cadence after it). */
  now(): void {
    if (!this.enabled || this.stopped) return;
    this.arm(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delay?: number): void {
    if (!this.enabled || this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const { intervalMs, urgentMs, urgent } = this.options;
    const wait = delay ?? (urgent() ? Math.min(intervalMs, urgentMs) : intervalMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.round();
      this.arm();
    }, wait);
    this.timer.unref();
  }
}
