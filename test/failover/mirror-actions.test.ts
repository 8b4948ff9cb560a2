/**
 * The operator actions of a mirror set: each does what it says or is refused (409) with the
 * reason; none answers "done" while doing nothing.
 */
import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { MirrorDevice } from '../../fabric/layers/mirror/mirror.js';
import { InvalidArgument, Refused, runAction } from '../../failover/action.js';
import type { MembershipChange } from '../../failover/context.js';
import { FailoverSets } from '../../failover/sets.js';
import { act, faultyMemory, KiB, MiB, openMirror, pattern, readAll, replicaState, roles, setState, tempDir } from '../helpers/mirror-fixture.js';

const REGION = 64 * KiB;

t.test('offline and reintegrate: held out until the operator brings it back; a spare steps in meanwhile', async (t) => {
  const [a, b, s] = faultyMemory(['a', 'b', 's'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], spares: [s!], dataDir: await tempDir(t), probeIntervalMs: 20 });
  await m.write(0, [pattern(MiB, 1)]);
  await act(m, 'offline', { replica: 'a' });
  await m.resyncIdle();
  t.same(roles(m), ['a:alternate/offline', 'b:primary/in-sync', 's:secondary/in-sync'], 'the spare took its place');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(replicaState(m, 'a'), 'offline', 'probes do not bring an offline replica back');
  await t.rejects(act(m, 'offline', { replica: 'a' }), new Refused('replica a is already offline'));
  await act(m, 'reintegrate', { replica: 'a' });
  t.equal(replicaState(m, 'a'), 'standby', 'back, as the spare it now is');
  await t.rejects(act(m, 'reintegrate', { replica: 'a' }), /standby spare/);
  await t.rejects(act(m, 'reintegrate', { replica: 'nope' }), InvalidArgument);
});

t.test('setResyncRate applies to a running resync at once', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], 4 * MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t), resync: { rateMiBps: 1, regionSize: REGION } });
  a!.down();
  await m.write(0, [pattern(4 * MiB, 2)]);
  a!.up();
  await act(m, 'reintegrate', { replica: 'a' });
  await new Promise((r) => setTimeout(r, 300));
  t.ok(m.bytesResynced < MiB, `throttled to 1 MiB/s (${m.bytesResynced} bytes in 0.3 s)`);
  t.same(await act(m, 'setResyncRate', { rateMiBps: 0 }), { resyncRateMiBps: 0 });
  t.equal(setState(m).policy.resyncRateMiBps, 0, 'shown in the set state');
  const started = Date.now();
  await m.resyncIdle();
  t.ok(Date.now() - started < 2500, 'the rest went unthrottled (it would take 3 s more at 1 MiB/s)');
  t.ok((await readAll(a!)).equals(await readAll(b!)));
  await t.rejects(act(m, 'setResyncRate', { rateMiBps: -1 }), InvalidArgument);
  await t.rejects(act(m, 'setResyncRate', { rateMiBps: 'fast' }), /needs a JSON body with a "rateMiBps" number/);
});

t.test('forceStart serves a mirror with no in-sync replica from the one named', async (t) => {
  const dataDir = await tempDir(t);
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m1 = await openMirror(t, { replicas: [a!, b!], dataDir });
  await m1.write(0, [pattern(8192, 3)]);
  a!.down();
  await m1.write(4 * REGION, [pattern(4096, 4)]); // a misses this
  await m1.close();
  // Restart with b (the only in-sync replica) gone: a is stale, nothing to serve from.
  a!.up();
  b!.down();
  const m = await openMirror(t, { replicas: [a!, b!], dataDir });
  t.equal(m.status().state, 'failed');
  await t.rejects(m.read(0, Buffer.alloc(4096)), { code: 'EIO' }, 'no I/O');
  await t.rejects(act(m, 'forceStart', { replica: 'b' }), { code: 'EIO' }, 'a replica that does not answer cannot be forced');
  await act(m, 'forceStart', { replica: 'a' });
  t.equal(m.status().state, 'degraded', 'serving from a');
  const got = Buffer.alloc(8192);
  await m.read(0, got);
  t.ok(got.equals(pattern(8192, 3)), "a's data is the mirror's");
  await t.rejects(act(m, 'forceStart', { replica: 'a' }), /serving from in-sync replica a: nothing to force/);
  b!.up();
  await act(m, 'reintegrate', { replica: 'b' });
  await m.resyncIdle();
  t.ok((await readAll(b!)).equals(await readAll(a!)), "b now holds a's data, including the region a lacked");
  t.equal(m.status().state, 'optimal');
});

