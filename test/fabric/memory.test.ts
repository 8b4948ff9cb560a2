import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { BlockError } from '../../fabric/errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const TiB = 1024 ** 4;

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

t.test('a 1 TiB device costs only the 4 KiB chunks written', async (t) => {
  const dev = new MemoryBackend({ name: 'big', size: TiB });
  t.equal(dev.allocatedBytes, 0);
  await dev.write(TiB - 64 * KiB, [pattern(64 * KiB, 1)]);
  await dev.write(0, [pattern(100, 2)]);
  t.equal(dev.allocatedBytes, 68 * KiB, 'sixteen chunks and one');
  const back = Buffer.alloc(64 * KiB);
  await dev.read(TiB - 64 * KiB, back);
  t.same(back, pattern(64 * KiB, 1));
  const middle = Buffer.alloc(4096, 0xff);
  await dev.read(TiB / 2, middle);
  t.ok(middle.every((x) => x === 0), 'unwritten space reads as zeroes');
  t.equal((dev.status().detail as { allocatedBytes: number }).allocatedBytes, 68 * KiB);
});

t.test('a chunk slot freed by trim and reused starts out zero', async (t) => {
  const dev = new MemoryBackend({ name: 'reuse', size: 16 * MiB });
  await dev.write(0, [Buffer.alloc(8 * KiB, 0xee)]);
  await dev.trim(0, 8 * KiB);
  t.equal(dev.allocatedBytes, 0);
  await dev.write(MiB + 100, [Buffer.from('hello')]);
  await dev.writeZeroes(2 * MiB, 10, { noHole: true });
  const back = Buffer.alloc(4 * KiB);
  await dev.read(MiB, back);
  t.same(back.subarray(100, 105), Buffer.from('hello'));
  t.ok(back.subarray(0, 100).every((x) => x === 0) && back.subarray(105).every((x) => x === 0), 'the rest of the reused chunk reads zero');
  await dev.read(2 * MiB, back);
  t.ok(back.every((x) => x === 0), 'a chunk allocated by NO_HOLE zeroing reads zero');
});

t.test('random 4 KiB writes spread over a huge device cost what they wrote', async (t) => {
  const dev = new MemoryBackend({ name: 'spread', size: TiB });
  const written = new Map<number, Buffer>();
  let x = 12345;
  for (let i = 0; i < 2000; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const at = (x % (TiB / (4 * KiB))) * 4 * KiB;
    const data = pattern(4 * KiB, i);
    written.set(at, data);
    await dev.write(at, [data]);
  }
  t.equal(dev.allocatedBytes, written.size * 4 * KiB, 'one 4 KiB chunk per distinct block written');
  const back = Buffer.alloc(4 * KiB);
  for (const [at, data] of written) {
    await dev.read(at, back);
    if (!back.equals(data)) t.fail(`block at ${at} reads back wrong`);
  }
  // Sequential data is stored in consecutive slots: a long read spans them.
  await dev.write(0, [pattern(3 * MiB, 7)]);
  const long = Buffer.alloc(3 * MiB);
  await dev.read(0, long);
  t.same(long, pattern(3 * MiB, 7), 'a read across slabs and slots reads back exactly');
});

t.test('writes spanning chunks, from several slices, read back exactly', async (t) => {
  const dev = new MemoryBackend({ name: 'm', size: 4 * MiB, chunkSize: 4096 });
  const data = pattern(3 * 4096 + 77, 9);
  const slices = [data.subarray(0, 5), data.subarray(5, 5000), data.subarray(5000)];
  await dev.write(4000, slices);
  const back = Buffer.alloc(data.length);
  await dev.read(4000, back);
  t.same(back, data);
  t.same(slices[1], data.subarray(5, 5000), 'caller slices untouched');
  t.equal(dev.allocatedBytes, 4 * 4096, 'chunks 0..3 touched by bytes 4000..16364');
});

t.test('trim and write zeroes free whole chunks, keep partial ones, honour noHole', async (t) => {
  const dev = new MemoryBackend({ name: 'm', size: 1 * MiB, chunkSize: 4096 });
  await dev.write(0, [pattern(16 * 4096, 3)]);
  t.equal(dev.allocatedBytes, 16 * 4096);

  await dev.trim(4096, 2 * 4096);
  t.equal(dev.allocatedBytes, 14 * 4096, 'two whole chunks freed by trim');

  await dev.writeZeroes(4 * 4096 + 100, 200);
  t.equal(dev.allocatedBytes, 14 * 4096, 'partial zeroing keeps the chunk');
  const piece = Buffer.alloc(400);
  await dev.read(4 * 4096, piece);
  t.same(piece.subarray(100, 300), Buffer.alloc(200), 'zeroed bytes read as zero');
  t.same(piece.subarray(0, 100), pattern(16 * 4096, 3).subarray(4 * 4096, 4 * 4096 + 100), 'neighbours intact');

  await dev.writeZeroes(8 * 4096, 4096);
  t.equal(dev.allocatedBytes, 13 * 4096, 'whole-chunk zeroing frees');

  await dev.writeZeroes(8 * 4096, 4096, { noHole: true });
  t.equal(dev.allocatedBytes, 14 * 4096, 'noHole allocates');
  await dev.writeZeroes(64 * 4096, 2 * 4096, { noHole: true });
  t.equal(dev.allocatedBytes, 16 * 4096, 'noHole allocates unwritten chunks too');

  // Zeroing the remaining non-zero bytes of a chunk in pieces frees it once all zero.
  await dev.write(200 * 4096, [pattern(10, 4)]);
  const before = dev.allocatedBytes;
  await dev.trim(200 * 4096, 10);
  t.equal(dev.allocatedBytes, before - 4096, 'a chunk that became all zeroes is freed');
});

