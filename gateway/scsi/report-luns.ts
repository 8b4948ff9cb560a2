import { allocationLength, truncate } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import type { LogicalUnit } from './logical-unit.js';
import * as op from './opcodes.js';
import { invalidFieldInCdb } from './sense.js';
import type { ScsiResult } from './types.js';

/** 8-byte SAM LUN: peripheral device addressing below 256, flat space addressing above. */
export function encodeLun(lun: number): Buffer {
  const b = Buffer.alloc(8);
  if (lun < 256) b[1] = lun;
  else b.writeUInt16BE(0x4000 | (lun & 0x3fff), 0);
  return b;
}

function reportLuns(ctx: CommandContext<LogicalUnit | undefined>): ScsiResult {
  const { cdb } = ctx;
  const select = cdb[2]!;
  const alloc = allocationLength(cdb, 6, 4);
  if (alloc < 16) throw invalidFieldInCdb(6);
  // SELECT REPORT 0 and 2 list our logical units; 1 (well-known only) lists none.
  let luns: number[];
  if (select === 0x00 || select === 0x02) luns = ctx.target.lunsVisibleTo(ctx.nexus);
  else if (select === 0x01 || select === 0x10 || select === 0x11 || select === 0x12) luns = [];
  else throw invalidFieldInCdb(2);
  const data = Buffer.alloc(8 + 8 * luns.length);
  data.writeUInt32BE(8 * luns.length, 0);
  luns.forEach((lun, i) => encodeLun(lun).copy(data, 8 + 8 * i));
  return { status: op.SAM_STAT_GOOD, dataIn: truncate(data, alloc) };
}

export const REPORT_LUNS_COMMANDS: CommandSpec[] = [
  {
    name: 'REPORT LUNS',
    opcode: op.REPORT_LUNS,
    usage: [0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x04],
    reservation: 'none',
    alua: 'transitioning',
    ignoresUnitAttention: true,
    ignoresSpc2Reservation: true,
    anyLun: true,
    run: reportLuns,
  },
];
