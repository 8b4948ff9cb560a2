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

const DEFAULT_CHUNK = 64 * 1024;

/** A sparse RAM disk: chunks appear on first write and vanish on trim or zeroing. */
export class MemoryBackend implements BlockDevice {
  readonly name: string;
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
  private readonly chunkSize: number;
  private readonly chunks = new Map<number, Buffer>();
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
    this.blockSizes = { minimum: 1, preferred: 4096, maximum: 32 * 1024 * 1024, ...options.blockSizes };
    this.capabilities = { ...DEFAULT_CAPABILITIES, readOnly: options.readOnly ?? false };
  }

  /** Bytes of RAM holding data; what the device really costs. */
  get allocatedBytes(): number {
    return this.chunks.size * this.chunkSize;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    this.checkOpen();
    this.forEachChunkPiece(offset, target.length, (chunk, within, length, pos) => {
      const slot = target.subarray(pos, pos + length);
      if (chunk) {
        chunk.copy(slot, 0, within, within + length);
        countStored(length);
      } else slot.fill(0);
    });
  }

  async write(offset: number, data: readonly Buffer[]): Promise<void> {
    this.checkOpen();
    let at = offset;
    for (const piece of data) {
      this.forEachChunkPiece(at, piece.length, (chunk, within, length, pos, index) => {
        // A chunk about to be overwritten whole needs no zero-fill first.
        const dest = chunk ?? this.allocate(index, length === this.chunkSize);
        piece.copy(dest, within, pos, pos + length);
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
    this.forEachChunkPiece(offset, length, (chunk, _within, pieceLength) => {
      const hole = chunk === undefined;
      const last = extents[extents.length - 1];
      if (last && last.hole === hole) {
        extents[extents.length - 1] = { length: last.length + pieceLength, hole, zero: hole };
      } else extents.push({ length: pieceLength, hole, zero: hole });
    });
    return extents;
  }

  async cache(): Promise<void> {
    this.checkOpen();
  }

  status(): DeviceStatus {
    return { state: this.closed ? 'failed' : 'optimal', detail: { allocatedBytes: this.allocatedBytes } };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.chunks.clear();
  }

  private zeroRange(offset: number, length: number, keepAllocated: boolean): void {
    this.checkOpen();
    this.forEachChunkPiece(offset, length, (chunk, within, pieceLength, _pos, index) => {
      if (!chunk) {
        if (keepAllocated) this.allocate(index);
        return;
      }
      if (pieceLength === this.chunkSize && !keepAllocated) {
        this.chunks.delete(index);
        return;
      }
      chunk.fill(0, within, within + pieceLength);
      if (!keepAllocated && isAllZero(chunk)) this.chunks.delete(index);
    });
  }

  private allocate(index: number, overwrittenWhole = false): Buffer {
    const chunk = overwrittenWhole ? Buffer.allocUnsafeSlow(this.chunkSize) : Buffer.alloc(this.chunkSize);
    this.chunks.set(index, chunk);
    return chunk;
  }

  /** Walks [offset, offset+length) chunk by chunk; `pos` is the offset within the request. */
  private forEachChunkPiece(
    offset: number,
    length: number,
    visit: (chunk: Buffer | undefined, within: number, length: number, pos: number, index: number) => void,
  ): void {
    let pos = 0;
    while (pos < length) {
      const at = offset + pos;
      const index = Math.floor(at / this.chunkSize);
      const within = at - index * this.chunkSize;
      const pieceLength = Math.min(this.chunkSize - within, length - pos);
      visit(this.chunks.get(index), within, pieceLength, pos, index);
      pos += pieceLength;
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new BlockError('ESHUTDOWN', `device ${this.name} is closed`);
  }
}

function isAllZero(buf: Buffer): boolean {
  // Compare 8 bytes at a time; chunk sizes are powers of two ≥ 8.
  const words = new BigUint64Array(buf.buffer, buf.byteOffset, buf.length >>> 3);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return false;
  return true;
}
