import { EventEmitter } from 'node:events';
import { BlockError } from '../../fabric/errors.js';
import { logger } from '../../fabric/log.js';
import * as op from './opcodes.js';

/** Asymmetric access states (SPC-4 5.16.2.4), as operators and logs name them. */
export type AccessState =
  | 'active/optimized'
  | 'active/non-optimized'
  | 'standby'
  | 'unavailable'
  | 'transitioning';

/** States a group settles in (transitioning is only ever on the way). */
export type StableAccessState = Exclude<AccessState, 'transitioning'>;

export const ACCESS_STATE_CODE: Record<AccessState, number> = {
  'active/optimized': op.ALUA_ACTIVE_OPTIMIZED,
  'active/non-optimized': op.ALUA_ACTIVE_NON_OPTIMIZED,
  standby: op.ALUA_STANDBY,
  unavailable: op.ALUA_UNAVAILABLE,
  transitioning: op.ALUA_TRANSITIONING,
};

/**
 * Multipath port-failover policy of the front-end ports: active-active keeps every group
 * active/optimized; active-passive keeps one group active/optimized and the rest standby.
 */
export type AluaPolicy = 'active-active' | 'active-passive';

export interface TargetPortGroupConfig {
  readonly id: number;
  /** Relative target port identifiers of the group's ports (portals). */
  readonly ports: readonly number[];
  /** The group active-passive prefers as the active one (PREF bit in RTPG). */
  readonly preferred?: boolean;
}

export interface AluaOptions {
  readonly groups: readonly TargetPortGroupConfig[];
  readonly policy: AluaPolicy;
  /** How long a group stays transitioning before it settles; default 20 ms. */
  readonly transitionMs?: number;
  /**
   * Hosts may change states with SET TARGET PORT GROUPS (default). False when the states
   * follow something the target does not decide alone (which cluster member is Primary).
   */
  readonly explicit?: boolean;
}

/** RTPG STATUS CODE: why the group last changed state. */
export const STATUS_NONE = 0;
export const STATUS_ALTERED_BY_SET_TPG = 1;
export const STATUS_ALTERED_BY_IMPLICIT = 2;

export interface TargetPortGroup {
  readonly id: number;
  readonly ports: readonly number[];
  readonly preferred: boolean;
  readonly state: AccessState;
  readonly statusCode: number;
  readonly inService: boolean;
}

interface GroupRecord {
  readonly id: number;
  readonly ports: readonly number[];
  readonly preferred: boolean;
  state: AccessState;
  statusCode: number;
  inService: boolean;
  /** Bumped by every transition, so a superseded one does not settle. */
  generation: number;
}

const log = logger('alua');

/**
 * The ALUA state model of a target's port groups. Emits 'change' (with the group id) on
 * every state change, including entering and leaving *transitioning*; the SCSI target
 * turns that into ASYMMETRIC ACCESS STATE CHANGED unit attentions.
 */
export class AluaState extends EventEmitter<{ change: [groupId: number, state: AccessState] }> {
  readonly policy: AluaPolicy;
  readonly explicit: boolean;
  private readonly groupsById = new Map<number, GroupRecord>();
  private readonly transitionMs: number;

  constructor(options: AluaOptions) {
    super();
    this.policy = options.policy;
    this.transitionMs = options.transitionMs ?? 20;
    this.explicit = options.explicit ?? true;
    if (options.groups.length === 0) throw new BlockError('EINVAL', 'ALUA needs at least one target port group');
    const active = options.groups.find((g) => g.preferred) ?? options.groups[0]!;
    for (const g of options.groups) {
      if (!Number.isInteger(g.id) || g.id < 0 || g.id > 0xffff || this.groupsById.has(g.id)) {
        throw new BlockError('EINVAL', `bad or duplicate target port group id ${g.id}`);
      }
      const state: AccessState =
        this.policy === 'active-active' || g === active ? 'active/optimized' : 'standby';
      this.groupsById.set(g.id, {
        id: g.id,
        ports: [...g.ports],
        preferred: g.preferred ?? false,
        state,
        statusCode: STATUS_NONE,
        inService: true,
        generation: 0,
      });
    }
  }

  /** One group holding every port: a target without multipath configuration. */
  static single(ports: readonly number[] = [1]): AluaState {
    return new AluaState({ groups: [{ id: 1, ports }], policy: 'active-active' });
  }

  groups(): TargetPortGroup[] {
    return [...this.groupsById.values()].map((g) => ({ ...g }));
  }

