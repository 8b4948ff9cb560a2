import { blockCdbUsage, blockRange } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { checkWritable, readBlocks, withRangeLock, writeBlocks, writeDataOut } from './io.js';
import * as op from './opcodes.js';
import { checkBlockRange } from './read-write.js';
import type { ScsiResult } from './types.js';

/** ORs `slices` (concatenated) into `target`, byte by byte. */
function orInto(target: Buffer, slices: readonly Buffer[]): void {
  let pos = 0;
  for (const s of slices) {
    for (let i = 0; i < s.length; i++) target[pos + i]! |= s[i]!;
    pos += s.length;
  }
}

/**
 * ORWRITE(16) (SBC-3): the medium becomes medium OR data-out. The range's write lock
 * is held from the read to the end of the write, so no other write of the range slips in
 * between and is lost. As with WRITE, only the whole blocks received are written.
 */
async function orWrite(ctx: CommandContext): Promise<ScsiResult> {
  const { lba, blocks, fua } = blockRange(ctx.cdb);
  checkBlockRange(ctx, lba, blocks);
  checkWritable(ctx.lu);
  const received = writeDataOut(ctx, blocks);
  if (received.blocks > 0) {
    await withRangeLock(ctx.lu, lba, received.blocks, async (hold) => {
      const merged = await readBlocks(ctx, lba, received.blocks);
      orInto(merged, received.data);
      await writeBlocks(ctx, lba, [merged], fua, hold);
    });
  }
  return { status: op.SAM_STAT_GOOD, dataOutLength: blocks * ctx.lu.blockSize };
}

export const ORWRITE_COMMANDS: CommandSpec[] = [
  {
    name: 'ORWRITE(16)',
    opcode: op.ORWRITE_16,
    // ORPROTECT (refused when set), DPO and FUA.
    usage: blockCdbUsage(op.ORWRITE_16, 0xf8),
    reservation: 'write',
    alua: 'active',
    io: 'write',
    run: orWrite,
  },
];
