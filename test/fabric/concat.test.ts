import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { buildGraph } from '../../member/devices/build.js';
import { ConcatDevice } from '../../fabric/layers/concat.js';
import { FaultyDevice } from '../helpers/faulty.js';
import { compareWithFlat } from '../helpers/random-io.js';
import { KiB, MiB, pattern, tempDir } from '../helpers/mirror-fixture.js';

t.test('children are laid end to end; a request across a boundary is split', async (t) => {
  const a = new FaultyDevice(new MemoryBackend({ name: 'a', size: MiB }));
  const b = new FaultyDevice(new MemoryBackend({ name: 'b', size: 512 * KiB }));
  const c = new FaultyDevice(new MemoryBackend({ name: 'c', size: MiB }));
  const d = new ConcatDevice('d', [a, b, c]);
  t.equal(d.size, 2.5 * MiB);
  const data = pattern(64 * KiB, 3);
  const payload = [data.subarray(0, 100), data.subarray(100)];
  await d.write(MiB - 32 * KiB, payload);
  t.same(a.writes, [[MiB - 32 * KiB, 32 * KiB]]);
  t.same(b.writes, [[0, 32 * KiB]]);
  await d.write(1.5 * MiB, [data]);
  t.same(c.writes, [[0, 64 * KiB]], 'the third child starts after the second');
  const got = Buffer.alloc(64 * KiB);
  await d.read(MiB - 32 * KiB, got);
  t.ok(got.equals(data));
  await d.trim(MiB - 4096, 8192);
  t.same([a.ops.trim, b.ops.trim, c.ops.trim], [1, 1, 0]);
});

t.test('random I/O through a concat matches a flat device', async (t) => {
  const sizes = [300 * KiB, MiB, 64 * KiB, 700 * KiB];
  const d = new ConcatDevice('d', sizes.map((size, i) => new MemoryBackend({ name: `c${i}`, size })));
  const flat = new MemoryBackend({ name: 'flat', size: d.size });
  t.equal(await compareWithFlat(d, flat, { ops: 400, block: 512, maxBlocks: 300, seed: 11 }), undefined);
});

t.test('concat from config, with block status across children', async (t) => {
  const g = await buildGraph(
    [
      { name: 'a', type: 'memory', size: '256k' },
      { name: 'b', type: 'memory', size: '256k' },
      { name: 'd', type: 'concat', devices: ['a', 'b'] },
    ],
    { dataDir: await tempDir(t) },
  );
  const d = g.get('d')!;
  t.teardown(() => d.close());
  await d.write(192 * KiB, [pattern(128 * KiB, 4)]);
  t.same(await d.blockStatus(0, 512 * KiB), [
    { length: 192 * KiB, hole: true, zero: true },
    { length: 128 * KiB, hole: false, zero: false },
    { length: 192 * KiB, hole: true, zero: true },
  ]);
});
