import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, ensureBuilt } from '../helpers/blockgate-cli.js';
import { tempDir } from '../helpers/clients.js';

/**
 * The benchmark script itself (not its figures, which belong to `npm run bench` on a quiet
 * machine): a tiny run of one comparison and one memory row produces the report the README
 * shows — both sides with median and range over the rounds, the ratio of medians with its
 * target, the server's CPU per GiB, and the member's resident memory per idle connection.
 */

const run = promisify(execFile);

t.test('a short benchmark run writes the tables', async (t) => {
  ensureBuilt();
  const dir = await tempDir(t, 'blockgate-bench-smoke-');
  const output = join(dir, 'report.md');
  const args = [
    join(ROOT, 'test/bench/bench.mjs'),
    '--only', 'memory',
    '--workloads', 'randread-4k-qd32',
    '--seconds', '0.5', '--ramp', '0', '--rounds', '2', '--size', '16MiB',
    '--no-pin',
    '--output', output,
  ];
  // Six short fio runs and two servers: seconds on a quiet machine, minutes on a crowded one.
  await run(process.execPath, args, { cwd: ROOT, timeout: 280_000, maxBuffer: 16 * 1024 * 1024 });
  const report = await readFile(output, 'utf8');
  t.match(report, /command: `npm run bench -- --only memory/, 'says how it was run');
  t.match(report, /\| workload \| metric \| blockgate memory \| nbdkit memory \| blockgate memory ÷ nbdkit memory \|/);
  const iops = report.split('\n').find((l) => l.startsWith('| 4 KiB rand read, QD32 | IOPS |'));
  t.ok(iops, 'a throughput row');
  // "median (min–max)" for both sides, then the ratio with its target.
  t.match(iops!, /\| [\d,]+ \([\d,]+–[\d,]+\) \| [\d,]+ \([\d,]+–[\d,]+\) \| \d+\.\d\d [✓✗] \(≥ 1\.00\) \|$/);
  t.match(report, /\| 4 KiB rand read, QD32 \| server CPU s\/GiB ↓ \| [\d.]+ \(/, 'CPU per GiB beside throughput');
});

t.test('selection errors are clear', async (t) => {
  await t.rejects(
    run(process.execPath, [join(ROOT, 'test/bench/bench.mjs'), '--only', 'nonsense'], { cwd: ROOT, timeout: 60_000 }),
    { name: 'Error', stderr: /--only\/--skip nonsense: unknown \(known: .*file-shm.*\)/ },
  );
});
