// blockgate benchmark: blockgate against reference servers (nbdkit, qemu-nbd, tgtd) on equal
// backing, or against another blockgate device, in the same run with the same workloads,
// alternating the sides (A B, B A, A B… per workload); prints one markdown table per
// comparison and writes them to test/bench/results/latest.md.
// Run through test/bench/run.sh (npm run bench).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GROUPS, comparisons } from './comparisons.mjs';
import { PREFILL, WORKLOADS, runFio } from './lib/fio.mjs';
import { markdownReport } from './lib/report.mjs';
import { SERVER_MALLOC, cpuSeconds, placement, setPlacement } from './lib/processes.mjs';
import { startBlockgate } from './lib/targets.mjs';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: process.env.BENCH_SECONDS ?? '3' },
    ramp: { type: 'string', default: process.env.BENCH_RAMP ?? '0.5' },
    rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '3' },
    size: { type: 'string', default: process.env.BENCH_SIZE ?? '512MiB' },
    'no-prefill': { type: 'boolean', default: process.env.BENCH_PREFILL === '0' },
    only: { type: 'string', default: process.env.BENCH_ONLY ?? '' },
    skip: { type: 'string', default: process.env.BENCH_SKIP ?? '' },
    workloads: { type: 'string', default: process.env.BENCH_WORKLOADS ?? '' },
    'server-cpu': { type: 'string', default: process.env.BENCH_SERVER_CPU ?? '0' },
    'client-cpu': { type: 'string', default: process.env.BENCH_CLIENT_CPU ?? '1' },
    'no-pin': { type: 'boolean', default: process.env.BENCH_PIN === '0' },
    'root-dir': { type: 'string', default: process.env.BENCH_ROOT_DIR ?? '/var/tmp' },
    output: { type: 'string', default: join(root, 'test', 'bench', 'results', 'latest.md') },
  },
});
const runtime = Number(values.seconds);
const ramp = Number(values.ramp);
const rounds = Math.max(1, Math.floor(Number(values.rounds)));
const size = parseSize(values.size);
const expand = (list) => (list ? list.split(',').flatMap((id) => GROUPS[id] ?? [id]) : []);
const only = expand(values.only);
const skip = expand(values.skip);
const workloadIds = values.workloads ? values.workloads.split(',') : [];
const pin = !values['no-pin'] && cpus().length >= 2;
if (pin) setPlacement(Number(values['server-cpu']), Number(values['client-cpu']));

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

/** A side's blockgate part (functions are read after prepare(), see comparisons.mjs). */
const blockgateOf = (side) => (typeof side.blockgate === 'function' ? side.blockgate() : side.blockgate);

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

/** Each side as { label, uri, cpu(), stop }: blockgate exports of the shared member, or a server of its own. */
async function openSides(c, member) {
  const opened = [];
  try {
    for (const side of c.sides) {
      const spec = blockgateOf(side);
      const server = spec ? undefined : await side.start();
      const address = spec?.iscsi ? member.iscsiUri(spec.iscsi.target, spec.iscsi.lun) : spec ? member.uri(spec.export) : server.uri();
      const uri = spec?.uri ? spec.uri(address) : address;
      const pids = [...(spec ? member.pids : server.pids), ...(side.alsoCpu?.() ?? [])];
      const verify = spec?.expectLogin ? loginCheck(member, spec.iscsi.target, spec.expectLogin, side.label) : undefined;
      opened.push({ label: side.label, uri, cpu: () => pids.reduce((n, pid) => n + cpuSeconds(pid), 0), verify, stop: server?.stop ?? (async () => {}) });
    }
  } catch (err) {
    for (const s of opened) await s.stop();
    throw err;
  }
  return opened;
}

/**
 * For sides that must run with given session parameters (e.g. HeaderDigest=CRC32C): a
 * function that runs one measurement and then checks that every Normal session logged in to
 * `target` meanwhile negotiated `expected` ({ hd, dd }), and that there was one — so a
 * comparison of digests on and off cannot silently measure off twice.
 */
