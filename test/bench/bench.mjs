// blockgate benchmark: blockgate against a reference server (nbdkit, qemu-nbd, tgtd) or
// against another blockgate device, in the same run with the same workloads; prints one
// markdown table per comparison and writes them to test/bench/results/latest.md.
// Run through test/bench/run.sh (npm run bench).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GROUPS, comparisons } from './comparisons.mjs';
import { PREFILL, WORKLOADS, runFio } from './lib/fio.mjs';
import { markdownReport } from './lib/report.mjs';
import { startBlockgate } from './lib/targets.mjs';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: process.env.BENCH_SECONDS ?? process.env.BENCH_RUNTIME ?? '5' },
    runtime: { type: 'string' }, // the former name of --seconds
    ramp: { type: 'string', default: process.env.BENCH_RAMP ?? '1' },
    size: { type: 'string', default: process.env.BENCH_SIZE ?? '512MiB' },
    'no-prefill': { type: 'boolean', default: process.env.BENCH_PREFILL === '0' },
    only: { type: 'string', default: process.env.BENCH_ONLY ?? '' },
    workloads: { type: 'string', default: process.env.BENCH_WORKLOADS ?? '' },
    output: { type: 'string', default: join(root, 'test', 'bench', 'results', 'latest.md') },
  },
});
const runtime = Number(values.runtime ?? values.seconds);
const ramp = Number(values.ramp);
const size = parseSize(values.size);
const only = values.only ? values.only.split(',').flatMap((id) => GROUPS[id] ?? [id]) : [];
const workloadIds = values.workloads ? values.workloads.split(',') : [];

function parseSize(text) {
  const m = /^(\d+)\s*([KMGT]?)i?B?$/i.exec(text);
  if (!m) throw new Error(`--size ${text}: expected e.g. 1GiB, 512MiB`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
}

function firstLine(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0].trim();
  } catch {
    return `${command}: unknown`;
  }
}

function log(message) {
  process.stderr.write(`[bench] ${message}\n`);
}

/** A target's blockgate part (functions are read after prepare(), see comparisons.mjs). */
const blockgateOf = (target) => (typeof target.blockgate === 'function' ? target.blockgate() : target.blockgate);

/** iSCSI targets for the member: every LUN the selected comparisons map, grouped by target. */
function iscsiTargets(specs) {
  const byName = new Map();
  for (const s of specs.filter((x) => x.iscsi)) {
    const luns = byName.get(s.iscsi.target) ?? [];
    luns.push({ lun: s.iscsi.lun, export: s.export });
    byName.set(s.iscsi.target, luns);
  }
  return [...byName].map(([name, luns]) => ({ name, luns }));
}

async function measureComparison(c, member) {
  const uriOf = async (target) => {
    const spec = blockgateOf(target);
    if (spec?.iscsi) return { uri: member.iscsiUri(spec.iscsi.target, spec.iscsi.lun), stop: async () => {} };
    if (spec) return { uri: member.uri(spec.export), stop: async () => {} };
    const server = await target.start();
    return { uri: server.uri(), stop: server.stop };
  };
  const measure = c.measure ?? runFio;
  const rows = [];
  const subject = await uriOf(c.subject);
  try {
    const baseline = await uriOf(c.baseline);
    try {
      if (!values['no-prefill']) {
        log(`prefill ${c.subject.label} and ${c.baseline.label} (${values.size} each)`);
        await Promise.all([measure(subject.uri, PREFILL, {}), measure(baseline.uri, PREFILL, {})]);
      }
      for (const w of c.workloads) {
        // Alternate the two sides workload by workload so drift on a shared machine hits both.
        log(`${c.subject.label}: ${w.title}`);
        const s = await measure(subject.uri, w, { runtime, ramp });
        log(`${c.baseline.label}: ${w.title}`);
        const b = await measure(baseline.uri, w, { runtime, ramp });
        for (const metric of w.metrics) {
          rows.push({ workload: w.title, metric, subject: s[metric], baseline: b[metric], target: c.target?.(w, metric) });
        }
      }
    } finally {
      await baseline.stop();
    }
  } finally {
    await subject.stop();
  }
  return rows;
}

