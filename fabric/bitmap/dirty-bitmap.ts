import { open, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BlockError, toBlockError } from '../errors.js';
import { checkBitmapGeometry, regionCount } from './limits.js';
import { SerialFlush } from './serial-flush.js';
import { syncDirectory } from './durable-file.js';
import { FILES, type MetadataStore } from './metadata-store.js';

/**
 * One bit per region of a device: set while the region may differ from its in-sync copy.
 * The file is a 32-byte header then the bits. Only clean→dirty transitions are written
 * before a write is acknowledged (the steady state, writing into already-dirty regions or
 * with no replica away, touches no disk); clearing is persisted lazily, since a stale dirty
 * bit only costs an extra copy.
 */
const MAGIC = 0x4d424742; // "BGBM" little-endian
const VERSION = 1;
const HEADER = 32;

export interface BitmapGeometry {
  readonly deviceSize: number;
  readonly regionSize: number;
}

export class DirtyBitmap {
  readonly regionCount: number;
  readonly regionSize: number;
  readonly deviceSize: number;
  private readonly bits: Buffer;
  private dirty = 0;
  /** Byte range of `bits` changed since the last write to the file. */
  private changedFrom = Infinity;
  private changedTo = 0;
  private file: FileHandle | undefined;
  private readonly flusher = new SerialFlush(() => this.writeChanges());
  private removed = false;
  /** The save of set bits not yet known to be on disk; cleared once one succeeds. */
  private saving: Promise<void> | undefined;
  /** A save of set bits failed: the next mark tries again, whether or not it sets a bit. */
  private saveFailed = false;

  private constructor(
    readonly path: string,
    geometry: BitmapGeometry,
    /** Where the bitmap is kept: files (partial writes in place) or another store (whole writes). */
    private readonly store: MetadataStore = FILES,
  ) {
    if (!Number.isSafeInteger(geometry.regionSize) || geometry.regionSize <= 0) throw new BlockError('EINVAL', `bad region size ${geometry.regionSize}`);
    this.regionSize = geometry.regionSize;
    this.deviceSize = geometry.deviceSize;
    checkBitmapGeometry(geometry.deviceSize, geometry.regionSize);
    this.regionCount = regionCount(geometry.deviceSize, geometry.regionSize);
    this.bits = Buffer.alloc(Math.ceil(this.regionCount / 8));
  }

  /** A new bitmap, all clean or all dirty, held in memory until the first persist. */
  static create(path: string, geometry: BitmapGeometry, fill: 'clean' | 'dirty', store: MetadataStore = FILES): DirtyBitmap {
    const bitmap = new DirtyBitmap(path, geometry, store);
    if (fill === 'dirty') bitmap.setAll();
    bitmap.changedFrom = 0;
    bitmap.changedTo = bitmap.bits.length;
    return bitmap;
  }

  /**
   * The bitmap stored at `path`. A missing, damaged or mismatched file yields an all-dirty
   * bitmap: not knowing what changed means copying everything. `problem` says why a file
   * that should be there could not be used (unreadable, damaged): safe, but never silent.
   */
  static async load(path: string, geometry: BitmapGeometry, store: MetadataStore = FILES): Promise<{ bitmap: DirtyBitmap; found: boolean; problem?: string }> {
    const bitmap = new DirtyBitmap(path, geometry, store);
    let content: Buffer | undefined;
    let problem: string | undefined;
    try {
      content = await store.read(path);
    } catch (err) {
      problem = `cannot read ${path} from ${store.where}: ${(err as Error).message}`;
    }
    const header = content !== undefined && content.length >= HEADER && content.readUInt32LE(0) === MAGIC && content.readUInt32LE(4) === VERSION;
    // Another geometry is a configuration change (region size, device size), not damage.
    const sameGeometry = header && content!.readDoubleLE(8) === geometry.deviceSize && content!.readDoubleLE(16) === geometry.regionSize;
    const ok = sameGeometry && content!.length === HEADER + bitmap.bits.length;
    if (ok) {
      content!.copy(bitmap.bits, 0, HEADER);
      bitmap.dirty = countBits(bitmap.bits, bitmap.regionCount);
    } else {
      if (content !== undefined && (!header || sameGeometry)) problem = `${path} is damaged (${content.length} bytes, not a bitmap of this geometry)`;
      bitmap.setAll();
    }
    bitmap.changedFrom = 0;
    bitmap.changedTo = bitmap.bits.length;
    return { bitmap, found: ok, ...(problem !== undefined && { problem }) };
  }

  get dirtyRegions(): number {
    return this.dirty;
  }

  get dirtyBytes(): number {
    if (this.dirty === 0) return 0;
    const lastPartial = this.isDirty(this.regionCount - 1) ? this.regionCount * this.regionSize - this.deviceSize : 0;
    return this.dirty * this.regionSize - lastPartial;
  }

  isDirty(region: number): boolean {
    return (this.bits[region >>> 3]! & (1 << (region & 7))) !== 0;
  }

