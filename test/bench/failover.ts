/**
 * Failover benchmark (issue 8 §5): run with `bash test/bench/failover.sh` (about 4 minutes).
 *
 * - kill -9 of the Primary → first successful client write, over N kills, for the embedded
 *   file-lock arbiter (three members on one host) and for etcd (three members, a three-node
 *   etcd on loopback, lease TTL 2 s): p50, p99, max;
 * - rolling restart (SIGTERM: the Primary resigns, then stops): the pause per member;
 * - the steady-state cost of being clustered: fio 4 KiB random write QD32 and 1 MiB
 *   sequential write QD8 through a clustered member vs a standalone one on the same file,
 *   alternating, median of the rounds.
 *
 * `--only throughput` runs the last part alone (about a minute).
 *
 * The probe is blockgate's own NBD client writing 4 KiB every 2 ms; after a kill it
 * reconnects every 2 ms. "Pause" = from the signal to the first write that succeeded.
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NbdClient } from '../../fabric/backends/nbd-client/client.js';
import { startMember } from '../helpers/blockgate-cli.js';
import { TestCluster } from '../helpers/cluster.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { freePort } from '../helpers/nbdkit-server.js';
// @ts-expect-error: a JavaScript module of the benchmark
import { CPU_METRIC, runFio } from './lib/fio.mjs';
// @ts-expect-error: a JavaScript module of the benchmark
import { cpuSeconds } from './lib/processes.mjs';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const KILLS = opt('kills', 10);
const ROUNDS = opt('rounds', 3);
const SECONDS = opt('seconds', 5);
const MiB = 1024 * 1024;
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
if (ONLY !== undefined && ONLY !== 'throughput') throw new Error(`--only ${ONLY}: only 'throughput' can run alone`);

const cleanups: Array<() => unknown> = [];
const t = { teardown: (fn: () => unknown) => void cleanups.push(fn) };
async function cleanup(): Promise<void> {
  for (const fn of cleanups.reverse()) await fn();
  cleanups.length = 0;
}

const dir = mkdtempSync(join('/dev/shm', 'bgc-bench-'));
cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
const disk = join(dir, 'disk.img');
const fd = openSync(disk, 'w');
ftruncateSync(fd, 256 * MiB);
closeSync(fd);

function clusterConfig(name: string, port: number, arbitration: unknown): string {
  const path = join(dir, `${name}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      backends: [{ name: 'disk', type: 'file', path: disk }],
      exports: [{ name: 'disk', device: 'disk' }],
      cluster: {
        name,
        members: ['m1', 'm2', 'm3'].map((id) => ({ id })),
        arbitration,
        sets: [{ name: 'disks', members: ['m1', 'm2', 'm3'], exports: ['disk'], nbd: { listen: [`127.0.0.1:${port}`] } }],
      },
    }),
  );
  return path;
}

/** Writes 4 KiB every 2 ms, reconnecting as needed; `since(t0)` resolves at the first success that started after t0. */
class Probe {
  private client: NbdClient | undefined;
  private stopped = false;
  private waiters: Array<{ after: number; resolve: (at: number) => void }> = [];
  private readonly data = Buffer.alloc(4096, 0x5a);
  readonly loop: Promise<void>;

  constructor(private readonly port: number) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const started = performance.now();
      try {
        this.client ??= await NbdClient.open({ name: 'probe', address: { host: '127.0.0.1', port: this.port }, exportName: 'disk', timeoutMs: 5000, connectTimeoutMs: 200 });
        await this.client.write(0, [this.data]);
        const at = performance.now();
        this.waiters = this.waiters.filter((w) => (started >= w.after ? (w.resolve(at), false) : true));
      } catch {
        const c = this.client;
        this.client = undefined;
        await c?.close().catch(() => {});
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await this.client?.close().catch(() => {});
  }

