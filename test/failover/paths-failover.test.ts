/**
 * Multipath over real NBD paths with real faults: nbdkit servers killed with SIGKILL,
 * restarted, hung with SIGSTOP, and bad sectors (the ddrescue filter) that every path
 * answers with a medium error. Two paths to one disk are two nbdkit processes serving the
 * same file (one over a Unix socket, one over TCP).
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockDevice } from '../../fabric/device.js';
import { BlockError } from '../../fabric/errors.js';
import { buildGraph } from '../../member/devices/build.js';
import type { DeviceSpec } from '../../failover/config/schema/devices.js';
import type { MultipathDevice } from '../../fabric/layers/multipath/multipath.js';
import type { FailoverSet } from '../../failover/set.js';
import { act, buildWithSets, setNamed } from '../helpers/failover.js';
import { startNbdkit, type NbdkitServer } from '../helpers/nbdkit-server.js';

type Tap = Test;
const MiB = 1024 * 1024;
const BLOCK = 64 * 1024;
const DISK = 16 * MiB;

async function sharedDisk(t: Tap, filters: string[] = [], args: string[] = []) {
  const dir = await mkdtemp(join(tmpdir(), 'paths-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'disk.img');
  await writeFile(file, Buffer.alloc(0));
  await import('node:fs/promises').then((fs) => fs.truncate(file, DISK));
  const unix = await startNbdkit(t, { plugin: ['file', `file=${file}`] });
  const tcp = await startNbdkit(t, { tcp: true, plugin: ['file', `file=${file}`], filters, args });
  return { dir, servers: [unix, tcp] as NbdkitServer[] };
}

const setOf = new WeakMap<BlockDevice, FailoverSet>();

/** The device with its path set running, as a member builds it. */
async function build(t: Tap, spec: DeviceSpec): Promise<MultipathDevice> {
  const { graph, sets } = await buildWithSets(t, [spec], '/nonexistent');
  const dev = graph.get(spec.name)! as MultipathDevice;
  setOf.set(dev, setNamed(sets, spec.name));
  return dev;
}

function set(dev: BlockDevice): FailoverSet {
  return setOf.get(dev)!;
}

function states(dev: BlockDevice): string[] {
  return set(dev).state().members.map((p) => p.state);
}

