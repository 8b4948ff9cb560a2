import { LATENCY_BUCKETS_US, type IoStats } from '../../fabric/stats.js';

/**
 * Rates over an interval from the switch's cumulative counters: what the dashboard charts.
 * Latency quantiles are over reads and writes (flushes wait for the disk's cache and would
 * hide the data path's latency), interpolated inside a histogram bucket as Prometheus'
 * histogram_quantile does.
 */

export interface Rates {
  readonly iops: number;
  readonly readIops: number;
  readonly writeIops: number;
  /** Payload bytes per second. */
  readonly readBps: number;
  readonly writeBps: number;
  readonly errorsPerSec: number;
  /** Microseconds; null when no read or write finished in the interval. */
  readonly p50us: number | null;
  readonly p99us: number | null;
  readonly inFlight: number;
}

/** One IoStats' cumulative counters at one moment. */
export interface Totals {
  readonly ops: number;
  readonly errors: number;
  readonly readOps: number;
  readonly writeOps: number;
  readonly readBytes: number;
  readonly writeBytes: number;
  /** Read and write latency, per bucket (not cumulative), the +Inf bucket last. */
  readonly latency: readonly number[];
  readonly inFlight: number;
}

/** Counters of something that has seen no I/O. */
export const IDLE: Totals = { ops: 0, errors: 0, readOps: 0, writeOps: 0, readBytes: 0, writeBytes: 0, latency: new Array<number>(LATENCY_BUCKETS_US.length + 1).fill(0), inFlight: 0 };

export function totalsOf(stats: IoStats): Totals {
  let ops = 0;
  let errors = 0;
  for (const c of stats.byOp.values()) {
    ops += c.ops;
    errors += c.errors;
  }
  const read = stats.byOp.get('read')!;
  const write = stats.byOp.get('write')!;
  return {
    ops,
    errors,
    readOps: read.ops,
    writeOps: write.ops,
    readBytes: read.bytes,
    writeBytes: write.bytes,
    latency: read.latency.counts.map((n, i) => n + write.latency.counts[i]!),
    inFlight: stats.inFlight,
  };
}

/** What happened between `before` and `now`, `seconds` apart. */
export function ratesBetween(before: Totals | undefined, now: Totals, seconds: number): Rates {
  const b = before ?? IDLE;
  const per = (a: number, z: number): number => Math.max(0, z - a) / seconds;
  const counts = now.latency.map((n, i) => Math.max(0, n - b.latency[i]!));
  return {
    iops: per(b.ops, now.ops),
    readIops: per(b.readOps, now.readOps),
    writeIops: per(b.writeOps, now.writeOps),
    readBps: per(b.readBytes, now.readBytes),
    writeBps: per(b.writeBytes, now.writeBytes),
    errorsPerSec: per(b.errors, now.errors),
    p50us: histogramQuantile(counts, 0.5),
    p99us: histogramQuantile(counts, 0.99),
    inFlight: now.inFlight,
  };
}

/**
 * The q-quantile of per-bucket counts over LATENCY_BUCKETS_US (the last count is +Inf),
 * linear inside the bucket holding it; a value past the last bound reads as that bound.
 */
export function histogramQuantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, n) => a + n, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i]!;
    if (n > 0 && seen + n >= rank) {
      if (i >= LATENCY_BUCKETS_US.length) return LATENCY_BUCKETS_US[LATENCY_BUCKETS_US.length - 1]!;
      const lower = i === 0 ? 0 : LATENCY_BUCKETS_US[i - 1]!;
      return lower + (LATENCY_BUCKETS_US[i]! - lower) * ((rank - seen) / n);
    }
    seen += n;
  }
  return LATENCY_BUCKETS_US[LATENCY_BUCKETS_US.length - 1]!;
}
