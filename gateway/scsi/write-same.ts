import { uint } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { checkWritable, contiguous, exactDataOut, flushDevice, withRangeLock, writeBlocks } from './io.js';
import type { RangeHold } from '../../fabric/range-lock.js';
import type { LogicalUnit } from './logical-unit.js';
import * as op from './opcodes.js';
import { provisioning } from './provisioning.js';
import { invalidFieldInCdb, toScsiError } from './sense.js';
import type { ScsiResult } from './types.js';
import { maxWriteSameBlocks } from './vpd.js';

/** Largest pattern buffer built for a non-zero WRITE SAME. */
const PATTERN_BYTES = 1024 * 1024;

function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Zeroes a range: deallocating it when the UNMAP bit allows, else keeping it allocated. */
async function zeroRange(ctx: CommandContext, lu: LogicalUnit, lba: number, blocks: number, unmap: boolean, hold: RangeHold): Promise<void> {
  if (!lu.device.capabilities.writeZeroes) return writePattern(ctx, lba, blocks, Buffer.alloc(lu.blockSize), hold);
  const durable = !lu.writeCacheEnabled;
  const fua = durable && lu.device.capabilities.fua;
  try {
    await lu.device.writeZeroes(lba * lu.blockSize, blocks * lu.blockSize, { noHole: !unmap, fua, hold });
  } catch (err) {
    throw toScsiError(err, 'write', lba);
  }
  if (durable && !fua) await flushDevice(lu);
}

async function writePattern(ctx: CommandContext, lba: number, blocks: number, block: Buffer, hold: RangeHold): Promise<void> {
  const size = block.length;
  const perPiece = Math.max(1, Math.min(blocks, Math.floor(PATTERN_BYTES / size)));
  const pattern = Buffer.allocUnsafe(perPiece * size);
  for (let i = 0; i < perPiece; i++) block.copy(pattern, i * size);
  for (let done = 0; done < blocks; done += perPiece) {
    const n = Math.min(perPiece, blocks - done);
    await writeBlocks(ctx, lba + done, [pattern.subarray(0, n * size)], false, hold);
  }
}

/**
 * WRITE SAME(10)/(16) (SBC-3). NUMBER OF LOGICAL BLOCKS zero means up to the last LBA (the
 * Block Limits page says WSNZ=0); MAXIMUM WRITE SAME LENGTH bounds the blocks written either
 * way, as libiscsi expects. With the UNMAP bit the range is deallocated and the data-out
 * ignored, as Linux's LIO does: the blocks then read as zero (LBPRZ).
 */
async function writeSame(ctx: CommandContext): Promise<ScsiResult> {
  const { cdb, lu } = ctx;
  const is16 = cdb[0] === op.WRITE_SAME_16;
  const lba = is16 ? uint(cdb, 2, 8) : uint(cdb, 2, 4);
  const field = is16 ? uint(cdb, 10, 4) : uint(cdb, 7, 2);
  const blocksByte = is16 ? 10 : 7;
  const unmap = (cdb[1]! & 0x08) !== 0;
  const ndob = is16 && (cdb[1]! & 0x01) !== 0;
  if (cdb[1]! & 0x10) throw invalidFieldInCdb(1, 4); // ANCHOR
  if (cdb[1]! & 0xe0) throw invalidFieldInCdb(1, 7); // WRPROTECT
  lu.checkRange(lba, field);
  const blocks = field === 0 ? lu.blockCount - lba : field;
  if (blocks > maxWriteSameBlocks(lu)) throw invalidFieldInCdb(blocksByte);
  checkWritable(lu);
  if (unmap && !provisioning(lu).writeSameUnmap) throw invalidFieldInCdb(1, 3);
  const block = ndob ? undefined : contiguous(exactDataOut(ctx, lu.blockSize, blocksByte));
  await withRangeLock(lu, lba, blocks, async (hold) => {
    if (!block || unmap || isZero(block)) await zeroRange(ctx, lu, lba, blocks, unmap, hold);
    else await writePattern(ctx, lba, blocks, block, hold);
  });
  return { status: op.SAM_STAT_GOOD, dataOutLength: ndob ? 0 : lu.blockSize };
}

export const WRITE_SAME_COMMANDS: CommandSpec[] = [
  {
    name: 'WRITE SAME(10)',
    opcode: op.WRITE_SAME_10,
    usage: [0x41, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x04],
    reservation: 'write',
    alua: 'active',
    io: 'write',
    run: writeSame,
  },
  {
    name: 'WRITE SAME(16)',
    opcode: op.WRITE_SAME_16,
    usage: [0x93, 0xf9, ...Array(12).fill(0xff), 0x00, 0x04],
    reservation: 'write',
    alua: 'active',
    io: 'write',
    run: writeSame,
  },
];