function loginCheck(member, target, expected, label) {
  return async (run) => {
    const from = member.logins.length;
    const result = await run();
    // The login line is written long before the run ends; allow the pipe a moment anyway.
    for (let i = 0; i < 50 && member.logins.length === from; i++) await new Promise((r) => setTimeout(r, 20));
    const sessions = member.logins.slice(from).filter((l) => l.target === target && l.type === 'Normal');
    if (sessions.length === 0) throw new Error(`${label}: no iSCSI login to ${target} during the measurement`);
    for (const s of sessions) {
      for (const [key, want] of Object.entries(expected)) {
        if (s[key] !== want) throw new Error(`${label}: the session negotiated ${key}=${s[key]}, the comparison needs ${want}`);
      }
    }
    return result;
  };
}

async function measureComparison(c, member) {
  const measure = c.measure ?? runFio;
  const sides = await openSides(c, member);
  const pairs = c.pairs ?? sides.slice(1).map((_, i) => [0, i + 1]);
  const rows = [];
  try {
    if (!values['no-prefill']) {
      const which = c.prefill ?? sides.map((_, i) => i);
      log(`prefill ${which.map((i) => sides[i].label).join(', ')} (${values.size} each)`);
      for (const i of which) await measure(sides[i].uri, PREFILL, {});
      // Written data goes to disk now, not in the middle of some side's measurement.
      if (c.syncFiles) execFileSync('sync', c.syncFiles);
    }
    for (const w of c.workloads) {
      const samples = sides.map(() => []);
      for (let round = 0; round < rounds; round++) {
        // A B, B A, A B…: drift on a shared machine hits every side alike.
        const order = sides.map((_, i) => i);
        if (round % 2 === 1) order.reverse();
        for (const i of order) {
          log(`${w.title}: ${sides[i].label} (round ${round + 1}/${rounds})`);
          // Each measurement starts with no dirty pages of earlier ones left to write back.
          if (c.syncFiles) execFileSync('sync', c.syncFiles);
          const once = () => measure(sides[i].uri, w, { runtime, ramp, cpu: sides[i].cpu });
          samples[i].push(await (sides[i].verify ? sides[i].verify(once) : once()));
        }
      }
      for (const metric of w.metrics) {
        rows.push({
          workload: w.title,
          metric,
          samples: samples.map((list) => list.map((r) => r[metric])),
          targets: pairs.map((pair) => c.target?.(w, metric, pair)),
        });
      }
    }
  } finally {
    for (const s of sides) await s.stop();
  }
  return { labels: sides.map((s) => s.label), pairs, rows };
}

