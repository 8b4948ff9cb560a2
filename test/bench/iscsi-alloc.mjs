// JavaScript heap allocated per iSCSI command, measured instead of timed: an in-process
// blockgate iSCSI target over a file LUN in /dev/shm (as in the benchmark), driven by a real
// initiator in another process (iscsi-perf for reads, qemu-img bench for writes). The young
// generation is made large enough that no garbage collection runs in the measured window,
// so the growth of the used heap over that window, divided by the commands that started in
// it, is the bytes each command allocated (a GC in the window voids the measurement, and
// the script says so). With --sites, V8's sampling heap profiler also names where.
//   node --max-semi-space-size=1024 --min-semi-space-size=1024 test/bench/iscsi-alloc.mjs [--workload read|write] [--warmup N] [--window N] [--sites]
// (npm run bench:alloc runs it that way; build first: npx tsc -p .)
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';

const root = join(import.meta.dirname, '..', '..');
const dist = (p) => import(join(root, 'dist', p));
const { FileBackend } = await dist('fabric/backends/file.js');
const { FabricSwitch } = await dist('fabric/switch.js');
const { IscsiServer } = await dist('gateway/iscsi/server.js');
const { CommandPath } = await dist('gateway/iscsi/command.js');
const { setLogLevel } = await dist('fabric/log.js');

const { values } = parseArgs({
  options: {
    workload: { type: 'string', default: 'read' },
    warmup: { type: 'string', default: '10000' },
    window: { type: 'string', default: '4000' },
    'client-cpu': { type: 'string', default: '1' },
    sites: { type: 'boolean', default: false },
    top: { type: 'string', default: '25' },
  },
});
setLogLevel('warn');
const MiB = 2 ** 20;
const SIZE = 256 * MiB;
const TARGET = 'iqn.2026-11.dev.blockgate:alloc';
const INITIATOR = 'iqn.2026-11.dev.blockgate:alloc-initiator';
const warmup = Number(values.warmup);
const windowCommands = Number(values.window);
/** Resolves once `n` commands have started (polled: a wake-up per 20 ms costs nothing per command). */
async function commandsReached(n) {
  while (commands < n) await sleep(20);
}

const semi = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
if (semi.space_size < 256 * MiB) {
  process.stderr.write(`[alloc] the young generation is ${Math.round(semi.space_size / MiB)} MiB: run node with --max-semi-space-size=1024 --min-semi-space-size=1024\n`);
  process.exit(2);
}

const dir = mkdtempSync(join('/dev/shm', 'blockgate-alloc-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const fabric = new FabricSwitch();
fabric.addDevice(await FileBackend.open({ name: 'alloc', path: join(dir, 'lun.img'), size: SIZE, create: true }));
fabric.addExport({ name: 'alloc', device: 'alloc' });
const server = new IscsiServer({
  fabric,
  targets: [{ name: TARGET, luns: [{ lun: 0, export: 'alloc' }], portalGroups: [{ id: 1, portals: [{ host: '127.0.0.1', port: 0 }] }], aluaPolicy: 'active-active' }],
  nopIntervalMs: 0,
});
await server.start();
const url = `iscsi://127.0.0.1:${server.addresses()[0].port}/${TARGET}/0`;

let commands = 0;
const onCommand = CommandPath.prototype.onCommand;
CommandPath.prototype.onCommand = function (pdu) {
  commands++;
  return onCommand.call(this, pdu);
};
let gcs = 0;
new PerformanceObserver((list) => (gcs += list.getEntries().length)).observe({ entryTypes: ['gc'] });

function client(args) {
  return new Promise((resolve, reject) =>
    execFile('taskset', ['-c', values['client-cpu'], ...args], { maxBuffer: 64 * MiB }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
}

// The whole LUN written once, so reads find data (and every code path is warm).
await client(['qemu-img', 'bench', '-f', 'raw', '-t', 'none', '-w', '-s', String(MiB), '-d', '8', '-c', String(SIZE / MiB), url]);

const clientArgs =
  values.workload === 'write'
    ? ['qemu-img', 'bench', '-f', 'raw', '-t', 'none', '-w', '-s', '4096', '-d', '32', '-S', String(7919 * 4096), '-c', '100000000', url]
    : ['iscsi-perf', '-i', INITIATOR, '-b', '8', '-m', '32', '-t', '3600', '-r', url];
// The initiator runs until the window is measured, then is stopped (its own figures are not used).
const initiator = spawn('taskset', ['-c', values['client-cpu'], ...clientArgs], { stdio: 'ignore' });
process.on('exit', () => initiator.kill('SIGKILL'));
const say = (message) => process.stderr.write(`[alloc] ${message}\n`);

// Let the initiator log in and the JIT settle (allocation depends on how far code is
// optimized, so warm-up is counted in commands, not seconds), then measure a window of
// commands with no GC in it.
await commandsReached(warmup);
const session = values.sites ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', { samplingInterval: 2048, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}
globalThis.gc?.();
const startGcs = gcs;
const startHeap = v8.getHeapStatistics().used_heap_size;
const startCommands = commands;
await commandsReached(startCommands + windowCommands);
const heap = v8.getHeapStatistics().used_heap_size - startHeap;
const measured = commands - startCommands;
const clean = gcs === startGcs;
say(`window done: ${measured} commands`);
const profile = session ? (await session.post('HeapProfiler.stopSampling')).profile : undefined;
initiator.kill('SIGKILL');
await server.stop({ drainMs: 0 });
await fabric.close();

const line = `${values.workload === 'write' ? '4 KiB WRITE' : '4 KiB READ'}: ${measured} commands after ${warmup} of warm-up, ${Math.round(heap / Math.max(1, measured))} bytes of JS heap allocated per command`;
process.stdout.write(clean ? `${line}\n` : `${line} — VOID: ${gcs - startGcs} GC(s) ran in the window (use a larger --max-semi-space-size or a shorter --window)\n`);
if (profile) {
  // Self bytes per allocation site (function and line), largest first.
  const sites = new Map();
  const walk = (node) => {
    const self = node.selfSize;
    if (self > 0) {
      const f = node.callFrame;
      const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
      sites.set(key, (sites.get(key) ?? 0) + self);
    }
    for (const c of node.children) walk(c);
  };
  walk(profile.head);
  const total = [...sites.values()].reduce((a, b) => a + b, 0);
  process.stdout.write(`\nsampled allocation sites (share of ${Math.round(total / MiB)} MiB sampled):\n`);
  for (const [key, bytes] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
    process.stdout.write(`${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${Math.round(bytes / Math.max(1, measured)).toString().padStart(5)} B/cmd  ${key}\n`);
  }
}
process.exit(clean ? 0 : 3);
