import t from 'tap';
import type { MirrorDevice } from '../../fabric/layers/mirror/mirror.js';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { buildDevices, buildGraph } from '../../member/devices/build.js';
import { ConfigError } from '../../failover/config/errors.js';
import { validateDevices } from '../../failover/config/validate.js';
import { Refused } from '../../failover/action.js';
import { buildFailoverSets } from '../../failover/from-graph.js';
import { act, faultyMemory, KiB, MiB, openMirror, pattern, readAll, replicaState, setState, settled, tempDir } from '../helpers/mirror-fixture.js';

t.test('a write reaches every replica before it is acknowledged; flush and FUA go to all', async (t) => {
  const [a, b, c] = faultyMemory(['a', 'b', 'c'], 4 * MiB);
  const m = await openMirror(t, { replicas: [a!, b!, c!], dataDir: await tempDir(t) });
  const data = pattern(128 * KiB, 1);
  await m.write(64 * KiB, [data.subarray(0, 4096), data.subarray(4096)], { fua: true });
  for (const r of [a!, b!, c!]) {
    const got = Buffer.alloc(data.length);
    await r.read(64 * KiB, got);
    t.ok(got.equals(data), `${r.name} holds the write`);
    t.same(r.writes, [[64 * KiB, 128 * KiB]], `${r.name} got one write`);
  }
  await m.flush();
  await m.writeZeroes(64 * KiB, 4096);
  await m.trim(128 * KiB, 4096);
  t.same([a!.ops.flush, b!.ops.flush, c!.ops.flush], [1, 1, 1]);
  t.same([a!.ops.writeZeroes, b!.ops.writeZeroes, c!.ops.writeZeroes], [1, 1, 1]);
  t.same([a!.ops.trim, b!.ops.trim, c!.ops.trim], [1, 1, 1]);
  t.equal(m.status().state, 'optimal');
  t.same(
    setState(m).members.map((r) => r.role),
    ['primary', 'secondary', 'secondary'],
  );
});

t.test('reads are balanced across replicas by outstanding bytes', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t) });
  await m.write(0, [pattern(MiB, 2)]);
  for (let i = 0; i < 20; i++) await m.read(0, Buffer.alloc(4096));
  t.equal(a!.ops.read + b!.ops.read, 20);
  t.ok(a!.ops.read >= 5 && b!.ops.read >= 5, `sequential reads alternate (${a!.ops.read}/${b!.ops.read})`);
  // A slow replica accumulates outstanding bytes, so concurrent reads go to the other.
  a!.resetCounters();
  b!.resetCounters();
  a!.delayMs = 50;
  const first = Promise.all([m.read(0, Buffer.alloc(4096)), m.read(4096, Buffer.alloc(4096))]);
  await new Promise((resolve) => setImmediate(resolve)); // b's first read is done, a's is not
  for (let i = 0; i < 10; i++) await m.read(i * 4096, Buffer.alloc(4096));
  await first;
  t.equal(a!.ops.read, 1, 'the busy replica got only its first read');
  t.equal(b!.ops.read, 11, 'the idle one took the rest');
});

t.test('a read error is served from another replica and the bad copy is rewritten', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t), readPolicy: 'primary' });
  const data = pattern(8 * KiB, 3);
  await m.write(8 * KiB, [data]);
  a!.failNext('read', 1);
  const got = Buffer.alloc(data.length);
  await m.read(8 * KiB, got);
  t.ok(got.equals(data), 'the host saw good data');
  await settled(m);
  t.equal(m.readRepairs, 1, 'one read repair counted');
  t.same(a!.writes.at(-1), [8 * KiB, 8 * KiB], 'the bad copy was rewritten');
  t.equal(replicaState(m, 'a'), 'in-sync', 'a repaired replica stays in the set');
  t.equal(setState(m).readRepairs, 1);
});

t.test('a replica that fails a write is dropped; I/O goes on degraded; the last one is kept', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t) });
  a!.failNext('write', 1);
  await m.write(0, [pattern(4096, 4)]);
  t.equal(replicaState(m, 'a'), 'failed');
  t.equal(m.status().state, 'degraded');
  t.same(setState(m).members.map((r) => r.role), ['secondary', 'primary'], 'b is now the primary');
  // Degraded I/O: reads come from b only, writes too.
  b!.resetCounters();
  await m.write(4096, [pattern(4096, 5)]);
  const got = Buffer.alloc(8192);
  await m.read(0, got);
  t.ok(got.equals(Buffer.concat([pattern(4096, 4), pattern(4096, 5)])));
  t.equal(a!.writes.length, 0, 'the failed replica gets no writes');
  // The last in-sync replica failing a write fails the request but stays in the set.
  b!.failNext('write', 1);
  await t.rejects(m.write(0, [pattern(4096, 6)]), { code: 'EIO' });
  t.equal(replicaState(m, 'b'), 'in-sync');
  t.equal(m.status().state, 'degraded');
});

