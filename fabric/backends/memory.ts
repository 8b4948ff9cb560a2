import type { BlockDevice, BlockSizes, Capabilities, DeviceStatus, Extent, ZeroOptions } from '../device.js';
import { DEFAULT_CAPABILITIES } from '../device.js';
import { BlockError } from '../errors.js';
import { countStored } from '../copies.js';

export interface MemoryBackendOptions {
  readonly name: string;
  readonly size: number;
  /** Allocation unit; a 1 TiB device costs only the chunks that were written. */
  readonly chunkSize?: number;
  readonly readOnly?: boolean;
  readonly blockSizes?: Partial<BlockSizes>;
}

/**
 * One 4 KiB page per chunk: random 4 KiB writes cost what they wrote, not a bigger chunk
 * each (64 KiB chunks made 1 GiB of such writes over 1 TiB cost 16 GiB of RAM).
 */
const DEFAULT_CHUNK = 4096;
/**
 * Chunks live in slabs of this size, so a chunk costs its bytes plus an entry in a map of
 * small integers — not a Buffer object and an allocation of its own. Slab memory the
 * kernel has not handed out yet (never written) is not resident.
 */
const SLAB_BYTES = 1024 * 1024;
/** Chunk indexes per map: a Map holds at most 2^24 entries. */
const CHUNKS_PER_MAP = 2 ** 22;
/**
 * Chunks per leaf of the dense table: a leaf covers 256 chunks (1 MiB of 4 KiB chunks) and
 * costs 1 KiB, so it is made only once PROMOTE_AT of its chunks hold data (64 KiB with
 * 4 KiB chunks: under 2% overhead); sparser regions stay in the maps, one entry per chunk.
 */
const LEAF_CHUNKS = 256;
const PROMOTE_AT = 16;
/** Where a leaf keeps how many of its chunks hold data (after the LEAF_CHUNKS slots). */
const LEAF_COUNT = LEAF_CHUNKS;

/**
 * Where chunks are: chunk index → slot, a slot being a chunk-sized place in a slab.
 * Consecutive writes get consecutive slots, so reading them back is one copy per slab.
 *
 * Two levels: a region where many chunks hold data has a leaf, an Int32Array of its
 * chunks' slots, and the last leaf looked at is remembered, so a 1 MiB read costs one Map
 * look-up rather than 256 — a look-up per chunk in a Map of every chunk missed the CPU
 * cache each time and took 16% of a 1 MiB read's CPU. Chunks of sparse regions (random
 * writes over a huge device) have an entry each in `maps`, which costs less than a leaf.
 */
class ChunkStore {
  private readonly maps: (Map<number, number> | undefined)[] = [];
  /** Leaf index → its chunks' slots (-1: no data) and, at LEAF_COUNT, how many hold data. */
  private readonly leaves = new Map<number, Int32Array>();
  /** Leaf index → how many of its chunks are in `maps`, for leaves not made yet. */
  private readonly sparseCounts = new Map<number, number>();
  /** The last leaf index `slot` looked up and its leaf (undefined: the leaf is sparse). */
  private lastLeafIndex = -1;
  private lastLeaf: Int32Array | undefined;
  private readonly slabs: Buffer[] = [];
  private readonly free: number[] = [];
  private nextSlot = 0;
  private readonly perSlab: number;
  count = 0;

  constructor(readonly chunkSize: number) {
    this.perSlab = Math.max(1, Math.floor(SLAB_BYTES / chunkSize));
  }

  /** Regions with a leaf (the dense table) rather than an entry per chunk. */
  get leafCount(): number {
    return this.leaves.size;
  }

  /** The chunk's slot, or -1 when it holds no data. */
  slot(index: number): number {
    const leafIndex = Math.floor(index / LEAF_CHUNKS);
    if (leafIndex !== this.lastLeafIndex) {
      this.lastLeafIndex = leafIndex;
      this.lastLeaf = this.leaves.get(leafIndex);
    }
    const leaf = this.lastLeaf;
    if (leaf !== undefined) return leaf[index - leafIndex * LEAF_CHUNKS]!;
    return this.maps[Math.floor(index / CHUNKS_PER_MAP)]?.get(index) ?? -1;
  }

  /** The slab holding `slot` and the slot's offset in it. */
  slab(slot: number): Buffer {
    return this.slabs[Math.floor(slot / this.perSlab)]!;
  }

  within(slot: number): number {
    return (slot % this.perSlab) * this.chunkSize;
  }

  /** Whether `next` follows `slot` in the same slab (a copy may span both). */
  adjacent(slot: number, next: number): boolean {
    return next === slot + 1 && next % this.perSlab !== 0;
  }

