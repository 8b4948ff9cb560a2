import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DirtyBitmap } from '../../fabric/bitmap/dirty-bitmap.js';
import { bitmapPath, mirrorDirectory } from '../../fabric/layers/mirror/mirror-state.js';
import { act, faultyMemory, KiB, MiB, openMirror, pattern, readAll, replicaState, roles, settled, tempDir } from '../helpers/mirror-fixture.js';

const REGION = 64 * KiB;

t.test('the dirty bitmap persists only on clean→dirty transitions and survives reopening', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'sub', 'r.bitmap');
  const geometry = { deviceSize: 10 * REGION + 4096, regionSize: REGION };
  const bitmap = DirtyBitmap.create(path, geometry, 'clean');
  t.equal(bitmap.regionCount, 11);
  const first = bitmap.mark(REGION + 10, 2 * REGION);
  t.ok(first instanceof Promise, 'a flip returns a promise');
  t.ok(bitmap.mark(REGION, 512) instanceof Promise, 'so does a mark of a bit whose save is still under way');
  await first;
  t.ok(existsSync(path), 'written before the promise resolved');
  t.equal(bitmap.mark(REGION, REGION), undefined, 'an already-dirty region costs nothing');
  await bitmap.mark(10 * REGION, 4096);
  t.equal(bitmap.dirtyRegions, 4);
  t.equal(bitmap.dirtyBytes, 3 * REGION + 4096, 'the short last region counts its real size');
  bitmap.clear(2);
  await bitmap.persist();
  await bitmap.close();
  const { bitmap: again, found } = await DirtyBitmap.load(path, geometry);
  t.ok(found);
  t.same([0, 1, 2, 3, 10].map((r) => again.isDirty(r)), [false, true, false, true, true]);
  t.equal(again.nextDirty(4), 10);
  const { bitmap: other, found: matched } = await DirtyBitmap.load(path, { ...geometry, regionSize: 2 * REGION });
  t.notOk(matched, 'a different geometry is not trusted');
  t.equal(other.dirtyRegions, other.regionCount, '…and means copy everything');
  await again.remove();
  t.notOk(existsSync(path));
});

t.test('a returning replica gets a delta resync of the regions written while it was away', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], 4 * MiB);
  const dataDir = await tempDir(t);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir });
  await m.write(0, [pattern(4 * MiB, 1)]);
  await m.flush(); // what a replica holds only in its cache would be lost with it, flushed data not
  a!.down();
  await m.write(REGION + 512, [pattern(4096, 2)]); // fails on a: a is dropped, region 1 marked
  t.equal(replicaState(m, 'a'), 'failed');
  t.equal(m.status().state, 'degraded');
  await m.write(10 * REGION, [pattern(2 * REGION, 3)]); // regions 10, 11
  await m.writeZeroes(40 * REGION, 4096); // region 40
  await m.trim(41 * REGION, REGION); // region 41
  t.equal(m.info().replicas[0]!.dirtyBytes, 5 * REGION, 'five regions are dirty');
  t.ok(existsSync(bitmapPath(mirrorDirectory(dataDir, 'm0'), 'a')), 'the bitmap is on disk');
  await t.rejects(act(m, 'reintegrate', { replica: 'a' }), { code: 'EIO' }, 'a replica still down does not return');
  a!.up();
  a!.resetCounters();
  await act(m, 'reintegrate', { replica: 'a' });
  t.equal(m.status().state, 'rebuilding');
  await m.resyncIdle();
  t.equal(replicaState(m, 'a'), 'in-sync');
  t.equal(m.status().state, 'optimal');
  t.equal(m.bytesResynced + m.bytesSkipped, 5 * REGION, 'only dirty regions were resynced');
  t.equal(m.bytesSkipped, REGION + 4096, 'the zeroed and trimmed ranges as zeroes, not copies');
  t.equal(a!.bytes.write + a!.bytes.writeZeroes, 5 * REGION, 'and nothing else was written to a');
  t.ok((await readAll(a!)).equals(await readAll(b!)), 'replicas are identical');
  t.notOk(existsSync(bitmapPath(mirrorDirectory(dataDir, 'm0'), 'a')), 'the bitmap is gone once in sync');
});

t.test('failed replicas are probed and come back by themselves', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t), probeIntervalMs: 20 });
  a!.down();
  await m.write(0, [pattern(4096, 4)]);
  t.equal(replicaState(m, 'a'), 'failed');
  await new Promise((r) => setTimeout(r, 60));
  t.equal(replicaState(m, 'a'), 'failed', 'still down: still failed');
  a!.up();
  for (let i = 0; i < 100 && replicaState(m, 'a') !== 'in-sync'; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(replicaState(m, 'a'), 'in-sync');
  t.equal(m.bytesResynced, REGION);
});

t.test('the bitmap survives a restart of the mirror; the resync runs at open', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const dataDir = await tempDir(t);
  const m1 = await openMirror(t, { replicas: [a!, b!], dataDir });
  a!.down();
  await m1.write(3 * REGION, [pattern(4096, 5)]);
  await m1.write(7 * REGION, [pattern(4096, 6)]);
  await m1.close();
  a!.up();
  const m2 = await openMirror(t, { replicas: [a!, b!], dataDir });
  t.equal(replicaState(m2, 'a'), 'resyncing', 'the stale replica resyncs right away');
  await m2.resyncIdle();
  t.equal(m2.bytesResynced, 2 * REGION);
  t.ok((await readAll(a!)).equals(await readAll(b!)));
  await m2.close();
  const m3 = await openMirror(t, { replicas: [a!, b!], dataDir });
  t.equal(m3.status().state, 'optimal', 'in sync after the next restart too');
});