t.test('a write fails with EIO only when no in-sync replica took it', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t) });
  a!.failNext('write', 1);
  b!.failNext('write', 1);
  await t.rejects(m.write(0, [pattern(4096, 7)]), { code: 'EIO' });
  t.equal(m.status().state, 'degraded', 'one replica dropped, the last kept');
});

t.test('request errors pass through without failing replicas', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  a!.code = 'ENOTSUP';
  b!.code = 'ENOTSUP';
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t) });
  a!.failNext('writeZeroes', 1);
  b!.failNext('writeZeroes', 1);
  await t.rejects(m.writeZeroes(0, 4096, { fastOnly: true }), { code: 'ENOTSUP' });
  t.equal(m.status().state, 'optimal');
  // One replica that cannot zero fast is zeroed the slow way, keeping the copies equal.
  a!.failNext('writeZeroes', 1);
  await m.writeZeroes(0, 4096, { fastOnly: true });
  t.equal(a!.ops.writeZeroes, 1);
  t.equal(m.status().state, 'optimal');
});

t.test('a replica failing more often than the limit is quarantined until cleared', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t), failureLimit: { failures: 2, windowMs: 60_000 }, readPolicy: 'primary' });
  await m.write(0, [pattern(64 * KiB, 8)]);
  for (let i = 0; i < 2; i++) {
    a!.failNext('read', 1);
    await m.read(0, Buffer.alloc(4096));
    await settled(m);
  }
  t.equal(replicaState(m, 'a'), 'in-sync', 'two read errors are within the limit');
  a!.failNext('read', 1);
  await m.read(0, Buffer.alloc(4096));
  await settled(m);
  t.equal(replicaState(m, 'a'), 'quarantined', 'the third exceeds it');
  t.equal(m.status().state, 'degraded');
  await t.rejects(act(m, 'reintegrate', { replica: 'a' }), new Refused('replica a is quarantined: clear the quarantine first'), 'a quarantined replica cannot simply return');
  await m.write(0, [pattern(4096, 9)]);
  await act(m, 'clearQuarantine', { replica: 'a' });
  await m.resyncIdle();
  t.equal(replicaState(m, 'a'), 'in-sync', 'cleared, it returns through a delta resync');
  t.equal(m.bytesResynced, 64 * KiB, 'only the region written while it was away was copied');
  const got = Buffer.alloc(4096);
  await a!.read(0, got);
  t.ok(got.equals(pattern(4096, 9)));
});

t.test('config: at least 2 replicas, known read policy, region size', async (t) => {
  const dataDir = await tempDir(t);
  const mem = (name: string) => ({ name, type: 'memory', size: '1M' });
  await t.rejects(buildGraph([mem('a'), { name: 'm', type: 'mirror', replicas: ['a'] }], { dataDir }), { name: 'ConfigError', field: 'devices[1].replicas', problem: /at least 2 device names/ });
  await t.rejects(buildGraph([mem('a'), mem('b'), { name: 'm', type: 'mirror', replicas: ['a', 'b'], readPolicy: 'fastest' }], { dataDir }), ConfigError);
  await t.rejects(
    buildGraph([mem('a'), mem('b'), { name: 'm', type: 'mirror', replicas: ['a', 'b'], resync: { regionSize: 1000 } }], { dataDir }),
    { name: 'ConfigError', field: 'devices[2].resync.regionSize' },
  );
  const specs = validateDevices([
    mem('a'),
    mem('b'),
    mem('c'),
    { name: 'm', type: 'mirror', replicas: ['a', 'b'], spares: ['c'], resync: { rateMiBps: 10, regionSize: '64k' }, failureLimit: { failures: 3, windowMs: 1000 } },
  ]);
  const graph = await buildDevices(specs, { dataDir });
  const sets = buildFailoverSets(graph, specs);
  sets.start();
  const m = graph.get('m')!;
  t.teardown(() => {
    sets.stop();
    return m.close();
  });
  t.equal(m.size, MiB);
  await (m as MirrorDevice).resyncIdle();
  t.equal(m.status().state, 'optimal', 'a new mirror: initial sync done');
  t.same([(m as MirrorDevice).bytesResynced, (m as MirrorDevice).bytesSkipped], [0, MiB], 'fresh disks are all holes: nothing copied');
  const state = sets.get('m')!.state();
  t.same(state.members.map((r) => r.role), ['primary', 'secondary', 'alternate']);
  t.same(state.kind === 'mirror' && state.policy.failureLimit, { failures: 3, windowMs: 1000 }, 'the failure limit reaches the set');
  await m.write(0, [pattern(4096, 10)]);
  t.ok((await readAll(m, 4096)).equals(pattern(4096, 10)));
  void MemoryBackend;
});
