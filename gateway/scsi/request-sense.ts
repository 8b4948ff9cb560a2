import { allocationLength, truncate } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import type { LogicalUnit } from './logical-unit.js';
import * as op from './opcodes.js';
import { fixedSense, invalidFieldInCdb } from './sense.js';
import type { ScsiResult } from './types.js';
import { notReadyReason } from './unit-ready.js';

/**
 * REQUEST SENSE (SPC-4 6.29): reports, as parameter data with GOOD status, a pending unit
 * attention (consuming it) or what would stop a media command now; otherwise NO SENSE.
 */
function requestSense(ctx: CommandContext<LogicalUnit | undefined>): ScsiResult {
  const { cdb, lu } = ctx;
  if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0); // DESC: only fixed format sense
  const alloc = allocationLength(cdb, 4, 1);
  let sense: Buffer;
  if (!lu) {
    sense = fixedSense(op.ILLEGAL_REQUEST, op.ASC_LOGICAL_UNIT_NOT_SUPPORTED);
  } else {
    const ua = ctx.target.unitAttentions.take(ctx.nexusKey, lu.lun);
    const access = ctx.target.accessProblem(ctx.nexus);
    const reason = notReadyReason(lu);
    if (ua) sense = fixedSense(op.UNIT_ATTENTION, ua);
    else if (access) sense = fixedSense(op.NOT_READY, access);
    else if (reason) sense = fixedSense(op.NOT_READY, reason);
    else sense = fixedSense(op.NO_SENSE, op.ASC_NO_ADDITIONAL_SENSE);
  }
  return { status: op.SAM_STAT_GOOD, dataIn: truncate(sense, alloc) };
}

export const REQUEST_SENSE_COMMANDS: CommandSpec[] = [
  {
    name: 'REQUEST SENSE',
    opcode: op.REQUEST_SENSE,
    usage: [0x03, 0x01, 0, 0, 0xff, 0x04],
    reservation: 'none',
    alua: 'transitioning',
    ignoresUnitAttention: true,
    ignoresSpc2Reservation: true,
    anyLun: true,
    run: requestSense,
  },
];
