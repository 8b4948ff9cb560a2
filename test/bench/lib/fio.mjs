// One fio run with its nbd engine, reduced to the figures the report shows.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pinned, placement } from './processes.mjs';

const run = promisify(execFile);

/** Server CPU seconds per GiB moved: what decides throughput when server and client share few cores. */
export const CPU_METRIC = 'server CPU s/GiB';

/**
 * Workloads, in the order they run. `metrics` names what the report shows for each;
 * throughput jobs also report the server's CPU seconds per GiB. `jobs` connections of
 * `iodepth` each (fio's nbd engine opens one connection per job).
 */
export const WORKLOADS = [
  { id: 'seqwrite-1m-qd8', title: '1 MiB seq write, QD8', rw: 'write', bs: '1m', iodepth: 8, metrics: ['MiB/s', CPU_METRIC] },
  { id: 'randwrite-4k-qd32', title: '4 KiB rand write, QD32', rw: 'randwrite', bs: '4k', iodepth: 32, metrics: ['IOPS', CPU_METRIC] },
  { id: 'seqread-1m-qd8', title: '1 MiB seq read, QD8', rw: 'read', bs: '1m', iodepth: 8, metrics: ['MiB/s', CPU_METRIC] },
  { id: 'randread-4k-qd32', title: '4 KiB rand read, QD32', rw: 'randread', bs: '4k', iodepth: 32, metrics: ['IOPS', CPU_METRIC] },
  {
    id: 'randrw-4k-4x8',
    title: '4 KiB rand read+write 50/50, 4 conns × QD8',
    rw: 'randrw',
    bs: '4k',
    iodepth: 8,
    jobs: 4,
    metrics: ['IOPS', CPU_METRIC],
  },
  { id: 'randread-4k-qd1', title: '4 KiB rand read, QD1', rw: 'randread', bs: '4k', iodepth: 1, metrics: ['p50 µs', 'p99 µs'] },
];

/** Written once over the whole device before measuring, so reads never hit unallocated holes. */
export const PREFILL = { id: 'prefill', title: 'prefill', rw: 'write', bs: '1m', iodepth: 8, once: true, metrics: [] };

/** Metrics where less is better (the report says so beside the ratio). */
export const LOWER_IS_BETTER = new Set(['p50 µs', 'p99 µs', 'mean µs', CPU_METRIC, 'RSS KiB per connection', 'RSS KiB per session', 'RSS ÷ data written']);

/**
 * Run one workload. `cpu()`, when given, returns the CPU seconds the server side has used
 * so far: it is read when the ramp ends and when the measured time ends.
 */
export async function runFio(uri, workload, { runtime, ramp, cpu, extra = [] }) {
  const jobs = workload.jobs ?? 1;
  const args = [
    `--name=${workload.id}`,
    '--ioengine=nbd',
    `--uri=${uri}`,
    `--rw=${workload.rw}`,
    `--bs=${workload.bs}`,
    `--iodepth=${workload.iodepth}`,
    `--numjobs=${jobs}`,
    '--group_reporting',
    ...(workload.rw === 'randrw' ? ['--rwmixread=50'] : []),
    ...(workload.once ? [] : ['--time_based', `--runtime=${runtime}`, `--ramp_time=${ramp}`]),
    '--percentile_list=50:99',
    '--output-format=json',
    ...extra,
  ];
  const windows = [];
  const timers = [];
  if (cpu && !workload.once) {
    // fio starts its clock a few ms after spawn; the window is close enough for a per-GiB figure.
    timers.push(setTimeout(() => windows.push(cpu()), ramp * 1000));
    timers.push(setTimeout(() => windows.push(cpu()), (ramp + runtime) * 1000));
  }
  let stdout;
  try {
    ({ stdout } = await run(...pinned(placement.client, 'fio', args), { maxBuffer: 16 * 1024 * 1024 }));
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  // fio may exit before the second timer fires (its ramp counts from its own start): the
  // measured window then ends at its exit, a few ms of teardown more, not with no figure.
  if (cpu && !workload.once && windows.length === 1) windows.push(cpu());
  // The nbd engine prints "fio: connected to NBD server" before the JSON document.
  const json = JSON.parse(stdout.slice(stdout.indexOf('\n{') + 1));
  const job = json.jobs[0];
  if (job.error) throw new Error(`fio ${workload.id} against ${uri}: error ${job.error}`);
  const sides = workload.rw === 'randrw' ? [job.read, job.write] : [workload.rw.includes('write') ? job.write : job.read];
  const percentiles = sides[0].clat_ns.percentile ?? {};
  const bytes = sides.reduce((n, s) => n + s.io_bytes, 0);
  const seconds = (sides[0].runtime || 1) / 1000;
  return {
    IOPS: sides.reduce((n, s) => n + s.iops, 0),
    'MiB/s': bytes / seconds / 2 ** 20,
    'p50 µs': (percentiles['50.000000'] ?? NaN) / 1000,
    'p99 µs': (percentiles['99.000000'] ?? NaN) / 1000,
    [CPU_METRIC]: windows.length === 2 && bytes > 0 ? (windows[1] - windows[0]) / (bytes / 2 ** 30) : NaN,
  };
}
