// One fio run with its nbd engine, reduced to the figures the report shows.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Workloads, in the order they run: writes first so reads find allocated data.
 * `metrics` names what the report shows for each.
 */
export const WORKLOADS = [
  { id: 'seqwrite-1m-qd8', title: '1 MiB seq write, QD8', rw: 'write', bs: '1m', iodepth: 8, metrics: ['MiB/s'] },
  { id: 'randwrite-4k-qd32', title: '4 KiB rand write, QD32', rw: 'randwrite', bs: '4k', iodepth: 32, metrics: ['IOPS'] },
  { id: 'seqread-1m-qd8', title: '1 MiB seq read, QD8', rw: 'read', bs: '1m', iodepth: 8, metrics: ['MiB/s'] },
  { id: 'randread-4k-qd32', title: '4 KiB rand read, QD32', rw: 'randread', bs: '4k', iodepth: 32, metrics: ['IOPS'] },
  { id: 'randread-4k-qd1', title: '4 KiB rand read, QD1', rw: 'randread', bs: '4k', iodepth: 1, metrics: ['p50 µs', 'p99 µs'] },
];

/** Written once over the whole device before measuring, so reads never hit unallocated holes. */
export const PREFILL = { id: 'prefill', title: 'prefill', rw: 'write', bs: '1m', iodepth: 8, once: true, metrics: [] };

/** Metrics where less is better (the report says so beside the ratio). */
export const LOWER_IS_BETTER = new Set(['p50 µs', 'p99 µs']);

export async function runFio(uri, workload, { runtime, ramp }) {
  const args = [
    `--name=${workload.id}`,
    '--ioengine=nbd',
    `--uri=${uri}`,
    `--rw=${workload.rw}`,
    `--bs=${workload.bs}`,
    `--iodepth=${workload.iodepth}`,
    '--numjobs=1',
    ...(workload.once ? [] : ['--time_based', `--runtime=${runtime}`, `--ramp_time=${ramp}`]),
    '--percentile_list=50:99',
    '--output-format=json',
  ];
  const { stdout } = await run('fio', args, { maxBuffer: 16 * 1024 * 1024 });
  // The nbd engine prints "fio: connected to NBD server" before the JSON document.
  const json = JSON.parse(stdout.slice(stdout.indexOf('\n{') + 1));
  const job = json.jobs[0];
  if (job.error) throw new Error(`fio ${workload.id} against ${uri}: error ${job.error}`);
  const side = workload.rw.includes('write') ? job.write : job.read;
  const percentiles = side.clat_ns.percentile ?? {};
  return {
    IOPS: side.iops,
    'MiB/s': side.bw_bytes / 2 ** 20,
    'p50 µs': (percentiles['50.000000'] ?? NaN) / 1000,
    'p99 µs': (percentiles['99.000000'] ?? NaN) / 1000,
  };
}
