import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import type { BlockDevice, WriteOptions } from '../../fabric/device.js';
import { BlockError } from '../../fabric/errors.js';
import { Layer } from '../../fabric/layer.js';
import { MultipathDevice, type MultipathTuning } from '../../fabric/layers/multipath/multipath.js';
import { buildGraph } from '../../member/devices/build.js';
import { ConfigError } from '../../failover/config/errors.js';
import { validateDevices as validateGraph } from '../../failover/config/validate.js';

/** A path to a shared disk that can be broken (EIO) and mended, counting what it carried. */
class StubPath extends Layer {
  broken = false;
  ios = 0;
  constructor(next: BlockDevice, name: string) {
    super(next, name);
  }
  private check(): void {
    this.ios++;
    if (this.broken) throw new BlockError('EIO', `${this.name} is broken`);
  }
  override async read(offset: number, target: Buffer) {
    this.check();
    await new Promise((r) => setImmediate(r));
    return this.next.read(offset, target);
  }
  override async write(offset: number, data: readonly Buffer[], options?: WriteOptions) {
    this.check();
    await new Promise((r) => setImmediate(r));
    return this.next.write(offset, data, options);
  }
  override async flush() {
    this.check();
    return this.next.flush();
  }
  override status() {
    return { state: 'optimal' as const };
  }
  override async close() {}
}

function setup(tuning: MultipathTuning, count = 2) {
  const disk = new MemoryBackend({ name: 'disk', size: 1 << 20 });
  const paths = Array.from({ length: count }, (_, i) => new StubPath(disk, `p${i}`));
  const dev = new MultipathDevice({ name: 'mp', paths, probeIntervalMs: 20, ...tuning });
  return { disk, paths, dev };
}

