import t from 'tap';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileBackend } from '../../fabric/backends/file.js';
import { AIO_BATCH, AioWrites } from '../../fabric/backends/aio-writes.js';
import { KnownData } from '../../fabric/backends/known-data.js';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { randomBytes, tempDir } from '../helpers/clients.js';

/**
 * Which path each file request takes (at once on the event loop, or through the thread
 * pool), and block status answered from what is known instead of a SEEK_HOLE walk. The
 * counters read here are the backend's own (status().detail), so a request that took the
 * other path shows.
 */

const MiB = 1024 * 1024;
const swapActive = readFileSync('/proc/swaps', 'utf8').trim().split('\n').length > 1;

interface Detail {
  ioPath: string;
  writeBatches: { writes: number; batches: number };
  readsNow: number;
  writesNow: number;
  blockStatusWalks: number;
}
const detail = (dev: FileBackend) => dev.status().detail as unknown as Detail;

t.test('tmpfs: reads and writes are served at once when there is no swap', async (t) => {
  const dir = await tempDir(t, 'blockgate-iopath-', '/dev/shm');
  const dev = await FileBackend.open({ name: 'shm', path: join(dir, 'disk.img'), size: 4 * MiB, create: true });
  t.teardown(() => dev.close());
  const data = randomBytes(64 * 1024, 3);
  await dev.write(MiB + 512, [data.subarray(0, 1000), data.subarray(1000)]);
  const back = Buffer.alloc(data.length);
  await dev.read(MiB + 512, back);
  t.same(back, data, 'data round trips');
  t.same((await readFile(join(dir, 'disk.img'))).subarray(MiB + 512, MiB + 512 + data.length), data, 'and is in the file');
  if (swapActive) {
    t.equal(detail(dev).ioPath, 'pool', 'with swap, tmpfs pages may be on disk: the pool');
    t.equal(detail(dev).readsNow + detail(dev).writesNow, 0);
  } else {
    t.equal(detail(dev).ioPath, 'memory');
    t.equal(detail(dev).writesNow, 1, 'the write was done at once');
    t.equal(detail(dev).readsNow, 1, 'the read was done at once');
  }
});

t.test('a disk file system: cached reads at once (RWF_NOWAIT), writes through the pool', async (t) => {
  const dir = await tempDir(t, 'blockgate-iopath-', '/var/tmp');
  const dev = await FileBackend.open({ name: 'disk', path: join(dir, 'disk.img'), size: 4 * MiB, create: true });
  t.teardown(() => dev.close());
  const data = randomBytes(128 * 1024, 4);
  await dev.write(0, [data]);
  t.equal(detail(dev).writesNow, 0, 'a write to a disk-backed file may wait for writeback throttling: never on the event loop');
  const back = Buffer.alloc(data.length);
  await dev.read(0, back);
  t.same(back, data);
  t.equal(detail(dev).ioPath, 'nowait');
  t.equal(detail(dev).readsNow, 1, 'the just-written (cached) data was read at once');
});

/** 64 writes of distinct data issued at once at scattered offsets; the file must hold each. */
async function scatteredWrites(dev: FileBackend, path: string): Promise<Map<number, Buffer>> {
  const writes = new Map<number, Buffer>();
  for (let i = 0; i < 64; i++) writes.set(((i * 37) % 64) * 64 * 1024 + (i % 3) * 4096, randomBytes(4096, 100 + i));
  // Two slices for some: a write may arrive as several views of receive arenas.
  await Promise.all([...writes].map(([at, data], i) => dev.write(at, i % 2 ? [data] : [data.subarray(0, 1000), data.subarray(1000)])));
  const file = await readFile(path);
  for (const [at, data] of writes) if (!file.subarray(at, at + data.length).equals(data)) throw new Error(`write at ${at} is not in the file`);
  return writes;
}

t.test('writes that go to the pool leave in batches: one pool job per AIO_BATCH writes', async (t) => {
  const dir = await tempDir(t, 'blockgate-iopath-', '/var/tmp');
  const path = join(dir, 'disk.img');
  const dev = await FileBackend.open({ name: 'batched', path, size: 4 * MiB, create: true });
  t.teardown(() => dev.close());
  const writes = await scatteredWrites(dev, path);
  t.same(detail(dev).writeBatches, { writes: 64, batches: Math.ceil(64 / AIO_BATCH) }, `64 writes of one turn, one io_submit per ${AIO_BATCH}`);
  const back = Buffer.alloc(4096);
  await dev.read(64 * 1024, back);
  t.same(back, writes.get(64 * 1024), 'and they read back through the backend');
});

