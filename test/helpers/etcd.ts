/**
 * A real etcd cluster (Debian's etcd-server, v3.4) for cluster tests: N nodes, either on
 * loopback ports or one per network namespace, with short heartbeat and election timeouts so
 * a lost leader is replaced in about a second. Data directories live under /dev/shm (each
 * node preallocates ~120 MB of WAL; RAM is faster than disk here) and are deleted on stop.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { nsSpawn } from './netns.js';

export interface EtcdNodeSpec {
  readonly name: string;
  readonly host: string;
  /** More addresses to serve peers and clients on (a second network): etcd fails over between them. */
  readonly moreHosts?: readonly string[];
  readonly clientPort: number;
  readonly peerPort: number;
  /** Run inside this network namespace. */
  readonly netns?: string;
}

export interface EtcdNode extends EtcdNodeSpec {
  readonly clientUrl: string;
  /** The node's client URLs on every address. */
  readonly clientUrls: string[];
  child: ChildProcess | undefined;
  log: string;
}

export interface EtcdCluster {
  readonly nodes: readonly EtcdNode[];
  readonly endpoints: string[];
  /** The name of the current leader (asks each node's /v3/maintenance/status). */
  leader(): Promise<string>;
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

const url = (host: string, port: number): string => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

export async function startEtcdCluster(specs: readonly EtcdNodeSpec[], options: { token?: string } = {}): Promise<EtcdCluster> {
  const dir = mkdtempSync(join('/dev/shm', `bgc-etcd-${process.pid}-`));
  const hostsOf = (s: EtcdNodeSpec): string[] => [s.host, ...(s.moreHosts ?? [])];
  const peerUrls = (s: EtcdNodeSpec): string => hostsOf(s).map((h) => url(h, s.peerPort)).join(',');
  const initialCluster = specs.flatMap((s) => hostsOf(s).map((h) => `${s.name}=${url(h, s.peerPort)}`)).join(',');
  const nodes: EtcdNode[] = specs.map((s) => ({
    ...s,
    clientUrl: url(s.host, s.clientPort),
    clientUrls: hostsOf(s).map((h) => url(h, s.clientPort)),
    child: undefined,
    log: '',
  }));
  for (const node of nodes) {
    const args = [
      `--name=${node.name}`,
      `--data-dir=${join(dir, node.name)}`,
      `--listen-client-urls=${node.clientUrls.join(',')}`,
      `--advertise-client-urls=${node.clientUrls.join(',')}`,
      `--listen-peer-urls=${peerUrls(node)}`,
      `--initial-advertise-peer-urls=${peerUrls(node)}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-token=${options.token ?? `bgc-${process.pid}`}`,
      '--initial-cluster-state=new',
      // Short timers: a dead leader is replaced within about a second.
      '--heartbeat-interval=50',
      '--election-timeout=500',
      // A node cut off for a while keeps raising its term; without pre-vote its return forces
      // a needless leader election that stalls lease renewals (etcd 3.4 leaves it off).
      '--pre-vote=true',
      '--log-level=warn',
      '--logger=zap',
    ];
    const child = node.netns ? nsSpawn(node.netns, 'etcd', args) : spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    node.child = child;
    const keep = (d: Buffer): void => void (node.log = (node.log + d.toString()).slice(-8000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }
  const cluster: EtcdCluster = {
    nodes,
    endpoints: nodes.flatMap((n) => n.clientUrls),
    leader: () => leaderOf(nodes),
    kill: async (name, signal = 'SIGKILL') => {
      const node = nodes.find((n) => n.name === name);
      if (!node?.child) return;
      const child = node.child;
      node.child = undefined;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill(signal);
        await exited;
      }
    },
    stop: async () => {
      await Promise.all(nodes.map((n) => cluster.kill(n.name)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitHealthy(nodes);
  } catch (err) {
    const logs = nodes.map((n) => `${n.name}: ${n.log.slice(-1500)}`).join('\n');
    await cluster.stop();
    throw new Error(`etcd cluster did not become healthy: ${String(err)}\n${logs}`);
  }
  return cluster;
}

/** Requests to a node run where the node runs: inside its namespace through curl, else fetch. */
async function request(node: EtcdNode, path: string, body?: unknown): Promise<unknown> {
  if (!node.netns) {
    const res = await fetch(node.clientUrl + path, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return res.json();
  }
  const { nsExec } = await import('./netns.js');
  const args = ['-sf', '--max-time', '2', node.clientUrl + path];
  if (body !== undefined) args.push('-X', 'POST', '-d', JSON.stringify(body));
  return JSON.parse((await nsExec(node.netns, 'curl', args)).stdout);
}

async function waitHealthy(nodes: readonly EtcdNode[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const healthy = await Promise.all(
      nodes.map((n) =>
        request(n, '/health')
          .then((h) => (h as { health?: string }).health === 'true')
          .catch(() => false),
      ),
    );
    if (healthy.every(Boolean)) return;
    const dead = nodes.find((n) => n.child && (n.child.exitCode !== null || n.child.signalCode !== null));
    if (dead) throw new Error(`etcd ${dead.name} exited`);
    if (Date.now() > deadline) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function leaderOf(nodes: readonly EtcdNode[]): Promise<string> {
  for (const node of nodes) {
    if (!node.child) continue;
    try {
      const status = (await request(node, '/v3/maintenance/status', {})) as { header: { member_id: string }; leader: string };
      if (status.leader === status.header.member_id) return node.name;
      const members = (await request(node, '/v3/cluster/member/list', {})) as { members: Array<{ ID: string; name: string }> };
      const leader = members.members.find((m) => m.ID === status.leader);
      if (leader) return leader.name;
    } catch {
      // try the next node
    }
  }
  throw new Error('no etcd node knows a leader');
}