async function main() {
  const workDir = mkdtempSync(join(tmpdir(), 'blockgate-bench-'));
  const shmDir = mkdtempSync(join('/dev/shm', 'blockgate-bench-'));
  // Also on Ctrl-C (processes.mjs turns signals into exit): leave no image in /dev/shm.
  const removeDirs = () => {
    rmSync(shmDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  };
  process.on('exit', removeDirs);
  const all = comparisons({ size, shmDir });
  const unknown = only.filter((id) => !all.some((c) => c.id === id));
  if (unknown.length > 0) throw new Error(`--only ${unknown.join(',')}: unknown (known: ${[...Object.keys(GROUPS), ...all.map((c) => c.id)].join(', ')})`);
  const selected = all
    .filter((c) => only.length === 0 || only.includes(c.id))
    .map((c) => ({ ...c, workloads: (c.workloads ?? WORKLOADS).filter((w) => workloadIds.length === 0 || workloadIds.includes(w.id)) }))
    .filter((c) => c.workloads.length > 0);
  if (selected.length === 0) throw new Error('nothing selected (see --only, --workloads)');

  const sections = [];
  const failures = [];
  const started = Date.now();
  let member;
  const prepared = [];
  try {
    for (const c of selected) {
      prepared.push(c);
      await c.prepare?.();
    }
    // One member serves every blockgate target: started once, measured one export at a time.
    const specs = selected.flatMap((c) => [c.subject, c.baseline]).map(blockgateOf).filter(Boolean);
    member = await startBlockgate({
      root,
      workDir,
      backends: specs.flatMap((x) => x.backends ?? []),
      devices: specs.flatMap((x) => x.devices ?? []),
      exports: specs.map((x) => ({ name: x.export, device: x.device ?? x.export })),
      iscsiTargets: iscsiTargets(specs),
    });
    for (const c of selected) {
      const section = { title: c.title, subjectLabel: c.subject.label, baselineLabel: c.baseline.label, rows: [] };
      sections.push(section);
      try {
        section.rows = await measureComparison(c, member);
      } catch (err) {
        // One broken comparison does not cost the others' figures; the run still fails.
        log(`${c.id} failed: ${err.stack ?? err}`);
        failures.push(c.id);
        section.error = String(err.message ?? err).split('\n')[0];
      }
    }
  } finally {
    await member?.stop();
    for (const c of prepared) await Promise.resolve(c.cleanup?.()).catch((err) => log(`${c.id} cleanup: ${err}`));
    removeDirs();
  }

  const header = [
    `date: ${new Date().toISOString()} (run took ${Math.round((Date.now() - started) / 1000)} s)`,
    `machine: nproc ${firstLine('nproc', [])}; CPU ${cpus()[0]?.model ?? 'unknown'}; kernel ${release()}`,
    `software: node ${process.version}; ${firstLine('fio', ['--version'])}; ${firstLine('nbdkit', ['--version'])}; ${firstLine('qemu-nbd', ['--version'])}; ${firstLine('qemu-img', ['--version'])}; tgtd ${firstLine('dpkg-query', ['-W', '-f=${Version}', 'tgt'])}; libiscsi-bin ${firstLine('dpkg-query', ['-W', '-f=${Version}', 'libiscsi-bin'])}`,
    `NBD figures: one fio job (nbd engine, one connection over TCP 127.0.0.1), ${runtime} s after a ${ramp} s ramp; iSCSI figures: one libiscsi session, about ${runtime} s each; devices of ${values.size}${!values['no-prefill'] ? ', written in full before measuring' : ''}`,
  ];
  const report = markdownReport({ header, sections });
  mkdirSync(join(values.output, '..'), { recursive: true });
  writeFileSync(values.output, report);
  process.stdout.write(report);
  log(`written to ${values.output}`);
  if (failures.length > 0) throw new Error(`comparisons failed: ${failures.join(', ')}`);
}

main().catch((err) => {
  process.stderr.write(`[bench] failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
