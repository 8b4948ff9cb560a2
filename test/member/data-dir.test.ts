import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLockedError, LOCK_FILE } from '../../member/data-dir-lock.js';
import { MemberStore } from '../../member/store.js';
import { ensureBuilt, runCli, startMember } from '../helpers/blockgate-cli.js';

ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'blockgate-datadir-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('one member store per data directory; released on close', async (t) => {
  const data = join(dir, 'in-process');
  const first = MemberStore.open(data);
  t.throws(() => MemberStore.open(data), new DataDirLockedError(data, process.pid), 'a second opener is refused, naming the holder');
  t.equal(readFileSync(join(data, LOCK_FILE), 'utf8'), `${process.pid}\n`);
  const reader = MemberStore.openUnlocked(data);
  t.equal(reader.config.current(), undefined, 'show-config may read beside the running member');
  await reader.close();
  await first.close();
  const again = MemberStore.open(data);
  await again.close();
});

t.test('a second member on the same data directory is refused with the PID that holds it; the lock dies with the holder', async (t) => {
  const data = join(dir, 'shared');
  const config = join(dir, 'm.yaml');
  writeFileSync(config, 'backends:\n  - {name: d, type: memory, size: 1MiB}\nexports:\n  - {name: d, device: d}\nnbd:\n  listen: ["127.0.0.1:0"]\n');
  const first = startMember(t, ['--config', config, '--data-dir', data]);
  await first.ready();
  const second = await runCli(['serve', '--data-dir', data, '--nbd', '127.0.0.1:0', '--iscsi', '127.0.0.1:0', '--api', '127.0.0.1:0']);
  t.equal(second.code, 1, 'refused');
  t.match(second.stderr, new RegExp(`data directory ${data} is in use by another blockgate member \\(PID ${first.child.pid}\\)`));

  // kill -9 leaves no stale lock: the kernel drops it with the process.
  t.equal((await first.terminate('SIGKILL')).signal, 'SIGKILL');
  const third = startMember(t, ['--data-dir', data]);
  await third.ready();
  t.equal((await third.terminate()).code, 0, third.stderr);
});
