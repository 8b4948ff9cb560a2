// What the benchmark compares: pairs of targets measured with the same workloads in the
// same run. A target is either
//   { label, blockgate: { backends, devices?, export, device?, iscsi? } }  served by the one
//     blockgate member of the run (device defaults to the export's name; names must be
//     unique across comparisons; `iscsi: { target, lun }` also maps the export to an iSCSI
//     LUN and measures that instead of NBD), or a function returning that (read after
//     prepare(), for addresses prepare() learns), or
//   { label, start: async () => ({ uri: () => string, stop }) }     a server of its own.
// A comparison may set `workloads` (default: the fio jobs of lib/fio.mjs), `measure(uri,
// workload, { runtime, ramp })` (default: fio's nbd engine), async `prepare()` / `cleanup()`,
// and `target(workload, metric)`: the ratio blockgate should reach, as a fraction of the
// baseline's performance (for latencies the report shows its inverse, a ceiling).
import { closeSync, openSync, ftruncateSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ISCSI_WORKLOADS, measureIscsi } from './lib/iscsi-tools.mjs';
import { startTgtd } from './lib/tgtd.mjs';
import { startNbdkitMemory, startQemuNbd } from './lib/targets.mjs';

function sparseFile(path, size) {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
  return path;
}

/** Throughput at least the baseline's; latency: only p99 is held to the baseline. */
const parity = (_w, metric) => (metric === 'p50 µs' ? undefined : 1.0);

const isWrite = (w) => Boolean(w.write || w.rw?.includes('write'));
const BLOCKGATE_IQN = 'iqn.2026-11.dev.blockgate:bench';

/** `--only` names standing for several comparisons. */
export const GROUPS = { nbd: ['memory', 'file'] };

export function comparisons({ size, shmDir }) {
  const blockgateFile = join(shmDir, 'blockgate-file.img');
  const qemuFile = join(shmDir, 'qemu-nbd-file.img');
  const tgtdFile = join(shmDir, 'tgtd-lun.img');
  let remote; // the nbdkit both sides of the remote-hop comparison reach
  return [
    {
      id: 'memory',
      title: 'memory device: blockgate vs nbdkit memory (fio, nbd engine)',
      // The foundation issue's bar: at least the peer's throughput, no worse p99 at depth 1.
      target: parity,
      subject: {
        label: 'blockgate memory',
        blockgate: { backends: [{ name: 'bench-memory', type: 'memory', size }], export: 'bench-memory' },
      },
      baseline: { label: 'nbdkit memory', start: () => startNbdkitMemory({ size }) },
    },
    {
      id: 'file',
      title: 'file in /dev/shm: blockgate vs qemu-nbd (fio, nbd engine)',
      target: parity,
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
    {
      id: 'mirror',
      title: 'mirror vs single device: blockgate 2-way mirror of memory backends vs one blockgate memory device (fio, nbd engine)',
      // A write goes to both replicas (some cost is fair); a read to the less busy one.
      target: (w) => (isWrite(w) ? 0.8 : 1.0),
      subject: {
        label: 'blockgate mirror',
        blockgate: {
          backends: [
            { name: 'bench-mirror-a', type: 'memory', size },
            { name: 'bench-mirror-b', type: 'memory', size },
          ],
          devices: [{ name: 'bench-mirror', type: 'mirror', replicas: ['bench-mirror-a', 'bench-mirror-b'] }],
          export: 'bench-mirror',
        },
      },
      baseline: {
        label: 'blockgate single',
        blockgate: { backends: [{ name: 'bench-single', type: 'memory', size }], export: 'bench-single' },
      },
    },
    {
      id: 'remote',
      title: 'remote hop: fio → blockgate (nbd backend) → nbdkit memory vs fio → the same nbdkit (TCP loopback)',
      target: () => 0.8,
      async prepare() {
        remote = await startNbdkitMemory({ size });
      },
      async cleanup() {
        await remote?.stop();
      },
      subject: {
        label: 'blockgate → nbdkit',
        blockgate: () => ({ backends: [{ name: 'bench-remote', type: 'nbd', address: `127.0.0.1:${remote.port}` }], export: 'bench-remote' }),
      },
      baseline: { label: 'nbdkit direct', start: async () => ({ uri: () => remote.uri(), stop: async () => {} }) },
    },
    {
      id: 'iscsi',
      title: 'iSCSI: blockgate memory LUN 0 vs tgtd, LUN 1 on a file in /dev/shm (libiscsi: iscsi-perf, qemu-img bench)',
      workloads: ISCSI_WORKLOADS,
      target: () => 1.0,
      measure: measureIscsi,
      cleanup() {
        rmSync(tgtdFile, { force: true });
      },
      subject: {
        label: 'blockgate iSCSI',
        blockgate: { backends: [{ name: 'bench-iscsi', type: 'memory', size }], export: 'bench-iscsi', iscsi: { target: BLOCKGATE_IQN, lun: 0 } },
      },
      baseline: { label: 'tgtd', start: () => startTgtd({ file: tgtdFile, size }) },
    },
  ];
}
