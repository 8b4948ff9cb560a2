import type { DeviceState } from '../../fabric/device.js';
import type { ReplicaState } from '../../fabric/layers/mirror/replica.js';
import type { PathState } from '../../fabric/layers/multipath/path.js';
import { LATENCY_BUCKETS_US, type IoStats } from '../../fabric/stats.js';
import type { FabricSwitch } from '../../fabric/switch.js';
import { Exposition, type Labels, type MetricType } from './exposition.js';

/**
 * The switch's counters and every device's failover state as Prometheus metrics. Counters
 * come from the IoStats the switch keeps per device and per port; state comes from each
 * device's status(), whose detail is free-form: only the well-known keys below become
 * metrics, so a layer adding a field never breaks the exposition.
 */

const DEVICE_STATES = ['optimal', 'degraded', 'rebuilding', 'failed'] as const satisfies readonly DeviceState[];
const REPLICA_STATES = ['in-sync', 'stale', 'resyncing', 'failed', 'quarantined', 'standby'] as const satisfies readonly ReplicaState[];
const PATH_STATES = ['active', 'standby', 'failed', 'marginal'] as const satisfies readonly PathState[];
// Compile-time check that every state has its 0/1 series: adding a state without listing it fails here.
type Exhaustive<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : never;
const exhaustive: [
  Exhaustive<DeviceState, (typeof DEVICE_STATES)[number]>,
  Exhaustive<ReplicaState, (typeof REPLICA_STATES)[number]>,
  Exhaustive<PathState, (typeof PATH_STATES)[number]>,
] = [true, true, true];
void exhaustive;

interface NumberMetric {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
}

/** Numbers at the top of status().detail. */
const DEVICE_DETAIL: Readonly<Record<string, NumberMetric>> = {
  bytesResynced: { name: 'blockgate_device_resynced_bytes_total', type: 'counter', help: 'Bytes copied by resyncs (mirror).' },
  readRepairs: { name: 'blockgate_device_read_repairs_total', type: 'counter', help: 'Bad reads repaired from another replica (mirror).' },
  waiting: { name: 'blockgate_device_waiting_requests', type: 'gauge', help: 'Requests queued until a path returns (multipath).' },
};

/** Lists in status().detail whose entries name one member of a failover set. */
interface DetailList {
  readonly key: string;
  /** Label naming the entry, and the entry field holding its name. */
  readonly label: string;
  readonly nameField: string;
  readonly stateMetric?: { readonly name: string; readonly help: string; readonly states: readonly string[] };
  readonly numbers: Readonly<Record<string, NumberMetric>>;
}

const DETAIL_LISTS: readonly DetailList[] = [
  {
    key: 'replicas',
    label: 'replica',
    nameField: 'name',
    stateMetric: { name: 'blockgate_replica_state', help: 'Mirror replica state: 1 for the current one.', states: REPLICA_STATES },
    numbers: {
      dirtyBytes: { name: 'blockgate_replica_dirty_bytes', type: 'gauge', help: 'Bytes the replica must resync.' },
      outstandingBytes: { name: 'blockgate_replica_outstanding_bytes', type: 'gauge', help: 'Bytes of requests in flight on the replica.' },
      readErrors: { name: 'blockgate_replica_read_errors_total', type: 'counter', help: 'Read errors seen on the replica.' },
      writeErrors: { name: 'blockgate_replica_write_errors_total', type: 'counter', help: 'Write errors seen on the replica.' },
      readRepairs: { name: 'blockgate_replica_read_repairs_total', type: 'counter', help: 'Bad reads of the replica repaired.' },
      recentFailures: { name: 'blockgate_replica_recent_failures', type: 'gauge', help: 'Failures inside the quarantine window.' },
    },
  },
  {
    key: 'paths',
    label: 'path',
    nameField: 'name',
    stateMetric: { name: 'blockgate_path_state', help: 'Multipath path state: 1 for the current one.', states: PATH_STATES },
    numbers: {
      outstanding: { name: 'blockgate_path_outstanding_requests', type: 'gauge', help: 'Requests in flight on the path.' },
      ios: { name: 'blockgate_path_ios_total', type: 'counter', help: 'Requests sent down the path.' },
      errors: { name: 'blockgate_path_errors_total', type: 'counter', help: 'Requests that failed on the path.' },
      recentFailures: { name: 'blockgate_path_recent_failures', type: 'gauge', help: 'Failures inside the marginal window.' },
    },
  },
  {
    key: 'resync',
    label: 'replica',
    nameField: 'target',
    numbers: {
      percent: { name: 'blockgate_resync_percent', type: 'gauge', help: 'Progress of the running resync of a replica.' },
      bytesCopied: { name: 'blockgate_resync_copied_bytes', type: 'gauge', help: 'Bytes the running resync has copied.' },
      bytesTotal: { name: 'blockgate_resync_bytes', type: 'gauge', help: 'Bytes the running resync had to copy when it started.' },
      etaSeconds: { name: 'blockgate_resync_eta_seconds', type: 'gauge', help: 'Estimated time until the resync ends.' },
    },
  },
];

