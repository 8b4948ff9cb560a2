import { allocationLength, truncate, uint, writeUint64 } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import * as op from './opcodes.js';
import { provisioning } from './provisioning.js';
import { invalidFieldInCdb } from './sense.js';
import type { ScsiResult } from './types.js';

function readCapacity10(ctx: CommandContext): ScsiResult {
  const { cdb, lu } = ctx;
  // Without PMI the LOGICAL BLOCK ADDRESS field must be zero (SBC-3 5.16).
  if (!(cdb[8]! & 0x01) && uint(cdb, 2, 4) !== 0) throw invalidFieldInCdb(2);
  const data = Buffer.alloc(8);
  data.writeUInt32BE(Math.min(lu.blockCount - 1, 0xffffffff), 0);
  data.writeUInt32BE(lu.blockSize, 4);
  return { status: op.SAM_STAT_GOOD, dataIn: data };
}

function readCapacity16(ctx: CommandContext): ScsiResult {
  const { cdb, lu } = ctx;
  const data = Buffer.alloc(32);
  writeUint64(data, 0, Math.max(0, lu.blockCount - 1));
  data.writeUInt32BE(lu.blockSize, 8);
  // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT stays 0: the device's preferred size is a
  // hint, already given as OPTIMAL TRANSFER LENGTH GRANULARITY in the Block Limits page.
  const p = provisioning(lu);
  data[14] = (p.unmap ? 0x80 : 0) | (p.readsZero ? 0x40 : 0); // LBPME, LBPRZ
  return { status: op.SAM_STAT_GOOD, dataIn: truncate(data, allocationLength(cdb, 10, 4)) };
}

export const CAPACITY_COMMANDS: CommandSpec[] = [
  {
    name: 'READ CAPACITY(10)',
    opcode: op.READ_CAPACITY_10,
    usage: [0x25, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, 0x04],
    reservation: 'none',
    alua: 'active',
    run: readCapacity10,
  },
  {
    name: 'READ CAPACITY(16)',
    opcode: op.SERVICE_ACTION_IN_16,
    serviceAction: op.SAI_READ_CAPACITY_16,
    usage: [0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04],
    reservation: 'none',
    alua: 'active',
    run: readCapacity16,
  },
];
