/**
 * Power loss: disks with a volatile write cache (test/helpers/volatile-cache.ts) lose what
 * they hold when the power is cut. Every write acknowledged with FUA, or before a flush that
 * was acknowledged, must be there afterwards (or a newer write of the same block) — through
 * one device, and through a 2-way mirror, whose replicas must also end identical once the
 * restarted mirror has resynced what its activity log held.
 */
import { cpSync } from 'node:fs';
import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import type { BlockDevice } from '../../fabric/device.js';
import { FabricSwitch } from '../../fabric/switch.js';
import { openMirror, readAll, settled, tempDir } from '../helpers/mirror-fixture.js';
import { VolatileCacheDevice } from '../helpers/volatile-cache.js';

const BLOCK = 4096;
const BLOCKS = 256;

/**
 * What may be found in each block after the cut. A write is durable once acknowledged with
 * FUA, or once a flush that began after it was acknowledged completes. A block may hold any
 * write to it that no durable write superseded — one that began after it had completed —
 * and zeroes only if nothing was ever durably written to it.
 */
class Model {
  private clock = 0;
  private readonly writes = new Map<number, { block: number; issued: number; completed: number; durable: boolean }>();
  /** Acknowledged writes a completed flush would make durable. */
  private acked: number[] = [];

  issued(block: number, tag: number): void {
    this.writes.set(tag, { block, issued: ++this.clock, completed: Infinity, durable: false });
  }

  ackedWrite(_block: number, tag: number, fua: boolean): void {
    const w = this.writes.get(tag)!;
    w.completed = ++this.clock;
    if (fua) w.durable = true;
    else this.acked.push(tag);
  }

  /** A flush begins: what was acknowledged by now is durable once it completes. */
  flushStarted(): number[] {
    const covered = this.acked;
    this.acked = [];
    return covered;
  }

  flushed(covered: readonly number[]): void {
    for (const tag of covered) this.writes.get(tag)!.durable = true;
  }

  /** Blocks whose content `content(block)` (a tag, 0 for zeroes, NaN if torn) breaks the rule. */
  lost(content: (block: number) => number): number[] {
    const durable = Array.from({ length: BLOCKS }, () => [] as number[]);
    for (const w of this.writes.values()) if (w.durable) durable[w.block]!.push(w.issued);
    const bad: number[] = [];
    for (let b = 0; b < BLOCKS; b++) {
      const tag = content(b);
      if (tag === 0) {
        if (durable[b]!.length > 0) bad.push(b);
        continue;
      }
      const w = this.writes.get(tag);
      if (!w || w.block !== b || durable[b]!.some((issued) => issued > w.completed)) bad.push(b);
    }
    return bad;
  }
}

function blockOf(tag: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i += 4) b.writeInt32LE(tag, i);
  return b;
}

/** The tag a block holds (0 for zeroes), or NaN if torn. */
function tagIn(image: Buffer, block: number): number {
  const tag = image.readInt32LE(block * BLOCK);
  for (let i = 0; i < BLOCK; i += 4) if (image.readInt32LE(block * BLOCK + i) !== tag) return NaN;
  return tag;
}

/**
 * Random writes (a fifth with FUA) and flushes, 8 at a time, until the power is cut. After
 * `ops` operations `armed()` is called, which cuts the power at once or when it likes; after
 * twice as many `cut()` is called if the power is still on.
 */
