import { blockRange } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { firstDifference, miscompare } from './compare.js';
import { checkWritable, contiguous, dataOut, readBlocks, withRangeLock, writeBlocks, writeDataOut } from './io.js';
import * as op from './opcodes.js';
import { checkBlockRange } from './read-write.js';
import { GOOD, invalidFieldInCdb } from './sense.js';
import type { ScsiResult } from './types.js';

/** Compares the medium with `expected` (the whole range, or one block repeated for BYTCHK 11b). */
async function compareMedium(ctx: CommandContext, lba: number, blocks: number, expected: Buffer): Promise<void> {
  const current = await readBlocks(ctx, lba, blocks);
  if (expected.length === current.length) {
    const at = firstDifference(current, expected);
    if (at >= 0) throw miscompare(at);
    return;
  }
  const size = expected.length;
  for (let pos = 0; pos < current.length; pos += size) {
    const at = firstDifference(current.subarray(pos, pos + size), expected);
    if (at >= 0) throw miscompare(pos + at);
  }
}

/** VERIFY(10)/(16): BYTCHK 00b checks the medium reads, 01b compares all, 11b one block against each. */
async function verify(ctx: CommandContext): Promise<ScsiResult> {
  const { lba, blocks } = blockRange(ctx.cdb);
  const bytchk = (ctx.cdb[1]! >> 1) & 0x03;
  if (bytchk === 2) throw invalidFieldInCdb(1, 2);
  checkBlockRange(ctx, lba, blocks);
  if (blocks === 0) return GOOD;
  if (bytchk === 0) {
    await readBlocks(ctx, lba, blocks);
    return GOOD;
  }
  const needed = bytchk === 1 ? blocks * ctx.lu.blockSize : ctx.lu.blockSize;
  await compareMedium(ctx, lba, blocks, contiguous(dataOut(ctx, needed)));
  return { status: op.SAM_STAT_GOOD, dataOutLength: needed };
}

/** WRITE AND VERIFY(10)/(16): writes, then reads back and compares under the same range lock. */
async function writeAndVerify(ctx: CommandContext): Promise<ScsiResult> {
  const { lba, blocks } = blockRange(ctx.cdb);
  if (ctx.cdb[1]! & 0x04) throw invalidFieldInCdb(1, 2); // BYTCHK 11b is not defined here
  checkBlockRange(ctx, lba, blocks);
  checkWritable(ctx.lu);
  const bytes = blocks * ctx.lu.blockSize;
  const received = writeDataOut(ctx, blocks);
  if (received.blocks > 0) {
    await withRangeLock(ctx.lu, lba, received.blocks, async () => {
      await writeBlocks(ctx, lba, received.data, true);
      await compareMedium(ctx, lba, received.blocks, contiguous(received.data));
    });
  }
  return { status: op.SAM_STAT_GOOD, dataOutLength: bytes };
}

const VERIFY_USAGE_10 = [0x2f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x04];
const VERIFY_USAGE_16 = [0x8f, 0xf6, ...Array(12).fill(0xff), 0x00, 0x04];

export const VERIFY_COMMANDS: CommandSpec[] = [
  { name: 'VERIFY(10)', opcode: op.VERIFY_10, usage: VERIFY_USAGE_10, reservation: 'read', alua: 'active', io: 'read', run: verify },
  { name: 'VERIFY(16)', opcode: op.VERIFY_16, usage: VERIFY_USAGE_16, reservation: 'read', alua: 'active', io: 'read', run: verify },
  {
    name: 'WRITE AND VERIFY(10)',
    opcode: op.WRITE_AND_VERIFY_10,
    usage: [0x2e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x04],
    reservation: 'write',
    alua: 'active',
    io: 'write',
    run: writeAndVerify,
  },
  {
    name: 'WRITE AND VERIFY(16)',
    opcode: op.WRITE_AND_VERIFY_16,
    usage: [0x8e, 0xf2, ...Array(12).fill(0xff), 0x00, 0x04],
    reservation: 'write',
    alua: 'active',
    io: 'write',
    run: writeAndVerify,
  },
];
