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

/** Something that stays valid while anyone holds a reference to it. */
export interface Retained {
  retain(): void;
  release(): void;
}

/** One receive arena: freed back to the pool when its last reference goes. */
class Arena implements Retained {
  used = 0;
  /** The allocator's own reference while the arena is the one being filled. */
  private refs = 1;

  constructor(
    readonly buffer: Buffer,
    private readonly pool: BufferPool,
  ) {}

  retain(): void {
    this.refs++;
  }

  release(): void {
    if (--this.refs === 0) this.pool.release(this.buffer);
  }
}

export interface ReceiveArenasOptions {
  /** The first arena's size: what an idle connection pins. */
  readonly initialSize?: number;
  /** The second arena's size, once the connection carries traffic. */
  readonly grownSize?: number;
  /** Each new arena doubles the last, up to this. */
  readonly maxSize?: number;
  /** Start a new arena rather than offer a socket read less room than this. */
  readonly minRead?: number;
}

/**
 * Where one connection's socket reads land: consecutive regions of large pooled arenas.
 * Received bytes are handed on as views (no copy), so an arena goes back to the pool only
 * when nothing references it any more: the allocator while filling it, a chunk while it
 * waits unparsed, a request while the device works on its payload. Compared with a fresh
 * buffer per read, this saves the allocation, page faults and GC of 64 KiB per read.
 * The first arena is small, so idle connections pin little; later ones grow with the traffic.
 * A header cut by the socket between two arenas is copied (counted): after the first read,
 * that happens at most once per arena of 256 KiB to 4 MiB.
 */
export class ReceiveArenas {
  private current: Arena | null = null;
  private nextSize: number;
  private readonly maxSize: number;
  private readonly minRead: number;
  private readonly grownSize: number;

  constructor(
    private readonly pool: BufferPool,
    options: ReceiveArenasOptions = {},
  ) {
    // An idle connection pins its first arena (the socket holds the region its next read
    // fills): 16 KiB keeps 1,000 idle clients near 16 MiB. It serves the first read only;
    // then arenas start at `grownSize` and double with the traffic.
    this.nextSize = options.initialSize ?? 16 * 1024;
    this.grownSize = options.grownSize ?? 256 * 1024;
    this.maxSize = Math.max(this.nextSize, options.maxSize ?? 4 * 1024 * 1024);
    this.minRead = options.minRead ?? 64 * 1024;
  }

  /** The region the next read may fill. */
  region(): Buffer {
    let arena = this.current;
    // An arena smaller than minRead serves one read while the sizes grow past it.
    if (arena === null || arena.buffer.length - arena.used < Math.min(this.minRead, arena.buffer.length)) {
      arena?.release();
      arena = this.current = new Arena(this.pool.acquire(this.nextSize), this.pool);
      this.nextSize = Math.min(Math.max(this.nextSize * 2, this.grownSize), this.maxSize);
    }
    return arena.buffer.subarray(arena.used);
  }

  /**
   * The last region's first `n` bytes were filled: they become a chunk, and the returned
   * owner holds one reference for it (release it when the chunk is consumed).
   */
  filled(n: number): { chunk: Buffer; owner: Retained } {
    const arena = this.current!;
    const chunk = arena.buffer.subarray(arena.used, arena.used + n);
    arena.used += n;
    arena.retain();
    return { chunk, owner: arena };
  }

  /** No more reads: drop the allocator's reference. */
  close(): void {
    this.current?.release();
    this.current = null;
  }
}

/** The process-wide pool the front ends share. */
export const readBufferPool = new BufferPool();
