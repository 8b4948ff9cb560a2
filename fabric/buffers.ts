/**
 * A pool of read buffers: a read reply borrows one, the device fills it, the socket sends
 * it behind its header, and the write callback gives it back. Reusing memory keeps the
 * read path free of per-request allocations of large buffers (and of the zero-fill that
 * Buffer.alloc would cost).
 *
 * Buffers come in power-of-two size classes; a borrowed Buffer is a view of exactly the
 * requested length over a class-sized ArrayBuffer that the pool owns. Each class keeps at
 * most `maxIdleBytesPerClass` idle so a burst of big reads does not pin memory forever.
 */

const MIN_CLASS_SHIFT = 12; // 4 KiB
const MAX_CLASS_SHIFT = 26; // 64 MiB; larger requests get a one-off buffer

export interface BufferPoolOptions {
  readonly maxIdleBytesPerClass?: number;
}

export class BufferPool {
  private readonly free: ArrayBuffer[][] = [];
  private readonly maxIdleBytesPerClass: number;
  /** Backings this pool made, so a foreign buffer handed back is never recycled. */
  private readonly owned = new WeakSet<ArrayBuffer>();
  /** Counters for tests and metrics. */
  readonly stats = { acquired: 0, released: 0, allocated: 0 };

  constructor(options: BufferPoolOptions = {}) {
    this.maxIdleBytesPerClass = options.maxIdleBytesPerClass ?? 64 * 1024 * 1024;
    for (let s = 0; s <= MAX_CLASS_SHIFT; s++) this.free.push([]);
  }

  /** A buffer of exactly `length` bytes with undefined contents. */
  acquire(length: number): Buffer {
    this.stats.acquired++;
    const shift = classShift(length);
    if (shift > MAX_CLASS_SHIFT) {
      this.stats.allocated++;
      return Buffer.allocUnsafeSlow(length);
    }
    const list = this.free[shift]!;
    const backing = list.pop();
    if (backing) return Buffer.from(backing, 0, length);
    this.stats.allocated++;
    const fresh = new ArrayBuffer(1 << shift);
    this.owned.add(fresh);
    return Buffer.from(fresh, 0, length);
  }

  /** Give a buffer back; the caller must not touch it afterwards. */
  release(buffer: Buffer): void {
    this.stats.released++;
    const backing = buffer.buffer;
    if (!(backing instanceof ArrayBuffer) || !this.owned.has(backing)) return;
    const size = backing.byteLength;
    const shift = 31 - Math.clz32(size);
    const list = this.free[shift]!;
    if ((list.length + 1) * size > this.maxIdleBytesPerClass && list.length > 0) return;
    list.push(backing);
  }

  /** Bytes held idle by the pool. */
  get idleBytes(): number {
    let n = 0;
    for (let s = 0; s < this.free.length; s++) n += this.free[s]!.length * 2 ** s;
    return n;
  }
}

function classShift(length: number): number {
  if (length <= 1 << MIN_CLASS_SHIFT) return MIN_CLASS_SHIFT;
  return 32 - Math.clz32(length - 1);
}

/** The process-wide pool the front ends share. */
export const readBufferPool = new BufferPool();
