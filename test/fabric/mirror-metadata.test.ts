/**
 * A mirror's own state on disk — the dirty-region bitmaps — is what lets it copy only what
 * a replica missed. Failing to read or write it is surfaced: counted, logged, published as
 * a fabric event, and the device is degraded while the fault lasts; never swallowed.
 */
import t from 'tap';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { DirtyBitmap } from '../../fabric/bitmap/dirty-bitmap.js';
import { BlockError } from '../../fabric/errors.js';
import { fabricEvents, type MetadataErrorEvent } from '../../fabric/events.js';
import { bitmapPath, mirrorDirectory } from '../../fabric/layers/mirror/mirror-state.js';
import { act, faultyMemory, KiB, MiB, openMirror, pattern, readAll, replicaState, setState, tempDir } from '../helpers/mirror-fixture.js';

const REGION = 64 * KiB;

function watchMetadataErrors(t: { teardown(fn: () => unknown): void }): MetadataErrorEvent[] {
  const seen: MetadataErrorEvent[] = [];
  t.teardown(fabricEvents.metadataError.subscribe((e) => seen.push(e)));
  return seen;
}

/** A mirror left with replica `a` stale (2 dirty regions) in `dataDir`, and closed. */
async function leaveStale(t: Parameters<typeof openMirror>[0], dataDir: string) {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir });
  a!.down();
  await m.write(0, [pattern(4096, 1)]);
  await m.write(5 * REGION, [pattern(4096, 2)]);
  await m.close();
  a!.up();
  return { a: a!, b: b! };
}

t.test('an unreadable bitmap is surfaced at open; the replica is copied whole', async (t) => {
  const dataDir = await tempDir(t);
  const { a, b } = await leaveStale(t, dataDir);
  const path = bitmapPath(mirrorDirectory(dataDir, 'm0'), 'a');
  // Reading it fails with an error other than "no such file" (EISDIR, as an EIO would).
  await rm(path);
  await mkdir(path);
  const seen = watchMetadataErrors(t);
  const m = await openMirror(t, { replicas: [a, b], dataDir });
  t.equal(m.info().metadataErrors >= 1, true, 'counted');
  t.same(m.info().metadataFaults, ['bitmap of a'], 'named');
  t.ok(seen.some((e) => e.name === 'm0' && e.what === 'bitmap of a' && /cannot read/.test(e.message)), 'published');
  await m.resyncIdle();
  t.equal(m.bytesResynced + m.bytesSkipped, MiB, 'not knowing what changed, all of a was brought in sync (holes of b skipped)');
  t.ok((await readAll(a)).equals(await readAll(b)));
  t.equal(replicaState(m, 'a'), 'in-sync');
  t.equal(m.status().state, 'degraded', 'in sync, but its bitmap file cannot even be removed: still degraded');
  t.same(setState(m).metadataFaults, ['bitmap of a'], 'the set shows why');
});

t.test('a damaged bitmap is surfaced, then cleared once a good one is written', async (t) => {
  const dataDir = await tempDir(t);
  const { a, b } = await leaveStale(t, dataDir);
  await writeFile(bitmapPath(mirrorDirectory(dataDir, 'm0'), 'a'), 'not a bitmap');
  const seen = watchMetadataErrors(t);
  const m = await openMirror(t, { replicas: [a, b], dataDir });
  t.ok(seen.some((e) => /damaged/.test(e.message)), 'published as damaged');
  await m.resyncIdle();
  await m.settled();
  t.equal(m.info().metadataErrors, 1, 'counted once');
  t.same(m.info().metadataFaults, [], 'cleared');
  t.equal(m.status().state, 'optimal');
});

t.test('a bitmap that cannot be saved during a resync is surfaced, not swallowed', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], 4 * MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t), resync: { rateMiBps: 0, regionSize: REGION, logIntervalMs: 0 } });
  a!.down();
  await m.write(0, [pattern(2 * MiB, 3)]);
  a!.up();
  const seen = watchMetadataErrors(t);
  const persist = DirtyBitmap.prototype.persist;
  let failures = 0;
  DirtyBitmap.prototype.persist = function (this: DirtyBitmap) {
    failures++;
    return Promise.reject(new BlockError('EIO', `persisting dirty-region bitmap ${this.path}: injected`));
  };
  t.teardown(() => {
    DirtyBitmap.prototype.persist = persist;
  });
  await act(m, 'reintegrate', { replica: 'a' });
  await m.resyncIdle();
  DirtyBitmap.prototype.persist = persist;
  t.ok(failures > 0, `progress saves were attempted (${failures})`);
  t.equal(m.info().metadataErrors, failures, 'every failed save counted');
  t.equal(seen.length, failures, 'and published');
  t.equal(replicaState(m, 'a'), 'in-sync', 'the copy itself went on');
  t.ok((await readAll(a!)).equals(await readAll(b!)));
  t.same(m.info().metadataFaults, [], 'the bitmap is gone with the resync: nothing left to save');
});

t.test('a write whose missed regions cannot be recorded fails, and says why', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t) });
  a!.down();
  await m.write(0, [pattern(4096, 4)]);
  t.equal(replicaState(m, 'a'), 'failed');
  const persist = DirtyBitmap.prototype.persist;
  DirtyBitmap.prototype.persist = () => Promise.reject(new BlockError('EIO', 'injected'));
  t.teardown(() => {
    DirtyBitmap.prototype.persist = persist;
  });
  // A new region: a must learn of it before b has it, and cannot.
  await t.rejects(m.write(8 * REGION, [pattern(4096, 5)]), { code: 'EIO' }, 'not acknowledged');
  DirtyBitmap.prototype.persist = persist;
  t.same(m.info().metadataFaults, ['bitmap of a']);
  t.equal(m.info().metadataErrors, 1);
  await m.write(8 * REGION, [pattern(4096, 6)]);
  t.same(m.info().metadataFaults, [], 'a later save that works clears the fault');
});
