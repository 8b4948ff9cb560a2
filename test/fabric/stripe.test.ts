import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { buildGraph } from '../../member/devices/build.js';
import { ConfigError } from '../../failover/config/errors.js';
import { StripeDevice } from '../../fabric/layers/stripe.js';
import { FaultyDevice } from '../helpers/faulty.js';
import { compareWithFlat } from '../helpers/random-io.js';
import { KiB, MiB, pattern, tempDir } from '../helpers/mirror-fixture.js';

function legs(n: number, size: number, blockSizes?: { minimum: number }): FaultyDevice[] {
  return Array.from({ length: n }, (_, i) => new FaultyDevice(new MemoryBackend({ name: `leg${i}`, size, blockSizes })));
}

t.test('stripe units go round-robin over the children', async (t) => {
  const [a, b, c] = legs(3, MiB + 5000);
  const s = new StripeDevice('s', [a!, b!, c!], 64 * KiB);
  t.equal(s.size, 3 * 16 * 64 * KiB, 'whole stripe units of the smallest child');
  const data = pattern(4 * 64 * KiB, 1);
  await s.write(32 * KiB, [data.subarray(0, 1000), data.subarray(1000)]);
  // 32K..288K: unit 0 (a, second half), unit 1 (b), unit 2 (c), unit 3 (a row 1), unit 4 (b, first half)
  t.same(a!.writes, [[32 * KiB, 32 * KiB], [64 * KiB, 64 * KiB]]);
  t.same(b!.writes, [[0, 64 * KiB], [64 * KiB, 32 * KiB]]);
  t.same(c!.writes, [[0, 64 * KiB]]);
  const got = Buffer.alloc(64 * KiB);
  await c!.read(0, got);
  t.ok(got.equals(data.subarray(96 * KiB, 160 * KiB)), 'the third unit landed at the start of c');
  await s.flush();
  t.same([a!.ops.flush, b!.ops.flush, c!.ops.flush], [1, 1, 1], 'flush goes to all');
});

t.test('random I/O through a stripe matches a flat device', async (t) => {
  const s = new StripeDevice('s', legs(3, 2 * MiB), 16 * KiB);
  const flat = new MemoryBackend({ name: 'flat', size: s.size });
  t.equal(await compareWithFlat(s, flat, { ops: 400, block: 512, maxBlocks: 200, seed: 7 }), undefined);
});

t.test('block status is merged across stripe units', async (t) => {
  const s = new StripeDevice('s', legs(2, MiB), 64 * KiB);
  await s.write(0, [pattern(128 * KiB, 2)]); // units 0 and 1: both data, on two children
  const extents = await s.blockStatus(0, 512 * KiB);
  t.same(extents[0], { length: 128 * KiB, hole: false, zero: false });
  t.same(extents[1], { length: 384 * KiB, hole: true, zero: true });
});

t.test('capabilities are the intersection; status the worst child', async (t) => {
  const [a, b] = legs(2, MiB);
  const ro = new MemoryBackend({ name: 'ro', size: MiB, readOnly: true });
  const s = new StripeDevice('s', [a!, ro], 4096);
  t.equal(s.capabilities.readOnly, true);
  t.equal(new StripeDevice('s2', [a!, b!], 4096).capabilities.readOnly, false);
  b!.down();
  t.equal(new StripeDevice('s3', [a!, b!], 4096).status().state, 'failed');
});

t.test('stripe config: power-of-two unit, multiple of the block size', async (t) => {
  const dataDir = await tempDir(t);
  const mem = (name: string, min?: number) => ({ name, type: 'memory', size: '1M', ...(min ? {} : {}) });
  await t.rejects(buildGraph([mem('a'), mem('b'), { name: 's', type: 'stripe', devices: ['a', 'b'], stripeUnit: 3000 }], { dataDir }), { name: 'ConfigError', field: 'devices[2].stripeUnit' });
  await t.rejects(buildGraph([mem('a'), { name: 's', type: 'stripe', devices: ['a'], stripeUnit: '64k' }], { dataDir }), ConfigError);
  const g = await buildGraph([mem('a'), mem('b'), { name: 's', type: 'stripe', devices: ['a', 'b'], stripeUnit: '64k' }], { dataDir });
  t.equal(g.get('s')!.size, 2 * MiB);
  await g.get('s')!.close();
  t.throws(() => new StripeDevice('s', legs(2, MiB, { minimum: 4096 }), 2048), { code: 'EINVAL' });
});
