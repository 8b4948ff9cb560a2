import { constants as fsc } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { BlockDevice, BlockSizes, Capabilities, DeviceStatus, Extent, WriteOptions, ZeroOptions } from '../device.js';
import { DEFAULT_CAPABILITIES, totalLength } from '../device.js';
import { BlockError, toBlockError } from '../errors.js';
import { logger } from '../log.js';
import { FdIo, type FileIo } from './file-io.js';
import { KnownData } from './known-data.js';
import { EOPNOTSUPP, linuxFs } from './linux-fs.js';

export type { FileIo } from './file-io.js';

/**
 * A device over a regular file or a block device, through one shared file descriptor
 * (positioned I/O, so concurrent requests need no locking and a flush on any connection
 * covers all of them: multi-conn safe).
 *
 * Holes: Node's fs has neither fallocate(2) nor lseek(SEEK_DATA/SEEK_HOLE); linux-fs.ts
 * reaches them through koffi. With them, trim and writeZeroes punch holes (zeroes that keep
 * allocation use FALLOC_FL_ZERO_RANGE), fast zeroing is real, and blockStatus reports the
 * file's holes exactly (remembering what it learned, see known-data.ts). A mode the file
 * system refuses (EOPNOTSUPP) is remembered: without punching, trim does nothing (it is
 * advisory) and FAST_ZERO fails; without ZERO_RANGE, zeroes that must stay allocated are
 * written for real. Without koffi none of this is advertised.
 *
 * Reads and writes that cannot wait for a disk are done at once, the rest through the
 * thread pool (see file-io.ts): a request that needs the disk never holds up the others.
 */

export interface FileBackendOptions {
  readonly name: string;
  readonly path: string;
  /**
   * Device size in bytes. A regular file shorter than this is extended (sparse); a missing
   * file is created at this size when `create` is set. Without it, the file's or block device's own size is used.
   */
  readonly size?: number;
  readonly readOnly?: boolean;
  /** Pool writes in small batches (one pool job per batch, through libaio); false: one job per write. Default true. */
  readonly batchWrites?: boolean;
  /** Create the file if it does not exist (needs `size`). Default false: a missing file is an error, never a new empty disk. */
  readonly create?: boolean;
}

/** What was learned about the file when it was opened. */
export interface FileGeometry {
  readonly path: string;
  readonly size: number;
  readonly blockDevice: boolean;
  readonly readOnly: boolean;
  readonly blockSizes: BlockSizes;
  readonly rotational: boolean;
}

/** Largest single read or write; also the NBD maximum block size advertised. */
const MAX_REQUEST = 32 * 1024 * 1024;
/** writeZeroes reuses one zero page this big, referenced many times in a writev. */
const ZERO_BUFFER = Buffer.alloc(1024 * 1024);
/** Bytes of zeroes per writev call (slices of ZERO_BUFFER); well under IOV_MAX slices. */
const ZERO_BATCH = 64 * ZERO_BUFFER.length;
/** Reads used to warm the page cache for `cache` go through a scratch buffer this big. */
const CACHE_SCRATCH = 1024 * 1024;

const log = logger('file-backend');
const DONE: Promise<void> = Promise.resolve();

export class FileBackend implements BlockDevice {
  readonly name: string;
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
  private closed = false;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private scratch: Buffer | undefined;
  /** fallocate modes the file system answered EOPNOTSUPP to (tmpfs punches holes but cannot ZERO_RANGE). */
  private readonly refused = new Set<'punch' | 'zero'>();
  /** Counters operators and tests read to see FUA and flush reach stable storage, and which path I/O took. */
  private readonly counters = { datasyncs: 0, shortReads: 0, shortWrites: 0, readsNow: 0, writesNow: 0, blockStatusWalks: 0 };
  /** What block status has learned to be data. */
  private readonly known = new KnownData();

  /** Open (and if asked create or extend) the file, then wrap it. */
  static async open(options: FileBackendOptions): Promise<FileBackend> {
    const { handle, geometry } = await openFile(options);
    return new FileBackend(options.name, handle, geometry);
  }

