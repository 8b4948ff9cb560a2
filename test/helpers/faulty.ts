import type { BlockDevice, DeviceStatus, Extent, WriteOptions, ZeroOptions } from '../../fabric/device.js';
import { totalLength } from '../../fabric/device.js';
import { BlockError, type BlockErrorCode } from '../../fabric/errors.js';
import { Layer } from '../../fabric/layer.js';

export type FaultOp = 'read' | 'write' | 'flush' | 'trim' | 'writeZeroes' | 'blockStatus' | 'cache';

/**
 * A test layer that fails chosen operations on command, like nbdkit's error filter, and
 * counts what passed through it: `failNext('read', 2)`, `failRange('read', off, len)`,
 * `always.set('write', 'ENOSPC')` (every write fails with that code until cleared),
 * `down()` (every operation fails and status() says failed) and `up()`.
 */
export class FaultyDevice extends Layer {
  readonly ops: Record<FaultOp, number> = { read: 0, write: 0, flush: 0, trim: 0, writeZeroes: 0, blockStatus: 0, cache: 0 };
  readonly bytes: Record<FaultOp, number> = { read: 0, write: 0, flush: 0, trim: 0, writeZeroes: 0, blockStatus: 0, cache: 0 };
  /** Writes that reached the device below, as [offset, length]. */
  readonly writes: Array<[number, number]> = [];
  private isDown = false;
  /** Operations that fail every time, each with its own code. */
  readonly always = new Map<FaultOp, BlockErrorCode>();
  private readonly pending = new Map<FaultOp, number>();
  private readonly ranges: Array<{ op: FaultOp; start: number; end: number }> = [];
  code: BlockErrorCode = 'EIO';
  /** Delay every operation by this many ms (to build up outstanding I/O). */
  delayMs = 0;
  /** Operations held until `release()`, to catch requests in flight. */
  readonly holding = new Set<FaultOp>();
  /** Operations waiting in `holding` right now, and the largest single request seen, per op. */
  readonly held: Record<FaultOp, number> = { read: 0, write: 0, flush: 0, trim: 0, writeZeroes: 0, blockStatus: 0, cache: 0 };
  readonly largest: Record<FaultOp, number> = { read: 0, write: 0, flush: 0, trim: 0, writeZeroes: 0, blockStatus: 0, cache: 0 };
  private readonly waiting: Array<() => void> = [];

  constructor(next: BlockDevice, name = next.name) {
    super(next, name);
  }

  failNext(op: FaultOp, count = 1): this {
    this.pending.set(op, (this.pending.get(op) ?? 0) + count);
    return this;
  }

  failRange(op: FaultOp, offset: number, length: number): this {
    this.ranges.push({ op, start: offset, end: offset + length });
    return this;
  }

  clearFaults(): this {
    this.pending.clear();
    this.always.clear();
    this.ranges.length = 0;
    return this;
  }

  hold(...ops: FaultOp[]): this {
    for (const op of ops) this.holding.add(op);
    return this;
  }

  /** Let every held operation go on, and stop holding. */
  release(): this {
    this.holding.clear();
    for (const w of this.waiting.splice(0)) w();
    return this;
  }

  down(): this {
    this.isDown = true;
    return this;
  }

  up(): this {
    this.isDown = false;
    return this;
  }

  resetCounters(): void {
    for (const k of Object.keys(this.ops) as FaultOp[]) {
      this.ops[k] = 0;
      this.bytes[k] = 0;
    }
    this.writes.length = 0;
  }

  override async read(offset: number, target: Buffer): Promise<void> {
    await this.gate('read', offset, target.length);
    return this.next.read(offset, target);
  }
  override async write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    const length = totalLength(data);
    await this.gate('write', offset, length);
    this.writes.push([offset, length]);
    return this.next.write(offset, data, options);
  }
  override async flush(): Promise<void> {
    await this.gate('flush', 0, 0);
    return this.next.flush();
  }
  override async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    await this.gate('trim', offset, length);
    return this.next.trim(offset, length, options);
  }
  override async writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    await this.gate('writeZeroes', offset, length);
    return this.next.writeZeroes(offset, length, options);
  }
  override async blockStatus(offset: number, length: number): Promise<Extent[]> {
    await this.gate('blockStatus', offset, length);
    return this.next.blockStatus(offset, length);
  }
  override async cache(offset: number, length: number): Promise<void> {
    await this.gate('cache', offset, length);
    return this.next.cache(offset, length);
  }
  override status(): DeviceStatus {
    return this.isDown ? { state: 'failed' } : this.next.status();
  }

  private async gate(op: FaultOp, offset: number, length: number): Promise<void> {
    this.largest[op] = Math.max(this.largest[op], length);
    if (this.holding.has(op)) {
      this.held[op]++;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      this.held[op]--;
    }
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.isDown) throw new BlockError(this.code, `${this.name}: injected fault (device down)`);
    const always = this.always.get(op);
    if (always) throw new BlockError(always, `${this.name}: injected ${op} fault`);
    const left = this.pending.get(op) ?? 0;
    if (left > 0) {
      this.pending.set(op, left - 1);
      throw new BlockError(this.code, `${this.name}: injected ${op} fault`);
    }
    for (const r of this.ranges) {
      if (r.op === op && offset < r.end && r.start < offset + length) throw new BlockError(this.code, `${this.name}: injected ${op} fault at ${offset}`);
    }
    this.ops[op]++;
    this.bytes[op] += length;
  }
}
