/**
 * End to end: blockgate exports a multipath device whose two paths are nbdkit servers
 * sharing one file; fio (ioengine=nbd, verify=crc32c) writes through blockgate while the
 * active path's server is killed with SIGKILL. fio must finish without an error.
 */
import t from 'tap';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildWithSets, memberStates, setNamed } from '../helpers/failover.js';
import { runTool } from '../helpers/clients.js';
import { startNbdServer } from '../helpers/nbd.js';
import { startNbdkit } from '../helpers/nbdkit-server.js';

const MiB = 1024 * 1024;

t.test('fio through blockgate survives losing the active backend path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'paths-e2e-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'disk.img');
  await writeFile(file, '');
  await truncate(file, 64 * MiB);
  const first = await startNbdkit(t, { plugin: ['file', `file=${file}`] });
  const second = await startNbdkit(t, { tcp: true, plugin: ['file', `file=${file}`] });

  const { graph, sets } = await buildWithSets(
    t,
    [
      {
        name: 'remote',
        type: 'nbd',
        paths: [first.address, second.address],
        policy: 'active-passive',
        failback: 'manual',
        probeIntervalMs: 200,
        timeoutMs: 5000,
        noPathRetryMs: 10_000,
      },
    ],
    dir,
  );
  const device = graph.get('remote')!;
  const gateway = await startNbdServer([{ name: 'remote', device }]);
  t.teardown(() => gateway.stop());

  const fio = runTool(
    'fio',
    [
      '--name=paths',
      '--ioengine=nbd',
      `--uri=${gateway.uri('remote')}`,
      '--rw=randwrite',
      '--bs=64k',
      '--iodepth=8',
      '--size=32m',
      '--rate=16m',
      '--verify=crc32c',
      '--verify_state_save=0',
      '--do_verify=1',
      '--verify_fatal=1',
      '--output-format=normal',
    ],
    { timeoutMs: 90_000, allowFailure: true },
  );
  await new Promise((r) => setTimeout(r, 700));
  await first.kill('SIGKILL');
  const result = await fio;
  t.equal(result.code, 0, `fio finished cleanly: ${result.stderr.slice(-500)}`);
  t.notMatch(result.stdout, /err=\s*[1-9]/, 'fio reports no I/O error');
  const issued = /issued rwts: total=(\d+),(\d+)/.exec(result.stdout);
  t.ok(issued && Number(issued[2]) > 0 && issued[1] === issued[2], 'fio read back (verified) every block it wrote');
  const status = device.status();
  t.equal(status.state, 'degraded', 'the device knows it lost a path');
  t.same(memberStates(setNamed(sets, 'remote')), ['failed', 'active']);
});
