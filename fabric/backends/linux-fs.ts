import { createRequire } from 'node:module';
import { logger } from '../log.js';

/**
 * The Linux calls Node's fs lacks, reached through koffi (an FFI whose prebuilt binaries
 * ship inside its npm package): fallocate(2) to punch holes and zero ranges, and
 * lseek(2) SEEK_DATA/SEEK_HOLE to find them. Without them a file backend could neither
 * release space on trim nor report holes. If libc cannot be loaded (not Linux/glibc),
 * `linuxFs` is undefined and the file backend advertises neither capability.
 */

const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

export interface LinuxFs {
  /** Deallocate the range; reads return zeroes afterwards. Returns 0 or an errno. */
  punchHole(fd: number, offset: number, length: number): number;
  /** Zero the range keeping it allocated. Returns 0 or an errno. */
  zeroRange(fd: number, offset: number, length: number): number;
  /** The next offset ≥ `offset` holding data, or -1 when there is none before EOF. */
  seekData(fd: number, offset: number): number;
  /** The next offset ≥ `offset` starting a hole (EOF counts as one). */
  seekHole(fd: number, offset: number): number;
}

function load(): LinuxFs | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const libc = koffi.load('libc.so.6');
    const fallocate = libc.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)');
    const lseek = libc.func('int64_t lseek(int fd, int64_t offset, int whence)');
    const call = (mode: number, fd: number, offset: number, length: number): number =>
      fallocate(fd, mode, offset, length) === 0 ? 0 : koffi.errno();
    const seek = (fd: number, offset: number, whence: number): number => {
      const at = Number(lseek(fd, offset, whence));
      if (at >= 0) return at;
      const errno = koffi.errno();
      if (errno === ENXIO) return -1;
      throw Object.assign(new Error(`lseek failed with errno ${errno}`), { errno });
    };
    return {
      punchHole: (fd, offset, length) => call(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, fd, offset, length),
      zeroRange: (fd, offset, length) => call(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, fd, offset, length),
      seekData: (fd, offset) => seek(fd, offset, SEEK_DATA),
      seekHole: (fd, offset) => seek(fd, offset, SEEK_HOLE),
    };
  } catch (err) {
    logger('linux-fs').warn({ err }, 'fallocate/lseek unavailable: file backends will not punch or report holes');
    return undefined;
  }
}

export const linuxFs: LinuxFs | undefined = load();

/** errno values fallocate returns when the file system or device cannot do the operation. */
export const EOPNOTSUPP = 95;
