import { CAPACITY_COMMANDS } from './capacity.js';
import type { CommandSpec } from './command.js';
import { COMPARE_AND_WRITE_COMMANDS } from './compare-and-write.js';
import { INQUIRY_COMMANDS } from './inquiry.js';
import { LBA_STATUS_COMMANDS } from './lba-status.js';
import { MODE_COMMANDS } from './mode.js';
import { ORWRITE_COMMANDS } from './orwrite.js';
import { PERSISTENT_RESERVE_COMMANDS } from './persistent-reserve.js';
import { PREFETCH_COMMANDS } from './prefetch.js';
import { READ_WRITE_COMMANDS } from './read-write.js';
import { REPORT_LUNS_COMMANDS } from './report-luns.js';
import { REPORT_OPCODES_COMMANDS } from './report-opcodes.js';
import { REQUEST_SENSE_COMMANDS } from './request-sense.js';
import { RESERVE_RELEASE_COMMANDS } from './reserve-release.js';
import { SYNC_CACHE_COMMANDS } from './sync-cache.js';
import { TARGET_PORT_GROUP_COMMANDS } from './target-port-groups.js';
import { UNIT_READY_COMMANDS } from './unit-ready.js';
import { UNMAP_COMMANDS } from './unmap.js';
import { VERIFY_COMMANDS } from './verify.js';
import { WRITE_SAME_COMMANDS } from './write-same.js';

/** Every command the target implements; each family lives in its own file. */
export const ALL_COMMANDS: readonly CommandSpec[] = [
  ...INQUIRY_COMMANDS,
  ...UNIT_READY_COMMANDS,
  ...REQUEST_SENSE_COMMANDS,
  ...REPORT_LUNS_COMMANDS,
  ...REPORT_OPCODES_COMMANDS,
  ...CAPACITY_COMMANDS,
  ...LBA_STATUS_COMMANDS,
  ...READ_WRITE_COMMANDS,
  ...VERIFY_COMMANDS,
  ...COMPARE_AND_WRITE_COMMANDS,
  ...ORWRITE_COMMANDS,
  ...WRITE_SAME_COMMANDS,
  ...UNMAP_COMMANDS,
  ...PREFETCH_COMMANDS,
  ...SYNC_CACHE_COMMANDS,
  ...MODE_COMMANDS,
  ...RESERVE_RELEASE_COMMANDS,
  ...PERSISTENT_RESERVE_COMMANDS,
  ...TARGET_PORT_GROUP_COMMANDS,
];
