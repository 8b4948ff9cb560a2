// Before/after in one run: the same blockgate side of a comparison served by two builds (this
// checkout and `--baseline <checkout>`, each with its dist/ built), beside the comparison's
// reference server, in alternating order (A B C, C B A…), medians and ranges of each.
//   node test/bench/ab.mjs --baseline /tmp/main-checkout --only memory --workloads seqread-1m-qd8
//   node test/bench/ab.mjs --baseline . --node-args="--max-semi-space-size=32" --baseline-node-args= --workloads randread-4k-qd1
// `--node-args` passes V8 flags to both members (e.g. to measure a flag against no flag:
// give the same checkout as baseline and `--baseline-node-args`). NBD comparisons only (fio).
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { comparisons } from './comparisons.mjs';
import { PREFILL, WORKLOADS, runFio } from './lib/fio.mjs';
import { cpuSeconds, setPlacement } from './lib/processes.mjs';
import { startBlockgate } from './lib/targets.mjs';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    only: { type: 'string', default: 'memory' },
    side: { type: 'string', default: '0' },
    workloads: { type: 'string', default: 'seqread-1m-qd8' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    ramp: { type: 'string', default: '0.5' },
    size: { type: 'string', default: '512' },
    'node-args': { type: 'string', default: '' },
    'baseline-node-args': { type: 'string' },
    'no-reference': { type: 'boolean', default: false },
  },
});
if (!values.baseline) throw new Error('--baseline <checkout with a built dist/>');
setPlacement(0, 1);
const size = Number(values.size) * 2 ** 20;
const split = (s) => (s ? s.split(' ').filter(Boolean) : []);
const workDir = mkdtempSync(join(tmpdir(), 'blockgate-ab-'));
const shmDir = mkdtempSync(join('/dev/shm', 'blockgate-ab-'));
const rootDir = mkdtempSync(join('/var/tmp', 'blockgate-ab-'));
const cleanup = () => {
  for (const dir of [workDir, shmDir, rootDir]) rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);

const c = comparisons({ size, shmDir, rootDir, root, workDir }).find((x) => x.id === values.only);
if (!c?.sides) throw new Error(`--only: a comparison with sides (got ${values.only})`);
await c.prepare?.();
const bgSide = c.sides[Number(values.side)];
const spec = typeof bgSide.blockgate === 'function' ? bgSide.blockgate() : bgSide.blockgate;
const reference = values['no-reference'] ? undefined : c.sides.find((s) => s.start);

/** Each build gets its own backing: a file of the same size beside the side's own. */
function specFor(tag) {
  const backends = spec.backends.map((b) => {
    if (!b.path) return b;
    const path = `${b.path}.${tag}`;
    writeFileSync(path, '');
    truncateSync(path, size);
    return { ...b, path };
  });
  return { ...spec, backends };
}

const sides = [];
for (const [label, checkout, nodeArgs] of [
  ['this build', root, split(values['node-args'])],
  ['baseline', values.baseline, split(values['baseline-node-args'] ?? values['node-args'])],
]) {
  const s = specFor(label === 'this build' ? 'a' : 'b');
  const wd = mkdtempSync(join(workDir, 'm-'));
  const member = await startBlockgate({
    root: checkout,
    workDir: wd,
    backends: s.backends,
    devices: s.devices ?? [],
    exports: [{ name: s.export, device: s.device ?? s.export }],
    nodeArgs,
  });
  sides.push({ label, uri: member.uri(s.export), pids: member.pids, stop: member.stop });
}
if (reference) {
  const server = await reference.start();
  sides.push({ label: reference.label, uri: server.uri(), pids: server.pids, stop: server.stop });
}
try {
  for (const side of sides) await runFio(side.uri, PREFILL, {});
  const workloads = values.workloads.split(',').map((id) => WORKLOADS.find((w) => w.id === id) ?? fail(id));
  for (const w of workloads) {
    const results = sides.map(() => []);
    for (let r = 0; r < Number(values.rounds); r++) {
      const order = r % 2 === 0 ? sides.map((_, i) => i) : sides.map((_, i) => sides.length - 1 - i);
      for (const i of order) {
        const cpu = () => sides[i].pids.reduce((n, p) => n + cpuSeconds(p), 0);
        results[i].push(await runFio(sides[i].uri, w, { runtime: Number(values.seconds), ramp: Number(values.ramp), cpu }));
      }
    }
    for (const metric of w.metrics) {
      const cells = results.map((rs, i) => {
        const xs = rs.map((x) => x[metric]).filter(Number.isFinite).sort((a, b) => a - b);
        return xs.length ? `${sides[i].label} ${fmt(xs[xs.length >> 1])} (${fmt(xs[0])}–${fmt(xs[xs.length - 1])})` : `${sides[i].label} n/a`;
      });
      process.stdout.write(`${w.title} | ${metric} | ${cells.join(' | ')}\n`);
    }
  }
} finally {
  for (const side of sides) await side.stop();
}

function fmt(x) {
  return x >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

function fail(id) {
  throw new Error(`--workloads: unknown ${id} (${WORKLOADS.map((w) => w.id).join(', ')})`);
}
