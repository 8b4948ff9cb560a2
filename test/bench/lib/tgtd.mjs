// tgtd (the Linux SCSI target framework's daemon) as an iSCSI baseline: one target whose
// LUN 1 is a file (LUN 0 is tgtd's own controller).
import { execFile } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { freePort, startProcess, waitForPort } from './processes.mjs';

const run = promisify(execFile);
export const TGTD_IQN = 'iqn.2026-11.dev.blockgate:bench-tgtd';

export async function startTgtd({ file, size }) {
  const fd = openSync(file, 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
  const port = await freePort();
  // tgtd's management socket is keyed by this number (not a TCP port): pick one unlikely to be
  // taken by another tgtd on the machine (tests run theirs concurrently).
  const control = String(1000 + Math.floor(Math.random() * 31000)); // tgtd takes at most 32767
  const proc = startProcess('tgtd', ['-f', '-C', control, '--iscsi', `portal=127.0.0.1:${port}`]);
  const tgtadm = (...args) => run('tgtadm', ['-C', control, '--lld', 'iscsi', ...args]);
  try {
    await waitForPort(port, proc, 'tgtd');
    await tgtadm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', TGTD_IQN);
    await tgtadm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '-b', file);
    await tgtadm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
  } catch (err) {
    await proc.stop('SIGKILL');
    throw new Error(`tgtd did not start: ${err.stderr ?? err.message} ${proc.stderr()}`);
  }
  // tgtd ignores SIGTERM, and its backing file needs no orderly close; killed, it leaves its control socket behind.
  const stop = async () => {
    await proc.stop('SIGKILL');
    for (const suffix of ['', '.lock']) rmSync(`/var/run/tgtd/socket.${control}${suffix}`, { force: true });
  };
  return { proc, pids: [proc.pid], uri: () => `iscsi://127.0.0.1:${port}/${TGTD_IQN}/1`, stop };
}
