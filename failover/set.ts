/**
 * A failover set: a group of interchangeable components — the replicas and spares of a
 * mirror, the paths to a disk, and (for the cluster) member processes — each holding a
 * role. This file is the vocabulary every kind of set shares; mirror-set.ts and path-set.ts
 * are the sets over fabric layers, and the API, metrics and dashboard read only the typed
 * state declared here.
 *
 * Roles
 *   primary    leads the set: the replica reads prefer and resyncs copy from first, the
 *              path that carries I/O (the preferred one, under active-active)
 *   secondary  in the set and ready to take over: the other replicas, the other active
 *              paths, the next standby path in priority order
 *   alternate  waits outside: hot spares, further standby paths, members out of service
 *
 * Composition
 *   single        one member serves at a time, the others stand by (active-passive paths)
 *   n-way         every member in service serves at once (a mirror, active-active paths)
 *   hierarchical  some members are themselves sets (paths inside a replica inside a mirror);
 *                 `serving` still says whether one or all serve at this level
 */
import type { DeviceState } from '../fabric/device.js';
import type { ReplicaSlot, ReplicaState } from '../fabric/layers/mirror/replica.js';
import type { ReadPolicy } from '../fabric/layers/mirror/read-policy.js';
import type { ResyncProgress } from '../fabric/layers/mirror/resync.js';
import type { MultipathPolicy } from '../fabric/layers/multipath/multipath.js';
import type { ActionInfo, ActionTable } from './action.js';
import type { FailureLimit } from './failure-window.js';

/** A path set's failback: 'manual', 'immediate', or seconds the preferred path must stay healthy first. */
export type Failback = 'manual' | 'immediate' | number;

export type Role = 'primary' | 'secondary' | 'alternate';
export const ROLES = ['primary', 'secondary', 'alternate'] as const satisfies readonly Role[];
export type Composition = 'single' | 'n-way' | 'hierarchical';

/** How a member has been doing, by the set's one failure window. */
export interface MemberHealth {
  readonly recentFailures: number;
  readonly window: FailureLimit;
  readonly lastError?: string;
}

interface MemberBase {
  readonly name: string;
  readonly role: Role;
  readonly health: MemberHealth;
  /** When this member is itself a failover set (hierarchical composition): its name. */
  readonly set?: string;
}

export interface ReplicaMember extends MemberBase {
  readonly kind: 'replica';
  readonly slot: ReplicaSlot;
  readonly state: ReplicaState;
  readonly dirtyBytes: number;
  readonly outstandingBytes: number;
  readonly readErrors: number;
  readonly writeErrors: number;
  readonly readRepairs: number;
}

/** The fabric's path states, plus the set's own: marginal (flapping) and offline (operator). */
export type PathMemberState = 'active' | 'standby' | 'failed' | 'marginal' | 'offline';
export const PATH_MEMBER_STATES = ['active', 'standby', 'failed', 'marginal', 'offline'] as const satisfies readonly PathMemberState[];

export interface PathMember extends MemberBase {
  readonly kind: 'path';
  readonly state: PathMemberState;
  readonly outstanding: number;
  readonly ios: number;
  /** Transport failures of requests on the path. */
  readonly errors: number;
}

export type SetMember = ReplicaMember | PathMember;

interface SetStateBase<M extends SetMember> {
  readonly name: string;
  /** The device the set drives (the mirror or multipath device of the same name). */
  readonly device: string;
  readonly composition: Composition;
  readonly serving: 'one' | 'all';
  readonly state: DeviceState;
  readonly members: readonly M[];
  /** The set this one is a member of, if any. */
  readonly parent?: { readonly set: string; readonly member: string };
  readonly actions: readonly ActionInfo[];
}

export interface MirrorSetState extends SetStateBase<ReplicaMember> {
  readonly kind: 'mirror';
  readonly policy: { readonly readPolicy: ReadPolicy; readonly failureLimit: FailureLimit; readonly probeIntervalMs: number; readonly resyncRateMiBps: number };
  readonly resync: readonly ResyncProgress[];
  readonly bytesResynced: number;
  readonly readRepairs: number;
  readonly metadataErrors: number;
  /** The mirror's own state that cannot be saved now (bitmaps, replica states). */
  readonly metadataFaults: readonly string[];
}

export interface PathSetState extends SetStateBase<PathMember> {
  readonly kind: 'multipath';
  readonly policy: { readonly mode: MultipathPolicy; readonly failback: Failback; readonly probeIntervalMs: number; readonly marginal: FailureLimit };
  readonly activePath?: string;
  /** Requests queued until a path is usable. */
  readonly waiting: number;
}

export type FailoverSetState = MirrorSetState | PathSetState;

/** What the registry (sets.ts) and the API need from every set. */
export interface FailoverSet {
  readonly name: string;
  readonly kind: FailoverSetState['kind'];
  readonly actions: ActionTable;
  state(): FailoverSetState;
  /** Begin probing and reconcile the members with the policy. */
  start(): void;
  /** Stop probing; the device itself is closed by its owner. */
  stop(): void;
  /** Resolves once the work the set started (state saves, probes, promotions) is done. */
  settled(): Promise<void>;
}
