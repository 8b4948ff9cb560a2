import type { Retained } from './buffers.js';
import { countCopy } from './copies.js';

/**
 * The bytes a socket delivered and nobody consumed yet, kept as the socket's own chunks:
 * the one receive queue of the NBD server, the iSCSI PDU reader and the NBD client's
 * handshake. Payloads leave as slices of those chunks (no concatenation). A fixed-size
 * header that straddles two chunks is read where it lies: chunks that follow each other in
 * one receive arena are one run of memory, so `peek` and `readContiguous` return a view
 * across them; elsewhere (the cut fell where one arena ends and the next begins, or on the
 * plain 'data' path) `peek` answers null and its fields are read one by one
 * (`readUInt16BE`/`readUInt32BE`), while `readContiguous` copies, and counts it.
 *
 * A chunk may come with an owner (the receive arena it is a view of): the queue holds a
 * reference until the chunk is consumed, and whatever is taken with `holds` takes its own.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private owners: (Retained | null)[] = [];
  private head = 0;
  /** Bytes already consumed from chunks[head]. */
  private offset = 0;
  length = 0;

  /** Queue a chunk; the queue takes over the caller's reference to `owner`. */
  push(chunk: Buffer, owner: Retained | null = null): void {
    if (chunk.length === 0) {
      owner?.release();
      return;
    }
    this.chunks.push(chunk);
    this.owners.push(owner);
    this.length += chunk.length;
  }

  /** The unconsumed byte at `index` (< length), without consuming anything. */
  byteAt(index: number): number {
    let i = this.head;
    let at = this.offset + index;
    for (let chunk = this.chunks[i]!; at >= chunk.length; chunk = this.chunks[++i]!) at -= chunk.length;
    return this.chunks[i]![at]!;
  }

  /**
   * The next `n` bytes as a view of one chunk, without consuming them, or null when they
   * straddle chunks (read their fields with readUInt16BE/readUInt32BE then). Valid only until
   * the queue moves on.
   */
  peek(n: number): Buffer | null {
    if (n > this.length) throw new RangeError(`need ${n} bytes, have ${this.length}`);
    const first = this.chunks[this.head]!;
    return first.length - this.offset >= n ? first.subarray(this.offset, this.offset + n) : this.spanningView(n);
  }

  /**
   * The next `n` bytes (more than the first chunk holds) as one view, when the chunks they
   * lie in follow each other in the same memory — consecutive socket reads into one receive
   * arena — else null. The chunks then share their owner: the arena.
   */
  private spanningView(n: number): Buffer | null {
    const first = this.chunks[this.head]!;
    let end = first.byteOffset + first.length;
    let have = first.length - this.offset;
    for (let i = this.head + 1; have < n; i++) {
      const next = this.chunks[i]!;
      if (next.buffer !== first.buffer || next.byteOffset !== end) return null;
      end += next.length;
      have += next.length;
    }
    return Buffer.from(first.buffer, first.byteOffset + this.offset, n);
  }

  /** Big-endian u16 at unconsumed byte `index`, read across chunk boundaries without copying. */
  readUInt16BE(index: number): number {
    return (this.byteAt(index) << 8) | this.byteAt(index + 1);
  }

  /** Little-endian u32 at unconsumed byte `index` (iSCSI digests), read without a view or a copy. */
  readUInt32LE(index: number): number {
    return ((this.byteAt(index) | (this.byteAt(index + 1) << 8) | (this.byteAt(index + 2) << 16)) >>> 0) + this.byteAt(index + 3) * 0x1000000;
  }

  /** Big-endian u32 at unconsumed byte `index`, read across chunk boundaries without copying. */
  readUInt32BE(index: number): number {
    return this.byteAt(index) * 0x1000000 + ((this.byteAt(index + 1) << 16) | (this.byteAt(index + 2) << 8) | this.byteAt(index + 3));
  }

  /**
   * The next `n` bytes as one Buffer: a view when they lie in one run of memory (one chunk,
   * or chunks that follow each other in one arena), else a copy. Copies are counted as
   * transfer copies unless `counted` is false. A view is valid only until the queue moves
   * on, unless `holds` is given: then the chunk's owner is retained and added there
   * (release it when the view is no longer used).
   */
  readContiguous(n: number, counted = true, holds?: Retained[]): Buffer {
    const view = this.peek(n);
    if (view) {
      if (holds) {
        const owner = this.owners[this.head];
        if (owner) {
          owner.retain();
          holds.push(owner);
        }
      }
      // A view across chunks of one arena: the arena's reference taken above covers all of them.
      this.skip(n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.head]!;
      const take = Math.min(chunk.length - this.offset, n - filled);
      chunk.copy(out, filled, this.offset, this.offset + take);
      filled += take;
      this.advance(take);
    }
    if (counted) countCopy(n);
    return out;
  }

  /**
   * The next `n` bytes as slices of the received chunks, without copying. The owners of
   * those chunks are retained once per slice and added to `holds`: release each when the
   * slices are no longer used.
   */
  readSlices(n: number, holds: Retained[]): Buffer[] {
    if (n > this.length) throw new RangeError(`need ${n} bytes, have ${this.length}`);
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const chunk = this.chunks[this.head]!;
      const take = Math.min(chunk.length - this.offset, left);
      out.push(chunk.subarray(this.offset, this.offset + take));
      const owner = this.owners[this.head];
      if (owner) {
        owner.retain();
        holds.push(owner);
      }
      left -= take;
      this.advance(take);
    }
    return out;
  }

  /** Drop up to `n` bytes; returns how many were dropped. */
  skip(n: number): number {
    const dropped = Math.min(n, this.length);
    let left = dropped;
    while (left > 0) {
      const chunk = this.chunks[this.head]!;
      const take = Math.min(chunk.length - this.offset, left);
      left -= take;
      this.advance(take);
    }
    return dropped;
  }

  clear(): void {
    for (let i = this.head; i < this.owners.length; i++) this.owners[i]?.release();
    this.owners = [];
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.length = 0;
  }

  private advance(n: number): void {
    this.offset += n;
    this.length -= n;
    if (this.offset === this.chunks[this.head]!.length) {
      this.chunks[this.head] = undefined as unknown as Buffer; // let the chunk be collected
      const owner = this.owners[this.head];
      if (owner) {
        this.owners[this.head] = null;
        owner.release();
      }
      this.head++;
      this.offset = 0;
      if (this.head === this.chunks.length) {
        this.chunks.length = 0;
        this.owners.length = 0;
        this.head = 0;
      } else if (this.head > 64) {
        this.chunks = this.chunks.slice(this.head);
        this.owners = this.owners.slice(this.head);
        this.head = 0;
      }
    }
  }
}