function pathStates(dev: MultipathDevice): string[] {
  return (dev.status().detail!.paths as { state: string }[]).map((p) => p.state);
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const block = (seed: number) => Buffer.alloc(4096, seed);

t.test('active-passive: a failed active path hands over with no error; immediate failback', async (t) => {
  const { paths, dev } = setup({ policy: 'active-passive', failback: 'immediate' });
  t.teardown(() => dev.close());
  t.same(pathStates(dev), ['active', 'standby']);
  await dev.write(0, [block(1)]);
  t.ok(paths[0]!.ios > 0 && paths[1]!.ios === 0, 'only the active path carries I/O');

  paths[0]!.broken = true;
  const inFlight = Array.from({ length: 8 }, (_, i) => dev.write(4096 * i, [block(i + 2)]));
  await Promise.all(inFlight);
  t.same(pathStates(dev), ['failed', 'active']);
  t.equal(dev.status().state, 'degraded');
  const back = Buffer.alloc(4096);
  await dev.read(4096 * 3, back);
  t.same(back, block(5), 'data written during the failover is there');

  paths[0]!.broken = false;
  await until(() => pathStates(dev)[0] === 'active', 'failback');
  t.same(pathStates(dev), ['active', 'standby'], 'preferred path takes over again');
  t.equal(dev.status().state, 'optimal');
});

t.test('manual failback waits for the operator; timed failback waits its seconds', async (t) => {
  const manual = setup({ failback: 'manual' });
  t.teardown(() => manual.dev.close());
  manual.paths[0]!.broken = true;
  await manual.dev.write(0, [block(1)]);
  manual.paths[0]!.broken = false;
  await until(() => pathStates(manual.dev)[0] === 'standby', 'recovery');
  await new Promise((r) => setTimeout(r, 100));
  t.same(pathStates(manual.dev), ['standby', 'active'], 'recovered path stays on standby');
  manual.dev.failback();
  t.same(pathStates(manual.dev), ['active', 'standby'], 'operator failback');

  const timed = setup({ failback: 0.3 });
  t.teardown(() => timed.dev.close());
  timed.paths[0]!.broken = true;
  await timed.dev.write(0, [block(1)]);
  timed.paths[0]!.broken = false;
  await until(() => pathStates(timed.dev)[0] === 'standby', 'recovery');
  const recoveredAt = Date.now();
  await until(() => pathStates(timed.dev)[0] === 'active', 'timed failback');
  t.ok(Date.now() - recoveredAt >= 200, 'failback came after the path stayed healthy');
});

t.test('active-active spreads I/O and keeps going when a path fails', async (t) => {
  const { paths, dev } = setup({ policy: 'active-active' });
  t.teardown(() => dev.close());
  await Promise.all(Array.from({ length: 40 }, (_, i) => dev.write(4096 * i, [block(i)])));
  t.ok(paths[0]!.ios >= 10 && paths[1]!.ios >= 10, `both paths carried I/O (${paths[0]!.ios}/${paths[1]!.ios})`);
  paths[1]!.broken = true;
  await Promise.all(Array.from({ length: 40 }, (_, i) => dev.write(4096 * i, [block(i + 1)])));
  t.same(pathStates(dev), ['active', 'failed']);
  const back = Buffer.alloc(4096);
  await dev.read(4096 * 39, back);
  t.same(back, block(40));
  await dev.flush();
});

t.test('no path: requests wait for one to come back, or fail EIO after noPathRetryMs', async (t) => {
  const { paths, dev } = setup({ noPathRetryMs: 2000 });
  t.teardown(() => dev.close());
  paths[0]!.broken = paths[1]!.broken = true;
  const pending = dev.write(0, [block(9)]);
  await until(() => dev.status().state === 'failed', 'all paths failed');
  paths[1]!.broken = false;
  await pending;
  const back = Buffer.alloc(4096);
  await dev.read(0, back);
  t.same(back, block(9), 'the queued write went through once a path returned');

  const quick = setup({ noPathRetryMs: 150 });
  t.teardown(() => quick.dev.close());
  quick.paths[0]!.broken = quick.paths[1]!.broken = true;
  const err = await quick.dev.read(0, Buffer.alloc(4096)).catch((e: unknown) => e);
  t.equal((err as BlockError).code, 'EIO', 'EIO once the wait is over');
  t.equal(quick.dev.status().state, 'failed');
});

t.test("errors that are the request's fault reach the caller and fail no path", async (t) => {
  const { paths, dev } = setup({});
  t.teardown(() => dev.close());
  paths[0]!.read = async () => {
    throw new BlockError('EINVAL', 'bad range');
  };
  const err = await dev.read(0, Buffer.alloc(512)).catch((e: unknown) => e);
  t.equal((err as BlockError).code, 'EINVAL');
  t.same(pathStates(dev), ['active', 'standby']);
});

t.test('a path that keeps failing and recovering becomes marginal', async (t) => {
  const { paths, dev } = setup({ policy: 'active-active', marginal: { failures: 3, windowMs: 60_000 } });
  t.teardown(() => dev.close());
  for (let round = 1; round <= 3; round++) {
    paths[1]!.broken = true;
    await until(() => pathStates(dev)[1] === 'failed', `failure ${round}`);
    paths[1]!.broken = false;
    await until(() => pathStates(dev)[1] !== 'failed', `recovery ${round}`);
  }
  t.equal(pathStates(dev)[1], 'marginal', 'third flap makes it marginal');
  t.equal(dev.status().state, 'degraded');
  const carried = () => (dev.status().detail!.paths as { ios: number }[]).map((p) => p.ios);
  const before = carried();
  await Promise.all(Array.from({ length: 10 }, (_, i) => dev.write(4096 * i, [block(i)])));
  t.same(carried(), [before[0]! + 10, before[1]!], 'a marginal path carries no I/O');
  t.ok(dev.clearMarginal('p1'));
  t.same(pathStates(dev), ['active', 'active']);
});

t.test('a marginal path returns to service after staying healthy for the window', async (t) => {
  const { paths, dev } = setup({ policy: 'active-active', marginal: { failures: 2, windowMs: 400 } });
  t.teardown(() => dev.close());
  for (let round = 1; round <= 2; round++) {
    paths[0]!.broken = true;
    await until(() => pathStates(dev)[0] === 'failed', `failure ${round}`);
    paths[0]!.broken = false;
    await until(() => pathStates(dev)[0] !== 'failed', `recovery ${round}`);
  }
  t.equal(pathStates(dev)[0], 'marginal');
  const markedAt = Date.now();
  await until(() => pathStates(dev)[0] === 'active', 'return to service');
  t.ok(Date.now() - markedAt >= 300, 'only after a whole window of good probes');
  t.equal(dev.status().state, 'optimal');
});

t.test('the multipath kind validates and builds from config', async (t) => {
  t.throws(
    () => validateGraph([{ name: 'mp', type: 'multipath', paths: ['a'], policy: 'round-robin' }, { name: 'a', type: 'memory', size: '1M' }]),
    ConfigError,
  );
  t.throws(() => validateGraph([{ name: 'x', type: 'nbd' }]), /address or paths/);
  t.throws(() => validateGraph([{ name: 'x', type: 'nbd', address: 'nowhere' }]), /host:port/);
  t.throws(() => validateGraph([{ name: 'x', type: 'nbd', paths: ['unix:/a'], failback: 'later' }]), /failback/);
  t.throws(() => validateGraph([{ name: 'x', type: 'nbd', address: 'unix:/a', failback: 'manual' }]), { field: 'devices[0].failback', problem: /only with paths/ });
  const graph = await buildGraph(
    [
      { name: 'mp', type: 'multipath', paths: ['a', 'b'], policy: 'active-active', failback: 5, marginal: { failures: 2, windowMs: 1000 } },
      { name: 'a', type: 'memory', size: '1M' },
      { name: 'b', type: 'memory', size: '1M' },
    ],
    { dataDir: '/nonexistent' },
  );
  const mp = graph.get('mp')!;
  t.teardown(() => mp.close());
  t.equal(mp.size, 1 << 20);
  t.equal((mp.status().detail as { policy: string }).policy, 'active-active');
});
