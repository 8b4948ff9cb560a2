import { blockCdbUsage, blockRange } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import * as op from './opcodes.js';
import { GOOD, toScsiError } from './sense.js';
import type { ScsiResult } from './types.js';

const IMMED = 0x02;

/**
 * PRE-FETCH(10)/(16) (SBC-3): a hint passed on as the device's cache advice. A PREFETCH
 * LENGTH of zero means up to the last LBA. We cannot promise the blocks stay cached, so
 * the status is GOOD, never CONDITION MET (which SBC-3 reserves for ranges that fit in the
 * cache). With IMMED the hint runs after the status is returned; its failure then only
 * means the data is not cached, so it is dropped.
 */
async function preFetch(ctx: CommandContext): Promise<ScsiResult> {
  const { lu, cdb } = ctx;
  const { lba, blocks: field } = blockRange(cdb);
  lu.checkRange(lba, field);
  if (!lu.device.capabilities.cache) return GOOD;
  const blocks = field === 0 ? lu.blockCount - lba : field;
  const advice = lu.device.cache(lba * lu.blockSize, blocks * lu.blockSize);
  if (cdb[1]! & IMMED) {
    advice.catch(() => {});
    return GOOD;
  }
  try {
    await advice;
  } catch (err) {
    throw toScsiError(err, 'read', lba);
  }
  return GOOD;
}

const spec = (name: string, opcode: number): CommandSpec => ({
  name,
  opcode,
  usage: blockCdbUsage(opcode, IMMED),
  reservation: 'read',
  alua: 'active',
  io: 'read',
  run: preFetch,
});

export const PREFETCH_COMMANDS: CommandSpec[] = [spec('PRE-FETCH(10)', op.PRE_FETCH_10), spec('PRE-FETCH(16)', op.PRE_FETCH_16)];
