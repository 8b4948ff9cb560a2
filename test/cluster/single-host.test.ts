import t, { type Test } from 'tap';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt } from '../helpers/blockgate-cli.js';
import { runTool, startBackground } from '../helpers/clients.js';
import { clientGateway, fioVerify } from '../helpers/set-clients.js';
import { TestCluster } from '../helpers/cluster.js';
import { freePort } from '../helpers/nbdkit-server.js';

/**
 * Members on one host with the embedded arbiter (a file lock; no etcd runs): the set's
 * Primary serves a disk file every member opens. kill -9 of the Primary under fio verify
 * (through blockgate's own nbd backend) and qemu-io (reconnect-delay): the clients resume,
 * every acknowledged write reads back, and no two members served at once.
 */

ensureBuilt();
const MiB = 1024 * 1024;

async function setUp(t: Test, members: string[]) {
  const dir = mkdtempSync(join('/dev/shm', 'bgc-single-'));
  const disk = join(dir, 'disk.img');
  const fd = openSync(disk, 'w');
  ftruncateSync(fd, 64 * MiB);
  closeSync(fd);
  const port = await freePort();
  const config = join(dir, 'cluster.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      backends: [{ name: 'disk', type: 'file', path: disk }],
      exports: [{ name: 'disk', device: 'disk' }],
      cluster: {
        name: 'bgc-single',
        members: members.map((id) => ({ id })),
        arbitration: { type: 'file', dir: join(dir, 'arbiter') },
        sets: [{ name: 'disks', members, exports: ['disk'], nbd: { listen: [`127.0.0.1:${port}`] } }],
      },
    }),
  );
  const cluster = new TestCluster(t, config, (id) => join(dir, `data-${id}`));
  // After the members are gone: a standby taking over while they are killed writes into the arbiter directory.
  t.teardown(async () => {
    await cluster.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, port, cluster };
}

for (const n of [2, 3]) {
  t.test(`${n} members, file-lock arbiter: kill -9 the Primary under fio verify`, async (t) => {
    const ids = ['m1', 'm2', 'm3'].slice(0, n);
    const { dir, port, cluster } = await setUp(t, ids);
    for (const id of ids) await cluster.start(id).process.ready();
    const first = await cluster.primary('disks');
    const uri = await clientGateway(t, dir, port);

    const fio = fioVerify(uri, 16, n);
    // Let fio get going, then kill the Primary mid-write.
    await new Promise((r) => setTimeout(r, 1500));
    t.equal(fio.child.exitCode, null, 'fio is still writing when the Primary dies');
    await cluster.kill(first.id);
    const second = await cluster.primary('disks');
    t.not(second.id, first.id, `${second.id} took over from ${first.id}`);
    t.ok(second.token > first.token, `fencing token grew: ${first.token} → ${second.token}`);

    const { code } = await fio.exited;
    const out = fio.output();
    t.equal(code, 0, `fio finished its writes and verified every block without error${code === 0 ? '' : `: ${out.slice(-3000)}`}`);
    const report = JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ error: number; write: { io_bytes: number }; read: { io_bytes: number } }> };
    t.equal(report.jobs[0]!.error, 0);
    t.equal(report.jobs[0]!.read.io_bytes, 16 * MiB, 'every written block was read back and verified');
    t.equal(cluster.checkIntervals('disks'), undefined, 'no two members served the set at the same time');
  });
}

t.test('qemu-io with reconnect-delay rides through kill -9 of the Primary', async (t) => {
  const { port, cluster } = await setUp(t, ['m1', 'm2', 'm3']);
  for (const id of ['m1', 'm2', 'm3']) await cluster.start(id).process.ready();
  const first = await cluster.primary('disks');
  const opts = `driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=${port},export=disk,reconnect-delay=30`;
  const qemu = startBackground('qemu-io', [
    '--image-opts',
    opts,
    '-c', 'write -P 0x11 0 4M',
    '-c', 'sleep 3000',
    '-c', 'write -P 0x22 4M 4M',
    '-c', 'read -P 0x11 0 4M',
    '-c', 'read -P 0x22 4M 4M',
  ]);
  // Kill while qemu-io sleeps between its writes: its connection breaks under it.
  await new Promise((r) => setTimeout(r, 1500));
  await cluster.kill(first.id);
  const { code } = await qemu.exited;
  const out = qemu.output();
  t.equal(code, 0, 'qemu-io exited cleanly');
  t.notMatch(out, /error|failed|Pattern verification/i, `no I/O error and both patterns verified:\n${out}`);
  t.match(out, /read 4194304\/4194304 bytes[\s\S]*read 4194304\/4194304 bytes/);
  const second = await cluster.primary('disks');
  t.not(second.id, first.id);
  t.equal(cluster.checkIntervals('disks'), undefined, 'no two members served the set at the same time');
  await runTool('true', []);
});