function pathIos(dev: BlockDevice): number[] {
  return set(dev)
    .state()
    .members.map((p) => (p.kind === 'path' ? p.ios : 0));
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function blockData(index: number, generation: number): Buffer {
  const b = Buffer.allocUnsafe(BLOCK);
  for (let i = 0; i < BLOCK; i += 4) b.writeUInt32LE((index * 2654435761 + generation * 40503 + i) >>> 0, i);
  return b;
}

/**
 * Writes and reads back blocks from `workers` loops; `fault` runs once `faultAfter`
 * operations are done. Returns the last generation written per block, and any errors.
 */
async function loadWithFault(dev: BlockDevice, operations: number, faultAfter: number, fault: () => Promise<void>) {
  const blocks = DISK / BLOCK;
  const written = new Map<number, number>();
  const errors: unknown[] = [];
  let done = 0;
  let faulted: Promise<void> | undefined;
  const worker = async (w: number) => {
    for (let k = w; k < operations; k += 8) {
      const index = (k * 7) % blocks;
      // Blocks are owned by one worker each (k ≡ w mod 8 and 8 divides the block count).
      const generation = k;
      try {
        await dev.write(index * BLOCK, [blockData(index, generation)]);
        written.set(index, generation);
        const back = Buffer.allocUnsafe(BLOCK);
        await dev.read(index * BLOCK, back);
        if (!back.equals(blockData(index, generation))) errors.push(new Error(`block ${index} read back wrong`));
      } catch (err) {
        errors.push(err);
      }
      if (++done === faultAfter) faulted = fault();
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
  await faulted;
  return { written, errors };
}

async function verify(t: Tap, dev: BlockDevice, written: Map<number, number>) {
  let bad = 0;
  for (const [index, generation] of written) {
    const back = Buffer.allocUnsafe(BLOCK);
    await dev.read(index * BLOCK, back);
    if (!back.equals(blockData(index, generation))) bad++;
  }
  t.equal(bad, 0, `all ${written.size} blocks hold their last write`);
}

const tuning = { probeIntervalMs: 100, timeoutMs: 3000, connectTimeoutMs: 1000, noPathRetryMs: 5000 };

t.test('active-passive: kill -9 the active server under load; no error, data intact, failback', async (t) => {
  const { servers } = await sharedDisk(t);
  const dev = await build(t, {
    name: 'mp',
    type: 'nbd',
    paths: servers.map((s) => s.address),
    policy: 'active-passive',
    failback: 'immediate',
    ...tuning,
  });
  t.same(states(dev), ['active', 'standby']);
  const { written, errors } = await loadWithFault(dev, 600, 100, () => servers[0]!.kill('SIGKILL'));
  t.same(errors, [], 'no error reached the caller');
  t.same(states(dev), ['failed', 'active'], 'the standby path took over');
  t.equal(dev.status().state, 'degraded');
  await verify(t, dev, written);

  await servers[0]!.start();
  await until(() => states(dev)[0] === 'active', 'failback to the restarted server');
  t.same(states(dev), ['active', 'standby'], 'immediate failback after the NBD client reconnected');
  t.equal(dev.status().state, 'optimal');
  const before = pathIos(dev);
  await verify(t, dev, written);
  t.ok(pathIos(dev)[0]! - before[0]! >= written.size, 'reads go down the preferred path again');
});

t.test('active-passive with manual failback stays on the surviving path', async (t) => {
  const { servers } = await sharedDisk(t);
  const dev = await build(t, { name: 'mp', type: 'nbd', paths: servers.map((s) => s.address), failback: 'manual', ...tuning });
  await servers[0]!.kill();
  await dev.write(0, [blockData(0, 1)]);
  await servers[0]!.start();
  await until(() => states(dev)[0] === 'standby', 'the restarted path answers its probe');
  await new Promise((r) => setTimeout(r, 300));
  t.same(states(dev), ['standby', 'active'], 'no failback without the operator');
  await act(set(dev), 'failback');
  t.same(states(dev), ['active', 'standby']);
  const back = Buffer.allocUnsafe(BLOCK);
  await dev.read(0, back);
  t.ok(back.equals(blockData(0, 1)));
});

t.test('active-active: both paths carry I/O; killing one loses nothing', async (t) => {
  const { servers } = await sharedDisk(t);
  const dev = await build(t, { name: 'mp', type: 'nbd', paths: servers.map((s) => s.address), policy: 'active-active', ...tuning });
  t.same(states(dev), ['active', 'active']);
  const { written, errors } = await loadWithFault(dev, 600, 300, () => servers[1]!.kill('SIGKILL'));
  t.same(errors, [], 'no error reached the caller');
  const ios = pathIos(dev);
  t.ok(ios[0]! > 100 && ios[1]! > 100, `both paths carried I/O (${ios.join('/')})`);
  t.same(states(dev), ['active', 'failed']);
  await verify(t, dev, written);
});

t.test('all paths down: one back within noPathRetryMs resumes queued I/O; past it, EIO', async (t) => {
  const { servers } = await sharedDisk(t);
  const dev = await build(t, { name: 'mp', type: 'nbd', paths: servers.map((s) => s.address), ...tuning, noPathRetryMs: 4000 });
  const other = await startNbdkit(t, { plugin: ['memory', 'size=4M'] });
  const bystander = (await buildGraph([{ name: 'other', type: 'nbd', address: other.address }], { dataDir: '/x' })).get('other')!;
  t.teardown(() => bystander.close());

  await Promise.all(servers.map((s) => s.kill()));
  const queued = Promise.all(Array.from({ length: 4 }, (_, i) => dev.write(i * BLOCK, [blockData(i, 7)])));
  await until(() => dev.status().state === 'failed', 'device failed');
  await new Promise((r) => setTimeout(r, 500));
  await servers[1]!.start();
  await queued;
  t.pass('queued writes completed once a path came back');
  const back = Buffer.allocUnsafe(BLOCK);
  await dev.read(3 * BLOCK, back);
  t.ok(back.equals(blockData(3, 7)));

  await servers[1]!.kill();
  const err = await dev.read(0, Buffer.allocUnsafe(BLOCK)).catch((e: unknown) => e);
  t.ok(err instanceof BlockError && err.code === 'EIO', 'EIO after noPathRetryMs with no path');
  await bystander.write(0, [Buffer.alloc(4096, 1)]);
  const b = Buffer.alloc(4096);
  await bystander.read(0, b);
  t.ok(b.every((x) => x === 1), 'an unrelated device keeps serving');
});

t.test('a path whose connection comes and goes is marked marginal', async (t) => {
  const { servers } = await sharedDisk(t);
  const dev = await build(t, {
    name: 'mp',
    type: 'nbd',
    paths: servers.map((s) => s.address),
    policy: 'active-active',
    marginal: { failures: 3, windowMs: 60_000 },
    ...tuning,
  });
  let stop = false;
  const errors: unknown[] = [];
  const load = (async () => {
    for (let i = 0; !stop; i++) {
      await dev.write((i % 64) * BLOCK, [blockData(i % 64, i)]).catch((e: unknown) => errors.push(e));
    }
  })();
  for (let round = 1; round <= 3; round++) {
    await servers[1]!.kill('SIGKILL');
    await until(() => states(dev)[1] === 'failed', `failure ${round}`);
    await servers[1]!.start();
    await until(() => states(dev)[1] !== 'failed', `recovery ${round}`);
  }
  stop = true;
  await load;
  t.same(errors, [], 'no error reached the caller');
  t.same(states(dev), ['active', 'marginal'], 'the flapping path is kept out of service');
  t.equal(dev.status().state, 'degraded');
  await act(set(dev), 'clearMarginal', { path: 'mp.path1' });
  t.same(states(dev), ['active', 'active'], 'operator clears it');
});

t.test('a bad sector behind both paths is a medium error: the caller gets EIO, no path fails', async (t) => {
  // GNU ddrescue mapfile: 4 KiB at 1 MiB unreadable, the rest rescued.
  const dir = await mkdtemp(join(tmpdir(), 'paths-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const map = join(dir, 'disk.map');
  const bad = MiB;
  await writeFile(
    map,
    [
      '# Mapfile. Created by GNU ddrescue version 1.27',
      '# current_pos  current_status  current_pass',
      '0x00000000     +               1',
      '#      pos        size  status',
      `0x00000000  0x${bad.toString(16).padStart(8, '0')}  +`,
      `0x${bad.toString(16).padStart(8, '0')}  0x00001000  -`,
      `0x${(bad + 4096).toString(16).padStart(8, '0')}  0x${(DISK - bad - 4096).toString(16).padStart(8, '0')}  +`,
      '',
    ].join('\n'),
  );
  const file = join(dir, 'disk.img');
  await writeFile(file, Buffer.alloc(DISK, 0x3c));
  const servers = await Promise.all(
    [false, true].map((tcp) => startNbdkit(t, { tcp, plugin: ['file', `file=${file}`], filters: ['ddrescue'], args: [`ddrescue-mapfile=${map}`] })),
  );
  const dev = await build(t, { name: 'mp', type: 'nbd', paths: servers.map((s) => s.address), policy: 'active-active', ...tuning, noPathRetryMs: 1000 });
  for (let i = 0; i < 10; i++) {
    const err = await dev.read(bad, Buffer.alloc(4096)).catch((e: unknown) => e);
    t.ok(err instanceof BlockError && err.code === 'EIO' && !err.transport, `read ${i} of the bad sector: EIO from the disk`);
  }
  const good = Buffer.alloc(64 * 1024);
  await dev.read(bad + 4096, good);
  t.ok(good.every((b) => b === 0x3c), 'the sectors after it read fine');
  await dev.read(0, good);
  t.ok(good.every((b) => b === 0x3c), 'and so do the first ones');
  t.same(states(dev), ['active', 'active'], 'both paths stay in service');
  t.equal(dev.status().state, 'optimal');
  t.same(
    set(dev)
      .state()
      .members.map((m) => (m.kind === 'path' ? m.errors : -1)),
    [0, 0],
    'no path failure was counted',
  );
});

t.test('a path that is down at start joins once its server answers', async (t) => {
  const { servers } = await sharedDisk(t);
  await servers[0]!.kill();
  const dev = await build(t, { name: 'mp', type: 'nbd', paths: servers.map((s) => s.address), ...tuning });
  t.same(states(dev), ['failed', 'active'], 'built on the path that answered');
  await dev.write(0, [blockData(0, 3)]);
  await servers[0]!.start();
  await until(() => states(dev)[0] === 'active', 'the late path joins');
  t.same(states(dev), ['active', 'standby'], 'preferred path takes over once it answers');
  const back = Buffer.allocUnsafe(BLOCK);
  await dev.read(0, back);
  t.ok(back.equals(blockData(0, 3)));
});

t.test('a hung server (SIGSTOP) is failed by request timeout and rejoins after SIGCONT', async (t) => {
  const { servers } = await sharedDisk(t);
  const dev = await build(t, { name: 'mp', type: 'nbd', paths: servers.map((s) => s.address), ...tuning, timeoutMs: 500 });
  const { written, errors } = await loadWithFault(dev, 300, 60, async () => servers[0]!.pause());
  t.same(errors, [], 'no error reached the caller');
  t.same(states(dev), ['failed', 'active'], 'the hung path was failed by timeout');
  t.match(set(dev).state().members[0]!.health.lastError ?? '', /ETIMEDOUT/, 'the path failed with ETIMEDOUT');
  servers[0]!.resume();
  // nbdkit 1.32 may abort on waking (assertion in raw_send_socket: the client closed the timed-out
  // connection under it); then it is a dead server, and a restarted one must be picked up.
  await new Promise((r) => setTimeout(r, 300));
  if (!servers[0]!.running) await servers[0]!.start();
  await until(() => states(dev)[0] === 'active', 'the server answers its probe again');
  await verify(t, dev, written);
});