async function main() {
  const workDir = mkdtempSync(join(tmpdir(), 'blockgate-bench-'));
  const shmDir = mkdtempSync(join('/dev/shm', 'blockgate-bench-'));
  const rootDir = mkdtempSync(join(values['root-dir'], 'blockgate-bench-'));
  // Also on Ctrl-C (processes.mjs turns signals into exit): leave no image behind.
  const removeDirs = () => {
    for (const dir of [shmDir, rootDir, workDir]) rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', removeDirs);
  const all = comparisons({ size, shmDir, rootDir, root, workDir });
  const unknown = [...only, ...skip].filter((id) => !all.some((c) => c.id === id));
  if (unknown.length > 0) throw new Error(`--only/--skip ${unknown.join(',')}: unknown (known: ${[...Object.keys(GROUPS), ...all.map((c) => c.id)].join(', ')})`);
  const selected = all
    .filter((c) => (only.length === 0 || only.includes(c.id)) && !skip.includes(c.id))
    .map((c) => (c.run ? c : { ...c, workloads: (c.workloads ?? WORKLOADS).filter((w) => workloadIds.length === 0 || workloadIds.includes(w.id)) }))
    .filter((c) => c.run || c.workloads.length > 0);
  if (selected.length === 0) throw new Error('nothing selected (see --only, --skip, --workloads)');

  const sections = [];
  const failures = [];
  const started = Date.now();
  let member;
  const prepared = [];
  try {
    const measured = selected.filter((c) => !c.run);
    for (const c of measured) {
      prepared.push(c);
      await c.prepare?.();
    }
    // One member serves every blockgate side: started once, measured one export at a time.
    // Sides that share an export (the same LUN measured two ways) configure it once.
    const specs = [...new Map(measured.flatMap((c) => c.sides).map(blockgateOf).filter(Boolean).map((x) => [x.export, x])).values()];
    if (specs.length > 0) {
      member = await startBlockgate({
        root,
        workDir,
        backends: specs.flatMap((x) => x.backends ?? []),
        devices: specs.flatMap((x) => x.devices ?? []),
        exports: specs.map((x) => ({ name: x.export, device: x.device ?? x.export })),
        iscsiTargets: iscsiTargets(specs),
      });
    }
    for (const c of selected) {
      log(`== ${c.id}`);
      try {
        const result = c.run ? await c.run({ log }) : await measureComparison(c, member);
        if (c.run) for (const r of result.rows) r.targets ??= result.pairs.map((pair) => c.target?.(undefined, r.metric, pair));
        sections.push({ title: c.title, ...result });
      } catch (err) {
        // One broken comparison does not cost the others' figures; the run still fails.
        log(`${c.id} failed: ${err.stack ?? err}`);
        failures.push(c.id);
        sections.push({ title: c.title, labels: [], pairs: [], rows: [], error: String(err.message ?? err).split('\n')[0] });
      }
    }
  } finally {
    await member?.stop();
    for (const c of prepared) await Promise.resolve(c.cleanup?.()).catch((err) => log(`${c.id} cleanup: ${err}`));
    removeDirs();
  }

  const fsType = (dir) => firstLine('findmnt', ['-n', '-o', 'FSTYPE', '--target', dir]);
  const header = [
    `date: ${new Date().toISOString()} (run took ${Math.round((Date.now() - started) / 1000)} s); command: \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``,
    `machine: nproc ${firstLine('nproc', [])}; CPU ${cpus()[0]?.model ?? 'unknown'}; kernel ${release()}; load average at the end ${firstLine('cat', ['/proc/loadavg'])}`,
    `software: node ${process.version}; ${firstLine('fio', ['--version'])}; ${firstLine('nbdkit', ['--version'])}; ${firstLine('qemu-nbd', ['--version'])}; tgtd ${firstLine('dpkg-query', ['-W', '-f=${Version}', 'tgt'])}; libiscsi-bin ${firstLine('dpkg-query', ['-W', '-f=${Version}', 'libiscsi-bin'])}`,
    pin
      ? `placement: every server (blockgate, nbdkit, qemu-nbd, tgtd, and the nbdkit behind the remote hop) pinned to CPU ${placement.server}, every client (fio, iscsi-perf, qemu-img) to CPU ${placement.client} (taskset)`
      : 'placement: not pinned',
    `every server runs with GLIBC_TUNABLES=${SERVER_MALLOC} (no mmap/munmap per 1 MiB request buffer: qemu-nbd 7.2 loses 95% of its 1 MiB write throughput to that otherwise)`,
    `method: per workload ${rounds} round(s) over the sides in alternating order (A B, B A, A B…), ${runtime} s each after a ${ramp} s ramp; NBD: fio's nbd engine over TCP 127.0.0.1, one connection unless the workload says otherwise; iSCSI: one libiscsi session; devices of ${values.size}${values['no-prefill'] ? '' : ', written in full before measuring'}; files in /dev/shm (${fsType('/dev/shm')}) and ${values['root-dir']} (${fsType(values['root-dir'])})`,
    'server CPU s/GiB: user+system seconds of the server processes during the measured window, per GiB moved',
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
