// iSCSI workloads, measured with libiscsi's initiators (fio here has no iSCSI engine):
// iscsi-perf for reads (it only reads; time-based, random or sequential) and
// `qemu-img bench` for writes and strided reads (count-based, sequential or with a fixed
// step). One connection, one session, like fio's nbd engine in the NBD comparisons.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CPU_METRIC } from './fio.mjs';
import { pinned, placement } from './processes.mjs';

const execute = promisify(execFile);
/** Clients run on the client CPU, like fio. */
const run = (command, args, options) => execute(...pinned(placement.client, command, args), options);
const INITIATOR = 'iqn.2026-11.dev.blockgate:bench-initiator';
const KiB = 1024;
const MiB = 1024 * KiB;
// A step of a prime number of 4 KiB blocks visits every block of a power-of-two-sized
// device in a scattered order: qemu-img bench has no random mode.
const STRIDE = 7919 * 4 * KiB;

export const ISCSI_WORKLOADS = [
  { id: 'iscsi-seqwrite-1m-qd8', title: '1 MiB seq write, QD8 (qemu-img bench)', tool: 'qemu-img', write: true, bs: MiB, iodepth: 8, metrics: ['MiB/s', CPU_METRIC] },
  { id: 'iscsi-randwrite-4k-qd32', title: '4 KiB strided write, QD32 (qemu-img bench)', tool: 'qemu-img', write: true, bs: 4 * KiB, iodepth: 32, step: STRIDE, metrics: ['IOPS', CPU_METRIC] },
  { id: 'iscsi-seqread-1m-qd8', title: '1 MiB seq read, QD8 (iscsi-perf)', tool: 'iscsi-perf', bs: MiB, iodepth: 8, metrics: ['MiB/s', CPU_METRIC] },
  { id: 'iscsi-randread-4k-qd32', title: '4 KiB rand read, QD32 (iscsi-perf)', tool: 'iscsi-perf', random: true, bs: 4 * KiB, iodepth: 32, metrics: ['IOPS', CPU_METRIC] },
  { id: 'iscsi-randread-4k-qd32-qemu', title: '4 KiB strided read, QD32 (qemu-img bench)', tool: 'qemu-img', bs: 4 * KiB, iodepth: 32, step: STRIDE, metrics: ['IOPS', CPU_METRIC] },
  // Neither libiscsi tool reports latency percentiles: at depth 1 the mean latency is 1/IOPS.
  { id: 'iscsi-randread-4k-qd1', title: '4 KiB rand read, QD1 (iscsi-perf)', tool: 'iscsi-perf', random: true, bs: 4 * KiB, iodepth: 1, metrics: ['mean µs'] },
];

/** Digests on vs off: only qemu-img can ask libiscsi for a header digest (see qemuImage). */
export const ISCSI_DIGEST_WORKLOADS = [
  ...ISCSI_WORKLOADS.filter((w) => w.tool === 'qemu-img'),
  { id: 'iscsi-seqread-1m-qd8-qemu', title: '1 MiB seq read, QD8 (qemu-img bench)', tool: 'qemu-img', bs: MiB, iodepth: 8, metrics: ['MiB/s', CPU_METRIC] },
];

/** The LUN's size and logical block size, from READ CAPACITY(16). */
async function capacity(uri) {
  const { stdout } = await run('iscsi-readcapacity16', ['-i', INITIATOR, uri]);
  const blockSize = Number(/block length[^\d]*(\d+)/i.exec(stdout)?.[1]);
  const size = Number(/total size[^\d]*(\d+)/i.exec(stdout)?.[1]);
  if (!blockSize || !size) throw new Error(`iscsi-readcapacity16 ${uri}: cannot parse ${JSON.stringify(stdout)}`);
  return { blockSize, size };
}

/**
 * The LUN in qemu-img's words. `iscsi://host:port/target/lun?header_digest=crc32c|none`
 * (libiscsi's URL form) asks for that header digest: qemu takes it only as an option of its
 * iscsi driver (--image-opts); iscsi-perf has no way to ask for it at all.
 */
