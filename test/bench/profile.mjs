// Where a blockgate side of a benchmark comparison spends its CPU: runs one workload against
// it with the member under `node --cpu-prof`, then prints the functions with the most self
// and total time and writes the profile, its folded stacks (for flamegraph.pl, inferno,
// speedscope) and an SVG flame graph next to each other.
//   node test/bench/profile.mjs --only remote --side 0 --workload randread-4k-qd32 --seconds 5
//   node test/bench/profile.mjs --only iscsi-digests --side 0 --workload iscsi-randread-4k-qd32-qemu
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { comparisons } from './comparisons.mjs';
import { PREFILL, WORKLOADS, runFio } from './lib/fio.mjs';
import { setPlacement } from './lib/processes.mjs';
import { flameGraphSvg, foldedStacks, topFunctions, within } from './lib/cpu-profile.mjs';
import { startBlockgate } from './lib/targets.mjs';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'remote' },
    side: { type: 'string', default: '0' },
    workload: { type: 'string', default: 'randread-4k-qd32' },
    seconds: { type: 'string', default: '5' },
    size: { type: 'string', default: '512MiB' },
    top: { type: 'string', default: '25' },
    'no-pin': { type: 'boolean', default: false },
    output: { type: 'string', default: join(root, 'test', 'bench', 'results', 'profile') },
  },
});
if (!values['no-pin']) setPlacement(0, 1);
const MiB = 2 ** 20;
const size = Number(/^(\d+)MiB$/.exec(values.size)?.[1] ?? 512) * MiB;

const workDir = mkdtempSync(join(tmpdir(), 'blockgate-profile-'));
const shmDir = mkdtempSync(join('/dev/shm', 'blockgate-profile-'));
const rootDir = mkdtempSync(join('/var/tmp', 'blockgate-profile-'));
process.on('exit', () => {
  for (const dir of [workDir, shmDir, rootDir]) rmSync(dir, { recursive: true, force: true });
});
const c = comparisons({ size, shmDir, rootDir, root, workDir }).find((x) => x.id === values.only);
if (!c?.sides) throw new Error(`--only: a comparison with sides (got ${values.only})`);
const side = c.sides[Number(values.side)];
// iSCSI comparisons measure with their own tools (qemu-img, iscsi-perf) on their own workloads.
const workloads = c.workloads ?? WORKLOADS;
const workload = workloads.find((w) => w.id === values.workload);
if (!workload) throw new Error(`--workload: one of ${workloads.map((w) => w.id).join(', ')}`);
const measure = c.measure ?? runFio;
const spec = typeof side?.blockgate === 'function' ? null : side?.blockgate;
await c.prepare?.();
let window = [0, Infinity];
try {
  const bg = spec ?? side.blockgate?.();
  if (!bg) throw new Error(`side ${values.side} of ${c.id} is not a blockgate side`);
  const profileDir = join(workDir, 'cpu');
  const member = await startBlockgate({
    root,
    workDir,
    backends: bg.backends,
    devices: bg.devices ?? [],
    exports: [{ name: bg.export, device: bg.device ?? bg.export }],
    iscsiTargets: bg.iscsi ? [{ name: bg.iscsi.target, luns: [{ lun: bg.iscsi.lun, export: bg.export }] }] : [],
    nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir],
  });
  try {
    const address = bg.iscsi ? member.iscsiUri(bg.iscsi.target, bg.iscsi.lun) : member.uri(bg.export);
    const uri = bg.uri ? bg.uri(address) : address;
    await measure(uri, PREFILL, {});
    process.stderr.write(`[profile] ${side.label}: ${workload.title} for ${values.seconds} s\n`);
    const from = Number(process.hrtime.bigint() / 1000n);
    const result = await measure(uri, workload, { runtime: Number(values.seconds), ramp: 0.5, cpu: () => 0 });
    window = [from, Number(process.hrtime.bigint() / 1000n)];
    process.stderr.write(`[profile] ${JSON.stringify(result)}\n`);
  } finally {
    await member.stop(); // SIGTERM: the member exits normally and node writes the profile
  }
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('node wrote no .cpuprofile');
  // Only what the member did while fio ran.
  const profile = within(JSON.parse(readFileSync(join(profileDir, file), 'utf8')), ...window);
  mkdirSync(values.output, { recursive: true });
  const stem = join(values.output, `${c.id}-${values.side}-${workload.id}`);
  writeFileSync(`${stem}.cpuprofile`, JSON.stringify(profile));
  writeFileSync(`${stem}.folded`, foldedStacks(profile));
  writeFileSync(`${stem}.svg`, flameGraphSvg(profile, `${side.label}: ${workload.title}`));
  process.stdout.write(`# ${side.label}: ${workload.title}\n\n${topFunctions(profile, Number(values.top))}\n`);
  process.stderr.write(`[profile] wrote ${basename(stem)}.{cpuprofile,folded,svg} in ${values.output}\n`);
} finally {
  await c.cleanup?.();
}
