import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';
import { logger } from '../log.js';

/**
 * The Linux calls Node's fs lacks, reached through koffi (an FFI whose prebuilt binaries
 * ship inside its npm package): fallocate(2) to punch holes and zero ranges, lseek(2)
 * SEEK_DATA/SEEK_HOLE to find them, and preadv2(2) with RWF_NOWAIT to read what the page
 * cache already holds without waiting for a disk. If libc cannot be loaded (not
 * Linux/glibc), `linuxFs` is undefined and the file backend does without.
 *
 * fallocate and lseek run on koffi's worker threads: punching a large hole, or walking a
 * file's page cache for the next hole (tmpfs does that), takes as long as it takes without
 * stalling the event loop. koffi hands each call's errno to its completion callback.
 */

const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const RWF_NOWAIT = 0x08;
const ENXIO = 6;

export interface LinuxFs {
  /** Deallocate the range; reads return zeroes afterwards. Resolves with 0 or an errno. */
  punchHole(fd: number, offset: number, length: number): Promise<number>;
  /** Zero the range keeping it allocated. Resolves with 0 or an errno. */
  zeroRange(fd: number, offset: number, length: number): Promise<number>;
  /** The next offset ≥ `offset` holding data, or -1 when there is none before EOF. */
  seekData(fd: number, offset: number): Promise<number>;
  /** The next offset ≥ `offset` starting a hole (EOF counts as one). */
  seekHole(fd: number, offset: number): Promise<number>;
  /**
   * preadv2 into `target` on the calling thread: bytes read (0 at EOF, possibly short), or
   * the negated errno. With `nowait`, data not in the page cache gives -EAGAIN instead of
   * a wait for the disk, and a file system that cannot promise that gives -EOPNOTSUPP.
   */
  preadv2(fd: number, target: Buffer, position: number, nowait: boolean): number;
}

type AsyncFn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

function load(): LinuxFs | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const libc = koffi.load('libc.so.6');
    const fallocate = libc.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)') as AsyncFn;
    const lseek = libc.func('int64_t lseek(int fd, int64_t offset, int whence)') as AsyncFn;
    const preadv2 = libc.func('int64_t preadv2(int fd, void *iov, int iovcnt, int64_t offset, int flags)');
    /** One struct iovec, reused: preadv2 runs synchronously, so nothing else can hold it. */
    const iov = Buffer.alloc(16);
    /** Run `fn` on a worker; resolve with its result and the errno it left. */
    const onWorker = (fn: AsyncFn, ...args: unknown[]) =>
      new Promise<{ result: number; errno: number }>((resolve, reject) => {
        fn.async(...args, (err: unknown, result: number | bigint) => {
          if (err) reject(err instanceof Error ? err : new Error(String(err)));
          else resolve({ result: Number(result), errno: Number(result) < 0 ? koffi.errno() : 0 });
        });
      });
    const allocate = async (mode: number, fd: number, offset: number, length: number): Promise<number> =>
      (await onWorker(fallocate, fd, mode, offset, length)).errno;
    const seek = async (fd: number, offset: number, whence: number): Promise<number> => {
      const { result, errno } = await onWorker(lseek, fd, offset, whence);
      if (result >= 0) return result;
      if (errno === ENXIO) return -1;
      throw Object.assign(new Error(`lseek failed with errno ${errno}`), { errno });
    };
    return {
      punchHole: (fd, offset, length) => allocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, fd, offset, length),
      zeroRange: (fd, offset, length) => allocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, fd, offset, length),
      seekData: (fd, offset) => seek(fd, offset, SEEK_DATA),
      seekHole: (fd, offset) => seek(fd, offset, SEEK_HOLE),
      preadv2(fd, target, position, nowait) {
        iov.writeBigUInt64LE(koffi.address(target), 0);
        iov.writeBigUInt64LE(BigInt(target.length), 8);
        const n = Number(preadv2(fd, iov, 1, position, nowait ? RWF_NOWAIT : 0));
        return n >= 0 ? n : -koffi.errno();
      },
    };
  } catch (err) {
    logger('linux-fs').warn({ err }, 'fallocate/lseek/preadv2 unavailable: file backends will not punch or report holes, and read through the thread pool');
    return undefined;
  }
}

export const linuxFs: LinuxFs | undefined = load();

/** errno values the file backend tells apart. */
export const EAGAIN = 11;
export const EOPNOTSUPP = 95;

/** An Error like Node's own fs errors (`code` = 'EIO'…) for a negated errno (-5) a native call returned. */
export function errnoError(negated: number, syscall: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(negated);
  return Object.assign(new Error(`${syscall}: ${code}`), { code, errno: negated, syscall });
}
