import type { AluaState } from '../scsi/alua.js';
import type { ClusterPlacement } from './cluster-placement.js';
import { TargetAcl, type InitiatorAccess } from './acl.js';
import type { LoginTarget } from './login.js';
import type { ScsiTargetPort } from './scsi-port.js';
import type { Task } from './task.js';
import type { IscsiTargetConfig } from './target-config.js';

export type { IscsiTargetConfig, PortalConfig, PortalGroupConfig } from './target-config.js';

/** The target's access list from its configuration. */
export function targetAclOf(config: IscsiTargetConfig): TargetAcl {
  return new TargetAcl(
    { ...(config.chap && { chap: config.chap }), allowNoAuth: config.allowNoAuth ?? config.chap === undefined, allowTargetReset: config.allowTargetReset === true },
    config.acls,
  );
}

/** What a target knows of a session logged in to it: enough to abort its tasks (Session has it). */
export interface TargetSession {
  readonly tasks: ReadonlyMap<number, Task>;
  readonly connections: ReadonlySet<{ readonly commands: { abortTask(task: Task): void } }>;
}

/**
 * A configured target while the server runs: its SCSI side, its ALUA state, and which
 * listeners carry which of its portal groups. In iSCSI a SCSI target port is a portal
 * group, so relative target port ids are the groups' positions (1-based).
 */
export class TargetRuntime<S extends TargetSession = TargetSession> implements LoginTarget {
  readonly name: string;
  readonly alias?: string;
  /** Listener id → portal group tag. */
  readonly groupOfListener = new Map<string, number>();
  /** Normal sessions logged in to this target. */
  readonly sessions = new Set<S>();
  /** In a cluster: where logins go and which group states every member reports. */
  placement: ClusterPlacement | undefined;

  constructor(
    readonly config: IscsiTargetConfig,
    readonly scsi: ScsiTargetPort,
    readonly alua: AluaState,
    readonly acl: TargetAcl = targetAclOf(config),
  ) {
    this.name = config.name;
    this.alias = config.alias;
  }

  accessOf(initiatorName: string): InitiatorAccess | undefined {
    return this.acl.accessOf(initiatorName);
  }

  relativePortOf(groupId: number): number {
    return this.config.portalGroups.findIndex((g) => g.id === groupId) + 1;
  }
}

/** Abort, without responses, the tasks of every session of the target that match (LUN and target resets). */
export function abortTargetTasks(target: TargetRuntime, lun: number | undefined): void {
  for (const session of target.sessions) {
    for (const task of [...session.tasks.values()]) {
      if (lun !== undefined && task.lun !== lun) continue;
      for (const c of session.connections) c.commands.abortTask(task);
    }
  }
}
