import { isBlockError } from '../../fabric/errors.js';
import { ACCESS_STATE_CODE, type StableAccessState } from './alua.js';
import { allocationLength, truncate } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { contiguous, dataOut } from './io.js';
import * as op from './opcodes.js';
import { GOOD, invalidFieldInCdb, invalidFieldInParameterList, invalidOpcode, parameterListLengthError } from './sense.js';
import type { ScsiResult } from './types.js';

/** T_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP: the states a group can be in. */
const SUPPORTED_STATES = 0x80 | 0x08 | 0x04 | 0x02 | 0x01;

/** REPORT TARGET PORT GROUPS (SPC-4 6.36): the same answer through every port. */
function reportTargetPortGroups(ctx: CommandContext): ScsiResult {
  const { cdb } = ctx;
  const format = cdb[1]! >> 5;
  if (format > 1) throw invalidFieldInCdb(1, 7);
  const alloc = allocationLength(cdb, 6, 4);
  const parts: Buffer[] = [];
  for (const g of ctx.target.alua.groups()) {
    const d = Buffer.alloc(8 + 4 * g.ports.length);
    d[0] = (g.preferred ? 0x80 : 0) | ACCESS_STATE_CODE[g.state];
    d[1] = SUPPORTED_STATES;
    d.writeUInt16BE(g.id, 2);
    d[5] = g.statusCode;
    d[7] = g.ports.length;
    g.ports.forEach((port, i) => d.writeUInt16BE(port, 8 + 4 * i + 2));
    parts.push(d);
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(format === 1 ? 8 : 4);
  header.writeUInt32BE(header.length - 4 + body.length, 0);
  if (format === 1) {
    header[4] = 0x10; // FORMAT TYPE 001b: extended header
    header[5] = 1; // IMPLICIT TRANSITION TIME, seconds
  }
  return { status: op.SAM_STAT_GOOD, dataIn: truncate(Buffer.concat([header, body]), alloc) };
}

const SETTABLE: ReadonlyMap<number, StableAccessState> = new Map([
  [op.ALUA_ACTIVE_OPTIMIZED, 'active/optimized'],
  [op.ALUA_ACTIVE_NON_OPTIMIZED, 'active/non-optimized'],
  [op.ALUA_STANDBY, 'standby'],
  [op.ALUA_UNAVAILABLE, 'unavailable'],
]);

/** SET TARGET PORT GROUPS (SPC-4 6.46): explicit failover asked by the host. */
async function setTargetPortGroups(ctx: CommandContext): Promise<ScsiResult> {
  // TPGS says implicit only (SPC-4 6.46): the states follow which cluster member is Primary.
  if (!ctx.target.alua.explicit) throw invalidOpcode();
  const length = allocationLength(ctx.cdb, 6, 4);
  if (length === 0) return GOOD;
  const list = contiguous(dataOut(ctx, length));
  if (list.length < 4 || (list.length - 4) % 4 !== 0) throw parameterListLengthError();
  const wanted = new Map<number, StableAccessState>();
  for (let at = 4; at < list.length; at += 4) {
    const state = SETTABLE.get(list[at]! & 0x0f);
    const id = list.readUInt16BE(at + 2);
    if (!state) throw invalidFieldInParameterList(at, 3);
    if (!ctx.target.alua.group(id) || wanted.has(id)) throw invalidFieldInParameterList(at + 2);
    wanted.set(id, state);
  }
  try {
    await ctx.target.alua.setStates(wanted, true);
  } catch (err) {
    if (isBlockError(err)) throw invalidFieldInParameterList(4);
    throw err;
  }
  // The host that asked knows: only the other nexuses get the unit attention.
  for (const lun of ctx.target.lunNumbers()) {
    ctx.target.unitAttentions.clear(ctx.nexusKey, lun, op.ASC_ASYMMETRIC_ACCESS_STATE_CHANGED);
  }
  return { status: op.SAM_STAT_GOOD, dataOutLength: length };
}

export const TARGET_PORT_GROUP_COMMANDS: CommandSpec[] = [
  {
    name: 'REPORT TARGET PORT GROUPS',
    opcode: op.MAINTENANCE_IN,
    serviceAction: op.MI_REPORT_TARGET_PGS,
    usage: [0xa3, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x04],
    reservation: 'none',
    alua: 'transitioning',
    ignoresSpc2Reservation: true,
    run: reportTargetPortGroups,
  },
  {
    name: 'SET TARGET PORT GROUPS',
    opcode: op.MAINTENANCE_OUT,
    serviceAction: op.MO_SET_TARGET_PGS,
    usage: [0xa4, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x04],
    reservation: 'write',
    alua: 'unavailable',
    run: setTargetPortGroups,
  },
];