  /**
   * Mark the regions under [offset, offset+length) dirty. Returns a promise, resolved once
   * the bits are on stable storage, unless they already are (undefined: the steady state).
   * A bit set by an earlier mark whose save is still under way, or failed, is not yet on
   * disk: a write into its region must wait for (or retry) that save too.
   */
  mark(offset: number, length: number): Promise<void> | undefined {
    if (length <= 0) return undefined;
    const first = Math.floor(offset / this.regionSize);
    const last = Math.min(Math.floor((offset + length - 1) / this.regionSize), this.regionCount - 1);
    let flipped = false;
    for (let r = first; r <= last; r++) {
      const byte = r >>> 3;
      const mask = 1 << (r & 7);
      if ((this.bits[byte]! & mask) === 0) {
        this.bits[byte]! |= mask;
        this.dirty++;
        this.noteChange(byte);
        flipped = true;
      }
    }
    return this.settle(flipped);
  }

  /** Mark whole regions by index; like mark(), a promise unless the bits are already saved. */
  markRegions(regions: Iterable<number>): Promise<void> | undefined {
    let flipped = false;
    for (const r of regions) {
      if (r >= this.regionCount || this.isDirty(r)) continue;
      this.bits[r >>> 3]! |= 1 << (r & 7);
      this.dirty++;
      this.noteChange(r >>> 3);
      flipped = true;
    }
    return this.settle(flipped);
  }

  private settle(flipped: boolean): Promise<void> | undefined {
    if (!flipped && !this.saveFailed) return this.saving;
    this.saveFailed = false;
    const save = this.persist();
    this.saving = save;
    save.then(
      () => {
        if (this.saving === save) this.saving = undefined;
      },
      () => {
        if (this.saving === save) {
          this.saving = undefined;
          this.saveFailed = true;
        }
      },
    );
    return save;
  }

  /** Clear one region's bit in memory; written by the next persist. */
  clear(region: number): void {
    const byte = region >>> 3;
    const mask = 1 << (region & 7);
    if ((this.bits[byte]! & mask) !== 0) {
      this.bits[byte]! &= ~mask;
      this.dirty--;
      this.noteChange(byte);
    }
  }

  /** First dirty region at or after `from`, or -1. Skips clean bytes eight regions at a time. */
  nextDirty(from: number): number {
    for (let r = Math.max(0, from); r < this.regionCount; ) {
      if ((r & 7) === 0 && this.bits[r >>> 3] === 0) {
        r += 8;
        continue;
      }
      if (this.isDirty(r)) return r;
      r++;
    }
    return -1;
  }

  /** Write pending changes to stable storage. */
  persist(): Promise<void> {
    if (this.removed) return Promise.resolve();
    return this.flusher.request();
  }

  async close(): Promise<void> {
    await this.flusher.idle();
    const file = this.file;
    this.file = undefined;
    await file?.close();
  }

  /** Delete the file: the replica is in sync again. */
  async remove(): Promise<void> {
    this.removed = true;
    await this.close();
    await this.store.remove(this.path);
  }

  private header(): Buffer {
    const header = Buffer.alloc(HEADER);
    header.writeUInt32LE(MAGIC, 0);
    header.writeUInt32LE(VERSION, 4);
    header.writeDoubleLE(this.deviceSize, 8);
    header.writeDoubleLE(this.regionSize, 16);
    return header;
  }

  private setAll(): void {
    this.bits.fill(0xff);
    const spare = this.bits.length * 8 - this.regionCount;
    if (spare > 0) this.bits[this.bits.length - 1] = 0xff >>> spare;
    this.dirty = this.regionCount;
  }

  private noteChange(byte: number): void {
    if (byte < this.changedFrom) this.changedFrom = byte;
    if (byte + 1 > this.changedTo) this.changedTo = byte + 1;
  }

  private async writeChanges(): Promise<void> {
    if (this.removed) return;
    const from = this.changedFrom;
    const to = this.changedTo;
    if (from >= to && this.file) return;
    this.changedFrom = Infinity;
    this.changedTo = 0;
    try {
      if (this.store !== FILES) {
        // A store without partial writes: the whole bitmap each time (it is small: one bit per region).
        await this.store.write(this.path, Buffer.concat([this.header(), this.bits]));
        return;
      }
      if (!this.file) {
        // First write: the whole file, then make its directory entry durable.
        await mkdir(dirname(this.path), { recursive: true });
        const file = await open(this.path, 'w+');
        await file.writev([this.header(), this.bits], 0);
        await file.sync();
        await syncDirectory(dirname(this.path));
        this.file = file;
        return;
      }
      await this.file.write(this.bits, from, to - from, HEADER + from);
      await this.file.datasync();
    } catch (err) {
      this.noteChange(from === Infinity ? 0 : from);
      this.noteChange(Math.max(to, 1) - 1);
      throw toBlockError(err, `persisting dirty-region bitmap ${this.path}`);
    }
  }
}

function countBits(bits: Buffer, regions: number): number {
  let n = 0;
  for (let r = 0; r < regions; r++) if ((bits[r >>> 3]! & (1 << (r & 7))) !== 0) n++;
  return n;
}
