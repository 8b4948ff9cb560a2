import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { logger } from '../fabric/log.js';

/**
 * One member per data directory. Two members on the same directory would open the same
 * backing files read-write and keep separate reservation states, so the second is refused.
 * The lock is flock(2) on DIR/member.lock: the kernel drops it when the holder exits, however
 * it exits (kill -9 included), so a stale lock never needs cleaning. The holder writes its
 * PID into the file for the refusal message to name.
 */

export const LOCK_FILE = 'member.lock';

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | undefined,
  ) {
    super(
      `data directory ${dataDir} is in use by another blockgate member${holderPid === undefined ? '' : ` (PID ${holderPid})`}: ` +
        'one data directory serves one member; stop that one or give --data-dir another directory',
    );
  }
}

type Flock = (fd: number, operation: number) => number;

function loadFlock(): { flock: Flock; errno: () => number } | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const flock = koffi.load('libc.so.6').func('int flock(int fd, int operation)') as Flock;
    return { flock, errno: () => koffi.errno() };
  } catch (err) {
    logger('data-dir-lock').warn({ err }, 'flock(2) unavailable: the data directory is not locked');
    return undefined;
  }
}

const libc = loadFlock();

export class DataDirLock {
  private constructor(
    readonly path: string,
    private fd: number | undefined,
  ) {}

  /** Take the directory's lock or throw DataDirLockedError naming the holder. */
  static acquire(dataDir: string): DataDirLock {
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, LOCK_FILE);
    const fd = openSync(path, 'a+', 0o644);
    if (!libc) return new DataDirLock(path, fd);
    if (libc.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
      const errno = libc.errno();
      closeSync(fd);
      if (errno === EWOULDBLOCK) throw new DataDirLockedError(dataDir, holderPid(path));
      throw new Error(`cannot lock ${path}: flock failed with errno ${errno}`);
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`);
    return new DataDirLock(path, fd);
  }

  /** Release the lock (the kernel also does when the process exits). Safe to call twice. */
  release(): void {
    if (this.fd === undefined) return;
    // Emptied first: a PID left behind would name a process that no longer holds the lock.
    ftruncateSync(this.fd, 0);
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The PID the holder wrote; undefined in the instant between its lock and its write. */
function holderPid(path: string): number | undefined {
  const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}
