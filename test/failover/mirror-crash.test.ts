/**
 * Crash consistency of a mirror, end to end: a member serving a 2-way mirror of two nbdkit
 * file servers is killed with SIGKILL while fio writes hard through it, so writes are in
 * flight that reached one replica and not the other. Restarted on the same data directory,
 * the member finds the stop unclean, resyncs the extents its activity log holds (not the
 * whole device) and the two replica files end byte-identical.
 */
import t from 'tap';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBuilt, nbdUri, startMember, type LogLine } from '../helpers/blockgate-cli.js';
import { startBackground, tempDir } from '../helpers/clients.js';
import { startNbdkit } from '../helpers/nbdkit-server.js';

ensureBuilt();

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;

t.test('kill -9 of the member during heavy writes: the restart resyncs what was in flight and the replicas end identical', async (t) => {
  const dir = await tempDir(t, 'sets-crash-');
  const files = ['r0', 'r1'].map((n) => join(dir, `${n}.img`));
  for (const f of files) {
    await writeFile(f, '');
    await truncate(f, SIZE);
  }
  const servers = await Promise.all(files.map((f) => startNbdkit(t, { plugin: ['file', `file=${f}`] })));
  const socket = join(dir, 'nbd.sock');
  const config = join(dir, 'member.json');
  await writeFile(
    config,
    JSON.stringify({
      member: 'crash',
      backends: servers.map((s, i) => ({ name: `r${i}`, type: 'nbd', address: s.address, timeoutMs: 10_000 })),
      devices: [{ name: 'm', type: 'mirror', replicas: ['r0', 'r1'], probeIntervalMs: 200, resync: { regionSize: '64k', rateMiBps: 0 } }],
      exports: [{ name: 'vol', device: 'm' }],
      nbd: { listen: [{ socket }] },
    }),
  );
  const data = join(dir, 'data');
  const first = startMember(t, ['--config', config, '--data-dir', data]);
  await first.ready();
  await first.waitFor((l) => /mirror m (opened|is): optimal|mirror m is optimal/.test(String(l.msg)));

  const fio = startBackground('fio', [
    '--name=crash',
    '--ioengine=nbd',
    `--uri=${nbdUri(`unix:${socket}`, 'vol')}`,
    '--rw=randwrite',
    '--bs=4k-64k',
    '--iodepth=32',
    '--numjobs=2',
    // The first 32 MiB of 256: the log then holds those extents, not the whole device.
    '--size=32m',
    '--time_based',
    '--runtime=60',
    '--randrepeat=0',
  ]);
  t.teardown(() => fio.stop());
  // Let fio get going, then kill the member with writes in flight.
  await new Promise((r) => setTimeout(r, 2500));
  const started = Date.now();
  first.child.kill('SIGKILL');
  await first.exited;
  await fio.exited;
  t.comment(`fio gone ${Date.now() - started} ms after the kill`);
  const differed = !(await readFile(files[0]!)).equals(await readFile(files[1]!));
  t.comment(`replica files ${differed ? 'differed' : 'happened to be identical'} right after the crash`);

  const second = startMember(t, ['--data-dir', data]);
  const unclean: LogLine = await second.waitFor((l) => l.msg === 'the mirror was not stopped cleanly: resyncing what writes in flight may have left different');
  const extents = unclean.extents as number;
  const extentSize = unclean.extentSize as number;
  t.ok(extents > 0 && extents * extentSize <= 32 * MiB, `the restart resyncs the logged extents only (${extents} of ${SIZE / extentSize}: where fio wrote)`);
  await second.ready();
  await second.waitFor((l) => l.msg === 'mirror m is optimal');
  t.pass(`resync done ${Date.now() - started} ms after the kill`);
  const stopped = await second.terminate();
  t.equal(stopped.code, 0);
  t.ok((await readFile(files[0]!)).equals(await readFile(files[1]!)), 'replica files are byte-identical');
});