  /** Give the chunk a slot; its contents are whatever the slot held (callers fill it). */
  allocate(index: number): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.nextSlot++;
      if (Math.floor(slot / this.perSlab) === this.slabs.length) this.slabs.push(Buffer.allocUnsafeSlow(this.perSlab * this.chunkSize));
    }
    this.count++;
    const leafIndex = Math.floor(index / LEAF_CHUNKS);
    const leaf = this.leaves.get(leafIndex);
    if (leaf !== undefined) {
      leaf[index - leafIndex * LEAF_CHUNKS] = slot;
      leaf[LEAF_COUNT]!++;
      return slot;
    }
    const m = Math.floor(index / CHUNKS_PER_MAP);
    (this.maps[m] ??= new Map()).set(index, slot);
    const n = (this.sparseCounts.get(leafIndex) ?? 0) + 1;
    if (n < PROMOTE_AT) this.sparseCounts.set(leafIndex, n);
    else this.promote(leafIndex, n);
    return slot;
  }

  release(index: number, slot: number): void {
    this.free.push(slot);
    this.count--;
    const leafIndex = Math.floor(index / LEAF_CHUNKS);
    const leaf = this.leaves.get(leafIndex);
    if (leaf !== undefined) {
      leaf[index - leafIndex * LEAF_CHUNKS] = -1;
      if (--leaf[LEAF_COUNT]! === 0) this.forgetLeaf(leafIndex);
      return;
    }
    this.maps[Math.floor(index / CHUNKS_PER_MAP)]!.delete(index);
    const n = this.sparseCounts.get(leafIndex)! - 1;
    if (n > 0) this.sparseCounts.set(leafIndex, n);
    else this.sparseCounts.delete(leafIndex);
  }

  clear(): void {
    this.maps.length = 0;
    this.leaves.clear();
    this.sparseCounts.clear();
    this.lastLeafIndex = -1;
    this.lastLeaf = undefined;
    this.slabs.length = 0;
    this.free.length = 0;
    this.nextSlot = 0;
    this.count = 0;
  }

  /** Move a leaf's chunks out of the maps into a leaf of their own. */
  private promote(leafIndex: number, count: number): void {
    const leaf = new Int32Array(LEAF_CHUNKS + 1).fill(-1);
    const first = leafIndex * LEAF_CHUNKS;
    // A leaf never straddles two maps: CHUNKS_PER_MAP is a multiple of LEAF_CHUNKS.
    const map = this.maps[Math.floor(first / CHUNKS_PER_MAP)]!;
    for (let i = 0; i < LEAF_CHUNKS; i++) {
      const slot = map.get(first + i);
      if (slot === undefined) continue;
      leaf[i] = slot;
      map.delete(first + i);
    }
    leaf[LEAF_COUNT] = count;
    this.sparseCounts.delete(leafIndex);
    this.leaves.set(leafIndex, leaf);
    if (leafIndex === this.lastLeafIndex) this.lastLeaf = leaf;
  }

  /** An emptied leaf goes; its region starts sparse again. */
  private forgetLeaf(leafIndex: number): void {
    this.leaves.delete(leafIndex);
    if (leafIndex === this.lastLeafIndex) this.lastLeaf = undefined;
  }
}

/** Most chunks one blockStatus call looks at; it may stop early, and clients ask again. */
const MAX_STATUS_CHUNKS = 65536;

/** A sparse RAM disk: chunks appear on first write and vanish on trim or zeroing. */
export class MemoryBackend implements BlockDevice {
  readonly name: string;
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
  private readonly chunkSize: number;
  private readonly store: ChunkStore;
  private closed = false;

  constructor(options: MemoryBackendOptions) {
    this.name = options.name;
    this.size = options.size;
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
    if (!Number.isSafeInteger(this.size) || this.size < 0) throw new BlockError('EINVAL', `bad size ${this.size}`);
    // isAllZero reads chunks 8 bytes at a time, hence the lower bound.
    if (!Number.isSafeInteger(this.chunkSize) || this.chunkSize < 8 || (this.chunkSize & (this.chunkSize - 1)) !== 0) {
      throw new BlockError('EINVAL', `chunk size ${this.chunkSize} must be a power of two of at least 8`);
    }
    this.store = new ChunkStore(this.chunkSize);
    this.blockSizes = { minimum: 1, preferred: 4096, maximum: 32 * 1024 * 1024, ...options.blockSizes };
    this.capabilities = { ...DEFAULT_CAPABILITIES, readOnly: options.readOnly ?? false };
  }

  /** Bytes of RAM holding data; what the device really costs. */
  get allocatedBytes(): number {
    return this.store.count * this.chunkSize;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    this.checkOpen();
    this.runs(
      offset,
      target.length,
      false,
      (slab, start, pos, length) => {
        slab.copy(target, pos, start, start + length);
        countStored(length);
      },
      (pos, length) => target.fill(0, pos, pos + length),
    );
  }

