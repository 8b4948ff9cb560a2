import { createRequire } from 'node:module';

/**
 * flock(2) through koffi (the FFI the file backend already uses): Node's fs has no file
 * locks. A flock belongs to the open file description, so the kernel drops it the instant
 * the holding process dies (kill -9 included) — exactly the "arbiter released by death" the
 * single-host arbiter needs — and libuv opens files close-on-exec, so a child process
 * (arping…) never inherits it.
 */

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;
const EINTR = 4;

type FlockFn = (fd: number, operation: number) => number;

let flockFn: FlockFn | undefined;
let errnoFn: (() => number) | undefined;

function bind(): { flock: FlockFn; errno: () => number } {
  if (!flockFn || !errnoFn) {
    if (process.platform !== 'linux') throw new Error('the file arbiter needs Linux flock(2)');
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    flockFn = koffi.load('libc.so.6').func('int flock(int fd, int operation)') as FlockFn;
    errnoFn = () => koffi.errno();
  }
  return { flock: flockFn, errno: errnoFn };
}

/** Try once without blocking. True: we hold it; false: someone else does. */
function tryLock(fd: number, operation: number): boolean {
  const { flock, errno } = bind();
  for (;;) {
    if (flock(fd, operation | LOCK_NB) === 0) return true;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EWOULDBLOCK) return false;
    throw Object.assign(new Error(`flock failed with errno ${e}`), { errno: e });
  }
}

export function tryLockExclusive(fd: number): boolean {
  return tryLock(fd, LOCK_EX);
}

/** A shared lock fails while an exclusive one is held: a way to ask "is anyone holding it?". */
export function tryLockShared(fd: number): boolean {
  return tryLock(fd, LOCK_SH);
}

export function unlock(fd: number): void {
  bind().flock(fd, LOCK_UN);
}