  since(t0: number): Promise<number> {
    return new Promise((resolve) => this.waiters.push({ after: t0, resolve: (at) => resolve(at - t0) }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

function summary(ms: number[]): { p50: number; p99: number; max: number; min: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1]!, min: s[0]! };
}

async function pauses(label: string, arbitration: unknown, signal: NodeJS.Signals, count: number): Promise<number[]> {
  const port = await freePort();
  const config = clusterConfig(`bench-${label}`, port, arbitration);
  const cluster = new TestCluster(t, config, (id) => join(dir, `data-${label}-${id}`));
  for (const id of ['m1', 'm2', 'm3']) await cluster.start(id).process.ready();
  await cluster.primary('disks');
  const probe = new Probe(port);
  await probe.since(performance.now());
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const primary = await cluster.primary('disks');
    const t0 = performance.now();
    await cluster.kill(primary.id, signal);
    const pause = await probe.since(t0);
    out.push(pause);
    process.stderr.write(`${label}: ${signal} ${primary.id} → first write after ${pause.toFixed(0)} ms\n`);
    // Bring the member back and let it settle as a standby before the next round.
    await cluster.start(primary.id).process.ready();
    await new Promise((r) => setTimeout(r, 1000));
  }
  await probe.stop();
  await cluster.killAll();
  return out;
}

interface Throughput {
  workload: string;
  unit: string;
  clustered: number[];
  standalone: number[];
  /** Server CPU seconds per GiB: the clustered Primary, the standalone member, and the two standby members during the clustered runs. */
  cpu: { clustered: number[]; standalone: number[]; standbys: number[] };
}

async function throughput(): Promise<Throughput[]> {
  const workloads = [
    { id: 'randwrite-4k-qd32', title: '4 KiB rand write, QD32', rw: 'randwrite', bs: '4k', iodepth: 32, metrics: ['IOPS'] },
    { id: 'seqwrite-1m-qd8', title: '1 MiB seq write, QD8', rw: 'write', bs: '1m', iodepth: 8, metrics: ['MiB/s'] },
  ];
  const port = await freePort();
  const cluster = new TestCluster(t, clusterConfig('bench-tp', port, { type: 'file', dir: join(dir, 'arb-tp') }), (id) => join(dir, `data-tp-${id}`));
  for (const id of ['m1', 'm2', 'm3']) await cluster.start(id).process.ready();
  const primary = (await cluster.primary('disks')).id;
  const pidOf = (id: string): number => cluster.members.get(id)!.process.child.pid!;
  const standbys = ['m1', 'm2', 'm3'].filter((id) => id !== primary).map(pidOf);
  const aloneConfig = join(dir, 'alone.json');
  const alonePort = await freePort();
  writeFileSync(aloneConfig, JSON.stringify({ member: 'alone', backends: [{ name: 'disk', type: 'file', path: disk }], exports: [{ name: 'disk', device: 'disk' }], nbd: { listen: [{ host: '127.0.0.1', port: alonePort }] } }));
  const alone = startMember(t, ['--config', aloneConfig, '--data-dir', join(dir, 'data-alone')]);
  await alone.ready();
  const results: Throughput[] = workloads.map((w) => ({ workload: w.title, clustered: [], standalone: [], unit: w.metrics[0]!, cpu: { clustered: [], standalone: [], standbys: [] } }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, w] of workloads.entries()) {
      for (const side of round % 2 === 0 ? (['clustered', 'standalone'] as const) : (['standalone', 'clustered'] as const)) {
        const uri = `nbd://127.0.0.1:${side === 'clustered' ? port : alonePort}/disk`;
        const pid = side === 'clustered' ? pidOf(primary) : alone.child.pid!;
        const standbyCpu = (): number => standbys.reduce((n, p) => n + (cpuSeconds(p) as number), 0);
        const standby0 = standbyCpu();
        const r = (await runFio(uri, w, { runtime: SECONDS, ramp: 1, cpu: () => cpuSeconds(pid), extra: ['--size=256M'] })) as Record<string, number>;
        results[i]![side].push(r[w.metrics[0]!]!);
        results[i]!.cpu[side].push(r[CPU_METRIC]!);
        // Over the ramp and the measured time (about the same rate): the standbys' share per GiB moved.
        if (side === 'clustered') results[i]!.cpu.standbys.push((standbyCpu() - standby0) / ((r['MiB/s']! * (SECONDS + 1)) / 1024));
      }
    }
  }
  await alone.terminate();
  await cluster.killAll();
  return results;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function tpRows(r: Throughput): string[] {
  const row = (unit: string, c: number[], s: number[], digits: number, extra = '') => {
    const range = (xs: number[]) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
    return `| ${r.workload} | ${unit} | ${median(c).toFixed(digits)} (${range(c)}) | ${median(s).toFixed(digits)} (${range(s)}) | ${(median(c) / median(s)).toFixed(3)}${extra} |`;
  };
  return [row(r.unit, r.clustered, r.standalone, 0), row('server CPU s/GiB', r.cpu.clustered, r.cpu.standalone, 2, `; standbys ${median(r.cpu.standbys).toFixed(2)}`)];
}

const TP_HEADER = ['', `| fio workload (${ROUNDS} rounds × ${SECONDS} s, alternating) | unit | clustered: median (range) | standalone: median (range) | ratio |`, '| --- | --- | ---: | ---: | ---: |'];

async function full(lines: string[]): Promise<void> {
  const fileKills = await pauses('file', { type: 'file', dir: join(dir, 'arb-file') }, 'SIGKILL', KILLS);
  const specs = [];
  for (const name of ['e1', 'e2', 'e3']) specs.push({ name, host: '127.0.0.1', clientPort: await freePort(), peerPort: await freePort() });
  etcd = await startEtcdCluster(specs);
  const etcdKills = await pauses('etcd', { type: 'etcd', endpoints: etcd.endpoints, ttlSeconds: 2 }, 'SIGKILL', KILLS);
  const rolling = await pauses('rolling', { type: 'etcd', endpoints: etcd.endpoints, ttlSeconds: 2 }, 'SIGTERM', 3);
  await etcd.stop();
  etcd = undefined;
  const tp = await throughput();

  const row = (label: string, ms: number[]): string => {
    const s = summary(ms);
    return `| ${label} | ${ms.length} | ${s.p50.toFixed(0)} | ${s.p99.toFixed(0)} | ${s.min.toFixed(0)}–${s.max.toFixed(0)} |`;
  };
  lines.push(`- date: ${new Date().toISOString()}; ${KILLS} kills per arbiter; the probe writes 4 KiB every 2 ms`);
  lines.push('', '| what | samples | p50 ms | p99 ms | range ms |', '| --- | ---: | ---: | ---: | --- |');
  lines.push(row('kill -9 Primary → first write, file-lock arbiter (one host)', fileKills));
  lines.push(row('kill -9 Primary → first write, etcd (lease TTL 2 s)', etcdKills));
  lines.push(row('rolling restart (SIGTERM: resign, stop) → first write, etcd', rolling));
  lines.push(...TP_HEADER);
  for (const r of tp) lines.push(...tpRows(r));
}

let etcd: EtcdCluster | undefined;
try {
  const lines: string[] = [];
  if (ONLY === 'throughput') {
    lines.push(`- date: ${new Date().toISOString()}`, ...TP_HEADER);
    for (const r of await throughput()) lines.push(...tpRows(r));
  } else await full(lines);
  const text = lines.join('\n') + '\n';
  process.stdout.write(text);
  // Only a full run replaces the recorded results.
  if (ONLY === undefined) writeFileSync(join(import.meta.dirname, 'results', 'failover.md'), text);
} finally {
  await etcd?.stop();
  await cleanup();
}
