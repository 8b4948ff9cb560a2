/**
 * One cluster with management networks (cluster-net.ts) in a namespace topology, shared by
 * the tests of a file: its members, their management APIs and the waits the cluster tests
 * use (roles settled, a member restarted).
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, type ClusterMember } from './cluster.js';
import { API_PORT, eventually, nsApi, writeNetClusterConfig } from './cluster-net.js';
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
  ) {}

  /** Topology, a 16 MiB shared disk, the configuration; no member started yet. */
  static async create(t: { teardown(fn: () => unknown): void }, name: string, prefix: string): Promise<NetCluster> {
    const topo = await createTopology(t);
    const dir = mkdtempSync(join('/dev/shm', prefix));
    const disk = join(dir, 'disk.img');
    const fd = openSync(disk, 'w');
    ftruncateSync(fd, 16 * MiB);
    closeSync(fd);
    const config = writeNetClusterConfig({ name, dir, topology: topo, disk });
    const nsOf = (id: string): string => topo.members.find((m) => m.name === id)!.ns;
    const cluster = new TestCluster(t, config, (id) => join(dir, `data-${id}`), (id) => ({ netns: nsOf(id), extraArgs: ['--api', `127.0.0.1:${API_PORT}`] }));
    // After the cluster's own teardown (registered first, run last): members killed, then files.
    t.teardown(async () => {
      await cluster.killAll();
      rmSync(dir, { recursive: true, force: true });
    });
    return new NetCluster(topo, dir, cluster);
  }

  ids(): string[] {
    return this.topo.members.map((m) => m.name);
  }

  nsOf(id: string): string {
    return this.topo.members.find((m) => m.name === id)!.ns;
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

  /** The set's roles as each running member announces them, once they agree: one Primary, one Secondary. */
  settledRoles(set = SET, members = this.ids()): Promise<Record<string, string>> {
    return eventually(
      async () => {
        const roles: Record<string, string> = {};
        for (const id of members) roles[id] = (await this.setOf(id, set)).role;
        const values = Object.values(roles);
        const primaries = values.filter((r) => r === 'primary').length;
        const secondaries = values.filter((r) => r === 'secondary').length;
        return primaries === 1 && secondaries === (members.length > 1 ? 1 : 0) ? roles : undefined;
      },
      30_000,
      `one Primary and one Secondary of ${set}`,
    );
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

export const primaryOf = (roles: Record<string, string>): string => Object.entries(roles).find(([, r]) => r === 'primary')![0];
export const alternateOf = (roles: Record<string, string>): string => Object.entries(roles).find(([, r]) => r === 'alternate')![0];
