/**
 * The full stack from config: a stripe of two mirrors, each replica an NBD device with two
 * paths (multipath over two nbdkit processes serving the same file). fio verifies through
 * blockgate's NBD export while paths and then a whole replica are killed.
 */
import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlockDevice } from '../../fabric/device.js';
import type { DeviceSpec } from '../../failover/config/schema/devices.js';
import type { MirrorDevice } from '../../fabric/layers/mirror/mirror.js';
import { buildWithSets, setNamed } from '../helpers/failover.js';
import { startBackground, tempDir, waitFor } from '../helpers/clients.js';
import { startNbdkit, type NbdkitServer } from '../helpers/nbdkit-server.js';
import { startNbdServer } from '../helpers/nbd.js';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;

t.test('stripe of mirrors of multipath NBD replicas survives path and replica loss under fio', async (t) => {
  const dir = await tempDir(t);
  const replicas = ['a0', 'a1', 'b0', 'b1'];
  const servers = new Map<string, NbdkitServer[]>();
  const specs: DeviceSpec[] = [];
  for (const name of replicas) {
    const file = join(dir, `${name}.img`);
    await writeFile(file, Buffer.alloc(SIZE));
    const pair = await Promise.all([0, 1].map(() => startNbdkit(t, { plugin: ['file', `file=${file}`, 'cache=none'] })));
    servers.set(name, pair);
    // Under a mirror, a replica with no path left must fail at once (dm-multipath's
    // no_path_retry=fail under md): the mirror, not the path layer, rides out the loss.
    specs.push({ name, type: 'nbd', paths: pair.map((s) => s.address), policy: 'active-active', probeIntervalMs: 200, timeoutMs: 10_000, noPathRetryMs: 0 });
  }
  specs.push(
    { name: 'ma', type: 'mirror', replicas: ['a0', 'a1'], probeIntervalMs: 200, resync: { regionSize: '64k' }, assumeClean: true },
    { name: 'mb', type: 'mirror', replicas: ['b0', 'b1'], probeIntervalMs: 200, resync: { regionSize: '64k' }, assumeClean: true },
    { name: 'vol', type: 'stripe', devices: ['ma', 'mb'], stripeUnit: '64k' },
  );
  const { graph, sets } = await buildWithSets(t, specs, join(dir, 'data'));
  const vol = graph.get('vol')!;
  const ma = setNamed(sets, 'ma').state();
  t.equal(ma.composition, 'hierarchical', 'a mirror of multipath replicas is a set of sets');
  t.same(ma.members.map((m) => m.set), ['a0', 'a1'], 'each replica is itself a path set');
  t.same(setNamed(sets, 'a0').state().parent, { set: 'ma', member: 'a0' });
  t.equal(vol.size, 2 * SIZE);
  const mb = graph.get('mb') as MirrorDevice;
  const nbd = await startNbdServer([{ name: 'vol', device: vol as BlockDevice }]);
  t.teardown(() => nbd.stop());

  const fio = startBackground('fio', [
    '--name=stack', '--ioengine=nbd', `--uri=${nbd.unixUri('vol')}`, '--rw=randwrite', '--bs=16k', '--iodepth=8',
    '--size=24m', '--rate=8m', '--verify=crc32c', '--do_verify=1', '--verify_fatal=1', '--verify_state_save=0',
  ]);
  t.teardown(() => fio.stop());
  await new Promise((r) => setTimeout(r, 600));
  await servers.get('a0')![0]!.kill('SIGKILL'); // one path of one replica: multipath absorbs it
  await new Promise((r) => setTimeout(r, 600));
  t.equal((graph.get('ma') as MirrorDevice).status().state, 'optimal', 'a lost path does not degrade the mirror');
  await Promise.all(servers.get('b1')!.map((s) => s.kill('SIGKILL'))); // every path of one replica
  const result = await fio.exited;
  t.equal(result.code, 0, `fio finished and verified`);
  if (result.code !== 0) t.comment(fio.output().slice(-3000));
  t.equal(mb.status().state, 'degraded', 'the mirror that lost a replica went on degraded');
  t.equal(vol.status().state, 'degraded', 'the stripe reports its worst leg');

  await Promise.all(servers.get('b1')!.map((s) => s.start()));
  await waitFor(() => mb.status().state === 'optimal', 'b1 resynced', 30_000);
  t.ok(mb.info().bytesResynced <= SIZE, 'resync copied at most the device');
  await vol.flush();
  t.ok((await readFile(join(dir, 'b0.img'))).equals(await readFile(join(dir, 'b1.img'))), 'b replicas are identical');
  t.ok((await readFile(join(dir, 'a0.img'))).equals(await readFile(join(dir, 'a1.img'))), 'a replicas are identical');
});
