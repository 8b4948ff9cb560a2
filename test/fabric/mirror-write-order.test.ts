/**
 * Two writes in flight to the same block must land in the same order on every replica, or
 * the replicas keep different data (both writes acknowledged, the extent flushed and
 * forgotten by the activity log). Each replica here holds back a different one of the two
 * writes, which is the order a loaded network or disk can produce.
 */
import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import type { WriteOptions } from '../../fabric/device.js';
import { Layer } from '../../fabric/layer.js';
import { openMirror, readAll, tempDir } from '../helpers/mirror-fixture.js';

const BLOCK = 4096;

/** Holds back writes whose first byte is `slowTag` until `release()`. */
class HoldBack extends Layer {
  private held: Array<() => void> = [];
  constructor(
    name: string,
    private readonly slowTag: number,
  ) {
    super(new MemoryBackend({ name: `${name}-mem`, size: 64 * BLOCK }), name);
  }
  override async write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    if (data[0]![0] === this.slowTag) await new Promise<void>((r) => this.held.push(r));
    return this.next.write(offset, data, options);
  }
  get holding(): number {
    return this.held.length;
  }
  release(): void {
    for (const r of this.held.splice(0)) r();
  }
}

const tagged = (tag: number) => Buffer.alloc(BLOCK, tag);

t.test('overlapping writes in flight land in one order on both replicas', async (t) => {
  const a = new HoldBack('a', 1);
  const b = new HoldBack('b', 2);
  const mirror = await openMirror(t, { replicas: [a, b], dataDir: await tempDir(t), activityLog: false });
  const first = mirror.write(0, [tagged(1)]);
  const second = mirror.write(0, [tagged(2)]);
  // b holds back the second write; if it was issued, b has the first already and a has the second.
  await new Promise((r) => setImmediate(r));
  a.release();
  await first;
  b.release();
  await second;
  const [da, db] = await Promise.all([readAll(a), readAll(b)]);
  t.equal(da[0], 2, 'a holds the second write');
  t.equal(db[0], 2, 'b holds the second write');
  t.ok(da.equals(db), 'the replicas are identical');
});

t.test('writes that do not overlap are not held up by each other', async (t) => {
  const a = new HoldBack('a', 1);
  const b = new HoldBack('b', 1);
  const mirror = await openMirror(t, { replicas: [a, b], dataDir: await tempDir(t), activityLog: false });
  const first = mirror.write(0, [tagged(1)]);
  await mirror.write(BLOCK, [tagged(2)]);
  t.equal(a.holding + b.holding, 2, 'the second completed while the first is still held');
  a.release();
  b.release();
  await first;
});
