/**
 * A disk with a volatile write cache, as a fault layer for power-loss tests. Writes, trims
 * and zeroes are kept in the cache (read back from it) and reach the disk below only on a
 * flush — or at once for a FUA write, which first writes back the cache up to the last entry
 * it overlaps (a cache may write back at any time, in order; it must never let an older
 * write land over a FUA write). A flush writes back all it holds in order, then flushes below.
 *
 * `powerCut()` drops what the cache holds, as losing power does, and fails every request
 * from then on (as a transport failure: the disk is gone). Power comes back as a new
 * VolatileCacheDevice over the same disk, so requests of the member that died with the
 * power can never reach the disk afterwards.
 */
import type { BlockDevice, WriteOptions, ZeroOptions } from '../../fabric/device.js';
import { totalLength } from '../../fabric/device.js';
import { BlockError } from '../../fabric/errors.js';
import { Layer } from '../../fabric/layer.js';

type Cached =
  | { readonly kind: 'write'; readonly offset: number; readonly data: Buffer }
  | { readonly kind: 'zero'; readonly offset: number; readonly length: number };

function overlaps(a: { offset: number; length: number }, offset: number, length: number): boolean {
  return a.offset < offset + length && offset < a.offset + a.length;
}

function extent(c: Cached): { offset: number; length: number } {
  return c.kind === 'write' ? { offset: c.offset, length: c.data.length } : c;
}

export class VolatileCacheDevice extends Layer {
  private cached: Cached[] = [];
  private off = false;
  private writing: Promise<void> = Promise.resolve();
  /** Delay of each request in ms (a slower replica leaves more in flight at a cut). */
  delayMs = 0;
  /** Writes that reached the disk below, for tests that want to see the cache work. */
  writtenBack = 0;
  /** Called when a flush has written back the cache, before it flushes the disk below. */
  onFlushWrittenBack: (() => void) | undefined;

  constructor(next: BlockDevice, name = next.name) {
    super(next, name);
  }

  get cachedWrites(): number {
    return this.cached.length;
  }

  powerCut(): void {
    this.off = true;
    this.cached = [];
  }

  override async read(offset: number, target: Buffer): Promise<void> {
    await this.gate();
    await this.next.read(offset, target);
    // Newer cached data over what the disk holds, in the order it was written.
    for (const c of this.cached) {
      const e = extent(c);
      if (!overlaps(e, offset, target.length)) continue;
      const from = Math.max(e.offset, offset);
      const to = Math.min(e.offset + e.length, offset + target.length);
      if (c.kind === 'write') c.data.copy(target, from - offset, from - c.offset, to - c.offset);
      else target.fill(0, from - offset, to - offset);
    }
  }

  override async write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    await this.gate();
    const length = totalLength(data);
    if (options?.fua) {
      await this.writeBackThrough(offset, length);
      this.writtenBack++;
      return this.next.write(offset, data, { fua: true });
    }
    // The caller's buffers are valid only until this settles: the cache keeps a copy.
    this.cached.push({ kind: 'write', offset, data: Buffer.concat(data as Buffer[], length) });
  }

  override async writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    await this.gate();
    if (options?.fua) {
      await this.writeBackThrough(offset, length);
      return this.next.writeZeroes(offset, length, options);
    }
    this.cached.push({ kind: 'zero', offset, length });
  }

  override async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.writeZeroes(offset, length, options);
  }

  override async flush(): Promise<void> {
    await this.gate();
    await this.writeBack(this.cached.length);
    this.onFlushWrittenBack?.();
    if (this.off) throw this.gone();
    await this.next.flush();
  }

  override async blockStatus(offset: number, length: number) {
    await this.gate();
    // What the cache holds is data; knowing no better, say all of it is.
    return [{ length, hole: false, zero: false }];
  }

  override status() {
    return this.off ? { state: 'failed' as const } : this.next.status();
  }

  override async close(): Promise<void> {}

  /** Write back the cache up to its last entry overlapping [offset, offset+length). */
  private writeBackThrough(offset: number, length: number): Promise<void> {
    let last = -1;
    this.cached.forEach((c, i) => {
      if (overlaps(extent(c), offset, length)) last = i;
    });
    return this.writeBack(last + 1);
  }

  /** Write back, in order, the first `count` cached entries; one write-back at a time. */
  private writeBack(count: number): Promise<void> {
    if (count === 0) return Promise.resolve();
    const entries = this.cached.slice(0, count);
    const run = this.writing.then(() => this.writeEntries(entries));
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async writeEntries(entries: readonly Cached[]): Promise<void> {
    // Each entry stays readable from the cache until the disk below has it.
    for (const c of entries) {
      if (this.off) throw this.gone();
      if (!this.cached.includes(c)) continue; // another write-back took it
      if (c.kind === 'write') await this.next.write(c.offset, [c.data]);
      else await this.next.writeZeroes(c.offset, c.length);
      this.cached = this.cached.filter((x) => x !== c);
      this.writtenBack++;
    }
  }

  private async gate(): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, Math.random() * this.delayMs));
    if (this.off) throw this.gone();
  }

  private gone(): BlockError {
    return new BlockError('EIO', `${this.name}: no power`, { transport: true });
  }
}