t.test('forced: every pool write on its own (as without libaio)', async (t) => {
  const dir = await tempDir(t, 'blockgate-iopath-', '/var/tmp');
  const path = join(dir, 'disk.img');
  const dev = await FileBackend.open({ name: 'single', path, size: 4 * MiB, create: true, batchWrites: false });
  t.teardown(() => dev.close());
  await scatteredWrites(dev, path);
  t.same(detail(dev).writeBatches, { writes: 0, batches: 0 }, 'no batch: fs.writev per write');
});

t.test('a batched write the kernel refuses fails alone, with its errno', async (t) => {
  const dir = await tempDir(t, 'blockgate-iopath-', '/var/tmp');
  const path = join(dir, 'ro.img');
  writeFileSync(path, Buffer.alloc(8192));
  const fd = openSync(path, 'r');
  t.teardown(() => closeSync(fd));
  const aio = AioWrites.open(fd)!;
  t.ok(aio, 'libaio is there (Debian: libaio1)');
  t.teardown(() => aio.close());
  await t.rejects(aio.pwritev([Buffer.alloc(4096)], 0), { code: 'EBADF' }, 'a descriptor opened read-only');
});

t.test('block status of a file allocated in full needs no walk; punching brings the walk back', async (t) => {
  const dir = await tempDir(t, 'blockgate-iopath-', '/dev/shm');
  const dev = await FileBackend.open({ name: 'bs', path: join(dir, 'disk.img'), size: 8 * MiB, create: true });
  t.teardown(() => dev.close());
  await dev.write(0, [randomBytes(8 * MiB, 5)]);
  for (let at = 0; at < 8 * MiB; at += MiB) t.same(await dev.blockStatus(at, MiB), [{ length: MiB, hole: false, zero: false }]);
  t.equal(detail(dev).blockStatusWalks, 0, 'a dense file answers from fstat alone');

  await dev.trim(2 * MiB, MiB);
  t.same(await dev.blockStatus(MiB, 3 * MiB), [
    { length: MiB, hole: false, zero: false },
    { length: MiB, hole: true, zero: true },
    { length: MiB, hole: false, zero: false },
  ], 'the punched hole shows');
  const walks = detail(dev).blockStatusWalks;
  t.ok(walks >= 1, 'found by walking');
  t.same(await dev.blockStatus(4 * MiB, MiB), [{ length: MiB, hole: false, zero: false }]);
  t.same(await dev.blockStatus(7 * MiB, MiB), [{ length: MiB, hole: false, zero: false }]);
  t.equal(detail(dev).blockStatusWalks, walks, 'data the walk found up to the next hole is answered without walking again');
  t.same(await dev.blockStatus(0, MiB), [{ length: MiB, hole: false, zero: false }]);
  t.equal(detail(dev).blockStatusWalks, walks + 1, 'a range not walked yet is walked');
  await dev.write(2 * MiB, [randomBytes(MiB, 6)]);
  t.same(await dev.blockStatus(2 * MiB, MiB), [{ length: MiB, hole: false, zero: false }], 'a hole written over is data again');
});

t.test('KnownData: ranges merge, split and cover', async (t) => {
  const k = new KnownData(4);
  t.notOk(k.covers(0, 1));
  k.add(10, 20);
  k.add(30, 40);
  t.ok(k.covers(10, 20));
  t.ok(k.covers(12, 18));
  t.notOk(k.covers(15, 25));
  t.notOk(k.covers(5, 12));
  k.add(20, 30);
  t.equal(k.rangeCount, 1, 'touching ranges merge');
  t.ok(k.covers(10, 40));
  k.forget(15, 35);
  t.equal(k.rangeCount, 2, 'forgetting the middle splits');
  t.ok(k.covers(10, 15));
  t.ok(k.covers(35, 40));
  t.notOk(k.covers(14, 16));
  k.add(0, 100);
  t.equal(k.rangeCount, 1, 'a range over others swallows them');
  for (let i = 0; i < 4; i++) k.add(200 + i * 10, 205 + i * 10);
  t.equal(k.rangeCount, 0, 'past the limit the list is dropped (the file system is asked again)');
  k.noteAllocation(1000, 1000, 1000);
  t.ok(k.allData && k.covers(0, 1000), 'allocated in full: everything is data');
  k.forget(0, 1);
  t.notOk(k.allData, 'until a punch');
  k.noteAllocation(1000, 500, 1000);
  t.notOk(k.allData, 'a file shorter than the device has a hole at its end');
});
