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
