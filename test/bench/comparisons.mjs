// What the benchmark compares: pairs of targets measured with the same workloads in the
// same run. A target is served by the blockgate member (`blockgate`: the backends/devices it
// needs and the export to measure) or by a process of its own (`start`).
// To add a comparison (mirror vs single device, a remote hop, iSCSI vs tgtd…), append an
// entry; blockgate targets of every selected comparison share one member.
import { closeSync, openSync, ftruncateSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startNbdkitMemory, startQemuNbd } from './lib/targets.mjs';

function sparseFile(path, size) {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
  return path;
}

export function comparisons({ size, shmDir }) {
  const blockgateFile = join(shmDir, 'blockgate-file.img');
  const qemuFile = join(shmDir, 'qemu-nbd-file.img');
  return [
    {
      id: 'memory',
      title: 'memory device',
      subject: {
        label: 'blockgate memory',
        blockgate: { backends: [{ name: 'bench-memory', type: 'memory', size }], export: 'bench-memory' },
      },
      baseline: { label: 'nbdkit memory', start: () => startNbdkitMemory({ size }) },
    },
    {
      id: 'file',
      title: 'file in /dev/shm',
      prepare() {
        sparseFile(blockgateFile, size);
        sparseFile(qemuFile, size);
      },
      cleanup() {
        rmSync(blockgateFile, { force: true });
        rmSync(qemuFile, { force: true });
      },
      subject: {
        label: 'blockgate file',
        blockgate: { backends: [{ name: 'bench-file', type: 'file', path: blockgateFile }], export: 'bench-file' },
      },
      baseline: { label: 'qemu-nbd', start: () => startQemuNbd({ file: qemuFile }) },
    },
  ];
}
