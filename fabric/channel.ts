import { performance } from 'node:perf_hooks';
import type { BlockDevice, Extent, WriteOptions, ZeroOptions } from './device.js';
import { totalLength } from './device.js';
import { Layer } from './layer.js';
import type { Operation } from './operation.js';
import type { IoStats } from './stats.js';

/**
 * What a front-end connection holds: the export's device seen through the checked
 * boundary, counting every request into the device's, the port's and the export's statistics. One per
 * connection, so the I/O path shares no mutable state but the counters.
 */
export class Channel extends Layer {
  constructor(
    next: BlockDevice,
    private readonly sinks: readonly IoStats[],
  ) {
    super(next);
  }

  override read(offset: number, target: Buffer): Promise<void> {
    return this.count('read', target.length, this.next.read(offset, target));
  }
  override write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    return this.count('write', totalLength(data), this.next.write(offset, data, options));
  }
  override flush(): Promise<void> {
    return this.count('flush', 0, this.next.flush());
  }
  override trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.count('trim', length, this.next.trim(offset, length, options));
  }
  override writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.count('writeZeroes', length, this.next.writeZeroes(offset, length, options));
  }
  override blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.count('blockStatus', 0, this.next.blockStatus(offset, length));
  }
  override cache(offset: number, length: number): Promise<void> {
    return this.count('cache', 0, this.next.cache(offset, length));
  }
  /** Closing a channel leaves the shared device open. */
  override async close(): Promise<void> {}

  /**
   * One clock read at each end, whatever the number of sinks: this runs for every request.
   * performance.now() is a double; process.hrtime.bigint() would allocate a BigInt per read.
   */
  private count<T>(op: Operation, bytes: number, request: Promise<T>): Promise<T> {
    const sinks = this.sinks;
    for (const s of sinks) s.enter();
    const started = performance.now();
    return request.then(
      (value) => {
        leave(sinks, op, bytes, started, false);
        return value;
      },
      (err: unknown) => {
        leave(sinks, op, bytes, started, true);
        throw err;
      },
    );
  }
}

/** A plain function rather than a closure made per request. */
function leave(sinks: readonly IoStats[], op: Operation, bytes: number, started: number, failed: boolean): void {
  const elapsedUs = (performance.now() - started) * 1000;
  for (const s of sinks) s.leave(op, bytes, elapsedUs, failed);
}
