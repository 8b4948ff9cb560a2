import type { Nexus, ScsiCommand, ScsiResult } from '../scsi/types.js';
import type { ScsiTarget } from '../scsi/target.js';

/**
 * What the transport needs from the SCSI layer of one target (gateway/scsi/target.ts):
 * command execution plus the task-management and nexus events only the transport sees.
 */
export interface ScsiTargetPort {
  execute(cmd: ScsiCommand): Promise<ScsiResult>;
  /** ABORT TASK: the command with this tag from this nexus (no response goes out for it). */
  abortTask(nexus: Nexus, taskTag: number): void | Promise<void>;
  /** ABORT TASK SET / CLEAR TASK SET on one LUN for one nexus. */
  abortTaskSet(nexus: Nexus, lun: number): void | Promise<void>;
  /** LOGICAL UNIT RESET: other nexuses get a unit attention. */
  lunReset(nexus: Nexus, lun: number): void | Promise<void>;
  /** TARGET WARM/COLD RESET. */
  targetReset(nexus: Nexus, cold: boolean): void | Promise<void>;
  /** The I_T nexus is gone (logout, dropped connection, reinstatement). */
  nexusLoss(nexus: Nexus): void | Promise<void>;
  /** The LUN exists and this nexus may see it (LUN masking). */
  hasLun(nexus: Nexus, lun: number): boolean;
  close(): Promise<void>;
}

/** The SCSI layer's target as the transport's port (gateway/scsi/target.ts). */
export function scsiTargetPort(target: ScsiTarget): ScsiTargetPort {
  return {
    execute: (cmd) => target.execute(cmd),
    abortTask: (nexus, tag) => void target.abortTask(nexus, tag),
    abortTaskSet: (nexus, lun) => target.abortTaskSet(nexus, lun),
    lunReset: (_nexus, lun) => target.lunReset(lun),
    targetReset: () => target.targetReset(),
    nexusLoss: (nexus) => target.nexusLost(nexus),
    hasLun: (nexus, lun) => target.unitFor(nexus, lun) !== undefined,
    close: async () => target.close(),
  };
}
