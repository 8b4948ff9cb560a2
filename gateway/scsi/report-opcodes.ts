import { allocationLength, truncate } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import * as op from './opcodes.js';
import { invalidFieldInCdb } from './sense.js';
import type { ScsiResult } from './types.js';

/** Command timeouts descriptor: nominal unspecified, 30 s recommended (SPC-4 6.25.4). */
function timeouts(): Buffer {
  const t = Buffer.alloc(12);
  t.writeUInt16BE(0x0a, 0);
  t.writeUInt32BE(30, 8);
  return t;
}

function allCommands(ctx: CommandContext, rctd: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const spec of ctx.target.commands.all) {
    const d = Buffer.alloc(8);
    d[0] = spec.opcode;
    d.writeUInt16BE(spec.serviceAction ?? 0, 2);
    d[5] = (rctd ? 0x02 : 0) | (spec.serviceAction !== undefined ? 0x01 : 0);
    d.writeUInt16BE(spec.usage.length, 6);
    parts.push(d);
    if (rctd) parts.push(timeouts());
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

function oneCommand(spec: CommandSpec | undefined, rctd: boolean): Buffer {
  if (!spec) {
    const d = Buffer.alloc(4);
    d[1] = 0x01; // SUPPORT 001b: not supported
    return d;
  }
  const d = Buffer.alloc(4 + spec.usage.length);
  d[1] = (rctd ? 0x80 : 0) | 0x03; // SUPPORT 011b: as the standard says
  d.writeUInt16BE(spec.usage.length, 2);
  Buffer.from(spec.usage).copy(d, 4);
  return rctd ? Buffer.concat([d, timeouts()]) : d;
}

/** REPORT SUPPORTED OPERATION CODES (SPC-4 6.35): all commands, or one by opcode / service action. */
function reportSupportedOperationCodes(ctx: CommandContext): ScsiResult {
  const { cdb } = ctx;
  const rctd = (cdb[2]! & 0x80) !== 0;
  const options = cdb[2]! & 0x07;
  const opcode = cdb[3]!;
  const action = cdb.readUInt16BE(4);
  const alloc = allocationLength(cdb, 6, 4);
  const table = ctx.target.commands;
  const hasActions = table.hasServiceActions(opcode);
  let data: Buffer;
  switch (options) {
    case 0:
      data = allCommands(ctx, rctd);
      break;
    case 1:
      if (hasActions) throw invalidFieldInCdb(2, 2);
      data = oneCommand(table.find(opcode, undefined), rctd);
      break;
    case 2:
      if (hasActions === false) throw invalidFieldInCdb(2, 2);
      data = oneCommand(action > 0x1f ? undefined : table.find(opcode, action), rctd);
      break;
    case 3:
      data = oneCommand(table.find(opcode, hasActions ? action : undefined), rctd);
      break;
    default:
      throw invalidFieldInCdb(2, 2);
  }
  return { status: op.SAM_STAT_GOOD, dataIn: truncate(data, alloc) };
}

export const REPORT_OPCODES_COMMANDS: CommandSpec[] = [
  {
    name: 'REPORT SUPPORTED OPERATION CODES',
    opcode: op.MAINTENANCE_IN,
    serviceAction: op.MI_REPORT_SUPPORTED_OPERATION_CODES,
    usage: [0xa3, 0x1f, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x04],
    reservation: 'none',
    alua: 'standby',
    ignoresSpc2Reservation: true,
    run: reportSupportedOperationCodes,
  },
];