t.test('a restart in the middle of a throttled resync resumes from the bitmap', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], 4 * MiB);
  const dataDir = await tempDir(t);
  const options = { replicas: [a!, b!], dataDir, resync: { rateMiBps: 1, regionSize: REGION, logIntervalMs: 0 } };
  const m1 = await openMirror(t, options);
  a!.down();
  await m1.write(0, [pattern(2 * MiB, 7)]);
  a!.up();
  await act(m1, 'reintegrate', { replica: 'a' });
  await new Promise((r) => setTimeout(r, 700));
  const copiedBefore = m1.bytesResynced;
  const progress = m1.info().resync[0]!;
  t.ok(progress.percent > 0 && progress.percent < 100, `progress is reported (${progress.percent}%)`);
  t.ok((progress.etaSeconds ?? 0) > 0, 'with an ETA');
  await m1.close();
  t.ok(copiedBefore > 0 && copiedBefore < 2 * MiB, `part was copied before the restart (${copiedBefore})`);
  const m2 = await openMirror(t, { ...options, resync: { ...options.resync, rateMiBps: 0 } });
  await m2.resyncIdle();
  t.ok(m2.bytesResynced < 2 * MiB, `the rest only was copied after it (${m2.bytesResynced})`);
  t.ok(copiedBefore + m2.bytesResynced <= 2 * MiB + 2 * REGION, 'little work was repeated');
  t.ok((await readAll(a!)).equals(await readAll(b!)), 'replicas are identical');
});

t.test('host writes racing the resync of the same regions never leave a stale copy', async (t) => {
  const [a, b, c] = faultyMemory(['a', 'b', 'c'], 2 * MiB);
  const m = await openMirror(t, { replicas: [a!, b!, c!], dataDir: await tempDir(t), resync: { rateMiBps: 8, regionSize: REGION } });
  a!.down();
  await m.write(0, [pattern(2 * MiB, 8)]);
  a!.up();
  // Slow devices, so that copies and host writes of a region really interleave.
  for (const d of [a!, b!, c!]) d.delayMs = 1;
  await act(m, 'reintegrate', { replica: 'a' });
  let seed = 100;
  const writer = async () => {
    while (replicaState(m, 'a') === 'resyncing') {
      const offset = Math.floor(Math.random() * (2 * MiB / 4096 - 4)) * 4096;
      await m.write(offset, [pattern(4096 * (1 + (seed % 4)), seed++)]);
      await new Promise((resolve) => setImmediate(resolve)); // memory devices never leave the microtask queue
    }
  };
  await Promise.all([writer(), writer(), writer(), m.resyncIdle()]);
  t.ok(seed > 120, `host writes went on during the resync (${seed - 100})`);
  t.equal(replicaState(m, 'a'), 'in-sync');
  const bImage = await readAll(b!);
  t.ok((await readAll(a!)).equals(bImage), 'the resynced replica equals the others');
  t.ok((await readAll(c!)).equals(bImage));
});

t.test('a failed replica is replaced by a hot spare, rebuilt online; it returns as a spare', async (t) => {
  const [a, b, s] = faultyMemory(['a', 'b', 's'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], spares: [s!], dataDir: await tempDir(t), probeIntervalMs: 20, resync: { rateMiBps: 2, regionSize: REGION } });
  await m.write(0, [pattern(MiB, 9)]);
  t.same(roles(m), ['a:primary/in-sync', 'b:secondary/in-sync', 's:alternate/standby']);
  a!.down();
  const writes = Array.from({ length: 16 }, (_, i) => m.write(i * 4096, [pattern(4096, 20 + i)]));
  await Promise.all(writes);
  await settled(m);
  t.equal(replicaState(m, 's'), 'resyncing', 'the spare was promoted');
  t.equal(m.status().state, 'rebuilding');
  for (let i = 0; i < 8; i++) await m.write(MiB / 2 + i * 4096, [pattern(4096, 40 + i)]); // under load
  await m.resyncIdle();
  t.equal(m.status().state, 'optimal');
  t.same(roles(m), ['a:alternate/failed', 'b:primary/in-sync', 's:secondary/in-sync']);
  t.equal(m.bytesResynced, MiB, 'a full copy');
  t.ok((await readAll(s!)).equals(await readAll(b!)), 'the spare holds the data');
  a!.up();
  for (let i = 0; i < 100 && replicaState(m, 'a') !== 'standby'; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(replicaState(m, 'a'), 'standby', 'the old replica is now the spare');
});

t.test('regions written since the last flush join the bitmap of a replica that fails', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t) });
  await m.write(REGION, [pattern(2 * REGION, 11)]);
  await m.flush();
  await m.write(5 * REGION, [pattern(4096, 12)]); // only in a's cache, as far as we know
  await m.write(6 * REGION, [pattern(4096, 13)], { fua: true }); // durable at once: not at risk
  a!.failNext('flush', 1);
  await m.flush();
  t.equal(replicaState(m, 'a'), 'failed');
  t.equal(m.info().replicas[0]!.dirtyBytes, REGION, 'the unflushed region is dirty, the flushed and FUA ones are not');
});