async function workload(device: BlockDevice, model: Model, ops: number, power: { armed(): void; cut(): void; isCut(): boolean }): Promise<void> {
  let next = 1;
  let done = 0;
  const worker = async () => {
    while (!power.isCut()) {
      const n = next++;
      if (n % 13 === 0) {
        const covered = model.flushStarted();
        try {
          await device.flush();
          model.flushed(covered);
        } catch {
          return;
        }
      } else {
        const block = Math.floor(Math.random() * BLOCKS);
        const fua = Math.random() < 0.2;
        model.issued(block, n);
        try {
          await device.write(block * BLOCK, [blockOf(n)], { fua });
          model.ackedWrite(block, n, fua);
        } catch {
          return;
        }
      }
      if (++done === ops) power.armed();
      if (done === 2 * ops && !power.isCut()) power.cut();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

t.test('one device: every write acknowledged with FUA or before a completed flush survives the cut', async (t) => {
  const disk = new MemoryBackend({ name: 'disk', size: BLOCKS * BLOCK });
  const cache = new VolatileCacheDevice(disk, 'cached');
  cache.delayMs = 2;
  const fabric = new FabricSwitch();
  t.teardown(() => fabric.close());
  fabric.addDevice(cache);
  fabric.addExport({ name: 'e', device: 'cached' });
  const channel = fabric.openChannel('e', { id: 'test', protocol: 'nbd' });
  const model = new Model();
  let cut = false;
  const powerCut = () => {
    cut = true;
    cache.powerCut();
  };
  await workload(channel, model, 2000, { armed: powerCut, cut: powerCut, isCut: () => cut });
  t.ok(cache.writtenBack > 0, 'the cache wrote some back before the cut');
  const image = await readAll(disk);
  t.same(model.lost((b) => tagIn(image, b)), [], 'no acknowledged durable write lost');
});

t.test('a mirror: durable writes survive on the replicas, which end identical after the restart', async (t) => {
  // The member dies with the power: what its data dir holds at the cut is all the restart
  // sees (a copy taken at that instant, before the dying mirror can record anything more).
  const dataDir = await tempDir(t);
  const atCut = await tempDir(t);
  const disks = ['a', 'b'].map((n) => new MemoryBackend({ name: `${n}-disk`, size: BLOCKS * BLOCK }));
  const caches = disks.map((d, i) => new VolatileCacheDevice(d, ['a', 'b'][i]));
  caches[0]!.delayMs = 1;
  caches[1]!.delayMs = 3; // b lags
  const options = { name: 'm', activityLog: { extentSize: 64 * 1024, extents: 2 }, resync: { rateMiBps: 0, regionSize: 16 * 1024 } };
  const m1 = await openMirror(t, { ...options, replicas: caches, dataDir });
  const model = new Model();
  let cut = false;
  const powerCut = () => {
    cut = true;
    caches.forEach((c) => c.powerCut());
    cpSync(dataDir, atCut, { recursive: true });
  };
  // Cut when a flush has written back a's cache while b still holds writes: the worst
  // moment, when the disks differ by more than the writes in flight.
  let armed = false;
  caches[0]!.onFlushWrittenBack = () => {
    if (armed && !cut && caches[1]!.cachedWrites > 0) powerCut();
  };
  await workload(m1, model, 2000, { armed: () => (armed = true), cut: powerCut, isCut: () => cut });
  await settled(m1);
  const [a0, b0] = await Promise.all(disks.map((d) => readAll(d)));
  t.notOk(a0!.equals(b0!), 'the cut left the replicas different (so the restart has something to repair)');

  // Power back: new caches (empty) over the same disks, and the mirror started again.
  const restarted = disks.map((d, i) => new VolatileCacheDevice(d, ['a', 'b'][i]));
  const m2 = await openMirror(t, { ...options, replicas: restarted, dataDir: atCut });
  await m2.resyncIdle();
  t.equal(m2.status().state, 'optimal');
  // The resync's copies sit in the caches: flush them down, then look at the disks.
  await m2.flush();
  const [a, b] = await Promise.all(disks.map((d) => readAll(d)));
  t.ok(a!.equals(b!), 'the replicas are identical');
  t.same(model.lost((blk) => tagIn(a!, blk)), [], 'no acknowledged durable write lost');
  t.ok(m2.bytesResynced < BLOCKS * BLOCK, `only the logged extents were copied (${m2.bytesResynced} of ${BLOCKS * BLOCK} bytes)`);
});