  group(id: number): TargetPortGroup | undefined {
    const g = this.groupsById.get(id);
    return g && { ...g };
  }

  /** The state seen through a port; a port in no group is treated as active/optimized. */
  stateFor(groupId: number, relativeTargetPortId: number): AccessState {
    const g =
      this.groupsById.get(groupId) ??
      [...this.groupsById.values()].find((x) => x.ports.includes(relativeTargetPortId));
    return g?.state ?? 'active/optimized';
  }

  /**
   * Explicit (SET TARGET PORT GROUPS) or administrative change of several groups at once.
   * Under active-passive, making a group active/optimized puts the other active ones in
   * standby. Resolves when every group has settled.
   */
  async setStates(wanted: ReadonlyMap<number, StableAccessState>, explicit = true): Promise<void> {
    for (const id of wanted.keys()) {
      const g = this.groupsById.get(id);
      if (!g) throw new BlockError('EINVAL', `unknown target port group ${id}`);
      if (!g.inService && wanted.get(id) !== 'unavailable') {
        throw new BlockError('EPERM', `target port group ${id} is out of service`);
      }
    }
    const changes = new Map(wanted);
    if (this.policy === 'active-passive' && [...wanted.values()].includes('active/optimized')) {
      for (const g of this.groupsById.values()) {
        if (!changes.has(g.id) && g.inService && g.state.startsWith('active')) changes.set(g.id, 'standby');
      }
    }
    const status = explicit ? STATUS_ALTERED_BY_SET_TPG : STATUS_ALTERED_BY_IMPLICIT;
    await Promise.all([...changes].map(([id, state]) => this.transition(this.groupsById.get(id)!, state, status)));
  }

  /** The transport lost or closed the group's portals: unavailable, and fail over if it was active. */
  async takeOutOfService(groupId: number): Promise<void> {
    const g = this.groupsById.get(groupId);
    if (!g) throw new BlockError('EINVAL', `unknown target port group ${groupId}`);
    const wasActive = g.state.startsWith('active');
    g.inService = false;
    const changes = new Map<number, StableAccessState>([[groupId, 'unavailable']]);
    if (this.policy === 'active-passive' && wasActive) {
      const next = this.pickStandby(groupId);
      if (next) changes.set(next.id, 'active/optimized');
    }
    log.warn({ groupId, failover: changes.size > 1 }, 'target port group out of service');
    await this.setStates(changes, false);
  }

  /** The group's portals are back: active (active-active), or standby unless no group is active. */
  async bringIntoService(groupId: number): Promise<void> {
    const g = this.groupsById.get(groupId);
    if (!g) throw new BlockError('EINVAL', `unknown target port group ${groupId}`);
    g.inService = true;
    const anyActive = [...this.groupsById.values()].some((x) => x.inService && x.id !== groupId && x.state.startsWith('active'));
    const state: StableAccessState =
      this.policy === 'active-active' || !anyActive ? 'active/optimized' : 'standby';
    log.info({ groupId, state }, 'target port group back in service');
    await this.transition(g, state, STATUS_ALTERED_BY_IMPLICIT);
  }

  /**
   * Implicit change to states decided elsewhere (a cluster member following who is Primary):
   * each listed group takes its state at once, `transitioning` included, which it keeps
   * until told otherwise. Every change is announced like any other.
   */
  follow(states: ReadonlyMap<number, AccessState>): void {
    for (const [id, state] of states) {
      const g = this.groupsById.get(id);
      if (!g || g.state === state) continue;
      g.generation++; // a timed transition still running does not settle over this
      g.statusCode = STATUS_ALTERED_BY_IMPLICIT;
      g.state = state;
      log.info({ groupId: id, state }, 'target port group state changed');
      this.emit('change', id, state);
    }
  }

  private pickStandby(except: number): GroupRecord | undefined {
    const candidates = [...this.groupsById.values()].filter((g) => g.id !== except && g.inService);
    return candidates.find((g) => g.preferred) ?? candidates[0];
  }

  private transition(g: GroupRecord, state: StableAccessState, statusCode: number): Promise<void> {
    if (g.state === state) return Promise.resolve();
    const generation = ++g.generation;
    g.statusCode = statusCode;
    g.state = 'transitioning';
    this.emit('change', g.id, g.state);
    return new Promise((resolve) => {
      setTimeout(() => {
        if (g.generation === generation) {
          g.state = state;
          log.info({ groupId: g.id, state }, 'target port group state changed');
          this.emit('change', g.id, state);
        }
        resolve();
      }, this.transitionMs);
    });
  }
}
