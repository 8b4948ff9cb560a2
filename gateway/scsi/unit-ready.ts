import type { CommandContext, CommandSpec } from './command.js';
import * as op from './opcodes.js';
import { GOOD, notReady } from './sense.js';
import type { ScsiResult } from './types.js';
import type { LogicalUnit } from './logical-unit.js';
import type { Asc } from './opcodes.js';

/** Why the logical unit cannot do media access now, if it cannot (the device's real health). */
export function notReadyReason(lu: LogicalUnit): Asc | undefined {
  return lu.device.status().state === 'failed' ? op.ASC_LOGICAL_UNIT_NOT_READY_MANUAL_INTERVENTION : undefined;
}

function testUnitReady(ctx: CommandContext): ScsiResult {
  const reason = notReadyReason(ctx.lu);
  if (reason) throw notReady(reason);
  return GOOD;
}

export const UNIT_READY_COMMANDS: CommandSpec[] = [
  {
    name: 'TEST UNIT READY',
    opcode: op.TEST_UNIT_READY,
    usage: [0x00, 0, 0, 0, 0, 0x04],
    reservation: 'none',
    alua: 'active',
    run: testUnitReady,
  },
];