const LE = LATENCY_BUCKETS_US.map((us) => String(us / 1e6));

function declareIo(x: Exposition, scope: 'device' | 'port'): void {
  x.family(`blockgate_${scope}_ops_total`, 'counter', `Requests completed per ${scope} and operation.`);
  x.family(`blockgate_${scope}_bytes_total`, 'counter', `Payload bytes of successful requests per ${scope} and operation.`);
  x.family(`blockgate_${scope}_errors_total`, 'counter', `Failed requests per ${scope} and operation.`);
  x.family(`blockgate_${scope}_latency_seconds`, 'histogram', `Request latency per ${scope} and operation.`);
  x.family(`blockgate_${scope}_in_flight`, 'gauge', `Requests in flight per ${scope}.`);
}

function renderIo(x: Exposition, scope: 'device' | 'port', name: string, stats: IoStats): void {
  const prefix = `blockgate_${scope}`;
  x.sample(`${prefix}_in_flight`, { [scope]: name }, stats.inFlight);
  for (const [op, c] of stats.byOp) {
    const labels = { [scope]: name, op };
    x.sample(`${prefix}_ops_total`, labels, c.ops);
    x.sample(`${prefix}_bytes_total`, labels, c.bytes);
    x.sample(`${prefix}_errors_total`, labels, c.errors);
    // Buckets are cumulative in the exposition; the histogram keeps per-bucket counts.
    let cumulative = 0;
    LE.forEach((le, i) => {
      cumulative += c.latency.counts[i]!;
      x.sample(`${prefix}_latency_seconds`, { ...labels, le }, cumulative, '_bucket');
    });
    x.sample(`${prefix}_latency_seconds`, { ...labels, le: '+Inf' }, c.latency.samples, '_bucket');
    x.sample(`${prefix}_latency_seconds`, labels, c.latency.sumUs / 1e6, '_sum');
    x.sample(`${prefix}_latency_seconds`, labels, c.latency.samples, '_count');
  }
}

function stateSeries(x: Exposition, name: string, labels: Labels, known: readonly string[], current: string): void {
  for (const state of known) x.sample(name, { ...labels, state }, state === current ? 1 : 0);
  // A state this build does not know still shows, rather than every series reading 0.
  if (!known.includes(current)) x.sample(name, { ...labels, state: current }, 1);
}

function declare(x: Exposition, m: NumberMetric): void {
  x.family(m.name, m.type, m.help);
}

function renderDetail(x: Exposition, device: string, detail: Record<string, unknown>): void {
  for (const [key, m] of Object.entries(DEVICE_DETAIL)) {
    const v = detail[key];
    if (typeof v === 'number') x.sample(m.name, { device }, v);
  }
  for (const list of DETAIL_LISTS) {
    const entries = detail[list.key];
    if (!Array.isArray(entries)) continue;
    for (const entry of entries as unknown[]) {
      if (typeof entry !== 'object' || entry === null) continue;
      const e = entry as Record<string, unknown>;
      const member = e[list.nameField];
      if (typeof member !== 'string') continue;
      const labels = { device, [list.label]: member };
      if (list.stateMetric && typeof e.state === 'string') stateSeries(x, list.stateMetric.name, labels, list.stateMetric.states, e.state);
      for (const [field, m] of Object.entries(list.numbers)) {
        const v = e[field];
        if (typeof v === 'number') x.sample(m.name, labels, v);
      }
    }
  }
}

/** The whole exposition for one member's switch. */
export function renderMetrics(fabric: FabricSwitch): string {
  const x = new Exposition();
  declareIo(x, 'device');
  x.family('blockgate_device_state', 'gauge', 'Device health: 1 for the current state (optimal, degraded, rebuilding, failed).');
  x.family('blockgate_device_size_bytes', 'gauge', 'Device size.');
  for (const m of Object.values(DEVICE_DETAIL)) declare(x, m);
  for (const list of DETAIL_LISTS) {
    if (list.stateMetric) x.family(list.stateMetric.name, 'gauge', list.stateMetric.help);
    for (const m of Object.values(list.numbers)) declare(x, m);
  }
  declareIo(x, 'port');

  for (const device of fabric.listDevices()) {
    const stats = fabric.deviceStats.get(device.name);
    if (stats) renderIo(x, 'device', device.name, stats);
    x.sample('blockgate_device_size_bytes', { device: device.name }, device.size);
    const status = device.status();
    stateSeries(x, 'blockgate_device_state', { device: device.name }, DEVICE_STATES, status.state);
    if (status.detail) renderDetail(x, device.name, status.detail);
  }
  for (const [port, stats] of fabric.portStats) renderIo(x, 'port', port, stats);
  return x.render();
}