t.test('blockStatus is exact and merges runs', async (t) => {
  const dev = new MemoryBackend({ name: 'm', size: 64 * 4096, chunkSize: 4096 });
  t.same(await dev.blockStatus(0, 64 * 4096), [{ length: 64 * 4096, hole: true, zero: true }], 'empty device: one hole');
  await dev.write(2 * 4096, [pattern(3 * 4096, 5)]);
  await dev.write(6 * 4096, [pattern(1, 6)]);
  t.same(await dev.blockStatus(0, 10 * 4096), [
    { length: 2 * 4096, hole: true, zero: true },
    { length: 3 * 4096, hole: false, zero: false },
    { length: 4096, hole: true, zero: true },
    { length: 4096, hole: false, zero: false },
    { length: 3 * 4096, hole: true, zero: true },
  ]);
  t.same(await dev.blockStatus(2 * 4096 + 10, 100), [{ length: 100, hole: false, zero: false }], 'unaligned query clipped to its range');
  t.same(await dev.blockStatus(4096 + 5, 4096), [
    { length: 4091, hole: true, zero: true },
    { length: 5, hole: false, zero: false },
  ]);
});

t.test('closed device fails with ESHUTDOWN; bad options refused', async (t) => {
  const dev = new MemoryBackend({ name: 'm', size: 4096 });
  await dev.close();
  await t.rejects(dev.read(0, Buffer.alloc(1)), { code: 'ESHUTDOWN' });
  await t.rejects(dev.write(0, [Buffer.alloc(1)]), { code: 'ESHUTDOWN' });
  await t.rejects(dev.trim(0, 1), { code: 'ESHUTDOWN' });
  t.equal(dev.status().state, 'failed');
  t.throws(() => new MemoryBackend({ name: 'x', size: -1 }), BlockError);
  t.throws(() => new MemoryBackend({ name: 'x', size: 10, chunkSize: 3000 }), { code: 'EINVAL' });
  t.throws(() => new MemoryBackend({ name: 'x', size: 10, chunkSize: 4 }), { code: 'EINVAL' }, 'chunks under 8 bytes refused');
});

t.test('read-only flag and block sizes are reported', async (t) => {
  const dev = new MemoryBackend({ name: 'ro', size: 8192, readOnly: true, blockSizes: { minimum: 512 } });
  t.equal(dev.capabilities.readOnly, true);
  t.equal(dev.blockSizes.minimum, 512);
  t.equal(dev.blockSizes.preferred, 4096);
});

t.test('a densely written region is read through its leaf: one Map look-up per MiB, not one per chunk', async (t) => {
  const dev = new MemoryBackend({ name: 'dense', size: 64 * MiB });
  await dev.write(8 * MiB, [pattern(4 * MiB, 3)]);
  t.equal((dev.status().detail as { denseLeaves: number }).denseLeaves, 4, 'each fully written MiB has a leaf');
  const back = Buffer.alloc(4 * MiB);
  const get = Map.prototype.get;
  let lookups = 0;
  Map.prototype.get = function (this: Map<unknown, unknown>, key: unknown) {
    lookups++;
    return get.call(this, key);
  };
  try {
    await dev.read(8 * MiB, back);
    await dev.blockStatus(8 * MiB, 4 * MiB);
  } finally {
    Map.prototype.get = get;
  }
  t.same(back, pattern(4 * MiB, 3));
  t.ok(lookups <= 16, `4 MiB read and block status: ${lookups} Map look-ups, not one per each of the 2 × 1,024 chunks`);
});

t.test('leaves made and emptied by any mix of writes, trims and zeroing keep the bytes exact', async (t) => {
  const size = 4 * MiB;
  const dev = new MemoryBackend({ name: 'model', size });
  const model = Buffer.alloc(size);
  let x = 777;
  const rand = (n: number): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % n;
  };
  let leavesSeen = 0;
  for (let i = 0; i < 600; i++) {
    const at = rand(size / 512) * 512;
    const length = Math.min(size - at, (1 + rand(i % 3 === 0 ? 512 : 24)) * 512);
    const op = rand(4);
    if (op <= 1) {
      const data = pattern(length, i);
      await dev.write(at, [data.subarray(0, length >> 1), data.subarray(length >> 1)]);
      data.copy(model, at);
    } else if (op === 2) {
      await dev.trim(at, length);
      model.fill(0, at, at + length);
    } else {
      await dev.writeZeroes(at, length, { noHole: rand(2) === 0 });
      model.fill(0, at, at + length);
    }
    leavesSeen = Math.max(leavesSeen, (dev.status().detail as { denseLeaves: number }).denseLeaves);
  }
  const back = Buffer.alloc(size);
  await dev.read(0, back);
  t.ok(back.equals(model), 'the device reads back what the model holds');
  t.ok(leavesSeen > 0, 'the run made leaves');
  await dev.trim(0, size);
  t.equal(dev.allocatedBytes, 0);
  t.equal((dev.status().detail as { denseLeaves: number }).denseLeaves, 0, 'emptied leaves go');
});
