import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import type { BlockDevice, WriteOptions } from '../../fabric/device.js';
import { BlockError } from '../../fabric/errors.js';
import { Layer } from '../../fabric/layer.js';
import { MultipathDevice, type MultipathOptions } from '../../fabric/layers/multipath/multipath.js';
import { buildDevices } from '../../member/devices/build.js';
import { ConfigError } from '../../failover/config/errors.js';
import { validateDevices as validateGraph } from '../../failover/config/validate.js';
import { runAction } from '../../failover/action.js';
import { buildFailoverSets } from '../../failover/from-graph.js';
import type { PathPolicy, PathSet } from '../../failover/path-set.js';
import { FailoverSets } from '../../failover/sets.js';

/** A path to a shared disk that can be broken (its connection lost) and mended, counting what it carried. */
class StubPath extends Layer {
  broken = false;
  ios = 0;
  constructor(next: BlockDevice, name: string) {
    super(next, name);
  }
  private check(): void {
    this.ios++;
    if (this.broken) throw new BlockError('EIO', `${this.name} is broken`, { transport: true });
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

/** A multipath device under its path set, probing every 20 ms. */
function setup(t: { teardown(fn: () => unknown): void }, tuning: Pick<MultipathOptions, 'policy' | 'noPathRetryMs'> & Partial<PathPolicy>, count = 2) {
  const disk = new MemoryBackend({ name: 'disk', size: 1 << 20 });
  const paths = Array.from({ length: count }, (_, i) => new StubPath(disk, `p${i}`));
  const { policy, noPathRetryMs, failback, marginal } = tuning;
  const dev = new MultipathDevice({ name: 'mp', paths, policy, noPathRetryMs });
  const sets = new FailoverSets();
  const set = sets.addMultipath(dev, { probeIntervalMs: 20, ...(failback !== undefined && { failback }), ...(marginal && { marginal }) });
  sets.start();
  t.teardown(() => {
    sets.stop();
    return dev.close();
  });
  return { disk, paths, dev, set };
}

function pathStates(set: PathSet): string[] {
  return set.state().members.map((p) => p.state);
}

function act(set: PathSet, action: string, body: Record<string, unknown> = {}) {
  return runAction(set.actions, set.name, action, body);
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
  const { paths, dev, set } = setup(t, { policy: 'active-passive', failback: 'immediate' });
  t.same(pathStates(set), ['active', 'standby']);
  t.same(set.state().members.map((p) => p.role), ['primary', 'secondary']);
  await dev.write(0, [block(1)]);
  t.ok(paths[0]!.ios > 0 && paths[1]!.ios === 0, 'only the active path carries I/O');

  paths[0]!.broken = true;
  const inFlight = Array.from({ length: 8 }, (_, i) => dev.write(4096 * i, [block(i + 2)]));
  await Promise.all(inFlight);
  t.same(pathStates(set), ['failed', 'active']);
  t.same(set.state().members.map((p) => p.role), ['alternate', 'primary']);
  t.equal(dev.status().state, 'degraded');
  const back = Buffer.alloc(4096);
  await dev.read(4096 * 3, back);
  t.same(back, block(5), 'data written during the failover is there');

  paths[0]!.broken = false;
  await until(() => pathStates(set)[0] === 'active', 'failback');
  t.same(pathStates(set), ['active', 'standby'], 'preferred path takes over again');
  t.equal(dev.status().state, 'optimal');
});

t.test('manual failback waits for the operator; timed failback waits its seconds', async (t) => {
  const manual = setup(t, { failback: 'manual' });
  manual.paths[0]!.broken = true;
  await manual.dev.write(0, [block(1)]);
  manual.paths[0]!.broken = false;
  await until(() => pathStates(manual.set)[0] === 'standby', 'recovery');
  await new Promise((r) => setTimeout(r, 100));
  t.same(pathStates(manual.set), ['standby', 'active'], 'recovered path stays on standby');
  await act(manual.set, 'failback');
  t.same(pathStates(manual.set), ['active', 'standby'], 'operator failback');
  await t.rejects(act(manual.set, 'failback'), /already on the preferred usable path p0/, 'a second failback is refused: nothing to do');

  const timed = setup(t, { failback: 0.3 });
  timed.paths[0]!.broken = true;
  await timed.dev.write(0, [block(1)]);
  timed.paths[0]!.broken = false;
  await until(() => pathStates(timed.set)[0] === 'standby', 'recovery');
  const recoveredAt = Date.now();
  await until(() => pathStates(timed.set)[0] === 'active', 'timed failback');
  t.ok(Date.now() - recoveredAt >= 200, 'failback came after the path stayed healthy');
});

t.test('active-active spreads I/O and keeps going when a path fails', async (t) => {
  const { paths, dev, set } = setup(t, { policy: 'active-active' });
  await Promise.all(Array.from({ length: 40 }, (_, i) => dev.write(4096 * i, [block(i)])));
  t.ok(paths[0]!.ios >= 10 && paths[1]!.ios >= 10, `both paths carried I/O (${paths[0]!.ios}/${paths[1]!.ios})`);
  paths[1]!.broken = true;
  await Promise.all(Array.from({ length: 40 }, (_, i) => dev.write(4096 * i, [block(i + 1)])));
  t.same(pathStates(set), ['active', 'failed']);
  const back = Buffer.alloc(4096);
  await dev.read(4096 * 39, back);
  t.same(back, block(40));
  await dev.flush();
});

t.test('no path: requests wait for one to come back, or fail EIO after noPathRetryMs', async (t) => {
  const { paths, dev } = setup(t, { noPathRetryMs: 2000 });
  paths[0]!.broken = paths[1]!.broken = true;
  const pending = dev.write(0, [block(9)]);
  await until(() => dev.status().state === 'failed', 'all paths failed');
  paths[1]!.broken = false;
  await pending;
  const back = Buffer.alloc(4096);
  await dev.read(0, back);
  t.same(back, block(9), 'the queued write went through once a path returned');

  const quick = setup(t, { noPathRetryMs: 150 });
  quick.paths[0]!.broken = quick.paths[1]!.broken = true;
  const err = await quick.dev.read(0, Buffer.alloc(4096)).catch((e: unknown) => e);
  t.equal((err as BlockError).code, 'EIO', 'EIO once the wait is over');
  t.equal(quick.dev.status().state, 'failed');
});

t.test("errors that are the request's fault reach the caller and fail no path", async (t) => {
  const { paths, dev, set } = setup(t, {});
  paths[0]!.read = async () => {
    throw new BlockError('EINVAL', 'bad range');
  };
  const err = await dev.read(0, Buffer.alloc(512)).catch((e: unknown) => e);
  t.equal((err as BlockError).code, 'EINVAL');
  t.same(pathStates(set), ['active', 'standby']);
});

t.test('a medium error is the answer, not a path failure: the path that answered stays in service', async (t) => {
  const { paths, dev, set } = setup(t, { policy: 'active-active' });
  // The same unreadable sector, whichever path asks (one disk behind both).
  for (const p of paths) {
    const read = p.read.bind(p);
    p.read = async (offset, target) => {
      if (offset === 8192) throw new BlockError('EIO', `${p.name}: medium error at 8192`);
      return read(offset, target);
    };
  }
  for (let i = 0; i < 20; i++) await t.rejects(dev.read(8192, Buffer.alloc(4096)), { code: 'EIO' }, 'the bad sector fails');
  await dev.read(0, Buffer.alloc(4096));
  t.same(pathStates(set), ['active', 'active'], 'both paths still in service');
  t.equal(dev.status().state, 'optimal');
  t.same(set.state().members.map((m) => m.errors), [0, 0], 'no path failure counted');
});

t.test('a path that keeps failing and recovering becomes marginal', async (t) => {
  const { paths, dev, set } = setup(t, { policy: 'active-active', marginal: { failures: 3, windowMs: 60_000 } });
  for (let round = 1; round <= 3; round++) {
    paths[1]!.broken = true;
    await until(() => pathStates(set)[1] === 'failed', `failure ${round}`);
    paths[1]!.broken = false;
    await until(() => pathStates(set)[1] !== 'failed', `recovery ${round}`);
  }
  t.equal(pathStates(set)[1], 'marginal', 'third flap makes it marginal');
  t.equal(dev.status().state, 'degraded');
  const carried = () => set.state().members.map((p) => p.ios);
  const before = carried();
  await Promise.all(Array.from({ length: 10 }, (_, i) => dev.write(4096 * i, [block(i)])));
  t.same(carried(), [before[0]! + 10, before[1]!], 'a marginal path carries no I/O');
  await t.rejects(act(set, 'clearMarginal', { path: 'p0' }), /path p0 of mp is not marginal \(it is active\)/, 'only a marginal path can be cleared');
  await act(set, 'clearMarginal', { path: 'p1' });
  t.same(pathStates(set), ['active', 'active']);
});

t.test('a marginal path returns to service after staying healthy for the window', async (t) => {
  const { paths, dev, set } = setup(t, { policy: 'active-active', marginal: { failures: 2, windowMs: 400 } });
  for (let round = 1; round <= 2; round++) {
    paths[0]!.broken = true;
    await until(() => pathStates(set)[0] === 'failed', `failure ${round}`);
    paths[0]!.broken = false;
    await until(() => pathStates(set)[0] !== 'failed', `recovery ${round}`);
  }
  t.equal(pathStates(set)[0], 'marginal');
  const markedAt = Date.now();
  await until(() => pathStates(set)[0] === 'active', 'return to service');
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
  t.throws(() => validateGraph([{ name: 'x', type: 'nbd', address: 'unix:/a', failback: 'manual' }]), { name: 'ConfigError', field: 'devices[0].failback', problem: /only with paths/ });
  const specs = validateGraph([
    { name: 'mp', type: 'multipath', paths: ['a', 'b'], policy: 'active-active', failback: 5, marginal: { failures: 2, windowMs: 1000 } },
    { name: 'a', type: 'memory', size: '1M' },
    { name: 'b', type: 'memory', size: '1M' },
  ]);
  const graph = await buildDevices(specs, { dataDir: '/nonexistent' });
  const sets = buildFailoverSets(graph, specs);
  const mp = graph.get('mp')!;
  t.teardown(() => {
    sets.stop();
    return mp.close();
  });
  t.equal(mp.size, 1 << 20);
  const state = sets.get('mp')!.state();
  t.same(state.kind === 'multipath' && state.policy, { mode: 'active-active', failback: 5, probeIntervalMs: 2000, marginal: { failures: 2, windowMs: 1000 } });
  t.equal(state.composition, 'n-way');
});
