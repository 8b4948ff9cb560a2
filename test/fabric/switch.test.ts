import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { FabricSwitch } from '../../fabric/switch.js';
import { IoStats, LatencyHistogram, LATENCY_BUCKETS_US } from '../../fabric/stats.js';

function setup() {
  const fabric = new FabricSwitch();
  fabric.addDevice(new MemoryBackend({ name: 'disk', size: 1 << 20, blockSizes: { minimum: 512 } }));
  fabric.addExport({ name: 'rw', device: 'disk', description: 'main' });
  fabric.addExport({ name: 'ro', device: 'disk', readOnly: true });
  return fabric;
}

t.test('exports: lookup, list, read-only view, duplicates and unknowns', async (t) => {
  const fabric = setup();
  t.teardown(() => fabric.close());
  t.same(fabric.listExports().map((e) => e.name), ['rw', 'ro']);
  t.equal(fabric.lookupExport('rw')!.description, 'main');
  t.equal(fabric.lookupExport('ro')!.readOnly, true);
  t.equal(fabric.lookupExport('ro')!.device.capabilities.readOnly, true);
  t.equal(fabric.lookupExport('ro')!.device.capabilities.trim, false);
  t.equal(fabric.lookupExport('nope'), undefined);
  t.throws(() => fabric.addExport({ name: 'rw', device: 'disk' }), { code: 'EINVAL' });
  t.throws(() => fabric.addExport({ name: 'x', device: 'ghost' }), { code: 'EINVAL' });
  t.throws(() => fabric.addDevice(new MemoryBackend({ name: 'disk', size: 1 })), { code: 'EINVAL' });
  t.throws(() => fabric.openChannel('ghost', { id: 'p', protocol: 'nbd' }), { code: 'EINVAL' });
  fabric.addDevice(new MemoryBackend({ name: 'rodisk', size: 4096, readOnly: true }));
  t.equal(fabric.addExport({ name: 'auto', device: 'rodisk' }).readOnly, true, 'a read-only device makes a read-only export');
});

t.test('channels count ops, bytes, errors and latency per device and per port', async (t) => {
  const fabric = setup();
  t.teardown(() => fabric.close());
  const a = fabric.openChannel('rw', { id: 'nbd:a', protocol: 'nbd' });
  const b = fabric.openChannel('ro', { id: 'nbd:b', protocol: 'nbd' });

  await a.write(0, [Buffer.alloc(1024, 1), Buffer.alloc(1024, 2)], { fua: true });
  await a.read(0, Buffer.alloc(512));
  await a.flush();
  await a.trim(4096, 4096);
  await a.writeZeroes(8192, 1024);
  await a.blockStatus(0, 65536);
  await a.cache(0, 512);
  const back = Buffer.alloc(2048);
  await b.read(0, back);
  t.equal(back[1500], 2, 'read-only export sees the same device');
  await t.rejects(b.write(0, [Buffer.alloc(512)]), { code: 'EPERM' });
  await t.rejects(a.read(1 << 20, Buffer.alloc(512)), { code: 'EINVAL' });
  await t.rejects(a.write(100, [Buffer.alloc(512)]), { code: 'EINVAL' }, 'checked: unaligned');

  const dev = fabric.deviceStats.get('disk')!;
  const op = (s: IoStats, k: Parameters<IoStats['byOp']['get']>[0]) => s.byOp.get(k)!;
  t.match(op(dev, 'write'), { ops: 3, bytes: 2048, errors: 2 });
  t.match(op(dev, 'read'), { ops: 3, bytes: 512 + 2048, errors: 1 });
  t.match(op(dev, 'flush'), { ops: 1, errors: 0 });
  t.match(op(dev, 'trim'), { ops: 1, bytes: 4096 });
  t.match(op(dev, 'writeZeroes'), { ops: 1, bytes: 1024 });
  t.match(op(dev, 'blockStatus'), { ops: 1 });
  t.match(op(dev, 'cache'), { ops: 1 });
  t.equal(op(dev, 'read').latency.samples, 3, 'every request timed');
  t.equal(dev.inFlight, 0);

  const portA = fabric.portStats.get('nbd:a')!;
  const portB = fabric.portStats.get('nbd:b')!;
  t.match(op(portA, 'write'), { ops: 2, bytes: 2048, errors: 1 });
  t.match(op(portB, 'write'), { ops: 1, bytes: 0, errors: 1 });
  t.match(op(portB, 'read'), { ops: 1, bytes: 2048, errors: 0 });
  t.match(portB.toJSON(), { inFlight: 0, ops: { read: { ops: 1, bytes: 2048, errors: 0 }, write: { ops: 1, errors: 1 } } });
  t.notOk('flush' in (portB.toJSON().ops as object), 'idle ops left out');

  await a.close();
  await a.read(0, Buffer.alloc(512)).then(() => t.pass('closing a channel leaves the device open'));
});

t.test('in-flight gauge while a request is pending', async (t) => {
  const stats = new IoStats();
  const started = stats.begin();
  t.equal(stats.inFlight, 1);
  stats.end('read', 10, started, false);
  t.equal(stats.inFlight, 0);
});

t.test('latency histogram buckets and quantiles', async (t) => {
  const h = new LatencyHistogram();
  t.equal(h.quantile(0.5), 0, 'empty');
  h.record(10); // ≤ 50
  h.record(50); // ≤ 50 (bounds are inclusive)
  h.record(51); // ≤ 100
  h.record(2_000_000); // +Inf
  t.equal(h.counts[0], 2);
  t.equal(h.counts[1], 1);
  t.equal(h.counts[LATENCY_BUCKETS_US.length], 1);
  t.equal(h.samples, 4);
  t.equal(h.sumUs, 10 + 50 + 51 + 2_000_000);
  t.equal(h.quantile(0.5), 50);
  t.equal(h.quantile(0.75), 100);
  t.equal(h.quantile(1), Infinity);
});

t.test('closing the switch closes its devices', async (t) => {
  const fabric = setup();
  const dev = fabric.device('disk') as MemoryBackend;
  await fabric.close();
  t.equal(dev.status().state, 'failed');
  t.same(fabric.listExports(), []);
  t.same(fabric.listDevices(), []);
});
