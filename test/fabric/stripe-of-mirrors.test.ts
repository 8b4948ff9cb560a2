import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { buildGraph } from '../../member/devices/build.js';
import { CheckedDevice } from '../../fabric/checked.js';
import { StripeDevice } from '../../fabric/layers/stripe.js';
import type { MirrorDevice } from '../../fabric/layers/mirror/mirror.js';
import { compareWithFlat } from '../helpers/random-io.js';
import { act, faultyMemory, KiB, MiB, openMirror, readAll, replicaState, tempDir } from '../helpers/mirror-fixture.js';

t.test('a stripe of two mirrors: a replica failure under random I/O loses nothing', async (t) => {
  const dataDir = await tempDir(t);
  const [a0, a1, b0, b1] = faultyMemory(['a0', 'a1', 'b0', 'b1'], 2 * MiB);
  const left = await openMirror(t, { name: 'left', replicas: [a0!, a1!], dataDir });
  const right = await openMirror(t, { name: 'right', replicas: [b0!, b1!], dataDir });
  const stripe = new CheckedDevice(new StripeDevice('s', [left, right], 64 * KiB));
  const flat = new MemoryBackend({ name: 'flat', size: stripe.size });
  t.equal(stripe.size, 4 * MiB);
  t.equal(await compareWithFlat(stripe, flat, { ops: 150, block: 4096, maxBlocks: 40, seed: 3 }), undefined);
  await stripe.flush();
  b1!.down();
  t.equal(await compareWithFlat(stripe, flat, { ops: 150, block: 4096, maxBlocks: 40, seed: 4 }), undefined, 'same data while a leg is degraded');
  t.equal(replicaState(right, 'b1'), 'failed');
  t.equal(stripe.status().state, 'degraded', 'the stripe reports its worst leg');
  b1!.up();
  await act(right, 'reintegrate', { replica: 'b1' });
  await right.resyncIdle();
  t.equal(stripe.status().state, 'optimal');
  t.ok((await readAll(b1!)).equals(await readAll(b0!)), 'the returned replica was brought up to date');
  t.ok(right.bytesResynced < 2 * MiB, 'by a delta resync');
});

t.test('the stack builds from config: stripe → mirrors → memory', async (t) => {
  const mem = (name: string) => ({ name, type: 'memory', size: '1M' });
  const g = await buildGraph(
    [
      mem('a0'), mem('a1'), mem('b0'), mem('b1'),
      { name: 'ma', type: 'mirror', replicas: ['a0', 'a1'], probeIntervalMs: 0, assumeClean: true },
      { name: 'mb', type: 'mirror', replicas: ['b0', 'b1'], probeIntervalMs: 0, assumeClean: true },
      { name: 's', type: 'stripe', devices: ['ma', 'mb'], stripeUnit: '128k' },
    ],
    { dataDir: await tempDir(t) },
  );
  const s = g.get('s')!;
  t.teardown(() => s.close());
  t.equal(s.size, 2 * MiB);
  const flat = new MemoryBackend({ name: 'flat', size: s.size });
  t.equal(await compareWithFlat(s, flat, { ops: 100, block: 4096, maxBlocks: 64, seed: 5 }), undefined);
  t.equal((g.get('ma') as MirrorDevice).status().state, 'optimal');
});
