/**
 * Counters kept per device and per front-end port. Plain numbers: incrementing them costs
 * nothing on the hot path, and the API renders them in Prometheus format when asked.
 */
import { OPERATIONS, type Operation } from './operation.js';

/** Upper bounds, in microseconds, of the latency histogram's buckets (the last is +Inf). */
export const LATENCY_BUCKETS_US = [50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000] as const;

export class LatencyHistogram {
  /** counts[i] holds samples ≤ LATENCY_BUCKETS_US[i]; the extra last slot is +Inf. */
  readonly counts = new Array<number>(LATENCY_BUCKETS_US.length + 1).fill(0);
  sumUs = 0;
  samples = 0;

  record(us: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_US.length && us > LATENCY_BUCKETS_US[i]!) i++;
    this.counts[i]!++;
    this.sumUs += us;
    this.samples++;
  }

  /** Approximate quantile (upper bound of the bucket holding it), in microseconds. */
  quantile(q: number): number {
    if (this.samples === 0) return 0;
    const rank = Math.ceil(q * this.samples);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return LATENCY_BUCKETS_US[i] ?? Infinity;
    }
    return Infinity;
  }
}

export class OpCounters {
  ops = 0;
  bytes = 0;
  errors = 0;
  readonly latency = new LatencyHistogram();
}

export class IoStats {
  readonly byOp = new Map<Operation, OpCounters>(OPERATIONS.map((k) => [k, new OpCounters()]));
  inFlight = 0;

  /** A request starts: returns its start time for `end`. */
  begin(): bigint {
    this.enter();
    return process.hrtime.bigint();
  }

  end(op: Operation, bytes: number, started: bigint, failed: boolean): void {
    this.leave(op, bytes, Number(process.hrtime.bigint() - started) / 1000, failed);
  }

  /** begin/end without the clock, for a caller timing one request into several IoStats. */
  enter(): void {
    this.inFlight++;
  }

  leave(op: Operation, bytes: number, elapsedUs: number, failed: boolean): void {
    this.inFlight--;
    const c = this.byOp.get(op)!;
    c.ops++;
    if (failed) c.errors++;
    else c.bytes += bytes;
    c.latency.record(elapsedUs);
  }

  toJSON(): Record<string, unknown> {
    const ops: Record<string, unknown> = {};
    for (const [op, c] of this.byOp) {
      if (c.ops === 0) continue;
      ops[op] = { ops: c.ops, bytes: c.bytes, errors: c.errors, p50us: c.latency.quantile(0.5), p99us: c.latency.quantile(0.99) };
    }
    return { inFlight: this.inFlight, ops };
  }
}
