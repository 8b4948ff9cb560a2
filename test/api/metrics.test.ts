import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { FabricSwitch } from '../../fabric/switch.js';
import { LATENCY_BUCKETS_US } from '../../fabric/stats.js';
import { escapeLabelValue } from '../../gateway/api/exposition.js';
import { renderMetrics } from '../../gateway/api/metrics.js';
import { FailoverSets } from '../../failover/sets.js';
import { faultyMemory, openMirror, setsOf, tempDir, MiB } from '../helpers/mirror-fixture.js';
import { find, parseExposition, value } from '../helpers/prometheus.js';

t.test('counters and the latency histogram match the I/O done through a channel', async (t) => {
  const fabric = new FabricSwitch();
  t.teardown(() => fabric.close());
  fabric.addDevice(new MemoryBackend({ name: 'disk', size: 1 * MiB }));
  fabric.addExport({ name: 'e', device: 'disk' });
  const ch = fabric.openChannel('e', { id: 'm1/nbd', protocol: 'nbd' });
  for (let i = 0; i < 3; i++) await ch.write(i * 4096, [Buffer.alloc(4096, i + 1)]);
  for (let i = 0; i < 5; i++) await ch.read(0, Buffer.alloc(512));
  await ch.flush();
  await t.rejects(ch.write(1 * MiB, [Buffer.alloc(4096)]), 'a write past the end fails');

  const text = renderMetrics(fabric, new FailoverSets());
  const m = parseExposition(text);
  const dev = { device: 'disk' };
  t.equal(value(m, 'blockgate_device_ops_total', { ...dev, op: 'write' }), 4);
  t.equal(value(m, 'blockgate_device_bytes_total', { ...dev, op: 'write' }), 3 * 4096, 'failed writes move no bytes');
  t.equal(value(m, 'blockgate_device_errors_total', { ...dev, op: 'write' }), 1);
  t.equal(value(m, 'blockgate_device_ops_total', { ...dev, op: 'read' }), 5);
  t.equal(value(m, 'blockgate_device_bytes_total', { ...dev, op: 'read' }), 5 * 512);
  t.equal(value(m, 'blockgate_device_ops_total', { ...dev, op: 'flush' }), 1);
  t.equal(value(m, 'blockgate_device_ops_total', { ...dev, op: 'trim' }), 0, 'operations not done still have a series');
  t.equal(value(m, 'blockgate_device_in_flight', dev), 0);
  t.equal(value(m, 'blockgate_port_ops_total', { port: 'm1/nbd', op: 'read' }), 5, 'the port counts the same requests');
  t.equal(value(m, 'blockgate_device_size_bytes', dev), 1 * MiB);

  for (const [op, ops] of [['read', 5], ['write', 4], ['flush', 1]] as const) {
    const buckets = find(m, 'blockgate_device_latency_seconds_bucket', { ...dev, op });
    t.equal(buckets.length, LATENCY_BUCKETS_US.length + 1, `${op}: one bucket per bound plus +Inf`);
    t.same(buckets.map((b) => b.labels.le), [...LATENCY_BUCKETS_US.map((us) => String(us / 1e6)), '+Inf']);
    for (let i = 1; i < buckets.length; i++) t.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${op}: buckets are cumulative`);
    t.equal(buckets.at(-1)!.value, ops, `${op}: +Inf bucket holds every request`);
    t.equal(value(m, 'blockgate_device_latency_seconds_count', { ...dev, op }), ops, `${op}: _count equals ops`);
    t.ok(value(m, 'blockgate_device_latency_seconds_sum', { ...dev, op }) > 0, `${op}: _sum is positive`);
  }

  t.equal(m.types.get('blockgate_device_latency_seconds'), 'histogram');
  t.equal(m.types.get('blockgate_device_ops_total'), 'counter');
  for (const state of ['optimal', 'degraded', 'rebuilding', 'failed']) {
    t.equal(value(m, 'blockgate_device_state', { ...dev, state }), state === 'optimal' ? 1 : 0, `state ${state}`);
  }
  t.match(text, /^# HELP blockgate_device_ops_total .+\n# TYPE blockgate_device_ops_total counter\n/m);
  t.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
});

t.test('label values are escaped per the exposition format', async (t) => {
  t.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  const fabric = new FabricSwitch();
  t.teardown(() => fabric.close());
  const name = 'we"ird\\dev\nice';
  fabric.addDevice(new MemoryBackend({ name, size: 4096 }));
  const text = renderMetrics(fabric, new FailoverSets());
  t.ok(text.includes('device="we\\"ird\\\\dev\\nice"'), 'quote, backslash and newline escaped');
  t.equal(value(parseExposition(text), 'blockgate_device_state', { device: name, state: 'optimal' }), 1, 'and parse back');
});

t.test('a mirror exposes its replicas, their states and counters', async (t) => {
  const dir = await tempDir(t);
  const replicas = faultyMemory(['r0', 'r1'], 1 * MiB);
  const mirror = await openMirror(t, { replicas, dataDir: dir });
  const fabric = new FabricSwitch();
  for (const r of replicas) fabric.addDevice(r);
  fabric.addDevice(mirror);
  fabric.addExport({ name: 'm', device: 'm0' });
  await fabric.openChannel('m', { id: 'p', protocol: 'nbd' }).write(0, [Buffer.alloc(8192, 7)]);

  const m = parseExposition(renderMetrics(fabric, setsOf(mirror)));
  t.equal(value(m, 'blockgate_device_state', { device: 'm0', state: 'optimal' }), 1);
  t.equal(value(m, 'blockgate_set_member_role', { device: 'm0', member: 'r0', role: 'primary' }), 1, 'roles from the set');
  t.equal(value(m, 'blockgate_set_member_role', { device: 'm0', member: 'r1', role: 'secondary' }), 1);
  for (const replica of ['r0', 'r1']) {
    t.equal(value(m, 'blockgate_replica_state', { device: 'm0', replica, state: 'in-sync' }), 1, `${replica} is in sync`);
    t.equal(value(m, 'blockgate_replica_state', { device: 'm0', replica, state: 'failed' }), 0);
    t.equal(value(m, 'blockgate_replica_dirty_bytes', { device: 'm0', replica }), 0);
    t.equal(value(m, 'blockgate_replica_write_errors_total', { device: 'm0', replica }), 0);
  }
  t.equal(value(m, 'blockgate_device_resynced_bytes_total', { device: 'm0' }), 0);
  t.equal(value(m, 'blockgate_device_read_repairs_total', { device: 'm0' }), 0);
  t.equal(value(m, 'blockgate_device_metadata_errors_total', { device: 'm0' }), 0);
  t.equal(value(m, 'blockgate_device_ops_total', { device: 'm0', op: 'write' }), 1);
  t.equal(find(m, 'blockgate_device_state', { device: 'r0', state: 'optimal' })[0]?.value, 1, 'replicas are devices too');
});
