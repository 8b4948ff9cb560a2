import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { BufferPool, ReceiveArenas, readBufferPool, type Retained } from '../../fabric/buffers.js';
import type { WriteOptions } from '../../fabric/device.js';
import { Layer } from '../../fabric/layer.js';
import { ByteQueue } from '../../fabric/byte-queue.js';
import { copyStats } from '../../fabric/copies.js';
import { startNbdServer } from '../helpers/nbd.js';

const run = promisify(execFile);
const MiB = 1 << 20;

t.test('an arena returns to the pool only when its last reader lets go', async (t) => {
  const pool = new BufferPool();
  const arenas = new ReceiveArenas(pool, { initialSize: 64 * 1024, maxSize: 128 * 1024, minRead: 16 * 1024 });
  const queue = new ByteQueue();
  arenas.region().fill(1, 0, 40 * 1024);
  const a = arenas.filled(40 * 1024);
  queue.push(a.chunk, a.owner);
  // 24 KiB left is room enough; the next read shares the arena.
  t.equal(arenas.region().length, 24 * 1024);
  const b = arenas.filled(10 * 1024);
  queue.push(b.chunk, b.owner);
  t.equal(arenas.region().length, 128 * 1024, 'less than minRead left: a fresh arena, twice as large');
  t.equal(pool.stats.released, 0, 'the first arena is still referenced by queued chunks');

  const holds: Retained[] = [];
  const slices = queue.readSlices(45 * 1024, holds);
  t.equal(slices.length, 2);
  t.equal(holds.length, 2, 'one hold per slice');
  queue.skip(queue.length);
  t.equal(pool.stats.released, 0, 'payload slices still hold the arena');
  holds[0]!.release();
  t.equal(pool.stats.released, 0);
  holds[1]!.release();
  t.equal(pool.stats.released, 1, 'recycled once the payload was released');
  arenas.close();
  t.equal(pool.stats.released, 2);
  t.equal(pool.stats.allocated, 2);
});

t.test('clearing the queue releases its chunks', async (t) => {
  const pool = new BufferPool();
  const arenas = new ReceiveArenas(pool, { initialSize: 8192, minRead: 4096 });
  const queue = new ByteQueue();
  arenas.region();
  const a = arenas.filled(100);
  queue.push(a.chunk, a.owner);
  arenas.close();
  t.equal(pool.stats.released, 0);
  queue.clear();
  t.equal(pool.stats.released, 1);
});

t.test('a header cut by two reads into one arena is a view across them; across arenas a counted copy', async (t) => {
  const pool = new BufferPool();
  const arenas = new ReceiveArenas(pool, { initialSize: 8192, maxSize: 8192, minRead: 4096 });
  const queue = new ByteQueue();
  const read = (bytes: number[]) => {
    const region = arenas.region();
    region.set(bytes);
    const { chunk, owner } = arenas.filled(bytes.length);
    queue.push(chunk, owner);
  };
  read([1, 2, 3]);
  read([4, 5, 6, 7, 8]);
  const peeked = queue.peek(6)!;
  t.same([...peeked], [1, 2, 3, 4, 5, 6], 'peek sees both reads as one run');
  const holds: Retained[] = [];
  const view = queue.readContiguous(6, true, holds);
  t.equal(view.buffer, peeked.buffer, 'a view of the arena, not a copy');
  t.equal(holds.length, 1, 'holding the arena once');
  t.same([...queue.readContiguous(2)], [7, 8], 'the queue moved past both chunks');
  t.equal(queue.length, 0);
  // A read that fills the arena to its end, the header's first bytes last: the next read starts a fresh arena.
  read([...new Array<number>(8192 - 8 - 2).fill(0), 9, 10]);
  queue.skip(8192 - 8 - 2);
  read([11, 12]);
  t.not(arenas.region().buffer, view.buffer, 'the second read went to a fresh arena');
  t.equal(queue.peek(4), null, 'no one view spans two arenas');
  const before = copyStats.transfer;
  const copy = queue.readContiguous(4);
  t.same([...copy], [9, 10, 11, 12], 'copied together');
  t.equal(copyStats.transfer - before, 4, 'and the copy counted');
  releaseAll(holds);
  arenas.close();
  t.equal(pool.stats.released, pool.stats.allocated, 'every arena went back once nothing held it');
});

function releaseAll(holds: Retained[]): void {
  for (const h of holds) h.release();
}

/** Works on a write's payload only after a delay, long after later reads have landed. */
class LateWriter extends Layer {
  override async write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    await sleep(20 + ((offset >> 16) % 20));
    return this.next.write(offset, data, options);
  }
}

t.test('payloads stay intact while the device holds them, and arenas are reused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'blockgate-arenas-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const size = 64 * MiB;
  const nbd = await startNbdServer([{ name: 'late', device: new LateWriter(new MemoryBackend({ name: 'late-mem', size })) }]);
  t.teardown(() => nbd.stop());
  const source = join(dir, 'source.img');
  const back = join(dir, 'back.img');
  const data = randomBytes(size);
  await writeFile(source, data);
  const before = { ...readBufferPool.stats };
  await run('nbdcopy', ['--flush', '--request-size=65536', source, nbd.uri()]);
  const acquired = readBufferPool.stats.acquired - before.acquired;
  const allocated = readBufferPool.stats.allocated - before.allocated;
  t.comment(`receive arenas: ${acquired} borrowed, ${allocated} newly allocated`);
  t.ok(acquired > 0, 'socket reads landed in pooled receive arenas');
  t.ok(allocated < acquired, 'arenas were recycled rather than allocated per read');
  await run('nbdcopy', [nbd.uri(), back]);
  t.ok((await readFile(back)).equals(data), 'every delayed write stored the bytes that were sent');
});
