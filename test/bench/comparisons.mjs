// What the benchmark compares: groups of sides measured with the same workloads in the same
// run, alternately. A side is either
//   { label, blockgate: { backends, devices?, export, device?, iscsi? } }  served by the one
//     blockgate member of the run (device defaults to the export's name; names must be
//     unique across comparisons, except that sides of one comparison may share an export;
//     `iscsi: { target, lun }` also maps the export to an iSCSI LUN and measures that
//     instead of NBD; `uri(uri)` rewrites the address measured), or a function returning that (read after
//     prepare(), for addresses prepare() learns); `alsoCpu()` lists other processes whose
//     CPU counts for the side (the nbdkit behind a remote hop), or
//   { label, start: async () => ({ uri: () => string, pids, stop }) }   a server of its own.
// A comparison may set `workloads` (default: the fio jobs of lib/fio.mjs), `measure(uri,
// workload, { runtime, ramp, cpu })` (default: fio's nbd engine), async `prepare()` /
// `cleanup()`, `pairs` ([subject, baseline] side indexes; default: the first side against
// each other one) and `target(workload, metric, pair)`: what the ratio should be (see
// lib/report.mjs for the forms). A comparison with `run(context)` measures on its own
// (the memory rows) and returns its rows.
import { closeSync, openSync, ftruncateSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CPU_METRIC } from './lib/fio.mjs';
import { ISCSI_DIGEST_WORKLOADS, ISCSI_WORKLOADS, measureIscsi, withHeaderDigest } from './lib/iscsi-tools.mjs';
import { atLeast, atMost, within } from './lib/report.mjs';
import { idleIscsiSessions, idleNbdConnections, sparseMemoryDevice } from './lib/memory-rows.mjs';
import { startTgtd } from './lib/tgtd.mjs';
import { startNbdkit, startNbdkitFile, startNbdkitMemory, startQemuNbd } from './lib/targets.mjs';

function sparseFile(path, size) {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
  return path;
}

const isWrite = (w) => Boolean(w.write || w.rw?.includes('write'));
const isThroughput = (metric) => metric === 'IOPS' || metric === 'MiB/s';

/** At least the peer's throughput, no worse p99 at depth 1 (CPU and p50 are shown, not held). */
const parity = (_w, metric) => (isThroughput(metric) ? atLeast(1.0) : metric === 'p99 µs' ? atMost(1.0) : undefined);

const BLOCKGATE_IQN = 'iqn.2026-11.dev.blockgate:bench';

/** `--only` names standing for several comparisons. */
export const GROUPS = { iscsi: ['iscsi', 'iscsi-digests'], nbd: ['memory', 'file-shm', 'file-root'], file: ['file-shm', 'file-root'], memory: ['memory'], rss: ['rss-nbd', 'rss-iscsi', 'rss-sparse'] };

/** blockgate file backend vs nbdkit file vs qemu-nbd, each on its own file of the same kind in `dir`. */
function fileComparison({ id, where, dir, size }) {
  const files = ['blockgate', 'nbdkit', 'qemu-nbd'].map((name) => join(dir, `${id}-${name}.img`));
  return {
    id,
    title: `file ${where}: blockgate file backend vs nbdkit file vs qemu-nbd (fio, nbd engine)`,
    syncFiles: files,
    // The bar is nbdkit, the fastest file server here; qemu-nbd is shown for reference.
    target: (w, metric, [, baseline]) => (baseline === 1 ? parity(w, metric) : undefined),
    prepare() {
      for (const f of files) sparseFile(f, size);
    },
    cleanup() {
      for (const f of files) rmSync(f, { force: true });
    },
    sides: [
      { label: 'blockgate file', blockgate: { backends: [{ name: `${id}-bg`, type: 'file', path: files[0] }], export: `${id}-bg` } },
      { label: 'nbdkit file', start: () => startNbdkitFile({ file: files[1] }) },
      { label: 'qemu-nbd', start: () => startQemuNbd({ file: files[2] }) },
    ],
  };
}

