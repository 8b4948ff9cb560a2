import { totalLength } from '../../fabric/device.js';
import type { RangeHold } from '../../fabric/range-lock.js';
import type { CommandContext } from './command.js';
import type { LogicalUnit } from './logical-unit.js';
import * as op from './opcodes.js';
import { invalidFieldInCdb, ScsiError, toScsiError } from './sense.js';

/** Bytes [start, start+length) of a list of slices, as views (no copy). */
export function sliceBuffers(slices: readonly Buffer[], start: number, length: number): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  const end = start + length;
  for (const s of slices) {
    const sEnd = pos + s.length;
    if (sEnd > start && pos < end) out.push(s.subarray(Math.max(0, start - pos), Math.min(s.length, end - pos)));
    pos = sEnd;
    if (pos >= end) break;
  }
  return out;
}

/**
 * Data-out of a WRITE: when the initiator's Expected Data Transfer Length was shorter than
 * the CDB's transfer, only the whole blocks that did arrive are written and the transport
 * reports the overflow residual (FCP-4 9.4.2 option a, as libiscsi expects).
 */
export function writeDataOut(ctx: CommandContext, blocks: number): { data: Buffer[]; blocks: number } {
  const slices = ctx.cmd.dataOut ?? [];
  const size = ctx.lu.blockSize;
  const received = Math.min(blocks, Math.floor(totalLength(slices) / size));
  return { data: sliceBuffers(slices, 0, received * size), blocks: received };
}

/**
 * The data-out of a command whose CDB fixes its exact size (WRITE SAME, COMPARE AND WRITE):
 * any other length is an error in the CDB rather than a residual.
 */
export function exactDataOut(ctx: CommandContext<LogicalUnit | undefined>, needed: number, fieldByte: number): Buffer[] {
  const slices = ctx.cmd.dataOut ?? [];
  if (totalLength(slices) !== needed) throw invalidFieldInCdb(fieldByte);
  return [...slices];
}

/** One contiguous buffer; copies only when the data came in several slices. */
export function contiguous(slices: readonly Buffer[]): Buffer {
  return slices.length === 1 ? slices[0]! : Buffer.concat(slices as Buffer[]);
}

/**
 * The first `needed` bytes of the command's data-out. Less than the CDB asks for means the
 * initiator's Expected Data Transfer Length was too short: FCP-4 lets us refuse the
 * command without touching the medium.
 */
export function dataOut(ctx: CommandContext<LogicalUnit | undefined>, needed: number): Buffer[] {
  const slices = ctx.cmd.dataOut ?? [];
  if (totalLength(slices) < needed) throw new ScsiError(op.ILLEGAL_REQUEST, op.ASC_INVALID_FIELD_IN_INFORMATION_UNIT);
  return sliceBuffers(slices, 0, needed);
}

function abortedError(): ScsiError {
  return new ScsiError(op.ABORTED_COMMAND, op.ASC_NO_ADDITIONAL_SENSE, {}, op.SAM_STAT_TASK_ABORTED);
}

function checkAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortedError();
}

/**
 * Reads whole blocks into `target` (default: a fresh buffer), in pieces the device accepts;
 * a failure names the first LBA of its piece.
 */
export function readBlocks(ctx: CommandContext, lba: number, blocks: number, target: Buffer = Buffer.allocUnsafe(blocks * ctx.lu.blockSize)): Promise<Buffer> {
  const lu = ctx.lu;
  if (target.length > lu.chunkBytes) return readPieces(ctx, lba, target);
  // One device call, and no async frame of its own: this is every ordinary READ.
  if (ctx.signal.aborted) return Promise.reject(abortedError());
  return lu.device.read(lba * lu.blockSize, target).then(
    () => target,
    (err: unknown) => {
      throw toScsiError(err, 'read', lba);
    },
  );
}

async function readPieces(ctx: CommandContext, lba: number, target: Buffer): Promise<Buffer> {
  const lu = ctx.lu;
  const chunk = lu.chunkBytes;
  for (let pos = 0; pos < target.length; pos += chunk) {
    checkAborted(ctx.signal);
    const offset = lba * lu.blockSize + pos;
    try {
      await lu.device.read(offset, target.subarray(pos, Math.min(target.length, pos + chunk)));
    } catch (err) {
      throw toScsiError(err, 'read', offset / lu.blockSize);
    }
  }
  return target;
}

/**
 * Writes whole blocks. FUA when asked, or always when the write cache is disabled; a device
 * without FUA gets a flush after the write instead. Under `withRangeLock`, pass its hold.
 */
export async function writeBlocks(ctx: CommandContext, lba: number, data: readonly Buffer[], fua: boolean, hold?: RangeHold): Promise<void> {
  const lu = ctx.lu;
  const length = totalLength(data);
  const chunk = lu.chunkBytes;
  const durable = fua || !lu.writeCacheEnabled;
  const deviceFua = durable && lu.device.capabilities.fua;
  for (let pos = 0; pos < length; pos += chunk) {
    checkAborted(ctx.signal);
    const offset = lba * lu.blockSize + pos;
    const piece = length <= chunk ? data : sliceBuffers(data, pos, Math.min(chunk, length - pos));
    try {
      await lu.device.write(offset, piece, { fua: deviceFua, hold });
    } catch (err) {
      throw toScsiError(err, 'write', offset / lu.blockSize);
    }
  }
  if (durable && !deviceFua) await flushDevice(lu);
}

export async function flushDevice(lu: LogicalUnit): Promise<void> {
  if (!lu.device.capabilities.flush) return;
  try {
    await lu.device.flush();
  } catch (err) {
    throw toScsiError(err, 'write');
  }
}

/**
 * Holds [lba, lba+blocks) exclusively around `fn`, against writes from every front end of
 * the device: `fn` must pass the hold with its own writes (they would wait for it otherwise).
 */
export function withRangeLock<T>(lu: LogicalUnit, lba: number, blocks: number, fn: (hold: RangeHold) => Promise<T>): Promise<T> {
  return lu.lock.withExclusive(lba * lu.blockSize, (lba + blocks) * lu.blockSize, fn);
}

export function checkWritable(lu: LogicalUnit): void {
  if (lu.readOnly) throw new ScsiError(op.DATA_PROTECT, op.ASC_WRITE_PROTECTED);
}
