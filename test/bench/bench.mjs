// blockgate benchmark: fio's nbd engine against blockgate and against a reference server
// (nbdkit, qemu-nbd) in the same run; prints a markdown table and writes it to
// test/bench/results/latest.md. Run through test/bench/run.sh (npm run bench).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { comparisons } from './comparisons.mjs';
import { PREFILL, WORKLOADS, runFio } from './lib/fio.mjs';
import { markdownReport } from './lib/report.mjs';
import { startBlockgate } from './lib/targets.mjs';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    runtime: { type: 'string', default: process.env.BENCH_RUNTIME ?? '10' },
    ramp: { type: 'string', default: process.env.BENCH_RAMP ?? '2' },
    size: { type: 'string', default: process.env.BENCH_SIZE ?? '512MiB' },
    'no-prefill': { type: 'boolean', default: process.env.BENCH_PREFILL === '0' },
    only: { type: 'string', default: process.env.BENCH_ONLY ?? '' },
    workloads: { type: 'string', default: process.env.BENCH_WORKLOADS ?? '' },
    output: { type: 'string', default: join(root, 'test', 'bench', 'results', 'latest.md') },
  },
});
const runtime = Number(values.runtime);
const ramp = Number(values.ramp);
const size = parseSize(values.size);
const pick = (list, csv) => (csv ? list.filter((x) => csv.split(',').includes(x.id)) : list);

function parseSize(text) {
  const m = /^(\d+)\s*([KMGT]?)i?B?$/i.exec(text);
  if (!m) throw new Error(`--size ${text}: expected e.g. 1GiB, 512MiB`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
}

function toolVersion(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    return `${command}: unknown version`;
  }
}

function log(message) {
  process.stderr.write(`[bench] ${message}\n`);
}

async function main() {
  const workDir = mkdtempSync(join(tmpdir(), 'blockgate-bench-'));
  const shmDir = mkdtempSync(join('/dev/shm', 'blockgate-bench-'));
  const selected = pick(comparisons({ size, shmDir }), values.only);
  const workloads = pick(WORKLOADS, values.workloads);
  if (selected.length === 0 || workloads.length === 0) throw new Error('nothing selected (see --only, --workloads)');
  const rows = [];
  let member;
  try {
    for (const c of selected) c.prepare?.();
    // One member serves every blockgate target: started once, measured one export at a time.
    const targets = selected.flatMap((c) => [c.subject, c.baseline]).filter((x) => x.blockgate);
    member = await startBlockgate({
      root,
      workDir,
      backends: targets.flatMap((x) => x.blockgate.backends ?? []),
      devices: targets.flatMap((x) => x.blockgate.devices ?? []),
      exports: targets.map((x) => ({ name: x.blockgate.export, device: x.blockgate.device ?? x.blockgate.export })),
    });
    const uriOf = async (target) => {
      if (target.blockgate) return { uri: member.uri(target.blockgate.export), stop: async () => {} };
      const server = await target.start();
      return { uri: server.uri(), stop: server.stop };
    };

    for (const c of selected) {
      const subject = await uriOf(c.subject);
      const baseline = await uriOf(c.baseline);
      // fio's nbd engine unless the comparison measures another way (iSCSI: iscsi-perf…).
      const measure = c.measure ?? runFio;
      try {
        if (!values['no-prefill']) {
          log(`prefill ${c.subject.label} and ${c.baseline.label} (${values.size} each)`);
          await Promise.all([measure(subject.uri, PREFILL, {}), measure(baseline.uri, PREFILL, {})]);
        }
        for (const w of workloads) {
          // Alternate the two sides workload by workload so drift on a shared machine hits both.
          log(`${c.subject.label}: ${w.title}`);
          const s = await measure(subject.uri, w, { runtime, ramp });
          log(`${c.baseline.label}: ${w.title}`);
          const b = await measure(baseline.uri, w, { runtime, ramp });
          for (const metric of w.metrics) {
            rows.push({ subjectLabel: c.subject.label, baselineLabel: c.baseline.label, workload: w.title, metric, subject: s[metric], baseline: b[metric] });
          }
        }
      } finally {
        await subject.stop();
        await baseline.stop();
      }
    }
  } finally {
    await member?.stop();
    for (const c of selected) c.cleanup?.();
    rmSync(shmDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  }

  const header = [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; node ${process.version}; ${toolVersion('fio', ['--version'])}; ${toolVersion('nbdkit', ['--version'])}; ${toolVersion('qemu-nbd', ['--version'])}`,
    `each figure: one fio job (nbd engine, one connection over TCP 127.0.0.1), ${runtime} s after a ${ramp} s ramp; devices of ${values.size}${!values['no-prefill'] ? ', written in full before measuring' : ''}`,
  ];
  const report = markdownReport({ header, rows });
  mkdirSync(join(values.output, '..'), { recursive: true });
  writeFileSync(values.output, report);
  process.stdout.write(report);
  log(`written to ${values.output}`);
}

main().catch((err) => {
  process.stderr.write(`[bench] failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
