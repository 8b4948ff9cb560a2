import type { FabricSwitch } from '../../fabric/switch.js';
import type { ClusterStatus } from '../../failover/cluster/runtime.js';
import type { FailoverSets } from '../../failover/sets.js';
import type { FailoverSetState } from '../../failover/set.js';

/** What GET /api/v1/status returns: one member's exports, devices, failover sets and listeners. */
export interface MemberStatus {
  readonly member: string;
  readonly exports: Array<{ name: string; device: string; readOnly: boolean; description: string }>;
  readonly devices: Array<{ name: string; size: number; state: string; detail?: Record<string, unknown>; io: Record<string, unknown> }>;
  /** Every mirror and multipath device's set: members, roles, states, policy, actions. */
  readonly failoverSets: FailoverSetState[];
  readonly ports: Array<{ port: string; io: Record<string, unknown> }>;
  /** Listening addresses by protocol. */
  readonly frontEnds: Record<string, string[]>;
  /** A cluster member's view of its cluster: members, networks, roles, alarms. */
  readonly cluster?: ClusterStatus;
}

export interface StatusSource {
  readonly member: string;
  readonly fabric: FabricSwitch;
  readonly sets: FailoverSets;
  addresses(): Record<string, string[]>;
  readonly cluster?: { status(): ClusterStatus | undefined };
}

export function memberStatus(source: StatusSource): MemberStatus {
  const { fabric } = source;
  const cluster = source.cluster?.status();
  return {
    member: source.member,
    exports: fabric.listExports().map((e) => ({ name: e.name, device: e.device.name, readOnly: e.readOnly, description: e.description })),
    devices: fabric.listDevices().map((d) => {
      const status = d.status();
      return {
        name: d.name,
        size: d.size,
        state: status.state,
        ...(status.detail && { detail: status.detail }),
        io: fabric.deviceStats.get(d.name)?.toJSON() ?? {},
      };
    }),
    failoverSets: source.sets.states(),
    ports: [...fabric.portStats].map(([port, stats]) => ({ port, io: stats.toJSON() })),
    frontEnds: source.addresses(),
    ...(cluster && { cluster }),
  };
}
