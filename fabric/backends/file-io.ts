import fs from 'node:fs';
import { logger } from '../log.js';
import { AioWrites } from './aio-writes.js';
import { EAGAIN, EOPNOTSUPP, errnoError, linuxFs } from './linux-fs.js';

/**
 * How a file backend reaches its file. Every operation can go through libuv's thread pool
 * (a round trip of some tens of µs on a busy machine, several times the cost of a 4 KiB
 * copy); what cannot wait for a disk is better done at once, on the event loop:
 *
 * - reads the page cache already holds: preadv2(RWF_NOWAIT) returns them, or -EAGAIN when
 *   the kernel would have to go to the disk (then the read goes to the pool);
 * - on a memory file system (tmpfs, ramfs) while the machine has no swap, every read and
 *   write: there is no disk to wait for (tmpfs refuses RWF_NOWAIT, so this is the only
 *   way to keep its pages off the pool).
 *
 * Anything else — writes to disk-backed files (which may wait for dirty-page throttling or
 * the journal), fdatasync, reads on file systems that refuse RWF_NOWAIT (FUSE, NFS) — goes
 * to the pool; writes in small batches, one pool job each, several at once (aio-writes.ts).
 */
export interface FileIo {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  close(): Promise<void>;
  /** The descriptor, for fallocate/lseek; absent on wrapped handles that cannot offer it. */
  readonly fd?: number;
  /**
   * Read now if that cannot wait for a disk: the bytes read (0 at EOF, possibly short), or
   * -1 when the rest must go through `read`. Throws on I/O errors. Absent: always `read`.
   */
  readNow?(buffer: Buffer, offset: number, length: number, position: number): number;
  /** Write now if that cannot wait for a disk: the bytes written, or -1 to use `writev`. */
  writeNow?(buffers: Buffer[], position: number): number;
}

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
/** How often the swap state is looked at again (swapon at run time moves tmpfs pages to disk). */
const SWAP_RECHECK_MS = 30_000;

const log = logger('file-io');

/** Whether any swap is active: then tmpfs pages may be on a disk. Read once now, then now and then. */
const swap = {
  active: readSwapActive(),
  timer: undefined as NodeJS.Timeout | undefined,
  watch(): void {
    this.timer ??= setInterval(() => {
      fs.readFile('/proc/swaps', 'utf8', (err, text) => {
        const active = err ? true : swapListed(text);
        if (active !== swap.active) log.info({ swapActive: active }, 'swap state changed: memory file systems are read and written on the event loop only without swap');
        swap.active = active;
      });
    }, SWAP_RECHECK_MS).unref();
  },
};

function swapListed(text: string): boolean {
  return text.trim().split('\n').length > 1;
}

function readSwapActive(): boolean {
  try {
    return swapListed(fs.readFileSync('/proc/swaps', 'utf8'));
  } catch {
    // Not knowing means assuming the worst.
    return true;
  }
}


/** How reads are tried on the event loop. */
type ReadMode = 'memory' | 'nowait' | 'pool';

/** A FileIo over a raw descriptor: the callback fs API for the pool, koffi/sync calls for the rest. */
export class FdIo implements FileIo {
  private readMode: ReadMode;
  private readonly memoryFs: boolean;
  /** Writes that go to the pool, in batches (undefined: one fs.writev each). */
  private readonly aio: AioWrites | undefined;

  private constructor(
    readonly fd: number,
    memoryFs: boolean,
    batchWrites: boolean,
  ) {
    this.memoryFs = memoryFs;
    this.readMode = linuxFs === undefined ? 'pool' : memoryFs ? 'memory' : 'nowait';
    if (memoryFs) swap.watch();
    this.aio = batchWrites ? AioWrites.open(fd) : undefined;
  }

  /** `batchWrites: false` sends every pool write on its own (as without libaio). */
  static async open(path: string, flags: number, mode: number, { batchWrites = true } = {}): Promise<FdIo> {
    const fd = await new Promise<number>((resolve, reject) => fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
    try {
      const stats = await fs.promises.statfs(path);
      return new FdIo(fd, stats.type === TMPFS_MAGIC || stats.type === RAMFS_MAGIC, batchWrites);
    } catch (err) {
      fs.close(fd, () => undefined);
      throw err;
    }
  }

  /** How reads are being served now, for status and tests. */
  get path(): 'memory' | 'nowait' | 'pool' {
    return this.readMode === 'memory' && swap.active ? 'pool' : this.readMode;
  }

  /** Pool writes and the batches they went in (zero batches: one job per write). */
  get writeBatches(): { writes: number; batches: number } {
    return this.aio?.stats ?? { writes: 0, batches: 0 };
  }

  readNow(buffer: Buffer, offset: number, length: number, position: number): number {
    const mode = this.readMode;
    if (mode === 'pool' || (mode === 'memory' && swap.active)) return -1;
    // In memory a plain pread cannot wait for a disk: Node's own, which costs no FFI call,
    // no view and no BigInts (koffi's pointer and the iovec's length) per read.
    if (mode === 'memory') return fs.readSync(this.fd, buffer, offset, length, position);
    const n = linuxFs!.preadv2(this.fd, buffer.subarray(offset, offset + length), position, true);
    if (n >= 0) return n;
    if (n === -EAGAIN) return -1;
    if (n === -EOPNOTSUPP && mode === 'nowait') {
      this.readMode = 'pool';
      log.info({ fd: this.fd }, 'the file system refuses RWF_NOWAIT: every read goes through the thread pool');
      return -1;
    }
    throw errnoError(n, 'preadv2');
  }

  writeNow(buffers: Buffer[], position: number): number {
    if (!this.memoryFs || swap.active) return -1;
    return fs.writevSync(this.fd, buffers, position);
  }

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return new Promise((resolve, reject) =>
      fs.read(this.fd, buffer, offset, length, position, (err, bytesRead) => (err ? reject(err) : resolve({ bytesRead }))),
    );
  }

  writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }> {
    if (this.aio) return this.aio.pwritev(buffers, position).then((bytesWritten) => ({ bytesWritten }));
    return new Promise((resolve, reject) =>
      fs.writev(this.fd, buffers, position, (err, bytesWritten) => (err ? reject(err) : resolve({ bytesWritten }))),
    );
  }

  datasync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  stat(): Promise<fs.Stats> {
    return new Promise((resolve, reject) => fs.fstat(this.fd, (err, stats) => (err ? reject(err) : resolve(stats))));
  }

  truncate(length: number): Promise<void> {
    return new Promise((resolve, reject) => fs.ftruncate(this.fd, length, (err) => (err ? reject(err) : resolve())));
  }

  close(): Promise<void> {
    this.aio?.close();
    return new Promise((resolve, reject) => fs.close(this.fd, (err) => (err ? reject(err) : resolve())));
  }
}
