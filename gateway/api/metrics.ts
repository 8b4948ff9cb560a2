import { LATENCY_BUCKETS_US, type IoStats } from '../../fabric/stats.js';
import type { FabricSwitch } from '../../fabric/switch.js';
import type { FailoverSets } from '../../failover/sets.js';
import { Exposition } from './exposition.js';
import { declareSetMetrics, DEVICE_STATES, renderSetMetrics, stateSeries } from './set-metrics.js';
import type { Refusals } from '../access/refusals.js';

/**
 * The switch's counters and every failover set's typed state as Prometheus metrics.
 * Counters come from the IoStats the switch keeps per device and per port; set state from
 * each set's state() (set-metrics.ts).
 */

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

/** The whole exposition for one member's switch and the clients its front ends refused. */
export function renderMetrics(fabric: FabricSwitch, sets: FailoverSets, refusals?: Refusals): string {
  const x = new Exposition();
  x.family('blockgate_connections_refused_total', 'counter', 'Clients turned away, by protocol and reason (limits, timeouts, TLS, access lists, authentication).');
  for (const r of refusals?.counts() ?? []) x.sample('blockgate_connections_refused_total', { protocol: r.protocol, reason: r.reason }, r.count);
  declareIo(x, 'device');
  x.family('blockgate_device_state', 'gauge', 'Device health: 1 for the current state (optimal, degraded, rebuilding, failed).');
  x.family('blockgate_device_size_bytes', 'gauge', 'Device size.');
  declareSetMetrics(x);
  declareIo(x, 'port');

  for (const device of fabric.listDevices()) {
    const stats = fabric.deviceStats.get(device.name);
    if (stats) renderIo(x, 'device', device.name, stats);
    x.sample('blockgate_device_size_bytes', { device: device.name }, device.size);
    stateSeries(x, 'blockgate_device_state', { device: device.name }, DEVICE_STATES, device.status().state);
  }
  renderSetMetrics(x, sets.states());
  for (const [port, stats] of fabric.portStats) renderIo(x, 'port', port, stats);
  return x.render();
}
