import { performance } from 'node:perf_hooks';

/**
 * A lease as the holder must see it: valid until `ttl − margin` after the *send* time of the
 * last renewal the back end confirmed. The back end extends the lease from when it processes
 * the renewal, which is after we sent it, so counting from the send time errs on the safe
 * side; the margin covers clock rate differences and the time an in-flight request needs to
 * finish. Measured on the monotonic clock, never the wall clock.
 */
export class LeaseClock {
  private validUntil: number;
  private timer: NodeJS.Timeout | undefined;
  private expired = false;

  constructor(
    private readonly ttlMs: number,
    private readonly marginMs: number,
    private readonly onExpire: () => void,
    renewedAtSend: number = now(),
  ) {
    if (!(marginMs > 0 && marginMs < ttlMs)) throw new RangeError(`fence margin ${marginMs} ms must be between 0 and the TTL (${ttlMs} ms)`);
    this.validUntil = renewedAtSend + ttlMs - marginMs;
    this.arm();
  }

  /** A renewal sent at `sentAt` (a `now()` reading) was confirmed. */
  renewed(sentAt: number): void {
    if (this.expired) return;
    this.validUntil = Math.max(this.validUntil, sentAt + this.ttlMs - this.marginMs);
    this.arm();
  }

  isValid(): boolean {
    if (this.expired) return false;
    if (now() < this.validUntil) return true;
    this.expire();
    return false;
  }

  /** Milliseconds left before the fence (negative once passed). */
  remainingMs(): number {
    return this.validUntil - now();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    clearTimeout(this.timer);
    // +1: a timer may fire a hair early; isValid() then re-arms rather than fencing early.
    this.timer = setTimeout(() => (this.isValid() ? this.arm() : undefined), Math.max(0, this.remainingMs()) + 1);
  }

  private expire(): void {
    if (this.expired) return;
    this.expired = true;
    this.stop();
    this.onExpire();
  }
}

export function now(): number {
  return performance.now();
}
