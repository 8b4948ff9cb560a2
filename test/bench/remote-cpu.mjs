// Where the remote hop's CPU goes, process by process: blockgate (fio → blockgate → its nbd
// backend) and the nbdkit file server behind it, against the same nbdkit reached directly.
// The bench's "server CPU s/GiB" adds the two together; on two CPUs, where blockgate and
// nbdkit share the server CPU, their split per I/O is what bounds the hop's ratio to direct.
// With --against DIR, a second blockgate build (DIR/dist, e.g. a checkout of main) runs in
// the same rounds, alternating, to measure a change under the same load.
//   node test/bench/remote-cpu.mjs --workloads randread-4k-qd32,seqread-1m-qd8 --connections 1 --rounds 3 --seconds 3
//   node test/bench/remote-cpu.mjs --against /tmp/old-checkout     (run `npx tsc -p .` in both first)
// Per cell: median over the rounds of CPU µs per I/O (user+system, /proc/PID/stat) and of
// the read+write system calls per I/O (/proc/PID/io syscr+syscw; recv/send are not counted).
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PREFILL, WORKLOADS, runFio } from './lib/fio.mjs';
import { cpuSeconds, setPlacement } from './lib/processes.mjs';
import { median } from './lib/report.mjs';
import { startBlockgate, startNbdkitFile } from './lib/targets.mjs';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'randread-4k-qd32,randwrite-4k-qd32,seqread-1m-qd8,seqwrite-1m-qd8,randread-4k-qd1' },
    connections: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    ramp: { type: 'string', default: '0.5' },
    against: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
  },
});
if (!values['no-pin']) setPlacement(0, 1);
const workloads = values.workloads.split(',').map((id) => {
  const w = WORKLOADS.find((x) => x.id === id);
  if (!w) throw new Error(`--workloads: ids from ${WORKLOADS.map((x) => x.id).join(', ')}`);
  return w;
});
const size = 512 * 2 ** 20;
const connections = Number(values.connections);
const runtime = Number(values.seconds);
const ramp = Number(values.ramp);

const shmDir = mkdtempSync('/dev/shm/blockgate-remote-cpu-');
const workDirs = [];
process.on('exit', () => {
  for (const dir of [shmDir, ...workDirs]) rmSync(dir, { recursive: true, force: true });
});
const file = join(shmDir, 'remote.img');
const fd = openSync(file, 'w');
ftruncateSync(fd, size);
closeSync(fd);

/** CPU seconds and read+write system calls of `pids` so far. */
function usage(pids) {
  let cpu = 0;
  let calls = 0;
  for (const pid of pids) {
    cpu += cpuSeconds(pid);
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    calls += Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0) + Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0);
  }
  return { cpu, calls };
}

const nbdkit = await startNbdkitFile({ file });
const sides = [];
try {
  const builds = [{ label: 'blockgate', root }];
  if (values.against) builds.push({ label: `blockgate (${values.against})`, root: values.against });
  for (const build of builds) {
    const workDir = mkdtempSync(join('/tmp', 'blockgate-remote-cpu-'));
    workDirs.push(workDir);
    const member = await startBlockgate({
      root: build.root,
      workDir,
      backends: [{ name: 'remote', type: 'nbd', address: `127.0.0.1:${nbdkit.port}`, connections }],
      exports: [{ name: 'remote', device: 'remote' }],
    });
    sides.push({ label: `${build.label} → nbdkit`, uri: member.uri('remote'), proxy: member.pids, stop: () => member.stop() });
  }
  sides.push({ label: 'nbdkit direct', uri: nbdkit.uri(), proxy: [], stop: async () => {} });
  await runFio(sides[0].uri, PREFILL, {});

  const rows = [];
  for (const w of workloads) {
    const samples = sides.map(() => []);
    for (let round = 0; round < Number(values.rounds); round++) {
      const order = sides.map((_, i) => i);
      if (round % 2) order.reverse();
      for (const i of order) {
        const side = sides[i];
        const marks = [];
        const cpu = () => {
          marks.push({ proxy: usage(side.proxy), server: usage(nbdkit.pids) });
          return 0;
        };
        process.stderr.write(`[remote-cpu] ${w.title}: ${side.label} (round ${round + 1})\n`);
        const result = await runFio(side.uri, w, { runtime, ramp, cpu });
        if (marks.length !== 2) continue;
        const ios = (result.IOPS || 0) * runtime;
        const per = (key, field) => (ios > 0 ? (marks[1][key][field] - marks[0][key][field]) / ios : NaN);
        samples[i].push({
          IOPS: result.IOPS,
          'MiB/s': result['MiB/s'],
          'p50 µs': result['p50 µs'],
          proxyUs: per('proxy', 'cpu') * 1e6,
          serverUs: per('server', 'cpu') * 1e6,
          proxyCalls: per('proxy', 'calls'),
        });
      }
    }
    sides.forEach((side, i) => rows.push({ workload: w.title, side: side.label, samples: samples[i] }));
  }

  const fmt = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
  const med = (samples, key) => median(samples.map((s) => s[key]).filter(Number.isFinite));
  const lines = [
    `remote hop, connections: ${connections}; ${values.rounds} rounds of ${runtime} s, alternating; medians`,
    '',
    '| workload | side | IOPS | MiB/s | p50 µs | blockgate CPU µs/IO | nbdkit CPU µs/IO | blockgate read+write calls/IO |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(({ workload, side, samples }) =>
      [
        workload,
        side,
        fmt(med(samples, 'IOPS'), 0),
        fmt(med(samples, 'MiB/s'), 0),
        fmt(med(samples, 'p50 µs')),
        side === 'nbdkit direct' ? '' : fmt(med(samples, 'proxyUs')),
        fmt(med(samples, 'serverUs')),
        side === 'nbdkit direct' ? '' : fmt(med(samples, 'proxyCalls'), 2),
      ].join(' | ').replace(/^/, '| ').replace(/$/, ' |'),
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  for (const side of sides) await side.stop();
  await nbdkit.stop();
}
process.exit(0);
