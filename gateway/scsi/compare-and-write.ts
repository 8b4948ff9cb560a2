import { uint } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { firstDifference, miscompare } from './compare.js';
import { checkWritable, contiguous, exactDataOut, readBlocks, sliceBuffers, withRangeLock, writeBlocks } from './io.js';
import * as op from './opcodes.js';
import { invalidFieldInCdb, GOOD } from './sense.js';
import type { ScsiResult } from './types.js';
import { MAX_COMPARE_AND_WRITE_BLOCKS } from './vpd.js';

/**
 * COMPARE AND WRITE (SBC-3 5.2): compares the first half of the data-out with the medium
 * and, only if equal, writes the second half — atomically, because the range's write lock
 * is held from the read to the end of the write.
 */
async function compareAndWrite(ctx: CommandContext): Promise<ScsiResult> {
  const { cdb, lu } = ctx;
  const lba = uint(cdb, 2, 8);
  const blocks = cdb[13]!;
  const fua = (cdb[1]! & 0x08) !== 0;
  if (cdb[1]! & 0xe0) throw invalidFieldInCdb(1, 7);
  lu.checkRange(lba, blocks);
  if (blocks > MAX_COMPARE_AND_WRITE_BLOCKS) throw invalidFieldInCdb(13);
  checkWritable(lu);
  const half = blocks * lu.blockSize;
  const data = exactDataOut(ctx, 2 * half, 13);
  if (blocks === 0) return GOOD;
  const expected = contiguous(sliceBuffers(data, 0, half));
  await withRangeLock(lu, lba, blocks, async (hold) => {
    const current = await readBlocks(ctx, lba, blocks);
    const at = firstDifference(current, expected);
    if (at >= 0) throw miscompare(at);
    await writeBlocks(ctx, lba, sliceBuffers(data, half, half), fua, hold);
  });
  return { status: op.SAM_STAT_GOOD, dataOutLength: 2 * half };
}

export const COMPARE_AND_WRITE_COMMANDS: CommandSpec[] = [
  {
    name: 'COMPARE AND WRITE',
    opcode: op.COMPARE_AND_WRITE,
    usage: [0x89, 0xf8, ...Array(8).fill(0xff), 0, 0, 0, 0xff, 0x00, 0x04],
    reservation: 'write',
    alua: 'active',
    io: 'write',
    run: compareAndWrite,
  },
];