  constructor(
    name: string,
    private readonly io: FileIo,
    private readonly geometry: FileGeometry,
  ) {
    this.name = name;
    this.size = geometry.size;
    this.blockSizes = geometry.blockSizes;
    const canPunch = linuxFs !== undefined && io.fd !== undefined && !geometry.readOnly;
    this.capabilities = {
      ...DEFAULT_CAPABILITIES,
      readOnly: geometry.readOnly,
      trim: canPunch,
      fastZero: canPunch,
      // SEEK_DATA/SEEK_HOLE mean nothing on a block device.
      blockStatus: linuxFs !== undefined && io.fd !== undefined && !geometry.blockDevice,
      rotational: geometry.rotational,
    };
  }

  read(offset: number, target: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(this.shutdownError());
    let done = 0;
    if (this.io.readNow) {
      try {
        // Whatever the page cache holds comes back now; only the rest waits on the pool.
        done = Math.max(0, this.io.readNow(target, 0, target.length, offset));
      } catch (err) {
        return Promise.reject(toBlockError(err, `${this.name}: read ${target.length}@${offset}`));
      }
      if (done === target.length) {
        this.counters.readsNow++;
        return DONE;
      }
    }
    return this.run(`read ${target.length}@${offset}`, async () => {
      while (done < target.length) {
        const { bytesRead } = await this.io.read(target, done, target.length - done, offset + done);
        if (bytesRead === 0) {
          // A block device ends where it says; a regular file may be shorter than the
          // device (extended sparsely by someone else, or read-only and never extended).
          if (this.geometry.blockDevice) throw new BlockError('EIO', `unexpected end of ${this.geometry.path} at ${offset + done}`);
          target.fill(0, done);
          return;
        }
        if (bytesRead < target.length - done) this.counters.shortReads++;
        done += bytesRead;
      }
    });
  }

