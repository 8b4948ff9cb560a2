import { allocationLength, truncate, uint, writeUint64 } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import * as op from './opcodes.js';
import { lbaOutOfRange, toScsiError } from './sense.js';
import type { ScsiResult } from './types.js';

/** Most descriptors one GET LBA STATUS returns; the host asks again from where it stopped. */
const MAX_DESCRIPTORS = 64;
const MAPPED = 0;
const DEALLOCATED = 1;

/** GET LBA STATUS (SBC-3 5.5): the device's holes as deallocated blocks. */
async function getLbaStatus(ctx: CommandContext): Promise<ScsiResult> {
  const { cdb, lu } = ctx;
  const lba = uint(cdb, 2, 8);
  const alloc = allocationLength(cdb, 10, 4);
  if (lba >= lu.blockCount) throw lbaOutOfRange(lba);
  const bs = lu.blockSize;
  const start = lba * bs;
  const end = lu.blockCount * bs;
  let extents;
  try {
    extents = lu.device.capabilities.blockStatus
      ? await lu.device.blockStatus(start, end - start)
      : [{ length: end - start, hole: false, zero: false }];
  } catch (err) {
    throw toScsiError(err, 'read', lba);
  }
  // Runs in whole blocks: a block is deallocated only if it lies entirely in holes.
  const runs: Array<{ lba: number; blocks: number; status: number }> = [];
  let pos = start;
  for (const e of extents) {
    if (runs.length >= MAX_DESCRIPTORS) break;
    const eEnd = Math.min(end, pos + e.length);
    const first = e.hole ? Math.ceil(pos / bs) : Math.floor(pos / bs);
    const last = e.hole ? Math.floor(eEnd / bs) : Math.ceil(eEnd / bs);
    const status = e.hole ? DEALLOCATED : MAPPED;
    const prev = runs[runs.length - 1];
    const from = prev ? Math.max(first, prev.lba + prev.blocks) : first;
    if (last > from) {
      if (prev && prev.status === status && prev.lba + prev.blocks === from) prev.blocks += last - from;
      else runs.push({ lba: from, blocks: last - from, status });
    }
    pos = eEnd;
    if (pos >= end) break;
  }
  const data = Buffer.alloc(8 + 16 * runs.length);
  data.writeUInt32BE(4 + 16 * runs.length, 0);
  runs.forEach((r, i) => {
    writeUint64(data, 8 + 16 * i, r.lba);
    data.writeUInt32BE(Math.min(r.blocks, 0xffffffff), 16 + 16 * i);
    data[20 + 16 * i] = r.status;
  });
  return { status: op.SAM_STAT_GOOD, dataIn: truncate(data, alloc) };
}

export const LBA_STATUS_COMMANDS: CommandSpec[] = [
  {
    name: 'GET LBA STATUS',
    opcode: op.SERVICE_ACTION_IN_16,
    serviceAction: op.SAI_GET_LBA_STATUS,
    usage: [0x9e, 0x1f, ...Array(12).fill(0xff), 0x00, 0x04],
    reservation: 'read',
    alua: 'active',
    io: 'read',
    run: getLbaStatus,
  },
];
