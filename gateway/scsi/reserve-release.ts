import type { CommandContext, CommandSpec } from './command.js';
import * as op from './opcodes.js';
import { GOOD, invalidFieldInCdb, reservationConflict } from './sense.js';
import type { ScsiResult } from './types.js';

/**
 * RESERVE(6)/(10) and RELEASE(6)/(10), the SPC-2 reservations: one holder per logical
 * unit, lost on reset or nexus loss, and refused while any persistent reservation
 * registration exists (SPC-4 5.13.3, compatible reservation handling).
 */
function reserve(ctx: CommandContext): ScsiResult {
  const { cdb, lu } = ctx;
  // Third-party and extent reservations are obsolete.
  if (cdb[0] === op.RESERVE_10 ? cdb[1]! & 0x12 : cdb[1]! & 0x1f) throw invalidFieldInCdb(1);
  if (lu.pr.hasRegistrations()) throw reservationConflict();
  lu.reservation.reserveSpc2(ctx.nexusKey, ctx.target.targetName);
  return GOOD;
}

function release(ctx: CommandContext): ScsiResult {
  const { cdb, lu } = ctx;
  if (cdb[0] === op.RELEASE_10 ? cdb[1]! & 0x12 : cdb[1]! & 0x1f) throw invalidFieldInCdb(1);
  if (lu.pr.hasRegistrations()) throw reservationConflict();
  // Releasing someone else's reservation (or none) succeeds and changes nothing.
  lu.reservation.releaseSpc2(ctx.nexusKey, ctx.target.targetName);
  return GOOD;
}

const common = { reservation: 'none', alua: 'active' } as const;

export const RESERVE_RELEASE_COMMANDS: CommandSpec[] = [
  { ...common, name: 'RESERVE(6)', opcode: op.RESERVE_6, usage: [0x16, 0, 0, 0, 0, 0x04], run: reserve },
  { ...common, name: 'RELEASE(6)', opcode: op.RELEASE_6, usage: [0x17, 0, 0, 0, 0, 0x04], ignoresSpc2Reservation: true, run: release },
  { ...common, name: 'RESERVE(10)', opcode: op.RESERVE_10, usage: [0x56, 0x12, 0, 0, 0, 0, 0, 0, 0, 0x04], run: reserve },
  { ...common, name: 'RELEASE(10)', opcode: op.RELEASE_10, usage: [0x57, 0x12, 0, 0, 0, 0, 0, 0, 0, 0x04], ignoresSpc2Reservation: true, run: release },
];
