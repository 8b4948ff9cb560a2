/**
 * The one health window every failover set uses: failures of a member inside a sliding
 * time window. A mirror quarantines a replica that fails more often than its limit; a
 * multipath keeps a flapping path out as marginal; a cluster will judge member processes
 * the same way.
 */
export interface FailureLimit {
  /** How many failures the window tolerates. */
  readonly failures: number;
  readonly windowMs: number;
}

export class FailureWindow {
  /** Failure times (ms), oldest first. */
  private times: number[] = [];

  constructor(readonly limit: FailureLimit) {}

  /** Record a failure at `now`; returns how many fall inside the window. */
  record(now: number): number {
    this.times.push(now);
    return this.count(now);
  }

  count(now: number): number {
    const since = now - this.limit.windowMs;
    while (this.times.length > 0 && this.times[0]! <= since) this.times.shift();
    return this.times.length;
  }

  /** More failures inside the window than the limit tolerates. */
  exceeded(now: number): boolean {
    return this.count(now) > this.limit.failures;
  }

  /** As many failures as the limit: enough to call a member that keeps failing unreliable. */
  reached(now: number): boolean {
    return this.count(now) >= this.limit.failures;
  }

  clear(): void {
    this.times = [];
  }
}
