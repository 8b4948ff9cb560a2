/**
 * A cluster test topology in network namespaces (needs root):
 *
 *   bgc<PID>-sw   the "switches": bridges br-a, br-b (management networks A and B) and br-f
 *                 (front end); cutting a member's link = setting its switch port down
 *   bgc<PID>-m1…  member hosts: eth-a 10.201.1.1N/24 (A), eth-b 10.201.2.1N/24 and
 *                 fd20:2::1N/64 (B), eth-f 10.201.3.1N/24 (front end)
 *   bgc<PID>-cl   the client host: eth-f 10.201.3.100/24
 *
 * Nothing is added to the root namespace. `destroy()` kills every process inside the
 * namespaces and deletes them; namespaces of a test process that died are swept at the
 * next set-up.
 */
import { destroyNamespace, ip, NS_PREFIX, sweepStaleNamespaces } from './netns.js';

export type NetworkName = 'a' | 'b' | 'f';

export interface HostInfo {
  readonly name: string;
  readonly ns: string;
  /** IPv4 address per network (no prefix). */
  readonly v4: Record<NetworkName, string>;
  /** IPv6 address on network B. */
  readonly v6b: string;
}

export interface Topology {
  readonly id: string;
  readonly members: HostInfo[];
  readonly client: HostInfo;
  readonly sw: string;
  /** A free front-end address for a set's service address. */
  readonly serviceAddress: string;
  cut(host: string, network: NetworkName): Promise<void>;
  heal(host: string, network: NetworkName): Promise<void>;
  destroy(): Promise<void>;
}

const SUBNET: Record<NetworkName, string> = { a: '10.201.1', b: '10.201.2', f: '10.201.3' };

export async function createTopology(t: { teardown(fn: () => unknown): void }, memberCount = 3): Promise<Topology> {
  await sweepStaleNamespaces();
  const id = `${NS_PREFIX}${process.pid}`;
  const sw = `${id}-sw`;
  const created: string[] = [];
  const destroy = async (): Promise<void> => {
    for (const ns of created.reverse()) await destroyNamespace(ns);
    created.length = 0;
  };
  t.teardown(destroy);
  const addNs = async (ns: string): Promise<void> => {
    await ip('netns', 'add', ns);
    created.push(ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  };
  await addNs(sw);
  for (const n of ['a', 'b', 'f'] as const) {
    await ip('-n', sw, 'link', 'add', `br-${n}`, 'type', 'bridge');
    await ip('-n', sw, 'link', 'set', `br-${n}`, 'up');
  }
  const host = async (name: string, hostNumber: number, networks: readonly NetworkName[]): Promise<HostInfo> => {
    const ns = `${id}-${name}`;
    await addNs(ns);
    const v4 = {} as Record<NetworkName, string>;
    for (const n of networks) {
      const port = `${name}${n}`;
      await ip('link', 'add', `eth-${n}`, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', sw);
      await ip('-n', sw, 'link', 'set', port, 'master', `br-${n}`);
      await ip('-n', sw, 'link', 'set', port, 'up');
      v4[n] = `${SUBNET[n]}.${hostNumber}`;
      await ip('-n', ns, 'addr', 'add', `${v4[n]}/24`, 'dev', `eth-${n}`);
      if (n === 'b') await ip('-n', ns, 'addr', 'add', `fd20:2::${hostNumber}/64`, 'dev', 'eth-b', 'nodad');
      await ip('-n', ns, 'link', 'set', `eth-${n}`, 'up');
    }
    return { name, ns, v4, v6b: `fd20:2::${hostNumber}` };
  };
  const members: HostInfo[] = [];
  for (let i = 1; i <= memberCount; i++) members.push(await host(`m${i}`, 10 + i, ['a', 'b', 'f']));
  const client = await host('cl', 100, ['f']);
  const port = (h: string, n: NetworkName): string => `${h}${n}`;
  return {
    id,
    members,
    client,
    sw,
    serviceAddress: `${SUBNET.f}.50`,
    cut: (h, n) => ip('-n', sw, 'link', 'set', port(h, n), 'down').then(() => undefined),
    heal: (h, n) => ip('-n', sw, 'link', 'set', port(h, n), 'up').then(() => undefined),
    destroy,
  };
}