  write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    if (this.closed) return Promise.reject(this.shutdownError());
    if (this.capabilities.readOnly) return Promise.reject(this.readOnlyError());
    let slices = data as Buffer[];
    let position = offset;
    if (this.io.writeNow && !options?.fua) {
      let written: number;
      try {
        written = this.io.writeNow(slices, offset);
      } catch (err) {
        return Promise.reject(toBlockError(err, `${this.name}: write ${totalLength(data)}@${offset}`));
      }
      if (written >= 0) {
        const want = totalLength(data);
        if (written === want) {
          this.counters.writesNow++;
          return DONE;
        }
        position += written;
        slices = skipBytes(slices, written);
      }
    }
    return this.run(`write ${totalLength(data)}@${offset}`, async () => {
      await this.writeAll(position, slices);
      if (options?.fua) await this.datasync();
    });
  }

  flush(): Promise<void> {
    return this.run('flush', () => this.datasync());
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.run(`trim ${length}@${offset}`, async () => {
      this.checkWritable();
      // Trim is advisory: where holes cannot be punched, leaving the data is correct.
      if ((await this.fallocate('punch', offset, length)) && options?.fua) await this.datasync();
    });
  }

  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.run(`write zeroes ${length}@${offset}`, async () => {
      this.checkWritable();
      const done = await this.fallocate(options?.noHole ? 'zero' : 'punch', offset, length);
      if (!done) {
        if (options?.fastOnly) throw new BlockError('ENOTSUP', `${this.name}: the file system cannot zero ${this.geometry.path} fast`);
        await this.writeRealZeroes(offset, length);
      }
      if (options?.fua) await this.datasync();
    });
  }

  /**
   * Holes and data as the file system knows them (SEEK_HOLE/SEEK_DATA on a worker thread),
   * answered without asking where the file is allocated in full or the range is known data.
   */
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.checkOpen();
    const fd = this.io.fd;
    const end = offset + length;
    if (!this.capabilities.blockStatus || fd === undefined || this.known.covers(offset, end)) return [{ length, hole: false, zero: false }];
    if (this.io instanceof FdIo) {
      const stats = await this.io.stat();
      this.known.noteAllocation(stats.blocks * 512, stats.size, this.size);
      if (this.known.allData) return [{ length, hole: false, zero: false }];
    }
    this.counters.blockStatusWalks++;
    const extents: Extent[] = [];
    try {
      for (let at = offset; at < end; ) {
        let dataAt = await linuxFs!.seekData(fd, at);
        if (dataAt === -1 || dataAt > end) dataAt = end;
        if (dataAt > at) {
          extents.push({ length: dataAt - at, hole: true, zero: true });
          at = dataAt;
          continue;
        }
        const holeAt = await linuxFs!.seekHole(fd, at);
        // The walk went past the range anyway: remember all of it.
        this.known.add(at, holeAt);
        const stop = Math.min(holeAt, end);
        extents.push({ length: stop - at, hole: false, zero: false });
        at = stop;
      }
    } catch (err) {
      throw toBlockError(err, `${this.name}: block status ${length}@${offset}`);
    }
    return extents;
  }

  /** Read the range through a scratch buffer so it is in the page cache when asked for. */
  cache(offset: number, length: number): Promise<void> {
    return this.run(`cache ${length}@${offset}`, async () => {
      const end = Math.min(offset + length, this.size);
      const scratch = (this.scratch ??= Buffer.allocUnsafe(CACHE_SCRATCH));
      for (let at = offset; at < end; ) {
        const { bytesRead } = await this.io.read(scratch, 0, Math.min(scratch.length, end - at), at);
        if (bytesRead === 0) return;
        at += bytesRead;
      }
    });
  }

  status(): DeviceStatus {
    return {
      state: this.closed ? 'failed' : 'optimal',
      detail: {
        path: this.geometry.path,
        blockDevice: this.geometry.blockDevice,
        inFlight: this.inFlight,
        ioPath: this.io instanceof FdIo ? this.io.path : 'pool',
        ...(this.io instanceof FdIo && { writeBatches: this.io.writeBatches }),
        ...this.counters,
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    await this.io.close();
    log.info({ device: this.name, path: this.geometry.path }, 'closed');
  }

  /**
   * pwritev the slices as they are; after a short write, continue from the first unwritten
   * byte with views (subarray) of the remaining slices — never a concatenated copy.
   */
  private async writeAll(offset: number, data: readonly Buffer[]): Promise<void> {
    let slices = data.filter((b) => b.length > 0);
    let position = offset;
    while (slices.length > 0) {
      const want = totalLength(slices);
      const { bytesWritten } = await this.io.writev(slices, position);
      if (bytesWritten === want) return;
      if (bytesWritten <= 0) throw new BlockError('EIO', `write to ${this.geometry.path} at ${position} made no progress`);
      this.counters.shortWrites++;
      position += bytesWritten;
      slices = skipBytes(slices, bytesWritten);
    }
  }

  /** fallocate through linux-fs; false when holes cannot be used here (then the caller falls back). */
  private async fallocate(kind: 'punch' | 'zero', offset: number, length: number): Promise<boolean> {
    const fd = this.io.fd;
    if (!linuxFs || fd === undefined || this.refused.has(kind)) return false;
    // Forget before the hole exists: a block-status walk meanwhile may call it data (harmless), never the reverse.
    if (kind === 'punch') this.known.forget(offset, offset + length);
    const errno = kind === 'punch' ? await linuxFs.punchHole(fd, offset, length) : await linuxFs.zeroRange(fd, offset, length);
    if (errno === 0) return true;
    if (errno === EOPNOTSUPP) {
      this.refused.add(kind);
      log.info({ device: this.name, path: this.geometry.path, mode: kind }, 'file system refuses this fallocate mode: falling back');
      return false;
    }
    throw new BlockError(errno === 28 ? 'ENOSPC' : 'EIO', `${this.name}: fallocate ${kind} ${length}@${offset} failed with errno ${errno}`);
  }

  /** Zeroes by writing: one shared zero buffer referenced many times per writev. */
  private async writeRealZeroes(offset: number, length: number): Promise<void> {
    for (let done = 0; done < length; ) {
      const batch = Math.min(ZERO_BATCH, length - done);
      const slices: Buffer[] = [];
      for (let n = 0; n < batch; n += ZERO_BUFFER.length) slices.push(ZERO_BUFFER.subarray(0, Math.min(ZERO_BUFFER.length, batch - n)));
      await this.writeAll(offset + done, slices);
      done += batch;
    }
  }

  private async datasync(): Promise<void> {
    await this.io.datasync();
    this.counters.datasyncs++;
  }

  /** Track in-flight requests (close waits for them) and map fs errors to BlockErrors. */
  private async run(what: string, body: () => Promise<void>): Promise<void> {
    this.checkOpen();
    this.inFlight++;
    try {
      await body();
    } catch (err) {
      throw toBlockError(err, `${this.name}: ${what}`);
    } finally {
      if (--this.inFlight === 0 && this.drained) this.drained();
    }
  }

  private checkWritable(): void {
    if (this.capabilities.readOnly) throw this.readOnlyError();
  }

  private checkOpen(): void {
    if (this.closed) throw this.shutdownError();
  }

  private readOnlyError(): BlockError {
    return new BlockError('EPERM', `device ${this.name} is read-only`);
  }

  private shutdownError(): BlockError {
    return new BlockError('ESHUTDOWN', `device ${this.name} is closed`);
  }
}

/** The slices after the first `n` bytes, as views of the originals. */
export function skipBytes(slices: readonly Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < slices.length && n >= slices[i]!.length) n -= slices[i++]!.length;
  const rest = slices.slice(i);
  if (rest.length > 0 && n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

async function openFile(options: FileBackendOptions): Promise<{ handle: FdIo; geometry: FileGeometry }> {
  const context = `${options.name}: open ${options.path}`;
  const readOnly = options.readOnly ?? false;
  const create = options.create ?? false;
  if (options.size !== undefined && (!Number.isSafeInteger(options.size) || options.size <= 0)) {
    throw new BlockError('EINVAL', `${context}: bad size ${options.size}`);
  }
  let flags = readOnly ? fsc.O_RDONLY : fsc.O_RDWR;
  if (create && !readOnly) flags |= fsc.O_CREAT;
  let handle: FdIo;
  try {
    handle = await FdIo.open(options.path, flags, 0o644, { batchWrites: options.batchWrites });
  } catch (err) {
    throw toBlockError(err, context);
  }
  try {
    const stat = await handle.stat();
    const blockDevice = stat.isBlockDevice();
    if (!blockDevice && !stat.isFile()) throw new BlockError('EINVAL', `${context}: neither a regular file nor a block device`);
    if (blockDevice) {
      const info = await blockDeviceInfo(stat.rdev);
      if (options.size !== undefined && options.size > info.size) {
        throw new BlockError('EINVAL', `${context}: size ${options.size} exceeds the block device's ${info.size} bytes`);
      }
      const geometry = { path: options.path, blockDevice, readOnly, ...info, size: options.size ?? info.size };
      log.info({ device: options.name, path: options.path, size: geometry.size, readOnly }, 'opened block device');
      return { handle, geometry };
    }
    let size = stat.size;
    if (options.size !== undefined) {
      if (options.size > size && !readOnly) await handle.truncate(options.size);
      size = options.size;
    }
    if (size === 0) throw new BlockError('EINVAL', `${context}: the file is empty; give a size to create or extend it`);
    const blockSizes = { minimum: 1, preferred: 4096, maximum: MAX_REQUEST };
    log.info({ device: options.name, path: options.path, size, readOnly }, 'opened file');
    return { handle, geometry: { path: options.path, size, blockDevice, readOnly, blockSizes, rotational: false } };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw toBlockError(err, context);
  }
}

/**
 * fstat reports size 0 for a block device; the kernel publishes its size (in 512-byte
 * sectors, whatever the logical block size), block sizes and rotational flag in sysfs,
 * found from the device number. Partitions have no queue/ of their own: use the parent's.
 */
async function blockDeviceInfo(rdev: number): Promise<{ size: number; blockSizes: BlockSizes; rotational: boolean }> {
  // Linux's dev_t encoding (glibc gnu_dev_major/minor); rdev can exceed 32 bits, so no bitwise ops on it.
  const high = Math.floor(rdev / 2 ** 32);
  const low = rdev >>> 0;
  const major = ((low >>> 8) & 0xfff) | ((high & ~0xfff) >>> 0);
  const minor = ((low & 0xff) | (((low >>> 12) | ((high & 0xfff) << 20)) & ~0xff)) >>> 0;
  const dir = `/sys/dev/block/${major}:${minor}`;
  const readNumber = async (file: string) => Number((await readFile(file, 'utf8')).trim());
  const queueValue = async (name: string) => {
    try {
      return await readNumber(`${dir}/queue/${name}`);
    } catch {
      return readNumber(`${dir}/../queue/${name}`);
    }
  };
  const sectors = await readNumber(`${dir}/size`);
  const logical = await queueValue('logical_block_size');
  const physical = await queueValue('physical_block_size');
  const rotational = (await queueValue('rotational')) === 1;
  return {
    size: sectors * 512,
    blockSizes: { minimum: logical, preferred: Math.max(physical, 4096), maximum: MAX_REQUEST },
    rotational,
  };
}