function qemuImage(uri) {
  const m = /^iscsi:\/\/([^/]+)\/([^/]+)\/(\d+)\?header_digest=(\w+)$/.exec(uri);
  if (!m) return ['-f', 'raw', uri];
  const [, portal, target, lun, digest] = m;
  return ['--image-opts', `driver=iscsi,transport=tcp,portal=${portal},target=${target},lun=${lun},initiator-name=${INITIATOR},header-digest=${digest}`];
}

/** `uri` with the header digest libiscsi should ask for (`crc32c` or `none`), for qemu-img workloads. */
export const withHeaderDigest = (uri, digest) => `${uri}?header_digest=${digest}`;

async function qemuImgBench(uri, { write, bs, iodepth, step }, count) {
  const args = ['bench', '-t', 'none', '-s', String(bs), '-d', String(iodepth), '-c', String(count), ...(write ? ['-w'] : []), ...(step ? ['-S', String(step)] : []), ...qemuImage(uri)];
  const { stdout } = await run('qemu-img', args);
  const seconds = Number(/completed in ([\d.]+) seconds/.exec(stdout)?.[1]);
  if (!seconds) throw new Error(`qemu-img ${args.join(' ')}: cannot parse ${JSON.stringify(stdout)}`);
  return seconds;
}

async function iscsiPerf(uri, { random, bs, iodepth }, seconds) {
  if (uri.includes('?')) throw new Error(`iscsi-perf cannot be told to use a header digest (${uri}): use a qemu-img workload`);
  const { blockSize } = await capacity(uri);
  const args = ['-i', INITIATOR, '-b', String(bs / blockSize), '-m', String(iodepth), '-t', String(seconds), ...(random ? ['-r'] : []), uri];
  const { stdout } = await run('iscsi-perf', args, { maxBuffer: 16 * MiB, timeout: (seconds + 30) * 1000 });
  // Progress lines end in \r; the summary is the last "iops average N".
  const all = [...stdout.matchAll(/iops average (\d+)/g)];
  if (all.length === 0 || !/finished/.test(stdout)) throw new Error(`iscsi-perf ${args.join(' ')}: ${stdout.slice(-500)}`);
  return Number(all.at(-1)[1]);
}

function figures(iops, bs, cpuSeconds, bytes) {
  return { IOPS: iops, 'MiB/s': (iops * bs) / MiB, 'mean µs': 1e6 / iops, [CPU_METRIC]: cpuSeconds / (bytes / 2 ** 30) };
}

/**
 * One workload against an iscsi:// URI, as { IOPS, 'MiB/s', 'mean µs', CPU }. qemu-img
 * bench counts requests rather than time: a short first run estimates the rate, the second
 * lasts about `runtime` seconds. PREFILL (the bench's full write) becomes one sequential
 * 1 MiB pass. `cpu()` (the server's CPU seconds so far) is read around the measured run.
 */
export async function measureIscsi(uri, workload, { runtime = 0, cpu = () => NaN } = {}) {
  if (workload.id === 'prefill') {
    const { size } = await capacity(uri);
    await qemuImgBench(uri, { write: true, bs: MiB, iodepth: 8 }, Math.floor(size / MiB));
    return {};
  }
  if (workload.tool === 'iscsi-perf') {
    const seconds = Math.max(1, Math.round(runtime));
    const before = cpu();
    const iops = await iscsiPerf(uri, workload, seconds);
    return figures(iops, workload.bs, cpu() - before, iops * workload.bs * seconds);
  }
  const probe = workload.bs >= MiB ? 64 : 4096;
  const rate = probe / (await qemuImgBench(uri, workload, probe));
  const count = Math.max(probe, Math.round(rate * runtime));
  const before = cpu();
  const seconds = await qemuImgBench(uri, workload, count);
  return figures(count / seconds, workload.bs, cpu() - before, count * workload.bs);
}
