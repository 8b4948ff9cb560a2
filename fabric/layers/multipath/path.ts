/**
 * One path of a multipath device: the child device, its state and counters, and the
 * failure history that decides when it is marginal.
 *
 *   active   carries I/O            standby  healthy, waits (active-passive)
 *   failed   I/O error or probe failure; probed until it answers again
 *   marginal failed and recovered too often inside the window; kept out until it has been
 *            healthy for a whole window (or an operator clears it)
 */
import type { BlockDevice } from '../../device.js';

export type PathState = 'active' | 'standby' | 'failed' | 'marginal';

export class Path {
  state: PathState = 'standby';
  /** Requests issued and not yet settled. */
  outstanding = 0;
  ios = 0;
  errors = 0;
  /** Times (ms) this path failed, newest last, pruned to the marginal window. */
  readonly failures: number[] = [];
  /** Since when the path has been healthy (for timed failback) or marginal-but-answering. */
  since = 0;
  probing = false;
  lastError: string | undefined;
  readonly probeBuffer: Buffer;

  constructor(
    readonly device: BlockDevice,
    /** Priority order: lower is preferred. */
    readonly index: number,
    probeSize: number,
  ) {
    this.probeBuffer = Buffer.alloc(probeSize);
  }

  get usable(): boolean {
    return this.state === 'active' || this.state === 'standby';
  }

  /** Record a failure and return how many happened inside the window. */
  noteFailure(now: number, windowMs: number): number {
    this.failures.push(now);
    return this.recentFailures(now, windowMs);
  }

  recentFailures(now: number, windowMs: number): number {
    while (this.failures.length > 0 && this.failures[0]! <= now - windowMs) this.failures.shift();
    return this.failures.length;
  }

  describe(): Record<string, unknown> {
    return {
      name: this.device.name,
      state: this.state,
      outstanding: this.outstanding,
      ios: this.ios,
      errors: this.errors,
      recentFailures: this.failures.length,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }
}
