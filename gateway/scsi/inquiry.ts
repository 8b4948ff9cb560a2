import { allocationLength, truncate } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import type { LogicalUnit } from './logical-unit.js';
import * as op from './opcodes.js';
import { invalidFieldInCdb } from './sense.js';
import type { ScsiResult } from './types.js';
import { asciiField, peripheralByte, vpdPage } from './vpd.js';

const STANDARD_LENGTH = 96;
/** Version descriptors: SAM-5, SPC-4, SBC-3, iSCSI (SPC-4 table 148). */
const VERSION_DESCRIPTORS = [0x00a0, 0x0460, 0x04c0, 0x0960];

function standard(ctx: CommandContext<LogicalUnit | undefined>): Buffer {
  const data = Buffer.alloc(STANDARD_LENGTH);
  data[0] = peripheralByte(ctx.lu);
  data[2] = 0x06; // VERSION: SPC-4
  data[3] = 0x10 | 0x02; // HISUP, RESPONSE DATA FORMAT 2
  data[4] = STANDARD_LENGTH - 5;
  data[5] = ctx.target.alua.explicit ? 0x30 : 0x10; // TPGS: implicit and explicit ALUA, or implicit only
  const ports = ctx.target.alua.groups().reduce((n, g) => n + g.ports.length, 0);
  data[6] = ports > 1 ? 0x10 : 0x00; // MULTIP
  data[7] = 0x02; // CMDQUE
  asciiField(data, 8, 8, ctx.target.vendor);
  asciiField(data, 16, 16, ctx.target.product);
  asciiField(data, 32, 4, ctx.target.revision);
  VERSION_DESCRIPTORS.forEach((v, i) => data.writeUInt16BE(v, 58 + 2 * i));
  return data;
}

function inquiry(ctx: CommandContext<LogicalUnit | undefined>): ScsiResult {
  const { cdb } = ctx;
  if (cdb[1]! & 0x02) throw invalidFieldInCdb(1, 1); // CMDDT is obsolete
  const evpd = (cdb[1]! & 0x01) !== 0;
  const alloc = allocationLength(cdb, 3, 2);
  if (!evpd) {
    if (cdb[2] !== 0) throw invalidFieldInCdb(2);
    return { status: op.SAM_STAT_GOOD, dataIn: truncate(standard(ctx), alloc) };
  }
  const page = vpdPage(ctx, cdb[2]!);
  if (!page) throw invalidFieldInCdb(2);
  return { status: op.SAM_STAT_GOOD, dataIn: truncate(page, alloc) };
}

export const INQUIRY_COMMANDS: CommandSpec[] = [
  {
    name: 'INQUIRY',
    opcode: op.INQUIRY,
    usage: [0x12, 0x01, 0xff, 0xff, 0xff, 0x04],
    reservation: 'none',
    alua: 'transitioning',
    ignoresUnitAttention: true,
    ignoresSpc2Reservation: true,
    anyLun: true,
    run: inquiry,
  },
];
