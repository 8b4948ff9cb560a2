import type {
  BlockDevice,
  BlockSizes,
  Capabilities,
  DeviceStatus,
  Extent,
  WriteOptions,
  ZeroOptions,
} from '../device.js';
import { checkChildRange } from '../child-range.js';
import { BlockError } from '../errors.js';
import { commonBlockSizes, commonCapabilities, sliceBuffers, worstState } from './combine.js';

/** Where one byte of the parent lives: child index, offset there, bytes until the next boundary. */
export interface Location {
  child: number;
  childOffset: number;
  run: number;
}

/** Most pieces a single blockStatus looks at; it may stop early, and clients ask again. */
const STATUS_PIECES = 64;

/**
 * A device laid across several children (concat, stripe). Subclasses only say where an
 * offset lives; requests are split at boundaries, write payloads as subarrays (no copy),
 * and the pieces run in parallel. Every piece is checked against its child before it goes
 * (checkChildRange), so a wrong `locate` fails loudly here.
 */
export abstract class SpreadDevice implements BlockDevice {
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
  abstract readonly size: number;
  /** Reused by every call: locate() is synchronous and callers read it at once. */
  protected readonly at: Location = { child: 0, childOffset: 0, run: 0 };

  constructor(
    readonly name: string,
    protected readonly children: readonly BlockDevice[],
  ) {
    if (children.length === 0) throw new BlockError('EINVAL', `${name} needs at least one device`);
    this.blockSizes = commonBlockSizes(children);
    this.capabilities = commonCapabilities(children);
  }

  /** Fill `this.at` for `offset` (< size). */
  protected abstract locate(offset: number): void;

  read(offset: number, target: Buffer): Promise<void> {
    return this.split('read', offset, target.length, (child, childOffset, pos, length) =>
      child.read(childOffset, pos === 0 && length === target.length ? target : target.subarray(pos, pos + length)),
    );
  }

  write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    let length = 0;
    for (const b of data) length += b.length;
    return this.split('write', offset, length, (child, childOffset, pos, n) =>
      child.write(childOffset, pos === 0 && n === length ? data : sliceBuffers(data, pos, n), options),
    );
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.split('trim', offset, length, (child, childOffset, _pos, n) => child.trim(childOffset, n, options));
  }

  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.split('write zeroes', offset, length, (child, childOffset, _pos, n) => child.writeZeroes(childOffset, n, options));
  }

  cache(offset: number, length: number): Promise<void> {
    return this.split('cache', offset, length, (child, childOffset, _pos, n) => child.cache(childOffset, n));
  }

  async flush(): Promise<void> {
    await Promise.all(this.children.map((c) => c.flush()));
  }

  /** Children's extents in order, merged where they meet; stops at a child's short answer. */
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    const out: Extent[] = [];
    let pos = 0;
    for (let pieces = 0; pos < length && pieces < STATUS_PIECES; pieces++) {
      this.locate(offset + pos);
      const n = Math.min(this.at.run, length - pos);
      const child = this.children[this.at.child]!;
      checkChildRange(this.name, child, 'block status', this.at.childOffset, n);
      const extents = await child.blockStatus(this.at.childOffset, n);
      let covered = 0;
      for (const e of extents) {
        const len = Math.min(e.length, n - covered);
        if (len <= 0) break;
        const last = out[out.length - 1];
        if (last && last.hole === e.hole && last.zero === e.zero) out[out.length - 1] = { length: last.length + len, hole: e.hole, zero: e.zero };
        else out.push({ length: len, hole: e.hole, zero: e.zero });
        covered += len;
      }
      pos += covered;
      if (covered < n) break;
    }
    if (out.length === 0) throw new BlockError('EIO', `${this.name}: block status returned no extents at ${offset}`);
    return out;
  }

  status(): DeviceStatus {
    return {
      state: worstState(this.children),
      detail: { children: this.children.map((c) => ({ name: c.name, state: c.status().state })) },
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.children.map((c) => c.close()));
  }

  /**
   * Cut [offset, offset+length) at child boundaries and issue the pieces at once. Every piece
   * is range-checked before any is issued, so a wrong split touches no child. A request
   * within one child costs one `locate` and no extra promise.
   */
  private split(
    op: string,
    offset: number,
    length: number,
    call: (child: BlockDevice, childOffset: number, pos: number, length: number) => Promise<void>,
  ): Promise<void> {
    try {
      this.locate(offset);
      if (this.at.run >= length) {
        const child = this.children[this.at.child]!;
        checkChildRange(this.name, child, op, this.at.childOffset, length);
        return call(child, this.at.childOffset, 0, length);
      }
      const pieces: Location[] = [];
      for (let pos = 0; pos < length; ) {
        this.locate(offset + pos);
        const n = Math.min(this.at.run, length - pos);
        checkChildRange(this.name, this.children[this.at.child]!, op, this.at.childOffset, n);
        pieces.push({ child: this.at.child, childOffset: this.at.childOffset, run: n });
        pos += n;
      }
      const pending: Promise<void>[] = [];
      let pos = 0;
      for (const p of pieces) {
        pending.push(call(this.children[p.child]!, p.childOffset, pos, p.run));
        pos += p.run;
      }
      return Promise.all(pending).then(() => undefined);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
