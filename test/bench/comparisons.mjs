// What the benchmark compares: pairs of targets measured with the same workloads in the
// same run. A target is either
//   { label, blockgate: { backends, devices?, export, device? } }  served by the one blockgate
//     member of the run (device defaults to the export's name; names must be unique across
//     comparisons), or
//   { label, start: async () => ({ uri: () => string, stop }) }     a server of its own.
// A comparison may set `measure(uri, workload, { runtime, ramp })` (default: fio's nbd
// engine, lib/fio.mjs) and `prepare()` / `cleanup()`.
// To add one (mirror vs single device: two blockgate targets; a remote hop: a blockgate
// `nbd` backend pointing at an nbdkit started in prepare(); iSCSI vs tgtd: a `measure` using
// iscsi-perf), append an entry.
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