t.test('clearQuarantine refuses a replica that is not quarantined, with the reason', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t) });
  await t.rejects(act(m, 'clearQuarantine', { replica: 'a' }), new Refused('replica a is not quarantined (it is in-sync)'));
  await t.rejects(act(m, 'reintegrate', { replica: 'a' }), new Refused('replica a is already in sync'));
  await act(m, 'offline', { replica: 'a' });
  await t.rejects(act(m, 'offline', { replica: 'b' }), /last in-sync replica of mirror m0/, 'the last in-sync replica stays');
});

t.test('addSpare and removeSpare: a free device of the graph, refused when in use or unfit; the change is stored', async (t) => {
  const dataDir = await tempDir(t);
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const mirror = await MirrorDevice.open({ name: 'm', replicas: [a!, b!], dataDir, resync: { rateMiBps: 0, regionSize: REGION }, assumeClean: true });
  const free = new MemoryBackend({ name: 'free', size: MiB });
  const small = new MemoryBackend({ name: 'small', size: MiB / 2 });
  const exported = new MemoryBackend({ name: 'exported', size: MiB });
  const devices = new Map([free, small, exported, a!, b!, mirror].map((d) => [d.name, d]));
  const changes: MembershipChange[] = [];
  const sets = new FailoverSets({
    devices,
    usedBy: (name) => (name === 'exported' ? 'export e' : name === 'a' || name === 'b' ? 'm' : undefined),
    onMembershipChange: async (c) => void changes.push(c),
  });
  const set = sets.addMirror(mirror, { probeIntervalMs: 0 });
  sets.start();
  t.teardown(async () => {
    sets.stop();
    await mirror.close();
  });
  const run = (action: string, body: Record<string, unknown>) => runAction(set.actions, 'm', action, body);
  await t.rejects(run('addSpare', { device: 'nowhere' }), InvalidArgument);
  await t.rejects(run('addSpare', { device: 'exported' }), new Refused('device exported is in use by export e'));
  await t.rejects(run('addSpare', { device: 'a' }), /in use by m/);
  await t.rejects(run('addSpare', { device: 'small' }), /cannot be a spare of mirror m: it has 524288 bytes, the mirror 1048576/);
  await run('addSpare', { device: 'free' });
  t.same(set.state().members.map((r) => `${r.name}:${r.role}/${r.state}`), ['a:primary/in-sync', 'b:secondary/in-sync', 'free:alternate/standby']);
  t.same(changes, [{ set: 'm', change: 'spare-added', device: 'free' }], 'stored where the configuration lives');
  await t.rejects(run('addSpare', { device: 'free' }), /in use by m/);
  // The new spare steps in when a replica fails.
  a!.down();
  await mirror.write(0, [pattern(4096, 5)]);
  await set.settled();
  await mirror.resyncIdle();
  t.same(set.state().members.map((r) => `${r.name}:${r.state}`), ['a:failed', 'b:in-sync', 'free:in-sync']);
  await t.rejects(run('removeSpare', { spare: 'free' }), /is a replica of m \(in-sync\), not a spare/);
  await run('removeSpare', { spare: 'a' });
  t.same(set.state().members.map((r) => r.name), ['b', 'free']);
  t.same(changes.at(-1), { set: 'm', change: 'spare-removed', device: 'a' });
  await run('addSpare', { device: 'a' }).catch((err: unknown) => t.fail(`a removed spare is free again: ${String(err)}`));
});