  async write(offset: number, data: readonly Buffer[]): Promise<void> {
    this.checkOpen();
    let at = offset;
    for (const piece of data) {
      this.runs(at, piece.length, true, (slab, start, pos, length) => {
        piece.copy(slab, start, pos, pos + length);
        countStored(length);
      });
      at += piece.length;
    }
  }

  async flush(): Promise<void> {
    this.checkOpen();
  }

  async trim(offset: number, length: number): Promise<void> {
    this.zeroRange(offset, length, false);
  }

  async writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    this.zeroRange(offset, length, options?.noHole ?? false);
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.checkOpen();
    const extents: Extent[] = [];
    const cs = this.chunkSize;
    let pos = 0;
    // The run being measured: pushed when the state changes (one object per extent).
    let runHole = false;
    let runLength = 0;
    for (let visited = 0; pos < length && visited < MAX_STATUS_CHUNKS; visited++) {
      const at = offset + pos;
      const index = Math.floor(at / cs);
      const n = Math.min(cs - (at - index * cs), length - pos);
      const hole = this.store.slot(index) < 0;
      if (runLength > 0 && hole !== runHole) {
        extents.push({ length: runLength, hole: runHole, zero: runHole });
        runLength = 0;
      }
      runHole = hole;
      runLength += n;
      pos += n;
    }
    if (runLength > 0) extents.push({ length: runLength, hole: runHole, zero: runHole });
    return extents;
  }

  async cache(): Promise<void> {
    this.checkOpen();
  }

  status(): DeviceStatus {
    return { state: this.closed ? 'failed' : 'optimal', detail: { allocatedBytes: this.allocatedBytes, denseLeaves: this.store.leafCount } };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.store.clear();
  }

  private zeroRange(offset: number, length: number, keepAllocated: boolean): void {
    this.checkOpen();
    const cs = this.chunkSize;
    const store = this.store;
    for (let pos = 0; pos < length; ) {
      const at = offset + pos;
      const index = Math.floor(at / cs);
      const within = at - index * cs;
      const n = Math.min(cs - within, length - pos);
      pos += n;
      const slot = store.slot(index);
      if (slot < 0) {
        if (keepAllocated) this.zeroFilled(index);
        continue;
      }
      if (n === cs && !keepAllocated) {
        store.release(index, slot);
        continue;
      }
      const slab = store.slab(slot);
      const base = store.within(slot);
      slab.fill(0, base + within, base + within + n);
      if (!keepAllocated && isAllZero(slab, base, cs)) store.release(index, slot);
    }
  }

  /** Allocate the chunk and zero it (a reused slot holds old bytes). */
  private zeroFilled(index: number): number {
    const slot = this.store.allocate(index);
    const base = this.store.within(slot);
    this.store.slab(slot).fill(0, base, base + this.chunkSize);
    return slot;
  }

  /**
   * Walks [offset, offset+length) chunk by chunk, handing `data` each run of chunks that
   * sit next to each other in one slab (one copy for all of them) and `hole` each piece of
   * a chunk that holds nothing. With `allocate`, missing chunks are made first (zeroed
   * unless this request covers them whole), so there are no holes. `pos` is the offset
   * within the request.
   */
  private runs(
    offset: number,
    length: number,
    allocate: boolean,
    data: (slab: Buffer, start: number, pos: number, length: number) => void,
    hole?: (pos: number, length: number) => void,
  ): void {
    const cs = this.chunkSize;
    const store = this.store;
    let slab: Buffer | undefined;
    let start = 0;
    let runPos = 0;
    let runLength = 0;
    let lastSlot = -1;
    for (let pos = 0; pos < length; ) {
      const at = offset + pos;
      const index = Math.floor(at / cs);
      const within = at - index * cs;
      const n = Math.min(cs - within, length - pos);
      let slot = store.slot(index);
      if (slot < 0 && allocate) slot = n === cs ? store.allocate(index) : this.zeroFilled(index);
      if (slot < 0) {
        if (runLength > 0) data(slab!, start, runPos, runLength);
        runLength = 0;
        hole!(pos, n);
      } else if (runLength > 0 && within === 0 && store.adjacent(lastSlot, slot)) {
        runLength += n;
      } else {
        if (runLength > 0) data(slab!, start, runPos, runLength);
        slab = store.slab(slot);
        start = store.within(slot) + within;
        runPos = pos;
        runLength = n;
      }
      lastSlot = slot;
      pos += n;
    }
    if (runLength > 0) data(slab!, start, runPos, runLength);
  }

  private checkOpen(): void {
    if (this.closed) throw new BlockError('ESHUTDOWN', `device ${this.name} is closed`);
  }
}

function isAllZero(buf: Buffer, start: number, length: number): boolean {
  // Compare 8 bytes at a time; chunk sizes are powers of two ≥ 8, slabs start 8-aligned.
  const words = new BigUint64Array(buf.buffer, buf.byteOffset + start, length >>> 3);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return false;
  return true;
}
