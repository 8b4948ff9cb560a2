/**
 * Failover sets as Prometheus metrics, from their typed state (failover/set.ts): member
 * states as 0/1 series, roles, counters, resync progress. Metric names and labels are those
 * the mirror and multipath devices have always exposed (`device`, `replica`, `path`).
 */
import type { DeviceState } from '../../fabric/device.js';
import type { ReplicaState } from '../../fabric/layers/mirror/replica.js';
import { PATH_MEMBER_STATES, ROLES, type FailoverSetState, type PathMember, type PathMemberState, type ReplicaMember } from '../../failover/set.js';
import type { Exposition, Labels, MetricType } from './exposition.js';

export const DEVICE_STATES = ['optimal', 'degraded', 'rebuilding', 'failed'] as const satisfies readonly DeviceState[];
const REPLICA_STATES = ['in-sync', 'stale', 'resyncing', 'failed', 'quarantined', 'offline', 'standby'] as const satisfies readonly ReplicaState[];
// Compile-time check that every state has its 0/1 series: adding a state without listing it fails here.
type Exhaustive<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : never;
const exhaustive: [
  Exhaustive<DeviceState, (typeof DEVICE_STATES)[number]>,
  Exhaustive<ReplicaState, (typeof REPLICA_STATES)[number]>,
  Exhaustive<PathMemberState, (typeof PATH_MEMBER_STATES)[number]>,
] = [true, true, true];
void exhaustive;

const FAMILIES: ReadonlyArray<readonly [string, MetricType, string]> = [
  ['blockgate_set_member_role', 'gauge', 'Role of each failover-set member: 1 for the current one (primary, secondary, alternate).'],
  ['blockgate_device_resynced_bytes_total', 'counter', 'Bytes copied by resyncs (mirror).'],
  ['blockgate_device_read_repairs_total', 'counter', 'Bad reads repaired from another replica (mirror).'],
  ['blockgate_device_metadata_errors_total', 'counter', 'Failures to read or write the mirror\'s own state (bitmaps, replica states).'],
  ['blockgate_device_waiting_requests', 'gauge', 'Requests queued until a path returns (multipath).'],
  ['blockgate_replica_state', 'gauge', 'Mirror replica state: 1 for the current one.'],
  ['blockgate_replica_dirty_bytes', 'gauge', 'Bytes the replica must resync.'],
  ['blockgate_replica_outstanding_bytes', 'gauge', 'Bytes of requests in flight on the replica.'],
  ['blockgate_replica_read_errors_total', 'counter', 'Read errors seen on the replica.'],
  ['blockgate_replica_write_errors_total', 'counter', 'Write errors seen on the replica.'],
  ['blockgate_replica_read_repairs_total', 'counter', 'Bad reads of the replica repaired.'],
  ['blockgate_replica_recent_failures', 'gauge', 'Failures inside the quarantine window.'],
  ['blockgate_path_state', 'gauge', 'Multipath path state: 1 for the current one.'],
  ['blockgate_path_outstanding_requests', 'gauge', 'Requests in flight on the path.'],
  ['blockgate_path_ios_total', 'counter', 'Requests sent down the path.'],
  ['blockgate_path_errors_total', 'counter', 'Transport failures of requests on the path.'],
  ['blockgate_path_recent_failures', 'gauge', 'Failures inside the marginal window.'],
  ['blockgate_resync_percent', 'gauge', 'Progress of the running resync of a replica.'],
  ['blockgate_resync_copied_bytes', 'gauge', 'Bytes the running resync has copied.'],
  ['blockgate_resync_bytes', 'gauge', 'Bytes the running resync had to copy when it started.'],
  ['blockgate_resync_eta_seconds', 'gauge', 'Estimated time until the resync ends.'],
];

/** Per-member numbers: metric name and the field it shows. */
const REPLICA_NUMBERS: ReadonlyArray<readonly [string, (r: ReplicaMember) => number]> = [
  ['blockgate_replica_dirty_bytes', (r) => r.dirtyBytes],
  ['blockgate_replica_outstanding_bytes', (r) => r.outstandingBytes],
  ['blockgate_replica_read_errors_total', (r) => r.readErrors],
  ['blockgate_replica_write_errors_total', (r) => r.writeErrors],
  ['blockgate_replica_read_repairs_total', (r) => r.readRepairs],
  ['blockgate_replica_recent_failures', (r) => r.health.recentFailures],
];
const PATH_NUMBERS: ReadonlyArray<readonly [string, (p: PathMember) => number]> = [
  ['blockgate_path_outstanding_requests', (p) => p.outstanding],
  ['blockgate_path_ios_total', (p) => p.ios],
  ['blockgate_path_errors_total', (p) => p.errors],
  ['blockgate_path_recent_failures', (p) => p.health.recentFailures],
];

export function declareSetMetrics(x: Exposition): void {
  for (const [name, type, help] of FAMILIES) x.family(name, type, help);
}

export function stateSeries(x: Exposition, name: string, labels: Labels, known: readonly string[], current: string): void {
  for (const state of known) x.sample(name, { ...labels, state }, state === current ? 1 : 0);
  // A state this build does not know still shows, rather than every series reading 0.
  if (!known.includes(current)) x.sample(name, { ...labels, state: current }, 1);
}

export function renderSetMetrics(x: Exposition, states: readonly FailoverSetState[]): void {
  for (const s of states) {
    const device = s.device;
    for (const m of s.members) {
      for (const role of ROLES) x.sample('blockgate_set_member_role', { device, member: m.name, role }, m.role === role ? 1 : 0);
    }
    switch (s.kind) {
      case 'mirror': {
        x.sample('blockgate_device_resynced_bytes_total', { device }, s.bytesResynced);
        x.sample('blockgate_device_read_repairs_total', { device }, s.readRepairs);
        x.sample('blockgate_device_metadata_errors_total', { device }, s.metadataErrors);
        for (const r of s.members) {
          const labels = { device, replica: r.name };
          stateSeries(x, 'blockgate_replica_state', labels, REPLICA_STATES, r.state);
          for (const [name, of] of REPLICA_NUMBERS) x.sample(name, labels, of(r));
        }
        for (const p of s.resync) {
          const labels = { device, replica: p.target };
          x.sample('blockgate_resync_percent', labels, p.percent);
          x.sample('blockgate_resync_copied_bytes', labels, p.bytesCopied);
          x.sample('blockgate_resync_bytes', labels, p.bytesTotal);
          if (p.etaSeconds !== null) x.sample('blockgate_resync_eta_seconds', labels, p.etaSeconds);
        }
        break;
      }
      case 'multipath': {
        x.sample('blockgate_device_waiting_requests', { device }, s.waiting);
        for (const p of s.members) {
          const labels = { device, path: p.name };
          stateSeries(x, 'blockgate_path_state', labels, PATH_MEMBER_STATES, p.state);
          for (const [name, of] of PATH_NUMBERS) x.sample(name, labels, of(p));
        }
        break;
      }
    }
  }
}
