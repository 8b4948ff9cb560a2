import { CAPACITY_COMMANDS } from './capacity.js';
import type { CommandSpec } from './command.js';
import { INQUIRY_COMMANDS } from './inquiry.js';
import { READ_WRITE_COMMANDS } from './read-write.js';
import { REPORT_LUNS_COMMANDS } from './report-luns.js';
import { REQUEST_SENSE_COMMANDS } from './request-sense.js';
import { UNIT_READY_COMMANDS } from './unit-ready.js';

/** Every command the target implements; each family lives in its own file. */
export const ALL_COMMANDS: readonly CommandSpec[] = [
  ...INQUIRY_COMMANDS,
  ...UNIT_READY_COMMANDS,
  ...REQUEST_SENSE_COMMANDS,
  ...REPORT_LUNS_COMMANDS,
  ...CAPACITY_COMMANDS,
  ...READ_WRITE_COMMANDS,
];