export function comparisons({ size, shmDir, rootDir, root, workDir }) {
  let remote; // the nbdkit both sides of the remote-hop comparison reach
  const remoteFile = join(shmDir, 'remote-nbdkit.img');
  const mirrorFiles = ['mirror-a', 'mirror-b', 'single'].map((n) => join(shmDir, `${n}.img`));
  const iscsiFiles = ['blockgate-lun', 'tgtd-lun'].map((n) => join(shmDir, `${n}.img`));
  const digestFile = join(shmDir, 'digests-lun.img');
  return [
    {
      id: 'memory',
      title: 'memory device: blockgate vs nbdkit memory (fio, nbd engine)',
      target: parity,
      sides: [
        { label: 'blockgate memory', blockgate: { backends: [{ name: 'bench-memory', type: 'memory', size }], export: 'bench-memory' } },
        { label: 'nbdkit memory', start: () => startNbdkitMemory({ size }) },
      ],
    },
    fileComparison({ id: 'file-shm', where: 'in /dev/shm (tmpfs)', dir: shmDir, size }),
    fileComparison({ id: 'file-root', where: `on the root file system (${rootDir}, page cache)`, dir: rootDir, size }),
    {
      id: 'mirror',
      title: 'mirror vs single device: blockgate 2-way mirror of file backends vs one blockgate file backend, files in /dev/shm (fio, nbd engine)',
      // A write goes to both replicas (some cost is fair); a read to the less busy one.
      target: (w, metric) => (isThroughput(metric) ? atLeast(isWrite(w) ? 0.8 : 1.0) : metric === 'p99 µs' ? atMost(1.0) : undefined),
      prepare() {
        for (const f of mirrorFiles) sparseFile(f, size);
      },
      cleanup() {
        for (const f of mirrorFiles) rmSync(f, { force: true });
      },
      sides: [
        {
          label: 'blockgate mirror',
          blockgate: {
            backends: [
              { name: 'bench-mirror-a', type: 'file', path: mirrorFiles[0] },
              { name: 'bench-mirror-b', type: 'file', path: mirrorFiles[1] },
            ],
            devices: [{ name: 'bench-mirror', type: 'mirror', replicas: ['bench-mirror-a', 'bench-mirror-b'] }],
            export: 'bench-mirror',
          },
        },
        { label: 'blockgate single', blockgate: { backends: [{ name: 'bench-single', type: 'file', path: mirrorFiles[2] }], export: 'bench-single' } },
      ],
    },
    {
      id: 'remote',
      title: 'remote hop: fio → blockgate (nbd backend, 1 or 4 connections) → nbdkit file vs fio → the same nbdkit (TCP loopback, file in /dev/shm)',
      pairs: [
        [0, 2],
        [1, 2],
      ],
      target: (w, metric) => (isThroughput(metric) ? atLeast(0.8) : metric === 'p50 µs' ? within(40) : undefined),
      async prepare() {
        remote = await startNbdkitFile({ file: sparseFile(remoteFile, size) });
      },
      async cleanup() {
        await remote?.stop();
        rmSync(remoteFile, { force: true });
      },
      // Both blockgate exports reach one nbdkit, so one prefill (through either) writes it.
      prefill: [0],
      sides: [1, 4].map((connections) => ({
        label: `blockgate → nbdkit, ${connections} conn${connections > 1 ? 's' : ''}`,
        alsoCpu: () => remote.pids,
        blockgate: () => ({
          backends: [{ name: `bench-remote-${connections}`, type: 'nbd', address: `127.0.0.1:${remote.port}`, connections }],
          export: `bench-remote-${connections}`,
        }),
      })).concat([{ label: 'nbdkit direct', start: async () => ({ uri: () => remote.uri(), pids: remote.pids, stop: async () => {} }) }]),
    },
    {
      id: 'iscsi',
      title: 'iSCSI: blockgate file LUN 0 vs tgtd LUN 1, each on a file in /dev/shm (libiscsi: iscsi-perf, qemu-img bench)',
      workloads: ISCSI_WORKLOADS,
      target: (_w, metric) => (isThroughput(metric) ? atLeast(1.5) : undefined),
      measure: measureIscsi,
      prepare() {
        sparseFile(iscsiFiles[0], size);
      },
      cleanup() {
        for (const f of iscsiFiles) rmSync(f, { force: true });
      },
      sides: [
        {
          label: 'blockgate iSCSI',
          blockgate: { backends: [{ name: 'bench-iscsi', type: 'file', path: iscsiFiles[0] }], export: 'bench-iscsi', iscsi: { target: BLOCKGATE_IQN, lun: 0 } },
        },
        { label: 'tgtd', start: () => startTgtd({ file: iscsiFiles[1], size }) },
      ],
    },
    {
      id: 'iscsi-digests',
      title:
        'iSCSI digests: blockgate file LUN with HeaderDigest=CRC32C vs None, the same LUN (qemu-img bench through libiscsi 1.19, which always sends DataDigest=None: data digests cannot be measured with it)',
      workloads: ISCSI_DIGEST_WORKLOADS,
      target: (_w, metric) => (isThroughput(metric) ? atLeast(0.8) : undefined),
      measure: measureIscsi,
      prepare() {
        sparseFile(digestFile, size);
      },
      cleanup() {
        rmSync(digestFile, { force: true });
      },
      // Both sides are one LUN: one prefill writes it.
      prefill: [0],
      sides: ['crc32c', 'none'].map((digest) => ({
        label: `blockgate iSCSI, HeaderDigest=${digest === 'none' ? 'None' : 'CRC32C'}`,
        blockgate: {
          backends: [{ name: 'bench-iscsi-digests', type: 'file', path: digestFile }],
          export: 'bench-iscsi-digests',
          iscsi: { target: `${BLOCKGATE_IQN}-digests`, lun: 0 },
          uri: (uri) => withHeaderDigest(uri, digest),
          // What the member logged at login must match (the bench fails the row otherwise).
          expectLogin: { hd: digest === 'crc32c', dd: false },
        },
      })),
    },
    {
      id: 'rss-nbd',
      title: 'memory: resident set per idle NBD connection (1,000 connections that finished the handshake)',
      target: () => ({ text: '< 64 KiB', met: (s) => s < 64 }),
      run: (context) => idleNbdConnections({ ...context, root, workDir, count: 1000, nbdkit: () => startNbdkit('memory', ['64M']) }),
    },
    {
      id: 'rss-iscsi',
      title: 'memory: resident set per idle iSCSI session (200 sessions logged in to full feature phase)',
      run: (context) => idleIscsiSessions({ ...context, root, workDir, count: 200 }),
    },
    {
      id: 'rss-sparse',
      title: 'memory: a 1 TiB memory device after 1 GiB of 4 KiB random writes (RSS growth ÷ bytes written)',
      target: () => ({ text: '< 1.10', met: (s) => s < 1.1 }),
      run: (context) => sparseMemoryDevice({ ...context, root, workDir, written: 2 ** 30 }),
    },
  ];
}

export { CPU_METRIC };
