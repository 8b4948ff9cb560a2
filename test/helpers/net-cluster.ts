/**
 * One cluster with management networks (cluster-net.ts) in a namespace topology, shared by
 * the tests of a file: its members, their management APIs and the waits the cluster tests
 * use (roles settled, a member restarted).
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, type ClusterMember } from './cluster.js';
import { API_PORT, nsApi, writeNetClusterConfig, type NetClusterOptions } from './cluster-net.js';
import { startEtcdCluster, type EtcdCluster } from './etcd.js';
import { createTopology, type Topology } from './topology.js';

export const SET = 'disks';
const MiB = 1024 * 1024;

export interface SetStatus {
  readonly name: string;
  readonly role: string;
  readonly campaigning: boolean;
  readonly secondary?: string;
}

export class NetCluster {
  private constructor(
    readonly topo: Topology,
    readonly dir: string,
    readonly cluster: TestCluster,
    /** Members that run on another member's host (a replacement with a new id): id → the host's first member. */
    private readonly hosts: Map<string, string>,
    readonly etcd?: EtcdCluster,
  ) {}

  /** Topology, a 16 MiB shared disk, the configuration; no member started yet. */
  /**
   * `apiHost`: where each member's API listens in its namespace (default its loopback; 0.0.0.0
   * lets peers forward to it). `etcd`: a three-node etcd, one node per member host on
   * network A, arbitrates (default: the file lock).
   */
  static async create(
    t: { teardown(fn: () => unknown): void },
    name: string,
    prefix: string,
    options: Pick<NetClusterOptions, 'failureLimit'> & { apiHost?: string; etcd?: boolean; clusterExtra?: Record<string, unknown> } = {},
  ): Promise<NetCluster> {
    const topo = await createTopology(t);
    let etcd: EtcdCluster | undefined;
    if (options.etcd) {
      etcd = await startEtcdCluster(topo.members.map((m) => ({ name: `e-${m.name}`, host: m.v4.a, clientPort: 2379, peerPort: 2380, netns: m.ns })));
      t.teardown(() => etcd!.stop());
    }
    const dir = mkdtempSync(join('/dev/shm', prefix));
    const disk = join(dir, 'disk.img');
    const fd = openSync(disk, 'w');
    ftruncateSync(fd, 16 * MiB);
    closeSync(fd);
    const { apiHost = '127.0.0.1', etcd: _, clusterExtra, ...configOptions } = options;
    const arbitration = etcd && { type: 'etcd', endpoints: etcd.endpoints, ttlSeconds: 4 };
    const config = writeNetClusterConfig({ name, dir, topology: topo, disk, ...configOptions, ...(arbitration && { arbitration }) }, clusterExtra);
    const hosts = new Map<string, string>();
    const nsOf = (id: string): string => topo.members.find((m) => m.name === (hosts.get(id) ?? id))!.ns;
    const cluster = new TestCluster(t, config, (id) => join(dir, `data-${id}`), (id) => ({ netns: nsOf(id), extraArgs: ['--api', `${apiHost}:${API_PORT}`] }));
    // After the cluster's own teardown (registered first, run last): members killed, then files.
    t.teardown(async () => {
      await cluster.killAll();
      rmSync(dir, { recursive: true, force: true });
    });
    return new NetCluster(topo, dir, cluster, hosts, etcd);
  }

  ids(): string[] {
    return this.topo.members.map((m) => m.name);
  }

  nsOf(id: string): string {
    return this.topo.members.find((m) => m.name === (this.hosts.get(id) ?? id))!.ns;
  }

  /**
   * Start member `id` on the host of member `host` (the replaced one's), from `config`, with
   * a new data directory, waiting until it is ready.
   */
  async startOnHostOf(host: string, id: string, config: string): Promise<ClusterMember> {
    this.hosts.set(id, host);
    const m = this.cluster.start(id, undefined, config);
    await m.process.ready();
    return m;
  }

  dataOf(id: string): string {
    return join(this.dir, `data-${id}`);
  }

  api(id: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> {
    return nsApi(this.nsOf(id), this.dataOf(id), method, path, body);
  }

  async status(id: string): Promise<Record<string, any>> {
    return (await this.api(id, 'GET', '/api/v1/cluster')).body;
  }

  async setOf(id: string, set = SET): Promise<SetStatus> {
    return ((await this.status(id)).sets as SetStatus[]).find((x) => x.name === set)!;
  }

  /**
   * Evaluate `probe` now and again after every log line of any member (and at least every
   * second, for processes started meanwhile) until it returns a value, or fail after `timeoutMs`.
   */
  whenLogs<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const unsubscribe: Array<() => void> = [];
      const finish = (err: Error | undefined, value?: T): void => {
        clearInterval(tick);
        clearTimeout(timer);
        for (const u of unsubscribe.splice(0)) u();
        if (err) reject(err);
        else resolve(value as T);
      };
      const check = (): void => {
        let v: T | undefined;
        try {
          v = probe();
        } catch (err) {
          finish(err as Error);
          return;
        }
        if (v !== undefined) finish(undefined, v);
      };
      const subscribed = new Set<unknown>();
      const subscribe = (): void => {
        for (const m of this.cluster.members.values()) {
          if (subscribed.has(m.process)) continue;
          subscribed.add(m.process);
          unsubscribe.push(m.process.onLine(check));
        }
      };
      const tick = setInterval(() => {
        subscribe();
        check();
      }, 1000);
      const timer = setTimeout(() => finish(new Error(`${what}: not within ${timeoutMs} ms`)), timeoutMs);
      subscribe();
      check();
    });
  }

  /** The last role, boot, health and alarm lines of each running member, for a failed wait's message. */
  recent(lines = 15): string {
    const out: string[] = [];
    for (const m of this.cluster.members.values()) {
      const picked = m.process.lines.filter((l) => /role in set|boot type|heard|stopped|alarm|handing|elected|campaign|serving|generation|self-test/.test(String(l.msg)));
      for (const l of picked.slice(-lines)) {
        const { level, time, pid, hostname, msg, ...rest } = l;
        out.push(`  ${m.id} ${new Date(Number(time)).toISOString().slice(11, 23)} ${String(msg)} ${JSON.stringify(rest)}`);
      }
    }
    return out.join('\n');
  }

  /** Each running member's role in `set` as its last "role in set" log line says (none before the first). */
  logRoles(set = SET, members = this.ids()): Record<string, string> {
    const roles: Record<string, string> = {};
    for (const id of members) {
      const p = this.cluster.members.get(id)?.process;
      if (!p || p.child.exitCode !== null || p.child.signalCode !== null) continue;
      let role = 'none';
      for (let i = p.lines.length - 1; i >= 0; i--) {
        const l = p.lines[i]!;
        if (l.msg === 'role in set' && l.set === set) {
          role = String(l.role);
          break;
        }
      }
      roles[id] = role;
    }
    return roles;
  }

  /**
   * The set's roles once every one of `members` holds one: one Primary, one Secondary (with
   * two or more), the rest Alternates. Waits on the members' logs, then confirms through each
   * member's API (and waits again if the API disagrees).
   */
  async settledRoles(set = SET, members = this.ids(), timeoutMs = 90_000): Promise<Record<string, string>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.whenLogs(() => (settled(this.logRoles(set, members), members) ? true : undefined), Math.max(1, deadline - Date.now()), `one Primary, one Secondary and Alternates of ${set} on ${members.join(', ')}`).catch((err: Error) => {
        throw new Error(`${err.message}: roles ${JSON.stringify(this.logRoles(set, members))}\n${this.recent()}`);
      });
      const roles: Record<string, string> = {};
      for (const id of members) roles[id] = (await this.setOf(id, set)).role;
      if (settled(roles, members)) return roles;
      if (Date.now() > deadline) throw new Error(`roles of ${set}: the API shows ${JSON.stringify(roles)}`);
      await new Promise((r) => setTimeout(r, 500)); // the API is polled: its view follows the logs
    }
  }

  /** Start every member (in the given order), each once ready. */
  async startAll(order = this.ids()): Promise<void> {
    for (const id of order) this.cluster.start(id);
    for (const id of order) await this.cluster.members.get(id)!.process.ready();
  }

  /** Restart `id` (SIGTERM, or kill -9) with extra environment, waiting until it is ready. */
  async restart(id: string, options: { kill?: boolean; env?: Record<string, string>; wipe?: boolean } = {}): Promise<ClusterMember> {
    await this.cluster.kill(id, options.kill ? 'SIGKILL' : 'SIGTERM');
    if (options.wipe) rmSync(this.dataOf(id), { recursive: true, force: true });
    const m = this.cluster.start(id, options.env);
    await m.process.ready();
    return m;
  }
}

/** Every member holds a role: exactly one Primary, one Secondary when there are two or more, the rest Alternates. */
function settled(roles: Record<string, string>, members: readonly string[]): boolean {
  const values = members.map((id) => roles[id]);
  const count = (r: string): number => values.filter((v) => v === r).length;
  const secondaries = members.length > 1 ? 1 : 0;
  return count('primary') === 1 && count('secondary') === secondaries && count('alternate') === members.length - 1 - secondaries;
}

export const primaryOf = (roles: Record<string, string>): string => Object.entries(roles).find(([, r]) => r === 'primary')![0];
export const alternateOf = (roles: Record<string, string>): string => Object.entries(roles).find(([, r]) => r === 'alternate')![0];
