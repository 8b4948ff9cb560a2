import { blockRange } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { flushDevice } from './io.js';
import * as op from './opcodes.js';
import { GOOD } from './sense.js';
import type { ScsiResult } from './types.js';

/**
 * SYNCHRONIZE CACHE(10)/(16): the device's flush covers every range, so the range is only
 * checked. IMMED is honoured by finishing the flush first, which SBC-3 permits.
 */
async function synchronizeCache(ctx: CommandContext): Promise<ScsiResult> {
  const { lba, blocks } = blockRange(ctx.cdb);
  ctx.lu.checkRange(lba, blocks);
  await flushDevice(ctx.lu);
  return GOOD;
}

export const SYNC_CACHE_COMMANDS: CommandSpec[] = [
  {
    name: 'SYNCHRONIZE CACHE(10)',
    opcode: op.SYNCHRONIZE_CACHE_10,
    usage: [0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x04],
    reservation: 'write',
    alua: 'active',
    io: 'write',
    run: synchronizeCache,
  },
  {
    name: 'SYNCHRONIZE CACHE(16)',
    opcode: op.SYNCHRONIZE_CACHE_16,
    usage: [0x91, 0x02, ...Array(12).fill(0xff), 0x00, 0x04],
    reservation: 'write',
    alua: 'active',
    io: 'write',
    run: synchronizeCache,
  },
];
