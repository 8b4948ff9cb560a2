/**
 * A mirror that stops uncleanly (the member dies) may leave its replicas different where
 * writes were in flight. The activity log records those extents before the writes go out;
 * the next start copies exactly them from one replica to the others. A new mirror does not
 * take its replicas for identical: it copies the first to the others (holes skipped).
 *
 * A crash is played by opening the mirror again on the same data directory while the first
 * instance still runs (it never stopped cleanly), after making the replicas differ inside
 * an extent where a write was in flight.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { mirrorDirectory, mirrorFile } from '../../fabric/layers/mirror/mirror-state.js';
import { faultyMemory, KiB, MiB, openMirror, pattern, readAll, replicaState, tempDir } from '../helpers/mirror-fixture.js';

const REGION = 64 * KiB;
const EXTENT = 256 * KiB;
const activityLog = { extentSize: EXTENT, extents: 4 };

t.test('after an unclean stop, exactly the extents with writes in flight are resynced', async (t) => {
  const dataDir = await tempDir(t);
  const [a, b] = faultyMemory(['a', 'b'], 4 * MiB);
  const m1 = await openMirror(t, { replicas: [a!, b!], dataDir, activityLog });
  await m1.write(0, [pattern(4 * MiB, 1)]);
  await m1.flush();
  // A write in flight when the member dies: it reached a, not b.
  b!.delayMs = 5_000;
  const inFlight = m1.write(5 * EXTENT + 4096, [pattern(8192, 2)]);
  // Wait for a to get it (not a fixed sleep: a loaded machine may take longer).
  const aHasIt = () => a!.writes.some(([o]) => o === 5 * EXTENT + 4096);
  for (let waited = 0; !aHasIt() && waited < 4_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  t.ok(aHasIt() && !b!.writes.some(([o]) => o === 5 * EXTENT + 4096), 'a has the write, b not yet');
  b!.delayMs = 0;
  b!.down(); // the write never reaches b: the member "died"
  t.ok(existsSync(mirrorFile(mirrorDirectory(dataDir, 'm0'), 'activity.log')), 'the log is on disk');
  b!.up();

  const m2 = await openMirror(t, { replicas: [a!, b!], dataDir, activityLog });
  t.equal(replicaState(m2, 'b'), 'resyncing', 'the second start found the stop unclean and resyncs b');
  await m2.resyncIdle();
  // The log holds its 4 most recent extents, plus the one of the write still in flight.
  t.ok(m2.bytesResynced + m2.bytesSkipped <= (activityLog.extents + 1) * EXTENT, `only logged extents were resynced (${m2.bytesResynced + m2.bytesSkipped} of ${4 * MiB} bytes)`);
  t.ok(m2.bytesResynced >= REGION, 'the one with the write in flight among them');
  t.ok((await readAll(a!)).equals(await readAll(b!)), 'the replicas are identical again');
  await inFlight.catch(() => undefined);
});

t.test('after a clean stop nothing is resynced; the log holds only recent extents', async (t) => {
  const dataDir = await tempDir(t);
  const [a, b] = faultyMemory(['a', 'b'], 4 * MiB);
  const m1 = await openMirror(t, { replicas: [a!, b!], dataDir, activityLog });
  for (let x = 0; x < 16; x++) await m1.write(x * EXTENT, [pattern(4096, x)]);
  await m1.flush();
  await m1.write(15 * EXTENT, [pattern(4096, 99)]);
  await m1.close();
  const m2 = await openMirror(t, { replicas: [a!, b!], dataDir, activityLog });
  t.equal(m2.status().state, 'optimal', 'a clean stop: nothing to repair');
  t.equal(m2.bytesResynced + m2.bytesSkipped, 0);
});

t.test('the log keeps at most its extent count once flushed; writes past it wait for nothing more', async (t) => {
  const dataDir = await tempDir(t);
  const [a, b] = faultyMemory(['a', 'b'], 4 * MiB);
  const m1 = await openMirror(t, { replicas: [a!, b!], dataDir, activityLog });
  for (let x = 0; x < 16; x++) await m1.write(x * EXTENT, [pattern(4096, x)]);
  await m1.flush();
  await m1.write(0, [pattern(4096, 50)]); // evicts the flushed, idle extents past the limit
  // Crash now: the next start resyncs only what the log still holds.
  const m2 = await openMirror(t, { replicas: [a!, b!], dataDir, activityLog });
  await m2.resyncIdle();
  t.ok(m2.bytesResynced + m2.bytesSkipped <= (activityLog.extents + 1) * EXTENT, `at most the logged extents (${m2.bytesResynced + m2.bytesSkipped} bytes)`);
});

t.test('without an activity log an unclean stop resyncs whole replicas', async (t) => {
  const dataDir = await tempDir(t);
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m1 = await openMirror(t, { replicas: [a!, b!], dataDir, activityLog: false });
  await m1.write(0, [pattern(MiB, 3)]);
  const m2 = await openMirror(t, { replicas: [a!, b!], dataDir, activityLog: false });
  await m2.resyncIdle();
  t.equal(m2.bytesResynced, MiB, 'everything copied: nothing says where writes were in flight');
});

t.test('a new mirror copies its first replica to the others, skipping holes; assumeClean skips it', async (t) => {
  const [a, b, c] = faultyMemory(['a', 'b', 'c'], 4 * MiB);
  await a!.write(MiB, [pattern(2 * REGION, 4)]); // data on a only: the disks differ
  await b!.write(2 * MiB, [pattern(REGION, 5)]); // and garbage on b where a has a hole
  const m = await openMirror(t, { replicas: [a!, b!, c!], dataDir: await tempDir(t), assumeClean: false });
  t.same([replicaState(m, 'a'), replicaState(m, 'b'), replicaState(m, 'c')], ['in-sync', 'resyncing', 'resyncing'], 'the first replica is the source');
  await m.resyncIdle();
  t.ok((await readAll(b!)).equals(await readAll(a!)) && (await readAll(c!)).equals(await readAll(a!)), 'all identical to a');
  t.equal(m.bytesResynced, 2 * 2 * REGION, "only a's data was copied, to each of b and c");
  t.equal(c!.bytes.writeZeroes, 0, 'c read zeroes where a has holes: nothing written there');
  t.equal(b!.bytes.writeZeroes, REGION, 'b was zeroed only where it held data and a a hole');

  const [d, e] = faultyMemory(['d', 'e'], MiB);
  await d!.write(0, [pattern(REGION, 6)]);
  const clean = await openMirror(t, { replicas: [d!, e!], dataDir: await tempDir(t), assumeClean: true });
  t.equal(clean.status().state, 'optimal', 'assumeClean: the operator says they are identical');
  t.equal(e!.bytes.write + e!.bytes.writeZeroes, 0);
});
