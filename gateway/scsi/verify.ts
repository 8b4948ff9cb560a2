import { blockCdbUsage, blockRange } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { firstDifference, miscompare } from './compare.js';
import { checkWritable, contiguous, dataOut, readBlocks, withRangeLock, writeBlocks, writeDataOut } from './io.js';
import * as op from './opcodes.js';
import { checkBlockRange } from './read-write.js';
import { GOOD, invalidFieldInCdb } from './sense.js';
import type { ScsiResult } from './types.js';

/** The medium is checked this much at a time: a VERIFY of the largest range holds 1 MiB, not 8. */
const VERIFY_PIECE_BYTES = 1024 * 1024;

/**
 * Reads the range and compares it with `expected` (the whole range, or one block repeated
 * for BYTCHK 11b); without `expected` it only checks that the medium reads.
 */
async function compareMedium(ctx: CommandContext, lba: number, blocks: number, expected?: Buffer): Promise<void> {
  const size = ctx.lu.blockSize;
  const perPiece = Math.max(1, Math.floor(VERIFY_PIECE_BYTES / size));
  const whole = expected !== undefined && expected.length === blocks * size;
  for (let done = 0; done < blocks; done += perPiece) {
    const current = await readBlocks(ctx, lba + done, Math.min(perPiece, blocks - done));
    if (!expected) continue;
    const base = done * size;
    if (whole) {
      const at = firstDifference(current, expected.subarray(base, base + current.length));
      if (at >= 0) throw miscompare(base + at);
      continue;
    }
    for (let pos = 0; pos < current.length; pos += size) {
      const at = firstDifference(current.subarray(pos, pos + size), expected);
      if (at >= 0) throw miscompare(base + pos + at);
    }
  }
}

/** VERIFY(10)/(12)/(16): BYTCHK 00b checks the medium reads, 01b compares all, 11b one block against each. */
async function verify(ctx: CommandContext): Promise<ScsiResult> {
  const { lba, blocks } = blockRange(ctx.cdb);
  const bytchk = (ctx.cdb[1]! >> 1) & 0x03;
  if (bytchk === 2) throw invalidFieldInCdb(1, 2);
  checkBlockRange(ctx, lba, blocks);
  if (blocks === 0) return GOOD;
  if (bytchk === 0) {
    await compareMedium(ctx, lba, blocks);
    return GOOD;
  }
  const needed = bytchk === 1 ? blocks * ctx.lu.blockSize : ctx.lu.blockSize;
  await compareMedium(ctx, lba, blocks, contiguous(dataOut(ctx, needed)));
  return { status: op.SAM_STAT_GOOD, dataOutLength: needed };
}

/** WRITE AND VERIFY(10)/(12)/(16): writes, then reads back and compares under the same range lock. */
async function writeAndVerify(ctx: CommandContext): Promise<ScsiResult> {
  const { lba, blocks } = blockRange(ctx.cdb);
  if (ctx.cdb[1]! & 0x04) throw invalidFieldInCdb(1, 2); // BYTCHK 11b is not defined here
  checkBlockRange(ctx, lba, blocks);
  checkWritable(ctx.lu);
  const bytes = blocks * ctx.lu.blockSize;
  const received = writeDataOut(ctx, blocks);
  if (received.blocks > 0) {
    await withRangeLock(ctx.lu, lba, received.blocks, async (hold) => {
      await writeBlocks(ctx, lba, received.data, true, hold);
      await compareMedium(ctx, lba, received.blocks, contiguous(received.data));
    });
  }
  return { status: op.SAM_STAT_GOOD, dataOutLength: bytes };
}

/** VERIFY: VRPROTECT, DPO and BYTCHK; WRITE AND VERIFY: WRPROTECT, DPO and BYTCHK 0x/01b. */
const VERIFY_FLAGS = 0xf6;
const WRITE_AND_VERIFY_FLAGS = 0xf2;

const verifySpec = (name: string, opcode: number): CommandSpec => ({
  name,
  opcode,
  usage: blockCdbUsage(opcode, VERIFY_FLAGS),
  reservation: 'read',
  alua: 'active',
  io: 'read',
  run: verify,
});

const writeAndVerifySpec = (name: string, opcode: number): CommandSpec => ({
  name,
  opcode,
  usage: blockCdbUsage(opcode, WRITE_AND_VERIFY_FLAGS),
  reservation: 'write',
  alua: 'active',
  io: 'write',
  run: writeAndVerify,
});

export const VERIFY_COMMANDS: CommandSpec[] = [
  verifySpec('VERIFY(10)', op.VERIFY_10),
  verifySpec('VERIFY(12)', op.VERIFY_12),
  verifySpec('VERIFY(16)', op.VERIFY_16),
  writeAndVerifySpec('WRITE AND VERIFY(10)', op.WRITE_AND_VERIFY_10),
  writeAndVerifySpec('WRITE AND VERIFY(12)', op.WRITE_AND_VERIFY_12),
  writeAndVerifySpec('WRITE AND VERIFY(16)', op.WRITE_AND_VERIFY_16),
];
